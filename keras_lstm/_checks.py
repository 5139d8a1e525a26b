"""Argument and shape checks shared by the cells and layers.

Every check raises `ValueError` naming the argument and the value received, so a
mistake is reported where it was made, not deep inside a backend.
"""

from __future__ import annotations

import numbers


def positive_int(name: str, value) -> int:
    """Returns `value` as an int, or raises if it is not an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def rate(name: str, value) -> float:
    """Returns `value` as a float in [0, 1], or raises.

    keras.layers.LSTM / GRU clip a rate outside [0, 1] into it silently
    (keras/src/layers/rnn/lstm.py:134); we raise instead, on purpose, so that a
    typo such as `dropout=2` or `-0.1` is reported rather than changed. 1.0 is
    accepted, as Keras saves it, and applies no dropout in the cell, as in
    Keras (see `keras_lstm.recurrent.drops`).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(
            f"`{name}` must be a float in [0, 1] (keras_lstm rejects values "
            "outside that range instead of clipping them as keras.layers.LSTM "
            f"and GRU do). Received: {name}={value!r}"
        )
    return float(value)


def implementation(value):
    """Any integer, kept as given, as the built-ins keep it: 1 computes each
    gate's matmul apart, every other value (2, the default; 0 from old
    configs) all gates in one matmul."""
    if not isinstance(value, numbers.Integral):
        raise ValueError(
            "`implementation` must be an integer (1: one matmul per gate; any "
            f"other: one for all gates). Received: implementation={value!r}"
        )
    return value


def equal_to_one_of(name: str, value, choices: tuple):
    """The choice that `value` equals, as the built-ins' `value not in choices`
    accepts it (1, np.True_ for True), returned as the choice itself (a plain
    bool, which a config can save)."""
    for choice in choices:
        try:
            if bool(value == choice):
                return choice
        except (TypeError, ValueError):  # an array: ambiguous truth value
            break
    raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")


def sequences_shape(layer_name: str, shape) -> None:
    """`sequences` must be (batch, timesteps, features)."""
    if len(shape) != 3:
        raise ValueError(
            f"Layer '{layer_name}' expects `sequences` of rank 3 "
            "(batch, timesteps, features). "
            f"Received: sequences.shape={tuple(shape)}"
        )
    if shape[1] == 0:  # Keras' loop reads step 0 first: an IndexError or so
        raise ValueError(
            f"Layer '{layer_name}' expects `sequences` with at least one "
            f"timestep. Received: sequences.shape={tuple(shape)}"
        )


def features(layer_name: str, shape, built_features: int) -> None:
    """The feature axis must keep the size the layer was built with."""
    if shape[-1] is not None and shape[-1] != built_features:
        raise ValueError(
            f"Layer '{layer_name}' was built for sequences with "
            f"{built_features} features, but `sequences` has {shape[-1]}. "
            f"Received: sequences.shape={tuple(shape)}"
        )


def states(layer_name: str, initial_state, count: int, units: int, batch) -> None:
    """`initial_state` must hold `count` tensors of shape (batch, units)."""
    received = (
        list(initial_state)
        if isinstance(initial_state, (list, tuple))
        else [initial_state]
    )
    state_shapes(layer_name, [tuple(s.shape) for s in received], count, units, batch)


def state_shapes(layer_name: str, shapes, count: int, units: int, batch) -> None:
    """`states` on the shapes of `initial_state`: a list of shapes, or one
    shape (a bare tensor), as Keras passes them to `compute_output_shape`."""
    one = isinstance(shapes, tuple)
    if one and all(d is None or isinstance(d, int) for d in shapes):
        shapes = [shapes]  # one shape, not a tuple of shapes
    shapes = [tuple(shape) for shape in shapes]
    if len(shapes) != count:
        raise ValueError(
            f"Layer '{layer_name}' expects `initial_state` to be a list of "
            f"{count} tensor(s) of shape (batch, {units}). Received "
            f"{len(shapes)} tensor(s) with shapes {shapes}"
        )
    for shape in shapes:
        bad_batch = batch is not None and shape and shape[0] not in (None, batch)
        if len(shape) != 2 or shape[-1] not in (None, units) or bad_batch:
            raise ValueError(
                f"Layer '{layer_name}' expects each `initial_state` tensor to "
                f"have shape ({batch}, {units}). Received shapes {shapes}"
            )


def mask(layer_name: str, mask, sequences_shape) -> None:
    """`mask` must be (batch, timesteps), or (batch, timesteps, 1) as Keras'
    loop accepts too, matching `sequences`."""
    shape = tuple(mask.shape)
    expected = tuple(sequences_shape[:2])
    matches = (len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )
    if not matches:
        raise ValueError(
            f"Layer '{layer_name}' expects `mask` of shape (batch, timesteps) = "
            f"{expected} (or {expected + (1,)}). Received: mask.shape={shape}"
        )
