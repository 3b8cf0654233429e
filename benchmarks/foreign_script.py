"""A collection where the vector leg is useless: a BEIR set written in a script the bundled
model has never seen.

Every Latin letter of the corpus and the queries is replaced by a Georgian one (a fixed
substitution; digits, spaces and punctuation stay). Words keep their boundaries and their
frequencies, so BM25 ranks almost as before (English stemming no longer applies), while
all-MiniLM-L6-v2, trained on English, sees text it cannot read: its leg falls to near zero,
as it does on the Arabic Wikipedia set of issue 14.

    python benchmarks/foreign_script.py ../shared/datasets/scifact OUT [--split train] [--docs N]

writes OUT/{corpus.jsonl, queries.jsonl, qrels/<split>.tsv}; ``--docs`` keeps every judged
document and fills up to N with the others, in corpus order.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

GEORGIAN = [chr(code) for code in range(0x10D0, 0x10D0 + 26)]
CIPHER = str.maketrans(
    {**dict(zip("abcdefghijklmnopqrstuvwxyz", GEORGIAN, strict=True)),
     **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", GEORGIAN, strict=True))}
)  # fmt: skip


def encipher(text: str) -> str:
    return text.translate(CIPHER)


def write(source: Path, target: Path, split: str, docs: int | None = None) -> Path:
    """``source`` enciphered into ``target`` (a BEIR folder); returns ``target``."""
    qrels = source / "qrels" / f"{split}.tsv"
    with qrels.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter="\t") if len(row) >= 3]
    judged = {row[1] for row in rows[1:]}
    target.mkdir(parents=True, exist_ok=True)
    (target / "qrels").mkdir(exist_ok=True)
    (target / "qrels" / f"{split}.tsv").write_text(
        "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8"
    )
    kept = 0
    with (
        (source / "corpus.jsonl").open(encoding="utf-8") as lines,
        (target / "corpus.jsonl").open("w", encoding="utf-8") as out,
    ):
        for line in lines:
            record = json.loads(line)
            keep = record["_id"] in judged or docs is None or kept < docs - len(judged)
            if not keep:
                continue
            kept += record["_id"] not in judged
            record["title"] = encipher(record.get("title", ""))
            record["text"] = encipher(record["text"])
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (
        (source / "queries.jsonl").open(encoding="utf-8") as lines,
        (target / "queries.jsonl").open("w", encoding="utf-8") as out,
    ):
        for line in lines:
            record = json.loads(line)
            record["text"] = encipher(record["text"])
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--docs", type=int, default=None)
    args = parser.parse_args()
    write(args.source, args.target, args.split, args.docs)
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()
