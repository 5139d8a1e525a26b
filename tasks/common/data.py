"""Batches from NumPy arrays for `fit`, on every backend.

`ArrayBatches` is a `keras.utils.PyDataset`: no TensorFlow in the input
pipeline, so training runs on jax and torch too (on tensorflow, `fit` gets it
through `for_tensorflow_fit`). The order of epoch `e` is a
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


def for_tensorflow_fit(batches: keras.utils.PyDataset):
    """`batches` (any of the tasks' PyDatasets: a length, and batch `i` a pure
    function of the epoch set last and `i`) as the `tf.data.Dataset` that Keras'
    TensorFlow trainer would make of it, but with tf.data's autotuning off.

    Keras feeds a `PyDataset` through `from_generator(...).prefetch(AUTOTUNE)`.
    On the 2-core machine the autotuning thread made some training epochs of the
    sentiment task 1.5-1.8x slower (9-11 s instead of 5.3-6 s, for our layer and
    the built-in alike) and stalled up to 0.64 s when `fit` dropped the iterator
    (benchmarks/NOTES.md, section 14). Same batches in the same order: the
    generator reads `batches` when each epoch's iterator starts, after
    `EpochOrder` has set that epoch's order.
    """
    import tensorflow as tf

    first, last = batches[0], batches[len(batches) - 1]

    def spec(a, b):
        a, b = np.asarray(a), np.asarray(b)
        rest = [n if n == m else None for n, m in zip(a.shape[1:], b.shape[1:])]
        shape = [None, *rest]
        return tf.TensorSpec(shape, tf.as_dtype(a.dtype))

    signature = tf.nest.map_structure(spec, first, last)

    def generate():
        for index in range(len(batches)):
            yield batches[index]

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(1).with_options(options)
