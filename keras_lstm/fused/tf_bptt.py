"""tensorflow backend, CPU, training: the LSTM with hand-written backpropagation
through time, both loops compiled by XLA (plain graphs from 1024 units).

TensorFlow differentiates a while loop by running a second loop of small ops
through its executor, and an XLA-compiled loop cannot hand its TensorList of
intermediates back to TensorFlow (see `tf_xla`). Here the forward loop keeps what
the backward pass needs as one plain tensor, and the gradient is written out
(`tf.custom_gradient`), so that both loops compile:

    forward, per step:  z_t = x_t·W + b + h_{t-1}·U  (x·W + b for all steps first)
                        keep [i_t, f_t, C̃_t, o_t, C_t, tanh C_t]
    backward, t = T..1: dh_t = ∂L/∂h_t + dz_{t+1}·Uᵀ
                        dC_t = dh_t ⊙ o_t ⊙ (1 − tanh²C_t) + dC_{t+1} ⊙ f_{t+1}
                        dz_t = [dC_t⊙C̃_t⊙i_t(1−i_t), dC_t⊙C_{t-1}⊙f_t(1−f_t),
                                dC_t⊙i_t⊙(1−C̃_t²), dh_t⊙tanh(C_t)⊙o_t(1−o_t)]
    then, over all steps at once: dx = dz·Wᵀ, dW = Σ x_tᵀ·dz_t,
                        dU = Σ h_{t-1}ᵀ·dz_t, db = Σ dz_t.

These are the seed article's BPTT equations; the keras.ops cell stays the
reference (`tests/layers/test_fast_paths.py` checks outputs and every gradient
against it). As for inference, the batch runs as two halves side by side
(`tf_xla.call_in_parts`), except from `GRAPH_UNITS` (1024) units, where both
loops run without XLA, as plain TensorFlow graphs, on the whole batch; there, up
to `PER_STEP_ROWS` (64) rows, each forward step computes z_t = [x_t, h_{t-1}]·[W; U]
+ b instead of reading x·W + b. Measured in benchmarks/NOTES.md, sections 15, 18,
21, 22 and 23.

Engaged for: `keras_lstm.LSTM` in training, on a CPU, float32, tanh/sigmoid, no
mask, no dropout, not unrolled, and either at least `MIN_UNITS` (256) units and
a batch of at most `MAX_ROWS` (512) rows or unknown when traced, or a batch size
fixed in the graph with batch x units at most `MAX_CELLS` (4096); see `engages`.
"""

from __future__ import annotations

import tensorflow as tf

# Private, as in tf_xla: keeps an active GradientTape from recording the loops
# themselves and their intermediates (only the custom gradient below is recorded).
from tensorflow.python.eager import record

from keras_lstm.fused import default_activations, tf_xla


def select(layer, sequences, mask, training):
    cell = layer.cell
    if not training or mask is not None or not hasattr(cell, "unit_forget_bias"):
        return None  # not training, masked, or not an LSTM
    if cell.dropout or cell.recurrent_dropout or not default_activations(cell):
        return None
    if cell.compute_dtype != "float32" or not engages(cell.units, sequences.shape[0]):
        return None
    if tf.config.list_logical_devices("GPU"):
        return None

    def run(sequences, initial_state, mask):
        # Values, not a stateful layer's state variables: RNN.call assigns the
        # new states to those before an eager gradient reads the old ones.
        initial_state = [tf.convert_to_tensor(s) for s in initial_state]
        variables = [cell.kernel, cell.recurrent_kernel]
        if cell.use_bias:
            variables.append(cell.bias)
        weights = [tf.convert_to_tensor(v) for v in variables]  # reads them
        if tf_xla.forward_mode([sequences, *initial_state, *weights]):
            return layer.reference_loop(sequences, initial_state, mask, training)
        if layer.go_backwards:  # as Keras' loop: outputs stay in reversed order
            sequences = tf.reverse(sequences, [1])
        if cell.units >= GRAPH_UNITS:
            outputs, h, c = lstm(sequences, *initial_state, *weights, xla=False)
        else:
            outputs, h, c = tf_xla.call_in_parts(
                lambda s, st, _: lstm(s, st[0], st[1], *weights),
                sequences,
                list(initial_state),
                None,
                # A fixed batch: no other shape to share a compile with; an
                # unknown one (256-1023 units) compiles once more for a smaller
                # last batch.
                bucket=1,
            )
        outputs.set_shape(sequences.shape[:2] + [cell.units])
        last = outputs[:, -1]
        if not layer.return_sequences:
            outputs = last[:, None]
        return last, outputs, [h, c]

    return run


# Below MIN_UNITS, up to this many cells (batch rows x units): above it the plain
# graph's loops were faster: 0.66-0.90x of its training time at and below,
# 1.05-1.24x above, over six shapes on the Intel machine (NOTES 13c); 0.67x at
# 64 x 64 and 1.16x at 256 x 32 on the AMD one (section 15).
MAX_CELLS = 4096
# From this many units on, at any batch size up to MAX_ROWS (or one unknown when
# the graph is traced): there the plain graph's gradient spends its time adding
# each step's units x 4·units weight gradient into a running sum, which this
# engine does in one matmul after the loop. 0.56-0.92x of the plain graph's
# training time over six shapes from 64 x 256 to 512 x 512 and 64 x 1024, the
# advantage shrinking as the batch grows (NOTES section 18).
MIN_UNITS = 256
MAX_ROWS = 512
# From this many units on, both loops run without XLA (plain TensorFlow graphs)
# on the whole batch: there the per-step matmuls dominate, oneDNN's beat
# XLA:CPU's, and two halves would each stream the (units x 4·units) recurrent
# kernel. At 64 x 1024 (char-gen) 0.86x the XLA loops on two halves on a Zen 4
# EPYC (0.90-0.98x on a Zen 5, from section 18's separate runs); at 256 and 512
# units the XLA halves stay fastest (NOTES section 21).
GRAPH_UNITS = 1024

# From this many units on, the weight gradients dW = Σ x_tᵀ·dz_t and
# dU = Σ h_{t-1}ᵀ·dz_t come from one matmul, (dzᵀ·[x, h_{t-1}])ᵀ: at char-gen
# (64 x 1024) 0.57x the time of the two separate matmuls with TensorFlow's
# Eigen kernels (oneDNN off, as TensorFlow leaves it on an AVX2-only Zen 3),
# 0.64x with oneDNN's (TF_ENABLE_ONEDNN_OPTS=1 on the same CPU); at 512 units
# 0.95x / 0.76x; at 64 and 256 units 1.15-1.2x with Eigen's (NOTES section 22).
ONE_MATMUL_UNITS = 512

# In the loops without XLA (`GRAPH_UNITS`), up to this many rows: the forward
# loop multiplies [x_t, h_{t-1}] by [W; U] in each step instead of reading
# x·W + b, projected for all steps beforehand (in a batch of 64 x 100 steps x
# 1024 units, a 105 MB tensor written once and read once). At char-gen (64 x
# 1024, 256 features) 0.76-0.95x the forward time and 0.94x the training step
# on a Zen 3; level to 1.13x slower from 128 rows on (NOTES section 23).
PER_STEP_ROWS = 64


def engages(units: int, rows: int | None) -> bool:
    """Whether a batch of `rows` (None: unknown when traced) of an LSTM with
    `units` trains with this engine (the other conditions aside)."""
    if units >= MIN_UNITS:
        return rows is None or rows <= MAX_ROWS
    # The rule needs the batch size: where it is not in the graph's static shape
    # (Keras' datasets from arrays, whose last batch is smaller), choosing at run
    # time needs a tf.cond, and TensorFlow cannot differentiate a custom gradient
    # inside one ("Could not find external tensor capture"; NOTES section 15).
    return rows is not None and rows * units <= MAX_CELLS


def lstm(x, h0, c0, kernel, recurrent_kernel, bias=None, xla=True):
    """The LSTM over `x` (batch, timesteps, features) from states `h0`, `c0`, in
    Keras' gate order (i, f, c, o): returns the outputs (batch, timesteps,
    units) and the last `h` and `c`, differentiable w.r.t. all arguments.
    `xla=False` runs the same two loops as plain TensorFlow graphs."""
    forward, backward = _LOOPS[bool(xla)]
    inputs = [x, h0, c0, kernel, recurrent_kernel]
    if bias is not None:
        inputs.append(bias)

    @tf.custom_gradient
    def fused(*inputs):
        x, h0, c0, kernel, recurrent_kernel = inputs[:5]
        bias = inputs[5] if len(inputs) > 5 else None
        with record.stop_recording():
            x_t = tf.transpose(x, [1, 0, 2])  # time-major: one slice per step

            def projected():
                inputs = _project(x_t, kernel, bias)
                return forward(inputs, recurrent_kernel, h0, c0)

            def per_step():
                weights = tf.concat([kernel, recurrent_kernel], 0)
                return forward(x_t, weights, h0, c0, bias, per_step=True)

            if xla:
                hs, h, c, kept = projected()
            elif x.shape[0] is not None:  # the batch size is in the graph
                rows = x.shape[0]
                hs, h, c, kept = per_step() if rows <= PER_STEP_ROWS else projected()
            else:  # chosen when it runs (this forward pass is not recorded)
                rows = tf.shape(x)[0]
                hs, h, c, kept = tf.cond(rows <= PER_STEP_ROWS, per_step, projected)
            outputs = tf.transpose(hs, [1, 0, 2])

        def grad(d_outputs, d_h, d_c):
            if record.could_possibly_record():
                # This gradient is itself being differentiated (a gradient
                # penalty, forward mode): the backward loop is not (an XLA
                # one cannot be) differentiated, so replay the LSTM in plain ops.
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    replay = _plain_lstm(*inputs)
                return tape.gradient(
                    replay,
                    list(inputs),
                    output_gradients=[
                        _zeros_if_none(d, y)
                        for d, y in zip((d_outputs, d_h, d_c), (outputs, h, c))
                    ],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
            d_hs = tf.transpose(_zeros_if_none(d_outputs, outputs), [1, 0, 2])
            d_z, d_h0, d_c0 = backward(
                d_hs,
                _zeros_if_none(d_h, h),
                _zeros_if_none(d_c, c),
                recurrent_kernel,
                kept,
                c0,
            )
            d_z2 = tf.reshape(d_z, [-1, d_z.shape[-1]])
            x2 = tf.reshape(x_t, [-1, x_t.shape[-1]])
            h_prev = tf.concat([h0[None], hs[:-1]], 0)
            h_prev = tf.reshape(h_prev, [-1, h0.shape[-1]])
            # Unused gradients (dx of a first layer) are pruned from the graph.
            d_x = tf.matmul(d_z2, kernel, transpose_b=True)
            d_x = tf.transpose(tf.reshape(d_x, tf.shape(x_t)), [1, 0, 2])
            if h0.shape[-1] >= ONE_MATMUL_UNITS:
                # dW and dU in one matmul, transposed: (dzᵀ·[x, h_{t-1}])ᵀ.
                both = tf.matmul(d_z2, tf.concat([x2, h_prev], 1), transpose_a=True)
                d_kernel, d_recurrent = tf.split(
                    tf.transpose(both), [x2.shape[-1], h0.shape[-1]]
                )
            else:
                d_kernel = tf.matmul(x2, d_z2, transpose_a=True)
                d_recurrent = tf.matmul(h_prev, d_z2, transpose_a=True)
            grads = [d_x, d_h0, d_c0, d_kernel, d_recurrent]
            if bias is not None:
                grads.append(tf.reduce_sum(d_z2, 0))
            return grads

        return [outputs, h, c], grad

    return fused(*inputs)


def _plain_lstm(x, h0, c0, kernel, recurrent_kernel, bias=None):
    """`lstm` in plain, twice-differentiable TensorFlow ops (`tf.scan`)."""
    x_t = tf.transpose(x, [1, 0, 2])

    def step(states, projected_t):
        h, c = states
        z = projected_t + tf.matmul(h, recurrent_kernel)
        i, f, c_tilde, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(c_tilde)
        return tf.sigmoid(o) * tf.tanh(c), c

    hs, cs = tf.scan(step, _project(x_t, kernel, bias), initializer=(h0, c0))
    return tf.transpose(hs, [1, 0, 2]), hs[-1], cs[-1]


def _zeros_if_none(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _project(x_t, kernel, bias):
    """`x_t·W + b` for every step in one matmul: (timesteps, batch, 4·units)."""
    projected = tf.matmul(tf.reshape(x_t, [-1, x_t.shape[-1]]), kernel)
    if bias is not None:
        projected = projected + bias
    shape = tf.shape(x_t)
    return tf.reshape(projected, [shape[0], shape[1], kernel.shape[-1]])


def _forward(inputs, weights, h, c, bias=None, per_step=False):
    """Returns the outputs (timesteps, batch, units), the last `h` and `c`, and
    each step's `[i, f, C̃, o, C, tanh C]` (timesteps, batch, 6·units), so that
    the backward pass needs no sigmoid or tanh.

    `inputs` is x·W + b for all steps (timesteps, batch, 4·units) and `weights`
    the recurrent kernel U; or, `per_step`, x itself (timesteps, batch,
    features), `weights` [W; U] and `bias` b, and each step computes
    z_t = [x_t, h_{t-1}]·[W; U] + b (`PER_STEP_ROWS`)."""
    steps = tf.shape(inputs)[0]
    units = h.shape[-1]

    def body(t, h, c, current, hs, kept):
        # Each step's slice is read one iteration ahead and carried: a dynamic
        # slice fused into the gate math stops XLA:CPU from vectorizing it
        # (NOTES section 13b).
        following = inputs[tf.minimum(t + 1, steps - 1)]
        if per_step:
            z = tf.matmul(tf.concat([current, h], 1), weights)
            if bias is not None:
                z = z + bias
        else:
            z = current + tf.matmul(h, weights)
        h, c, step_kept = gates(z, c)
        return t + 1, h, c, following, hs.write(t, h), kept.write(t, step_kept)

    hs = tf.TensorArray(tf.float32, size=steps, element_shape=h.shape)
    kept = tf.TensorArray(
        tf.float32, size=steps, element_shape=tf.TensorShape([h.shape[0], 6 * units])
    )
    _, h, c, _, hs, kept = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h, c, inputs[0], hs, kept),
        maximum_iterations=steps,
    )
    return hs.stack(), h, c, kept.stack()


def gates(z, c):
    """One step from the pre-activations `z` (batch, 4·units) and the previous
    cell state: the new `h` and `C`, and `[i, f, C̃, o, C, tanh C]`."""
    z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    i, f, c_tilde, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c), tf.sigmoid(z_o)
    c = f * c + i * c_tilde
    tanh_c = tf.tanh(c)
    h = o * tanh_c
    return h, c, tf.concat([i, f, c_tilde, o, c, tanh_c], -1)


def _backward(d_hs, d_h, d_c, recurrent_kernel, kept, c0):
    """Reverse loop: the gradient w.r.t. each step's pre-activations `z_t`
    (timesteps, batch, 4·units), and w.r.t. the initial states."""
    steps = tf.shape(kept)[0]
    units = c0.shape[-1]
    recurrent_t = tf.transpose(recurrent_kernel)
    c_prev_all = tf.concat([c0[None], kept[:-1, :, 4 * units : 5 * units]], 0)

    def read(t):
        return kept[t], c_prev_all[t], d_hs[t]

    def body(t, d_h, d_c, current, d_zs):
        following = read(tf.maximum(t - 1, 0))  # one step ahead (backwards)
        step_kept, c_prev, d_out = current
        i, f, c_tilde, o, _, tanh_c = tf.split(step_kept, 6, axis=-1)
        d_h = d_h + d_out
        d_c = d_c + d_h * o * (1.0 - tanh_c * tanh_c)
        d_z = tf.concat(
            [
                d_c * c_tilde * i * (1.0 - i),
                d_c * c_prev * f * (1.0 - f),
                d_c * i * (1.0 - c_tilde * c_tilde),
                d_h * tanh_c * o * (1.0 - o),
            ],
            -1,
        )
        d_zs = d_zs.write(t, d_z)
        return t - 1, tf.matmul(d_z, recurrent_t), d_c * f, following, d_zs

    d_zs = tf.TensorArray(
        tf.float32, size=steps, element_shape=tf.TensorShape([c0.shape[0], 4 * units])
    )
    _, d_h, d_c, _, d_zs = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (steps - 1, d_h, d_c, read(steps - 1), d_zs),
        maximum_iterations=steps,
    )
    return d_zs.stack(), d_h, d_c


# Both loops, compiled by XLA (True) or as plain TensorFlow graphs (False).
_LOOPS = {
    xla: tuple(
        tf.function(loop, jit_compile=xla, autograph=False)
        for loop in (_forward, _backward)
    )
    for xla in (True, False)
}
