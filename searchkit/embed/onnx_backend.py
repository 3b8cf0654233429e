"""The ONNX Runtime backend: the model's transformer exported locally, pooled in numpy.

A query needs only ``onnxruntime`` and ``tokenizers``, never torch. The graph is exported once
per model (that step does use torch, with no network) into the model cache, and ``int8`` is
ONNX Runtime's dynamic quantization of it: weights per channel, activations per batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelLoadError
from .model import ModelFolder, offline

if TYPE_CHECKING:
    from numpy.typing import NDArray

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# How the graph is exported, in the cached file's name: a new way makes a new file. Export 2
# traces attention in plain operations ("eager"), not through torch's fused attention, whose
# trace guards every attention matrix against NaN rows with IsNaN and Where nodes. On 2 cores,
# int8, 1,200 SciFact passages: 91.7-93.6 a second against 79.6-81.9, and a one-text query 2.5
# ms against 2.7-3.0 ms, cosines to torch fp32 unchanged (mean 0.9943 over 900 passages for
# both; /tmp/s3/oxtime.py, /tmp/s3/oxab.py).
EXPORT = 2


class OnnxEncoder(ModelFolder):
    """A sentence-transformers model (transformer + mean or CLS pooling) on ONNX Runtime."""

    def __init__(
        self,
        spec: str,
        precision: str = "fp32",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(spec)
        if precision not in {"fp32", "int8"}:
            raise ModelLoadError(f"the onnx backend runs fp32 or int8, not {precision!r}")
        self._precision = precision
        self._cache_dir = cache_dir or default_cache_dir()
        self._threads = threads

    @property
    def variant(self) -> str:
        return self._precision

    @cached_property
    def dimension(self) -> int:
        return int(self.pooling["word_embedding_dimension"])

    def prepare(self) -> Path:
        """Export (and quantize) the model into the cache unless it is there; its path."""
        return ensure_exported(self.folder, self.fingerprint, self._cache_dir, self._precision)

    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        """Unit-length float32 embeddings, one row per text, in input order. On several cores
        whole batches run side by side, one core each, as the torch backend runs them: 400
        SciFact abstracts went through int8 at 49.8-51.6 a second on 2 cores this way, against 43.7
        with each batch split across both (``/tmp/ox/workers.py``, a one-off script)."""
        self._input_names  # noqa: B018 (the session, made once before the threads share it)
        return self.encode_in_buckets(texts, self._forward, on_batch, workers=self._cores)

    @cached_property
    def _cores(self) -> int:
        """The cores this process may run on: its affinity where the system keeps one (Linux,
        where containers narrow it), else every core."""
        if self._threads:
            return self._threads
        affinity = getattr(os, "sched_getaffinity", None)  # not on macOS or Windows
        return len(affinity(0)) if affinity else os.cpu_count() or 1

    def _forward(self, ids: NDArray[np.int64], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        wanted = {name: feeds[name] for name in self._input_names}
        hidden: NDArray[np.float32] = self._session.run(None, wanted)[0]
        return hidden

    @cached_property
    def _session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1  # a batch a core (``encode``)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = self.prepare()
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load the ONNX model {path}: {exc}") from None

    @cached_property
    def _input_names(self) -> list[str]:
        return [node.name for node in self._session.get_inputs()]


def default_cache_dir() -> Path:
    """Where exported models live: ``$XDG_CACHE_HOME/searchkit/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "searchkit" / "models"


def ensure_exported(folder: Path, fingerprint: str, cache_dir: Path, precision: str) -> Path:
    """The cached ONNX file of this model and precision, exported on first use."""
    target = _cached(cache_dir, fingerprint, precision)
    if target.is_file():
        return target
    from filelock import FileLock  # only an export locks; it imports asyncio

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Several workers may start at once: one exports, the others wait and reuse its file.
    with FileLock(str(cache_dir / f"{fingerprint}.lock")):
        if target.is_file():
            return target
        fp32 = _cached(cache_dir, fingerprint, "fp32")
        if not fp32.is_file():
            _export(folder, fp32)
        if precision == "int8":
            _quantize(fp32, target)
        _remove_older_exports(cache_dir, fingerprint)
    return target


def _cached(cache_dir: Path, fingerprint: str, precision: str) -> Path:
    return cache_dir / f"{_this_export(fingerprint)}{precision}.onnx"


def _this_export(fingerprint: str) -> str:
    """How the names of this model's files of the current export begin."""
    return f"{fingerprint}-export{EXPORT}-"


def _remove_older_exports(cache_dir: Path, fingerprint: str) -> None:
    """Delete this model's files of earlier exports (tens of MB each) once this one's are
    there: ``{fingerprint}-{precision}.onnx`` from before exports were numbered, and lower
    numbers. A newer export's files stay: another installation may share the cache. A process
    still running on an old file keeps its copy, already loaded; a file that cannot be
    deleted (a cache shared read-only) is left."""
    numbered = re.compile(rf"{fingerprint}-export(\d+)-\w+\.onnx")
    for path in cache_dir.glob(f"{fingerprint}-*.onnx"):
        found = numbered.fullmatch(path.name)
        if found is None or int(found[1]) < EXPORT:
            with contextlib.suppress(OSError):
                path.unlink()


def _export(folder: Path, target: Path) -> None:
    """Trace the transformer to ONNX with dynamic batch and sequence axes (needs torch)."""
    offline()
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    try:
        loaded = AutoModel.from_pretrained(
            str(folder),
            local_files_only=True,
            attn_implementation="eager",  # see EXPORT
        )
        model = LastHiddenState(loaded)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {folder} to export it to ONNX: {exc}") from None
    model.eval()
    sample = tuple(torch.ones((2, 8), dtype=torch.long) for _ in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    partial = target.with_suffix(".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            sample,
            str(partial),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    partial.replace(target)


def _quantize(source: Path, target: Path) -> None:
    partial = target.with_suffix(".partial")
    # The quantizer advises pre-processing through the root logger; that does not apply here.
    logging.disable(logging.WARNING)
    try:
        _quantize_matmuls(source, partial)
    finally:
        logging.disable(logging.NOTSET)
    partial.replace(target)


def _quantize_matmuls(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per channel: with one scale per weight tensor the cosine to fp32 fell to 0.90 on some
    # SciFact abstracts, against 0.99 this way. MatMul only: int8 embedding tables add no speed.
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
    )
