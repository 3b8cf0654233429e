"""How often a query's best document is judged relevant, by how far it leads the next one: the
count behind ``search.relevance.STANDOUT``. Hybrid, default settings, each judged query's top
document, in bins of its lead over the second document in log-odds of relevance without the
lead (each document's relevance is its best passage's; the engine counts the best passage's
lead over every other passage, its own document's included); beside the share judged relevant,
the mean relevance without and with the lead counted.

    python benchmarks/lead.py ../shared/datasets/scifact [--split train] [--index-home index]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from searchkit.config import Settings
from searchkit.evaluation.evaluate import encode_queries, load_beir, open_eval_engine
from searchkit.search import relevance

REPO = Path(__file__).resolve().parent.parent
BIN = 0.5  # log-odds
LAST_BIN = 8  # leads of 4 and more share one bin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a BEIR folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--index-home", default="index", help="where the eval index is cached")
    args = parser.parse_args()
    dataset = load_beir(args.dataset, args.split)
    home = (REPO / args.index_home).resolve()
    engine = open_eval_engine(dataset, home, Settings(index_dir=home))
    vectors = encode_queries(engine, dataset)
    shipped = relevance.STANDOUT
    bins: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for i, (qid, text) in enumerate(dataset.queries.items()):
        readings = []
        for standout in (0.0, shipped):
            relevance.STANDOUT = standout
            ranked = engine.rank_documents(text, "hybrid", 2, query_vector=vectors[i])
            readings.append(ranked)
        relevance.STANDOUT = shipped
        without, with_lead = readings
        if len(without.ranked) < 2:
            continue
        (best, _), (runner_up, _) = without.ranked[:2]
        lead = _logit(without.relevance[best]) - _logit(without.relevance[runner_up])
        judged = int(dataset.qrels[qid].get(best, 0) > 0)
        bins[max(-1, min(math.floor(lead / BIN), LAST_BIN))].append(
            (judged, without.relevance[best], with_lead.relevance[best])
        )
    print(f"{args.dataset.name} ({args.split}): top documents by lead, STANDOUT = {shipped}")
    print("| lead | queries | judged relevant | relevance without the lead | with it |")
    print("|---|---|---|---|---|")
    for position in sorted(bins):
        rows = bins[position]
        low = position * BIN
        span = f"{low:.1f}-{low + BIN:.1f}"
        if position == LAST_BIN:
            span = f"{low:.1f} and more"
        elif position < 0:
            span = "below 0 (another document holds the best passage)"
        print(
            f"| {span} | {len(rows)} | {_mean(r[0] for r in rows):.2f} "
            f"| {_mean(r[1] for r in rows):.2f} | {_mean(r[2] for r in rows):.2f} |"
        )


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)  # relevance is rounded to 4 places
    return math.log(p / (1 - p))


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items)


if __name__ == "__main__":
    main()
