"""Query latency section: searchkit's modes next to the raw components they call, on the same
index, single-threaded and interleaved query by query (issue 6's first goal, issue 16's
first), and the back-to-back single-thread rates issue 16's HTTP goals compare with."""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import tantivy
import torch
from sentence_transformers import SentenceTransformer

from searchkit.config import Settings
from searchkit.embed.model import resolve_model
from searchkit.search.engine import SearchEngine
from searchkit.search.highlight import merge_spans, to_html
from searchkit.storage.analysis import analyzer, manifest_languages, query_terms, query_units
from searchkit.storage.lexical import ANALYZER_NAME
from searchkit.storage.matching import term_spans
from searchkit.storage.store import Store

CANDIDATES = 300
# The steps whose single-thread rate the HTTP section compares with (issue 16's second goal).
PLAIN_BM25_STEP = "searchkit bm25, no highlights"  # ``highlight=False``: what marking words costs
# Marking the words of a bm25 page alone, as ``search.hits.make_hit`` does for each hit.
HIGHLIGHT_STEP = "searchkit highlights alone (a bm25 page)"
RATE_STEPS = ("raw tantivy top 10 + texts", "searchkit bm25", PLAIN_BM25_STEP, "searchkit hybrid")
RATE_PASSES, RATE_SECONDS = 3, 1.0  # a back-to-back rate: at least this many passes and seconds


@dataclass
class LatencyRow:
    what: str
    p50_ms: float
    p95_ms: float
    per_s: float | None = None  # queries a second, one after another (RATE_STEPS only)


def _timed(action: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    action(text)
    return (time.perf_counter() - started) * 1000


def _rate(action: Callable[[str], object], queries: list[str]) -> float:
    """Queries a second on one thread, one after another, as a busy single thread runs them:
    the best of at least three passes over ``queries`` and of a second's worth of them (one
    pass of a fast step takes a few tens of milliseconds, which one hiccup would skew)."""
    best, spent, passes = 0.0, 0.0, 0
    while passes < RATE_PASSES or spent < RATE_SECONDS:
        started = time.perf_counter()
        for text in queries:
            action(text)
        elapsed = time.perf_counter() - started
        best, spent, passes = max(best, len(queries) / elapsed), spent + elapsed, passes + 1
    return best


def latency_rows(index: Path, queries: list[str]) -> list[LatencyRow]:
    # Single-threaded, every component alike: searchkit's query encoder uses one thread already.
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    # No query cache: every mode encodes the query it is timed on, as a new query would.
    engine = SearchEngine.open(index, Settings(query_cache=0))
    root = Store(engine.home).path(engine.generation)
    raw_index = tantivy.Index.open(str(root / "lexical"))
    languages = manifest_languages(engine.manifest)
    raw_index.register_tokenizer(ANALYZER_NAME, analyzer(languages[0]))
    searcher, schema = raw_index.searcher(), raw_index.schema
    vectors = faiss.read_index(str(root / "vectors.faiss"))
    model = SentenceTransformer(str(resolve_model(engine.manifest["model"]["name"])), device="cpu")
    engine.query(queries[0])  # load searchkit's copy of the model outside the timings

    def raw_tantivy(text: str) -> object:
        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", term))
            for term in query_terms(text, languages)
        ]
        return searcher.search(tantivy.Query.boolean_query(clauses), CANDIDATES).hits

    catalog = sqlite3.connect(str(root / "passages.sqlite"), check_same_thread=False)

    def raw_tantivy_page(text: str) -> object:
        """What a bm25 page needs at the least: the same analyzer, the top 10, their texts."""
        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", term))
            for term in query_terms(text, languages)
        ]
        hits = searcher.search(tantivy.Query.boolean_query(clauses), 10).hits
        ids = searcher.fast_field_values("pid", [address for _, address in hits])
        marks = ",".join("?" * len(ids))
        return catalog.execute(
            f"SELECT id, text FROM passages WHERE id IN ({marks})", ids
        ).fetchall()

    # Each query's bm25 page, fetched once, for the step that only highlights it.
    pages = {text: [hit.text for hit in engine.query(text, mode="bm25", highlight=False).hits]
             for text in queries}  # fmt: skip

    def highlights_alone(text: str) -> object:
        units = query_units(text, languages)
        return [to_html(t, merge_spans(t, term_spans(t, units, languages))) for t in pages[text]]

    probe = np.asarray(model.encode(["warm up"], normalize_embeddings=True), dtype=np.float32)
    steps: dict[str, Callable[[str], object]] = {
        "raw tantivy search": raw_tantivy,
        "raw tantivy top 10 + texts": raw_tantivy_page,
        "raw FAISS search": lambda _: vectors.search(probe, CANDIDATES),
        "raw sentence-transformers encode": lambda text: model.encode(
            [text], normalize_embeddings=True
        ),
        "searchkit bm25": lambda text: engine.query(text, mode="bm25"),
        PLAIN_BM25_STEP: lambda text: engine.query(text, mode="bm25", highlight=False),
        HIGHLIGHT_STEP: highlights_alone,
        "searchkit vector": lambda text: engine.query(text, mode="vector"),
        "searchkit hybrid": lambda text: engine.query(text, mode="hybrid"),
    }
    timings: dict[str, list[float]] = {name: [] for name in steps}
    # Every step on the same query before the next query, in a new order each time: a step
    # runs slower after one that fills the caches with other work (an encoder's forward pass)
    # and faster after one that has just read the same postings, so no step keeps one place.
    shuffler = random.Random(0)
    for text in queries:
        for name in shuffler.sample(list(steps), len(steps)):
            timings[name].append(_timed(steps[name], text))
    rates = {name: _rate(steps[name], queries) for name in RATE_STEPS}
    rows = []
    for name, values in timings.items():
        cuts = statistics.quantiles(values, n=100)
        rows.append(LatencyRow(name, cuts[49], cuts[94], rates.get(name)))
        rate = f"  {rates[name]:,.0f}/s back to back" if name in rates else ""
        print(f"{name:<36} p50 {cuts[49]:7.2f} ms  p95 {cuts[94]:7.2f} ms{rate}")
    torch.set_num_threads(os.cpu_count() or 1)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return rows
