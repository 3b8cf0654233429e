"""Checks before a query runs: the query against the configured limits, before any index is
touched, and the query encoder against the model the index was built with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..choices import MODES
from ..config import Settings
from ..embed import Encoder
from ..errors import ModelMismatchError, UserInputError
from ..storage.lexical import check_syntax_limits

# Unicode's control characters (category Cc: C0, DEL and C1) less tab and line breaks; a
# pattern searches a query in C, where a check of each character's category cost ~6 us a query.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def validate_query(
    limits: Settings,
    text: str,
    *,
    k: int,
    mode: str,
    offset: int,
    syntax: bool,
    per_doc: int | None = None,
) -> None:
    """Refuse a query the engine will not run, with a message the user can act on."""
    if not text.strip():
        raise UserInputError("the query is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes on a command line arrive as lone surrogates
        raise UserInputError("the query is not valid UTF-8") from None
    if len(text) > limits.max_query_chars:
        raise UserInputError(f"the query is longer than {limits.max_query_chars} characters")
    if _CONTROLS.search(text):
        raise UserInputError("the query contains control characters")
    if mode not in MODES:
        raise UserInputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not 1 <= k <= limits.max_k:
        raise UserInputError(f"k must be between 1 and {limits.max_k}")
    if offset < 0 or offset + k > limits.max_window:
        raise UserInputError(f"offset must be >= 0 and offset + k <= {limits.max_window}")
    if per_doc is not None and per_doc < 1:
        raise UserInputError("per-doc must be at least 1")
    if syntax:
        check_syntax_limits(text, limits.max_syntax_depth, limits.max_syntax_terms)


def check_model(encoder: Encoder, built: dict[str, Any], home: Path) -> None:
    """Refuse an encoder other than the one the index at ``home`` was ``built`` with."""
    if encoder.fingerprint != built["fingerprint"] or encoder.dimension != built["dimension"]:
        raise ModelMismatchError(
            f"this index was built with model {built['name']!r} "
            f"(fingerprint {built['fingerprint']}), not {encoder.name!r} "
            f"(fingerprint {encoder.fingerprint}); rebuild it with "
            f"'searchkit index PATH --index {home}' using the model you query with"
        )
