"""The encoder backends against each other (real model), and length-bucketed batching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from searchkit import build_index
from searchkit.choices import Backend
from searchkit.config import Settings
from searchkit.embed import (
    Encoder,
    ModelFolder,
    load_encoder,
    load_query_encoder,
    passage_backend,
)
from searchkit.embed.batches import length_buckets
from searchkit.embed.factory import onnx_export
from searchkit.embed.model import read_pooling, resolve_model
from searchkit.errors import ModelLoadError

from .conftest import FIXTURE_DOCS, HashEncoder

TEXTS = [
    "S-400 air defence systems and the sanctions that followed",
    "short",
    *FIXTURE_DOCS.values(),
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """Plain sentence-transformers, which every backend must reproduce."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model(Settings().model)), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True)


@pytest.mark.parametrize(
    ("backend", "least_cosine"),
    [("torch-fp32", 0.99999), ("onnx-fp32", 0.9999), ("torch-bf16", 0.999), ("onnx-int8", 0.98)],
)
def test_backends_agree_with_sentence_transformers(
    reference: np.ndarray, backend: str, least_cosine: float
) -> None:
    encoder = load_encoder(Settings(), backend)  # type: ignore[arg-type]
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float((vectors * reference).sum(axis=1).min()) >= least_cosine
    assert encoder.variant == backend.split("-")[1]


def test_batches_on_parallel_workers_give_the_sequential_vectors() -> None:
    import torch

    texts = [" ".join(f"protein{i % 7} binds cell{j}" for j in range(i % 60)) for i in range(90)]
    sequential = load_encoder(Settings(), "torch-fp32", threads=1).encode(texts)
    threads_before = torch.get_num_threads()
    progress: list[int] = []
    parallel = load_encoder(Settings(), "torch-fp32", threads=2).encode(texts, progress.append)
    assert sum(progress) == len(texts) and len(progress) > 2  # several batches, all reported
    assert np.allclose(parallel, sequential, atol=1e-5)
    assert torch.get_num_threads() == threads_before  # the process keeps its own setting


@pytest.mark.parametrize("backend", ["onnx-fp32", "onnx-int8"])
def test_onnx_batches_side_by_side_give_the_sequential_vectors(backend: Backend) -> None:
    texts = [" ".join(f"protein{i % 7} binds cell{j}" for j in range(i % 60)) for i in range(90)]
    sequential = load_encoder(Settings(), backend, threads=1).encode(texts)
    progress: list[int] = []
    parallel = load_encoder(Settings(), backend, threads=2).encode(texts, progress.append)
    assert sum(progress) == len(texts) and len(progress) > 2  # several batches, all reported
    assert np.array_equal(parallel, sequential)  # the same passes, on other threads


def test_int8_vectors_depend_on_the_set_of_texts_not_their_order() -> None:
    """int8 activation scales are per forward pass: the same texts must make the same passes
    in any order (and on any machine of a distributed build), or vectors drift."""
    # Distinct texts, many of one length: ties must still break the same way.
    texts = [" ".join(f"kinase{i} cell{j}" for j in range(3 + i % 17)) for i in range(300)]
    encoder = load_encoder(Settings(), "onnx-int8")
    assert isinstance(encoder, ModelFolder)
    passes = encoder.batches(texts)
    assert len(passes) > 2
    reordered = texts[::-1]
    as_sets = {frozenset(texts[i] for i in group) for group in passes}
    assert as_sets == {
        frozenset(reordered[i] for i in group) for group in encoder.batches(reordered)
    }
    assert np.array_equal(encoder.encode(texts), encoder.encode(reordered)[::-1])


def test_every_backend_shares_the_weights_fingerprint(real_encoder: Encoder) -> None:
    query = load_query_encoder(Settings())
    assert query.fingerprint == real_encoder.fingerprint
    assert query.dimension == real_encoder.dimension == 384


def test_export_lands_in_the_configured_cache_and_replaces_older_ones(tmp_path: Path) -> None:
    settings = Settings(model_cache=tmp_path / "models", query_backend="onnx-int8")
    encoder = load_query_encoder(settings)
    (tmp_path / "models").mkdir()
    # Files of the export before exports were numbered, of a numbered one before this, and
    # of a newer one (another installation sharing the cache), which stays.
    export = onnx_export()
    for other in ("fp32", "int8", f"export{export - 1}-int8", f"export{export + 1}-int8"):
        (tmp_path / "models" / f"{encoder.fingerprint}-{other}.onnx").write_bytes(b"other")
    encoder.encode(["warm up"])
    names = sorted(p.name for p in (tmp_path / "models").glob("*.onnx"))
    exported, newer = (f"{encoder.fingerprint}-export{n}" for n in (export, export + 1))
    assert names == [f"{exported}-fp32.onnx", f"{exported}-int8.onnx", f"{newer}-int8.onnx"]


def test_auto_backend_follows_the_device() -> None:
    assert passage_backend(Settings(device="cuda")) == "torch-bf16"
    assert passage_backend(Settings(backend="onnx-fp32", device="cuda")) == "onnx-fp32"
    assert passage_backend(Settings()) in {"torch-bf16", "onnx-int8"}


def test_models_with_extra_modules_go_to_sentence_transformers(tmp_path: Path) -> None:
    modules = [{"type": "sentence_transformers.models.Transformer"}, {"type": "x.Dense"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match="Dense"):
        read_pooling(tmp_path)
    settings = Settings(model=str(tmp_path))
    assert passage_backend(settings) in {"torch-bf16", "torch-fp32"}
    assert load_query_encoder(settings).variant == "fp32"
    assert type(load_query_encoder(settings)).__name__ == "SentenceTransformerEncoder"


@pytest.mark.parametrize("budget", [1, 50, 400])
def test_length_buckets_cover_everything_once_within_budget(budget: int) -> None:
    lengths = [7, 3, 90, 12, 12, 40, 5, 200, 1, 33]
    batches = list(length_buckets(lengths, budget, max_batch=4))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 4
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= budget
    longest = [max(lengths[i] for i in batch) for batch in batches]
    assert longest == sorted(longest)


def test_a_new_precision_re_encodes_everything(tmp_path: Path, corpus: Path) -> None:
    class Int8Hash(HashEncoder):
        variant = "int8"

    index = tmp_path / "index"
    build_index([corpus], index, encoder=HashEncoder())
    again = build_index([corpus], index, encoder=HashEncoder())
    assert again.encoded == 0 and not again.published  # nothing changed: nothing published
    changed = build_index([corpus], index, encoder=Int8Hash())
    assert changed.model_changed and changed.reused == 0 and changed.published
    manifest = json.loads((index / "generations" / "g000002" / "manifest.json").read_text())
    assert manifest["model"]["variant"] == "int8"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_other_module_stacks_run_through_sentence_transformers(
    reference: np.ndarray, precision: str
) -> None:
    from searchkit.embed.torch_backend import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(Settings().model, precision=precision)
    encoder.__dict__["_plain_stack"] = False  # as for a model with, say, a Dense module
    vectors = encoder.encode(TEXTS)
    assert encoder.dimension == 384
    assert float((vectors * reference).sum(axis=1).min()) >= 0.999
