"""Look inside a recurrent model: gate values per timestep, gradient flow, plots.

- `record_gates`: every gate and state of a `keras_lstm.LSTM` at every timestep.
- `input_gradients` / `gradient_norms`: `dL/dx_t` and its norm for every `t`,
  the measured form of "vanishing gradients".
- `plot_gates`, `plot_gradient_norms`: heat maps and curves (matplotlib, no
  display needed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_lstm.lstm import LSTMCell
from keras_lstm.recurrent import _autocast_scope

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
        mask: Optional boolean `(batch, timesteps)` (or `(batch, timesteps,
            1)`), `True` for valid steps.
        initial_state: Optional `[h_0, C_0]`, each `(batch, units)`. Default:
            where the layer would start, its carried states if it is
            `stateful` (and built with this batch size), else zeros.

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
        if mask.shape == (batch, steps, 1):
            mask = mask[..., 0]
        if mask.shape != (batch, steps):
            raise ValueError(
                f"`mask` must have shape ({batch}, {steps}). "
                f"Received: mask.shape={mask.shape}"
            )
    if initial_state is None and getattr(layer, "stateful", False) and layer.states:
        initial_state = [ops.convert_to_tensor(s) for s in layer.states]
        if initial_state[0].shape[0] != batch:
            raise ValueError(
                f"Stateful layer '{layer.name}' carries states for batches of "
                f"{initial_state[0].shape[0]} rows; `sequences` has {batch}. "
                "Pass initial_state=[h_0, C_0] for another batch size."
            )
    if initial_state is None:
        initial_state = cell.get_initial_state(batch_size=batch)
    h, c = (ops.convert_to_tensor(s, dtype=cell.compute_dtype) for s in initial_state)

    records = {name: [None] * steps for name in GATES}
    order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
    for t in order:
        # As the layer's call: under a mixed policy the float32 variables are
        # read as the compute dtype.
        with _autocast_scope(cell):
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


def _active_backend():
    """The module of Keras' active backend (tensorflow, jax or torch).

    Keras has already imported it, so this adds no dependency; it is looked up
    here, when gradients are asked for, because the library itself is written
    with `keras.ops` only and `import keras_lstm` must work with any backend.
    """
    name = keras.backend.backend()
    if name not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            "Gradients need the tensorflow, jax or torch backend. "
            f"Received: KERAS_BACKEND={name!r}"
        )
    return name, importlib.import_module(name)


def _value_and_input_grad(fn, x: np.ndarray):
    """`fn(x)` (a scalar) and `d fn / d x`, with the active backend's autodiff."""
    name, backend = _active_backend()
    if name == "tensorflow":
        tensor = backend.constant(x)
        with backend.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        grad = tape.gradient(value, tensor)
    elif name == "jax":
        value, grad = backend.value_and_grad(fn)(backend.numpy.asarray(x))
    else:  # torch
        tensor = backend.tensor(x, requires_grad=True)
        value = fn(tensor)
        (grad,) = backend.autograd.grad(value, [tensor])
        value, grad = value.detach(), grad.detach()
    return float(ops.convert_to_numpy(value)), ops.convert_to_numpy(grad)


def input_gradients(
    model, x, y, loss="mean_squared_error", training: bool = False
) -> np.ndarray:
    """The gradient of the loss with respect to every input: `dL/dx`.

    `L` is the loss averaged over the batch, as `model.fit` minimises it. The
    weights are only read; nothing is updated.

    Args:
        model: A built Keras model or layer that maps `x` to predictions.
        x: Float inputs `(batch, timesteps, features)` (for a model that starts
            with an Embedding, pass the embedded sequences to the layers after it).
        y: Targets, in the form `loss` expects.
        loss: A loss name, function or `keras.losses.Loss` (`keras.losses.get`).
        training: Passed to the model (`False`: no dropout).

    Returns:
        A float numpy array shaped like `x`.

    Example:

    >>> import numpy as np, keras, keras_lstm
    >>> model = keras.Sequential([keras_lstm.LSTM(4), keras.layers.Dense(1)])
    >>> x, y = np.ones((2, 5, 3), "float32"), np.zeros((2, 1), "float32")
    >>> keras_lstm.input_gradients(model, x, y).shape
    (2, 5, 3)
    """
    x = np.asarray(ops.convert_to_numpy(x))
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            "`x` must be a float array (batch, timesteps, features). "
            f"Received: x.shape={x.shape}, x.dtype={x.dtype}"
        )
    loss_fn = keras.losses.get(loss)
    if loss_fn is None:
        raise ValueError(f"`loss` must name a Keras loss. Received: loss={loss!r}")
    y = ops.convert_to_tensor(y)

    def batch_loss(inputs):
        return ops.mean(loss_fn(y, model(inputs, training=training)))

    return _value_and_input_grad(batch_loss, x)[1]


def gradient_norms(
    model, x, y, loss="mean_squared_error", training: bool = False
) -> np.ndarray:
    """How much the loss still "hears" each timestep: `||dL/dx_t||` for every `t`.

    For a model that reads a whole sequence and predicts at the end, the norm at
    step `t` is the signal that backpropagation through time brings back from
    the loss to the input `T - 1 - t` steps earlier. A plain RNN's curve falls
    exponentially towards early steps (vanishing gradients); an LSTM's stays
    flat over far longer spans.

    Args:
        model, x, y, loss, training: As in `input_gradients`.

    Returns:
        Float64 numpy array `(timesteps,)`: at index `t`, the Euclidean norm of
        `dL/dx[:, t, :]` over the batch and the features.

    Example:

    >>> import numpy as np, keras, keras_lstm
    >>> model = keras.Sequential([keras_lstm.LSTM(4), keras.layers.Dense(1)])
    >>> x, y = np.ones((2, 5, 3), "float32"), np.zeros((2, 1), "float32")
    >>> keras_lstm.gradient_norms(model, x, y).shape
    (5,)
    """
    grad = input_gradients(model, x, y, loss=loss, training=training)
    return np.sqrt(np.sum(np.square(grad, dtype="float64"), axis=(0, 2)))


def plot_gates(
    record: dict,
    path: str,
    token_labels: Sequence[str] | None = None,
    example: int = 0,
    inputs=None,
    input_labels: Sequence[str] | None = None,
    names: Sequence[str] = GATES,
    title: str | None = None,
) -> str:
    """Heat maps of recorded gates and states of one sequence, time on the x axis.

    Args:
        record: The dict returned by `record_gates`.
        path: Where to write the image: its extension picks the format (`.png`,
            `.svg`, `.pdf`, any matplotlib writes); none means PNG, and `.png`
            is appended, as matplotlib does. An existing image is replaced only
            once the new one is complete.
        token_labels: Optional label per timestep (e.g. the words of a review),
            written under the x axis.
        example: Which sequence of the batch to draw.
        inputs: Optional `(batch, timesteps, features)` inputs, drawn as an extra
            top panel (e.g. the values and markers of the adding problem).
        input_labels: Optional names of the input features (y axis of that panel).
        names: Which of `i`, `f`, `c_tilde`, `o`, `c`, `h` to draw, top to bottom.
        title: Optional figure title.

    Returns:
        The path written: `path`, with `.png` appended if it had no extension.

    Example:

    >>> import numpy as np, keras_lstm, tempfile, os
    >>> lstm = keras_lstm.LSTM(3)
    >>> x = np.random.default_rng(0).random((1, 4, 2)).astype("float32")
    >>> _ = lstm(x)
    >>> record = keras_lstm.record_gates(lstm, x)
    >>> out = os.path.join(tempfile.mkdtemp(), "gates.png")
    >>> keras_lstm.plot_gates(record, out, token_labels=["a", "b", "c", "d"]) == out
    True
    """
    from matplotlib.figure import Figure  # only plots need matplotlib

    path = _image_path(path)
    unknown = [name for name in names if name not in record]
    if not names or unknown:
        raise ValueError(
            f"`names` must be keys of `record` ({sorted(record)}). Received: {names}"
        )
    batch, steps = record[names[0]].shape[:2]
    if not 0 <= example < batch:
        raise ValueError(f"`example` must be in [0, {batch}). Received: {example}")
    if token_labels is not None and len(token_labels) != steps:
        raise ValueError(
            f"`token_labels` must have {steps} labels (one per timestep). "
            f"Received: {len(token_labels)}"
        )
    panels = [(name, record[name][example].T) for name in names]
    if inputs is not None:
        inputs = np.asarray(ops.convert_to_numpy(inputs))
        if inputs.ndim != 3 or inputs.shape[:2] != (batch, steps):
            raise ValueError(
                f"`inputs` must have shape ({batch}, {steps}, features). "
                f"Received: inputs.shape={inputs.shape}"
            )
        panels.insert(0, ("input", inputs[example].T))
    heights = [max(0.8, min(2.0, 0.06 * p.shape[0])) for _, p in panels]
    per_step = 0.22 if token_labels is not None else 1 / 30
    width = min(24.0, max(8.0, per_step * steps))
    fig = Figure(figsize=(width, sum(heights) + 1.5), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, height_ratios=heights)
    axes = np.atleast_1d(axes)
    limits = {"c_tilde": (-1, 1), "h": (-1, 1), "input": (None, None)}
    for ax, (name, values) in zip(axes, panels):
        low, high = limits.get(name, (0, 1))
        if name == "c":
            bound = float(np.nanmax(np.abs(values))) or 1.0
            low, high = -bound, bound
        cmap = "viridis" if low == 0 else "coolwarm"
        image = ax.imshow(
            values,
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            vmin=low,
            vmax=high,
        )
        ax.set_ylabel(_PANEL_NAMES.get(name, name), rotation=0, ha="right")
        if name == "input" and input_labels is not None:
            ax.set_yticks(range(values.shape[0]), list(input_labels))
        fig.colorbar(image, ax=ax, pad=0.01, fraction=0.02)
    if token_labels is not None:
        axes[-1].set_xticks(range(steps), list(token_labels), rotation=90)
    else:
        axes[-1].set_xlabel("timestep")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi=100)


_PANEL_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "c_tilde": "candidate C\u0303",
    "o": "output gate o",
    "c": "cell state C",
    "h": "hidden h",
    "input": "input x",
}


def plot_gradient_norms(curves: dict, path: str, title: str | None = None) -> str:
    """Draws `||dL/dx_t||` against `t` on a log scale, one line per curve.

    Left panel: the norms as measured. Right panel: each curve divided by its
    value at the last step, i.e. the fraction of the gradient at the last input
    that survives the way back to step `t` (independent of the loss' scale).

    Args:
        curves: `{label: norms}` with `norms` from `gradient_norms`.
        path: Where to write the image (extension and return value as in
            `plot_gates`).
        title: Optional title.

    Returns:
        The path written.

    Example:

    >>> import numpy as np, keras_lstm, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "grads.png")
    >>> curve = 0.9 ** np.arange(10)[::-1]
    >>> keras_lstm.plot_gradient_norms({"toy": curve}, out) == out
    True
    """
    from matplotlib.figure import Figure  # only plots need matplotlib

    path = _image_path(path)
    if not curves:
        raise ValueError("`curves` must hold at least one {label: norms} entry.")
    arrays = {}
    for label, norms in curves.items():
        arrays[label] = np.asarray(norms, dtype="float64")
        if arrays[label].ndim != 1:
            raise ValueError(
                f"`curves[{label!r}]` must be 1-D (timesteps,). "
                f"Received: shape {arrays[label].shape}"
            )
    fig = Figure(figsize=(11, 4), layout="constrained")
    measured, relative = fig.subplots(1, 2)
    for label, norms in arrays.items():
        steps = np.arange(len(norms))
        style = "--" if "init" in label else "-"
        line = measured.semilogy(steps, np.maximum(norms, 1e-30), style, label=label)
        ratio = norms / norms[-1] if norms[-1] > 0 else np.full_like(norms, np.nan)
        relative.semilogy(
            steps, np.maximum(ratio, 1e-30), style, color=line[0].get_color()
        )
    measured.set_ylabel("||dL/dx_t||")
    relative.set_ylabel("||dL/dx_t|| / ||dL/dx_T||")
    for ax in (measured, relative):
        ax.set_xlabel("input step t (the loss is computed after the last step T)")
        ax.grid(True, which="both", alpha=0.3)
    measured.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi=90)


def _image_path(path) -> str:
    """`path` as a str, `.png` appended when it has no extension (matplotlib
    would write there, not at `path`); ValueError for a folder or a format
    matplotlib does not write."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"`path` {path!r} is a folder; give a file name, e.g. "
            f"{os.path.join(path, 'plot.png')!r}"
        )
    extension = os.path.splitext(path)[1][1:].lower()
    if not extension:
        return path + ".png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if extension not in formats:
        raise ValueError(
            f"`path` {path!r}: matplotlib writes {', '.join(sorted(formats))}, "
            f"not {extension!r}"
        )
    return path


def _save(fig, path: str, dpi: int) -> str:
    """Writes `fig` next to `path` and renames it into place, so that an
    existing image is never left half-written; returns `path`."""
    folder, name = os.path.split(path)
    base, extension = os.path.splitext(name)
    tmp = os.path.join(folder, f".{base}.tmp-{os.getpid()}{extension}")
    try:
        fig.savefig(tmp, dpi=dpi, format=extension[1:].lower())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
