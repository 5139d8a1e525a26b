"""Look inside a trained LSTM: the value of every gate at every timestep."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_lstm.lstm import LSTMCell

GATES = ("i", "f", "c_tilde", "o", "c", "h")


def record_gates(layer, sequences, mask=None, initial_state=None) -> dict:
    """Replays an LSTM layer step by step and returns its gates and states.

    The layer is only read (its cell's weights and equations, via
    `LSTMCell.step_values`), so the model used in training is unchanged.

    Args:
        layer: A built `keras_lstm.LSTM`, or a `keras.layers.RNN` around a
            `keras_lstm.LSTMCell`.
        sequences: `(batch, timesteps, features)`: what the layer receives (for
            a model with an Embedding, the embedded tokens).
        mask: Optional boolean `(batch, timesteps)`, `True` for valid steps.
        initial_state: Optional `[h_0, C_0]`, each `(batch, units)`.

    Returns:
        A dict of numpy arrays `(batch, timesteps, units)`, in the input's time
        order (also with `go_backwards`): `i`, `f`, `c_tilde`, `o` (the gates) and
        `c`, `h` (the states after the step). At a masked step the layer keeps
        its states, so `c` and `h` repeat the previous values and the gates,
        which the layer computes but discards, are NaN.
    """
    cell = getattr(layer, "cell", None)
    if not isinstance(cell, LSTMCell):
        raise ValueError(
            "`layer` must be a keras_lstm.LSTM or a keras.layers.RNN around a "
            f"keras_lstm.LSTMCell. Received: layer of type {type(layer).__name__}"
        )
    if not layer.built:
        raise ValueError(f"Layer '{layer.name}' is not built: call it once first.")
    x = ops.convert_to_tensor(sequences, dtype=cell.compute_dtype)
    if len(x.shape) != 3 or x.shape[-1] != cell.kernel.shape[0]:
        raise ValueError(
            f"`sequences` must have shape (batch, timesteps, "
            f"{cell.kernel.shape[0]}). Received: sequences.shape={tuple(x.shape)}"
        )
    batch, steps = x.shape[0], x.shape[1]
    if mask is not None:
        mask = np.asarray(ops.convert_to_numpy(mask), dtype=bool)
        if mask.shape != (batch, steps):
            raise ValueError(
                f"`mask` must have shape ({batch}, {steps}). "
                f"Received: mask.shape={mask.shape}"
            )
    if initial_state is None:
        initial_state = cell.get_initial_state(batch_size=batch)
    h, c = (ops.convert_to_tensor(s, dtype=cell.compute_dtype) for s in initial_state)

    records = {name: [None] * steps for name in GATES}
    order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
    for t in order:
        projected = cell.project_inputs(x[:, t, :], with_bias=False)
        values = cell.step_values(projected, [h, c], add_bias=True)
        if mask is not None:
            valid = ops.convert_to_tensor(mask[:, t : t + 1])
            values = {
                name: ops.where(valid, value, float("nan"))
                for name, value in values.items()
            }
            values["h"] = ops.where(valid, values["h"], h)
            values["c"] = ops.where(valid, values["c"], c)
        h, c = values["h"], values["c"]
        for name in GATES:
            records[name][t] = ops.convert_to_numpy(values[name])
    return {name: np.stack(records[name], axis=1) for name in GATES}
