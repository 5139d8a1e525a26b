"""TFLite-friendly recurrent loops for our layers (TensorFlow only).

Keras' TensorFlow loop (`tf.while_loop` over `TensorArray`s) converts to TFLite
only with Flex ops (`FlexTensorListReserve`, ...). While a model is traced for
TFLite, `lowered(model)` swaps, on each `keras_lstm.LSTM` / `keras_lstm.GRU`
instance only, the layer's `inner_loop` for one built from builtin ops:

* **fused** (LSTM): a `tf.function` marked `api_implements="lstm_<id>"`, which
  the converter replaces by one `UNIDIRECTIONAL_SEQUENCE_LSTM` op. Masks are
  handled around it, assuming right padding (see `fused_loop`).
* **fallback** (GRU, and LSTM configurations the fused op cannot express): the
  cell's own `call` in a `tf.while_loop` without TensorArrays (TFLite WHILE,
  default) or unrolled over the steps in Python, masking written out exactly as
  Keras' `tf.while_loop` does it, or, for a layer with `unroll=True`, as Keras'
  unrolled loop does (`_unrolled_masking`: the two differ for `go_backwards`
  with `zero_output_for_mask`).

Both return what `keras.src.backend.rnn` returns: `(last_output, outputs,
states)`, so the rest of `keras.layers.RNN.call` (and `Bidirectional`) runs
unchanged.
"""

from __future__ import annotations

import contextlib
import uuid

import keras
import numpy as np
import tensorflow as tf

import keras_lstm

# Input weight of the extra "reset" feature on the i and f gates (see
# `fused_loop`): sigmoid(-1e30) is exactly 0 in float32, in TF and in LiteRT.
_RESET_WEIGHT = -1e30
# Whether `fused_loop` runs that reset step (switched off only by a test showing
# that without it the fused op carries state from one invocation to the next).
_RESET_STEP = True


def _is(activation, name: str) -> bool:
    return keras.activations.serialize(activation) == name


def _static_zeros(tensors) -> bool:
    """Whether every tensor is a trace-time constant equal to zero."""
    for t in tensors:
        value = tf.get_static_value(t)
        if value is None or np.any(value != 0):
            return False
    return True


def _unrolled_masking(layer, mask) -> bool:
    """Whether Keras masks this call's outputs its `unroll=True` way.

    Keras' unrolled loop (keras/src/backend/tensorflow/rnn.py) fills a masked
    step with the previous output and only afterwards zeroes the outputs where
    the mask *in input order* is False, while the outputs are in processing
    order; its while loop zeroes each masked step as it goes. For
    `go_backwards` with `zero_output_for_mask` the results differ."""
    return bool(
        layer.unroll
        and mask is not None
        and layer.go_backwards
        and layer.zero_output_for_mask
    )


def _zero_as_unrolled(layer, last_output, outputs, mask, last_mask):
    """Keras' unrolled zeroing (see `_unrolled_masking`): `outputs` (batch,
    time, units) by the mask in input order, the last output by the mask of
    the last step processed."""
    last_output = tf.where(last_mask[:, None], last_output, 0.0)
    if layer.return_sequences:
        outputs = tf.where(tf.cast(mask, tf.bool)[:, :, None], outputs, 0.0)
    else:
        outputs = last_output[:, None]
    return last_output, outputs


def fused_refusal(layer, sequences, initial_state, mask, padding: str):
    """Why the fused LSTM op cannot run this call, or None when it can."""
    cell = layer.cell
    if not isinstance(layer, keras_lstm.LSTM):
        return "not an LSTM (TFLite has no fused GRU op)"
    if _unrolled_masking(layer, mask):
        return (
            "unroll=True with go_backwards and zero_output_for_mask (Keras' "
            "unrolled masking)"
        )
    if not (_is(cell.activation, "tanh") and _is(cell.recurrent_activation, "sigmoid")):
        return "activation is not tanh/sigmoid (the fused op hard-codes them)"
    if layer.return_state:
        return "return_state=True (the fused op does not output the cell state c)"
    if sequences.dtype != tf.float32:
        return f"compute dtype is {sequences.dtype.name}, not float32"
    if not _static_zeros(initial_state):
        return "initial_state is given (the fused op starts from zeros)"
    if mask is not None and padding != "right":
        return "masked and padding='any' (the fused op takes no mask)"
    return None


def _fused_lstm_function():
    """A fresh composite function the converter fuses into one TFLite op.

    Its body (used by TensorFlow, and kept if the converter cannot fuse) is the
    LSTM, gate order i, f, c, o, tanh and sigmoid, as a builtin-only
    `tf.while_loop` like `while_loop`'s (with a Python loop, tracing made the
    export slow for long sequences: 8 s instead of 1 s at T = 200).
    """

    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        steps = inputs.shape[1]
        time_major = tf.transpose(inputs, [1, 0, 2])
        time_index = tf.range(steps)

        def body(t, h, c, buffer):
            z = tf.matmul(tf.gather(time_major, t), kernel)
            z = z + tf.matmul(h, recurrent_kernel)
            z_i, z_f, z_c, z_o = tf.split(z + bias, 4, axis=1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
            h = tf.sigmoid(z_o) * tf.tanh(c)
            buffer = tf.where(tf.equal(time_index, t)[:, None, None], h[None], buffer)
            return t + 1, h, c, buffer

        buffer = tf.zeros((steps, *init_h.shape))
        _, h, c, buffer = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), init_h, init_c, buffer)
        )
        sequence = tf.transpose(buffer, [1, 0, 2])
        return h, sequence, h, c, tf.constant(0.0)

    return tf.function(
        lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": "lstm_" + uuid.uuid4().hex,
            "time_major": False,
            "go_backwards": False,
        },
    )


def fused_loop(layer, sequences, initial_state, mask):
    """The layer's loop as one fused LSTM op plus builtin glue.

    * Statelessness: TFLite keeps the fused op's h and c in variable tensors
      that survive between invocations (the next call would start from the last
      call's final state unless the app calls `reset_all_variables()`). So one
      extra first step is run with an extra input feature set to 1 whose weights
      on the i and f gates are -1e30: both gates are exactly 0, so C = 0 and
      h = 0 before the real first step, whatever the previous call left.
    * Masks (right padding assumed): the fused op runs over the padding too, but
      outputs before a row's length do not depend on later steps. The last valid
      output is gathered at length - 1; masked steps get what Keras gives them
      (the previous output, or zeros with `zero_output_for_mask`).
    * `go_backwards` over right-padded rows reverses each row within its length
      (`tf.reverse_sequence`, builtin REVERSE_SEQUENCE); Keras' reversed-order
      outputs then have the padding first, as zeros.
    """
    cell = layer.cell
    batch, steps, features = sequences.shape
    units = cell.units
    kernel = tf.convert_to_tensor(cell.kernel)
    if _RESET_STEP:
        reset_row = np.zeros((1, 4 * units), np.float32)
        reset_row[0, : 2 * units] = _RESET_WEIGHT
        kernel = tf.concat([kernel, tf.constant(reset_row)], axis=0)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    if cell.use_bias:
        bias = tf.convert_to_tensor(cell.bias)
    else:
        bias = tf.zeros((4 * units,), tf.float32)

    x = sequences
    lengths = None
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    if layer.go_backwards:
        if lengths is None:
            x = tf.reverse(x, axis=[1])
        else:
            x = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)
    # A NaN input would leave a NaN state in the op's variables, which the
    # reset step cannot clear (0 * NaN is NaN): every later call would be NaN.
    # So the op reads NaN as 0, and the outputs from a row's first NaN step
    # on (in processing order, masked steps aside) are made NaN, as Keras'
    # NaN state gives them. NOT_EQUAL: TFLite has no builtin IsNan.
    is_nan = tf.not_equal(x, x)
    x = tf.where(is_nan, tf.zeros_like(x), x)
    nan_steps = tf.reduce_any(is_nan, axis=2)  # (batch, steps)
    if lengths is not None:  # right padding: processing order keeps the mask
        nan_steps = tf.logical_and(nan_steps, mask)
    poisoned = tf.cumsum(tf.cast(nan_steps, tf.float32), axis=1) > 0
    if _RESET_STEP:
        flag = tf.concat(
            [tf.ones((batch, 1, 1), x.dtype), tf.zeros((batch, steps, 1), x.dtype)],
            axis=1,
        )
        x = tf.concat([tf.zeros((batch, 1, features), x.dtype), x], axis=1)
        x = tf.concat([x, flag], axis=2)
    # LiteRT keeps the op's h and C in variable tensors that the op overwrites.
    # A constant of plain zeros would be merged by the converter with any other
    # (batch, units) zeros in the model (another layer's initial state), which
    # would then start from this op's last state. -0.0 is zero in arithmetic
    # but a different constant bit pattern, so it is never merged with +0.0.
    zeros = tf.fill((batch, units), tf.constant(-0.0, tf.float32))
    _, full, _, _, _ = _fused_lstm_function()(
        x, zeros, zeros, kernel, recurrent_kernel, bias
    )
    if _RESET_STEP:
        full = full[:, 1:]
    full = tf.where(poisoned[:, :, None], tf.constant(np.nan, full.dtype), full)

    if lengths is None:
        outputs = full
    elif not layer.go_backwards:
        pick = tf.one_hot(lengths - 1, steps, dtype=full.dtype)  # 0 if length 0
        last_valid = tf.reduce_sum(full * pick[:, :, None], axis=1)
        fill = 0.0 if layer.zero_output_for_mask else last_valid[:, None, :]
        outputs = tf.where(mask[:, :, None], full, fill)
    else:
        in_order = tf.reverse_sequence(full, lengths, seq_axis=1, batch_axis=0)
        processed = tf.reverse(in_order, axis=[1])
        outputs = tf.where(tf.reverse(mask, axis=[1])[:, :, None], processed, 0.0)
    last_output = outputs[:, -1]
    if not layer.return_sequences:
        outputs = last_output[:, None]
    # Only h is meaningful: the fused op has no c output (return_state refused).
    return last_output, outputs, [last_output, tf.zeros((batch, units))]


def while_loop(layer, sequences, initial_state, mask):
    """The layer's loop as a `tf.while_loop` of builtin ops (TFLite WHILE).

    No TensorArray (that is what needs Flex in Keras' loop): step t's input and
    mask are gathered from time-major tensors, and with `return_sequences` the
    output is written into a (time, batch, units) buffer with a select on
    `range(steps) == t`. Masking exactly as Keras' `tf.while_loop`: a masked step
    keeps the states and outputs the previous output (zeros at first), or zeros
    with `zero_output_for_mask`.
    """
    cell = layer.cell
    batch, steps = sequences.shape[0], sequences.shape[1]
    inputs = tf.transpose(sequences, [1, 0, 2])
    masks = None if mask is None else tf.transpose(tf.cast(mask, tf.bool), [1, 0])
    if layer.go_backwards:
        inputs = tf.reverse(inputs, axis=[0])
        if masks is not None:
            masks = tf.reverse(masks, axis=[0])
    states = [tf.convert_to_tensor(s) for s in keras.tree.flatten(initial_state)]
    zeros = tf.zeros((batch, cell.units), sequences.dtype)
    buffer = tf.zeros((steps if layer.return_sequences else 1, batch, cell.units))
    time_index = tf.range(steps)
    unrolled = _unrolled_masking(layer, mask)

    def body(t, previous, buffer, *states):
        output, new_states = cell.call(tf.gather(inputs, t), list(states), False)
        new_states = keras.tree.flatten(new_states)
        if masks is not None:
            keep = tf.gather(masks, t)[:, None]
            fill = zeros if layer.zero_output_for_mask and not unrolled else previous
            output = tf.where(keep, output, fill)
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
        if layer.return_sequences:
            here = tf.equal(time_index, t)[:, None, None]
            buffer = tf.where(here, output[None], buffer)
        return (t + 1, output, buffer, *new_states)

    _, last_output, buffer, *states = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), zeros, buffer, *states)
    )
    if layer.return_sequences:
        outputs = tf.transpose(buffer, [1, 0, 2])
    else:
        outputs = last_output[:, None]
    if unrolled:
        last_output, outputs = _zero_as_unrolled(
            layer, last_output, outputs, mask, masks[-1]
        )
    return last_output, outputs, states


def step_loop(layer, sequences, initial_state, mask):
    """The layer's loop unrolled over time, masking exactly as `while_loop`."""
    cell = layer.cell
    unrolled = _unrolled_masking(layer, mask)
    inputs = tf.unstack(sequences, axis=1)
    masks = None if mask is None else tf.unstack(tf.cast(mask, tf.bool), axis=1)
    if layer.go_backwards:
        inputs.reverse()
        if masks is not None:
            masks.reverse()
    states = list(initial_state)
    outputs, previous = [], None
    for t, x_t in enumerate(inputs):
        output, new_states = cell.call(x_t, states, training=False)
        new_states = keras.tree.flatten(new_states)
        if masks is not None:
            keep = masks[t][:, None]
            if (layer.zero_output_for_mask and not unrolled) or previous is None:
                fill = tf.zeros_like(output)
            else:
                fill = previous
            output = tf.where(keep, output, fill)
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states)]
        states, previous = new_states, output
        if layer.return_sequences or t == len(inputs) - 1:
            outputs.append(output)
    last_output, outputs = previous, tf.stack(outputs, axis=1)
    if unrolled:
        last_output, outputs = _zero_as_unrolled(
            layer, last_output, outputs, mask, masks[-1]
        )
    return last_output, outputs, states


def _check_static(layer, sequences) -> None:
    """Every lowering (fused op, WHILE loop, unrolled) needs the batch and time
    sizes when traced; they are unknown when `preprocess` (or a layer before
    this one) makes them depend on the data."""
    unknown = [
        axis
        for axis, size in (("batch", sequences.shape[0]), ("time", sequences.shape[1]))
        if size is None
    ]
    if unknown:
        raise ValueError(
            f"Layer '{layer.path}' receives sequences of shape "
            f"{tuple(sequences.shape)} while the TFLite model is traced: its "
            f"{' and '.join(unknown)} size is not static, and TFLite's loops need "
            "it. `batch_size` and `max_length` fix the exported inputs' axes; with "
            "`preprocess`, make it return a fixed number of rows and steps (e.g. "
            "TextVectorization(output_sequence_length=N)), and keep layers before "
            "this one from changing them."
        )


def our_rnn_layers(model) -> list:
    """Every `keras_lstm.LSTM` / `keras_lstm.GRU` inside `model` (nested too)."""
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, (keras_lstm.LSTM, keras_lstm.GRU))
    ]


FALLBACKS = {"while": (while_loop, "WHILE loop"), "unroll": (step_loop, "unrolled")}


@contextlib.contextmanager
def lowered(
    model, *, fuse_lstm: bool = True, padding: str = "right", fallback: str = "while"
):
    """While active, our RNN layers in `model` trace builtin-only loops.

    Layers the fused LSTM op cannot express use `fallback`: "while" (one TFLite
    WHILE op) or "unroll" (the steps written out). Yields a dict filled during
    tracing: layer path -> how it was lowered and why (a shared layer's later
    calls as "<path> (call 2)", ...).
    """
    fallback_loop, fallback_name = FALLBACKS[fallback]
    plan: dict[str, str] = {}
    calls: dict[str, int] = {}
    layers = our_rnn_layers(model)

    def make(layer):
        def inner_loop(sequences, initial_state, mask, training=False):
            _check_static(layer, sequences)
            refusal = (
                "fuse_lstm=False"
                if not fuse_lstm
                else fused_refusal(layer, sequences, initial_state, mask, padding)
            )
            # A layer called more than once (shared) is lowered per call.
            calls[layer.path] = calls.get(layer.path, 0) + 1
            key = layer.path
            if calls[layer.path] > 1:
                key = f"{layer.path} (call {calls[layer.path]})"
            if refusal is None:
                plan[key] = "fused UNIDIRECTIONAL_SEQUENCE_LSTM"
                return fused_loop(layer, sequences, initial_state, mask)
            plan[key] = f"builtin {fallback_name} ({refusal})"
            return fallback_loop(layer, sequences, initial_state, mask)

        return inner_loop

    for layer in layers:
        layer.inner_loop = make(layer)
    try:
        yield plan
    finally:
        for layer in layers:
            del layer.inner_loop
