"""Text generation data: Shakespeare's works, characters as ids, random windows.

The bundled corpus holds 42 works (plays and poems) as `{work: text}`; the
held-out splits are whole works named in the config, never slices of a work
that is also trained on. `--dataset tiny_shakespeare` reads the canonical
Tiny Shakespeare through tfds instead (its own train / validation / test
slices of one text).

Characters become ids through a vocabulary built from the training text:
id 0 is the unknown character, standing for every character seen fewer than
`min_count` times in training (and for any character never seen there);
the others are sorted by code point.
"""

from __future__ import annotations

import bz2
import json

import keras
import numpy as np

from tasks.common.bundled import read_bundled
from tasks.common.config import ConfigError
from tasks.common.datasets import tfds_load
from tasks.text_generation.config import check_names

CORPUS = "shakespeare.json.bz2"
SPLITS = ("train", "validation", "test")
UNKNOWN = "\ufffd"  # how the unknown id is shown; never in the training text
SEPARATOR = "\n\n"  # between two works of one split


def load_works() -> dict[str, str]:
    """The 42 bundled works, `{name: text}` (sha256-checked)."""
    return json.loads(bz2.decompress(read_bundled(CORPUS)).decode("ascii"))


def split_works(
    works: dict[str, str], validation: list[str], test: list[str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Splits whole works: the named ones are held out, the rest is training.

    Returns:
        `({split: text}, {split: [work names]})`; a split's works are joined
        with a blank line.

    Raises:
        ConfigError: an unknown work, a work named twice, or an empty split.
    """
    check_names(tuple(works), validation, test)
    held = set(validation) | set(test)
    names = {
        "train": [name for name in works if name not in held],
        "validation": list(validation),
        "test": list(test),
    }
    texts = {
        split: SEPARATOR.join(works[name] for name in names[split]) for split in SPLITS
    }
    return texts, names


def load_tiny_shakespeare(data_dir: str | None = None) -> dict[str, str]:
    """Tiny Shakespeare (Karpathy's 1.1 M characters) via `tfds.load`.

    Its splits are tfds' own contiguous slices of one text. Downloads on first
    use into the TFDS data directory (`data_dir`, default tfds' own); offline
    and not there, raises `DatasetError` at once
    (`tasks.common.datasets.tfds_load`).
    """
    import tensorflow_datasets as tfds

    texts = {}
    for split, dataset in zip(SPLITS, tfds_load("tiny_shakespeare", SPLITS, data_dir)):
        parts = [row["text"].decode("utf-8") for row in tfds.as_numpy(dataset)]
        texts[split] = "".join(parts)
    return texts


# Vocabulary -------------------------------------------------------------------


def build_vocabulary(text: str, min_count: int) -> list[str]:
    """`[UNKNOWN, chars seen >= min_count times, by code point]`."""
    chars, counts = np.unique(np.array(list(text)), return_counts=True)
    kept = sorted(str(c) for c, n in zip(chars, counts) if n >= min_count)
    return [UNKNOWN] + kept


def encode(text: str, vocabulary: list[str], unknown: str = "replace") -> np.ndarray:
    """Character ids (int32) of `text`.

    Args:
        text: any string.
        vocabulary: from `build_vocabulary`.
        unknown: what to do with characters outside the vocabulary:
            `"replace"` maps them to id 0, as rare characters were mapped in
            training; `"error"` raises a ValueError naming them.
    """
    index = {char: i for i, char in enumerate(vocabulary) if i}
    missing = sorted({char for char in text if char not in index})
    if missing and unknown == "error":
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:10])
        raise ValueError(
            f"characters outside the model's vocabulary: {shown}"
            f"{' ...' if len(missing) > 10 else ''}; the vocabulary is "
            f"{''.join(vocabulary[1:])!r} (pass --unknown replace to map them to "
            "the unknown id)"
        )
    return np.array([index.get(char, 0) for char in text], dtype="int32")


def start_id(vocabulary: list[str]) -> int:
    """What generation feeds first when the prompt is empty: a newline."""
    return vocabulary.index("\n") if "\n" in vocabulary else 0


def decode(ids, vocabulary: list[str]) -> str:
    """The text of character ids (the unknown id shows as U+FFFD)."""
    return "".join(vocabulary[int(i)] for i in ids)


# Batches ----------------------------------------------------------------------


class RandomWindows(keras.utils.PyDataset):
    """Batches of random windows of a long id array: inputs and next characters.

    Batch `b` of epoch `e` is drawn with `np.random.default_rng([seed, e, b])`,
    so it depends on nothing else: a run resumed at epoch `e` sees exactly the
    batches the uninterrupted run saw.

    Args:
        ids: the training text as character ids.
        length: characters per window.
        batch_size: windows per batch.
        steps: batches per epoch.
        seed: with the epoch and batch index, fixes each batch.
    """

    def __init__(
        self, ids: np.ndarray, length: int, batch_size: int, steps: int, seed: int
    ):
        super().__init__()
        if len(ids) < length + 2:
            raise ConfigError(
                f"--seq-length={length}: longer than the training text "
                f"({len(ids)} characters)"
            )
        self.ids, self.length, self.batch_size = ids, length, batch_size
        self.steps, self.seed, self.epoch = steps, seed, 0
        self.offsets = np.arange(length + 1)

    def set_epoch(self, epoch: int) -> None:
        """Called by `tasks.common.fit` at the start of every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        starts = rng.integers(0, len(self.ids) - self.length, size=self.batch_size)
        windows = self.ids[starts[:, None] + self.offsets]
        return windows[:, :-1], windows[:, 1:]


def held_out_windows(ids: np.ndarray, length: int, count: int):
    """(x, y): `count` non-overlapping windows spread evenly over `ids`
    (all of them when `count` is 0 or more than there are)."""
    total = (len(ids) - 1) // length
    if total < 1:
        raise ConfigError(
            f"--seq-length={length}: longer than a held-out split "
            f"({len(ids)} characters)"
        )
    chosen = np.arange(total)
    if 0 < count < total:
        chosen = np.linspace(0, total - 1, count).round().astype(int)
    starts = chosen * length
    windows = ids[starts[:, None] + np.arange(length + 1)]
    return windows[:, :-1], windows[:, 1:]
