"""The adding problem: remember two marked numbers across a long sequence.

Each sequence has `length` steps of two features: a value drawn uniformly from
[0, 1] and a marker that is 1 at exactly two steps (one in the first half, one in
the second half) and 0 elsewhere. The target is the sum of the two marked
values. Predicting the constant 1 (the mean of the target) scores an MSE of
Var(U1 + U2) = 2/12 ≈ 0.167, so a model must beat that to show it remembers.

Reference: Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997 (experiment
4); this variant (values in [0, 1], one marker per half) is the one of Le,
Jaitly & Hinton, 2015 and Arjovsky, Shah & Bengio, 2016.
"""

from __future__ import annotations

import keras
import numpy as np

CONSTANT_GUESS_MSE = 2 / 12  # the variance of the sum of two U(0, 1) numbers


def adding_targets(sequences: np.ndarray) -> np.ndarray:
    """The target of each sequence: the sum of its marked values.

    Args:
        sequences: `(batch, length, 2)`: values in channel 0, markers (0/1) in
            channel 1.

    Returns:
        `(batch, 1)` float32: for each sequence, the sum of the values at the
        steps whose marker is 1.

    Example:

    >>> x = np.array([[[0.5, 1], [0.2, 0], [0.25, 1]]], "float32")
    >>> adding_targets(x)
    array([[0.75]], dtype=float32)
    """
    sequences = np.asarray(sequences)
    if sequences.ndim != 3 or sequences.shape[-1] != 2:
        raise ValueError(
            "`sequences` must have shape (batch, length, 2). "
            f"Received: sequences.shape={sequences.shape}"
        )
    total = (sequences[..., 0] * sequences[..., 1]).sum(axis=1, keepdims=True)
    return total.astype("float32")


def adding_problem(
    num_sequences: int, length: int, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draws `num_sequences` adding-problem sequences and their targets.

    Args:
        num_sequences: Positive int, how many sequences.
        length: Int >= 2, the number of timesteps `T`.
        seed: An int seed or a `numpy.random.Generator`.

    Returns:
        `(x, y)`: `x` is float32 `(num_sequences, length, 2)` (value, marker),
        `y` is float32 `(num_sequences, 1)`, the sum of the two marked values.
        The first marker lies in steps `[0, T // 2)`, the second in
        `[T // 2, T)`.

    Example:

    >>> x, y = adding_problem(4, 10, seed=0)
    >>> x.shape, y.shape, x[..., 1].sum(axis=1).tolist()
    ((4, 10, 2), (4, 1), [2.0, 2.0, 2.0, 2.0])
    """
    if not isinstance(num_sequences, (int, np.integer)) or num_sequences < 1:
        raise ValueError(
            f"`num_sequences` must be a positive int. Received: {num_sequences!r}"
        )
    if not isinstance(length, (int, np.integer)) or length < 2:
        raise ValueError(f"`length` must be an int >= 2. Received: {length!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    half = length // 2
    x = np.zeros((num_sequences, length, 2), "float32")
    x[..., 0] = rng.random((num_sequences, length), dtype="float32")
    rows = np.arange(num_sequences)
    x[rows, rng.integers(0, half, num_sequences), 1] = 1.0
    x[rows, rng.integers(half, length, num_sequences), 1] = 1.0
    return x, adding_targets(x)


class AddingBatches(keras.utils.PyDataset):
    """Fresh adding-problem batches for `fit`, reproducible and resumable.

    Batch `k` of epoch `e` is drawn from the seed `(seed, e, k)` alone, so every
    model of a comparison sees the same sequences, and a resumed run (which
    calls `set_epoch`, as `tasks.common.fit` does) continues with the data the
    uninterrupted run would have seen.

    Args:
        length: The sequence length `T`.
        batch_size: Sequences per batch.
        steps: Batches per epoch.
        seed: Base seed.

    Example:

    >>> batches = AddingBatches(length=20, batch_size=4, steps=3, seed=1)
    >>> x, y = batches[0]
    >>> len(batches), x.shape, y.shape
    (3, (4, 20, 2), (4, 1))
    """

    def __init__(self, length: int, batch_size: int, steps: int, seed: int = 0):
        super().__init__()
        for name, value in (("batch_size", batch_size), ("steps", steps)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive int. Received: {value!r}"
                )
        self.length, self.batch_size, self.steps = length, batch_size, steps
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the batches of `epoch` (called by `tasks.common`'s EpochOrder)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return adding_problem(self.batch_size, self.length, rng)
