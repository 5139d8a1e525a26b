"""Batches from NumPy arrays for `fit`, on every backend.

`ArrayBatches` is a `keras.utils.PyDataset`: no TensorFlow in the input
pipeline, so training runs on jax and torch too. The order of epoch `e` is a
permutation seeded by `(seed, e)` alone, so a run resumed at epoch `e` (see
`--resume`) sees exactly the batches the uninterrupted run saw.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled batches of `(x, y)` NumPy arrays.

    Args:
        x: inputs, an array or a tuple of arrays with the same first dimension.
        y: targets (or None).
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: reshuffle every epoch (training data).
        seed: with the epoch number, fixes each epoch's order.
        steps: batches per epoch (0 = all); for tiny runs and tests.
    """

    def __init__(
        self,
        x: np.ndarray | Sequence[np.ndarray],
        y: np.ndarray | None,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        steps: int = 0,
    ):
        super().__init__()
        self.x, self.y = x, y
        self.rows = len(x[0] if isinstance(x, (tuple, list)) else x)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        full = -(-self.rows // batch_size)
        self.steps = min(steps, full) if steps else full
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fixes the row order for `epoch` (called by `EpochOrder`)."""
        if self.shuffle:
            self.order = np.random.default_rng([self.seed, epoch]).permutation(
                self.rows
            )
        else:
            self.order = np.arange(self.rows)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if isinstance(self.x, (tuple, list)):
            x = tuple(a[rows] for a in self.x)
        else:
            x = self.x[rows]
        return x if self.y is None else (x, self.y[rows])


class EpochOrder(keras.callbacks.Callback):
    """Tells the training batches which epoch starts, so its order is fixed."""

    def __init__(self, batches: ArrayBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
