"""Exploratory, rejected (benchmarks/NOTES.md, section 13): a fused LSTM for
TensorFlow on a CPU with hand-written backpropagation through time.

Forward: `x·W + b` for all timesteps in one (oneDNN) matmul, then an XLA loop
that runs only `h·U` and the gate math per step, keeping `[z_t, C_t]` for the
backward pass. Backward (`tf.custom_gradient`): an XLA loop that walks the steps
in reverse and produces each step's gradient w.r.t. the gate pre-activations
(the seed article's BPTT), then matmuls over all timesteps give the gradients
of `x`, `W` and `U`:

    dh_t = ∂L/∂h_t + dz_{t+1}·Uᵀ          (the h_t that fed step t+1)
    dC_t = dh_t ⊙ o_t ⊙ (1 − tanh²C_t) + dC_{t+1} ⊙ f_{t+1}
    dz_t = [dC_t⊙C̃_t⊙i_t(1−i_t), dC_t⊙C_{t-1}⊙f_t(1−f_t),
            dC_t⊙i_t⊙(1−C̃_t²), dh_t⊙tanh(C_t)⊙o_t(1−o_t)]   (gates i, f, c, o)
    dx = dz·Wᵀ,  dW = Σ_t x_tᵀ·dz_t,  dU = Σ_t h_{t-1}ᵀ·dz_t,  db = Σ dz

The idea: TensorFlow's gradient of a while loop runs two loops of small ops
through the executor, and an XLA-compiled loop cannot hand its TensorList of
intermediates back to TensorFlow (NOTES 8b); keeping the intermediates as plain
tensors lets both loops compile. Each loop reads its per-step slice one
iteration ahead and carries it: a dynamic slice fused into the gate math stops
XLA:CPU from vectorizing that fusion (the loop took 1.8x as long).

The script checks the gradients against TensorFlow's autodiff of the reference
layer (`keras_lstm.LSTM(use_cudnn=False)`), then times, per shape, a training
step (forward + weight gradients, as `fit` needs for a first layer; no
optimizer) against the plain while-loop graph, and a forward pass against the
XLA-compiled reference loop that inference uses; the order alternates, medians
of repeats. Outcome: level with the plain graph at the IMDB-like shape, slower
at the weather shape, and slower inside `fit` (measured before tf.data's
end-of-fit stall was found and removed, NOTES section 14; not rerun); so the
layer does not use it.

    python benchmarks/tf_fused_bptt.py                 # IMDB-like and weather
    python benchmarks/tf_fused_bptt.py 64,200,128,32   # any batch,steps,features,units
"""

from __future__ import annotations

import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Private, as in keras_lstm/fused/tf_xla.py: keeps an active GradientTape from
# recording the compiled loops themselves (only the custom gradient is).
from tensorflow.python.eager import record  # noqa: E402
from tf_loop_variants import measure  # noqa: E402  (benchmarks/ is on the path)

import keras_lstm  # noqa: E402

SHAPES = {"imdb": (64, 200, 128, 64), "weather": (256, 120, 14, 32)}


def lstm(x, h0, c0, kernel, recurrent_kernel, bias=None, keep=True):
    """The LSTM over `x` (batch, timesteps, features) from states `h0`, `c0`:
    returns outputs (batch, timesteps, units) and the final `h`, `c`.

    `keep=True` stores the gates for the gradient during the forward pass (a
    training step); with `keep=False` a gradient, if one is asked for, runs the
    forward pass again first."""
    inputs = [x, h0, c0, kernel, recurrent_kernel]
    if bias is not None:
        inputs.append(bias)

    @tf.custom_gradient
    def fused(*inputs):
        x, h0, c0, kernel, recurrent_kernel = inputs[:5]
        bias = inputs[5] if len(inputs) > 5 else None
        with record.stop_recording():
            x_t = tf.transpose(x, [1, 0, 2])  # time-major: one slice per step
            projected = _project(x_t, kernel, bias)
            saved = None
            if keep:
                hs, h, c, kept = _forward_keep(projected, recurrent_kernel, h0, c0)
                saved = (hs, kept)
            else:
                hs, h, c = _forward(projected, recurrent_kernel, h0, c0)
            outputs = tf.transpose(hs, [1, 0, 2])

        def grad(d_outputs, d_h, d_c):
            nonlocal saved
            if saved is None:
                saved = _forward_keep(projected, recurrent_kernel, h0, c0)
                saved = (saved[0], saved[3])
            hs, kept = saved
            d_hs = tf.transpose(_zeros_if_none(d_outputs, outputs), [1, 0, 2])
            d_z, d_h0, d_c0 = _backward(
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
            d_x = tf.matmul(d_z2, kernel, transpose_b=True)
            d_x = tf.transpose(tf.reshape(d_x, tf.shape(x_t)), [1, 0, 2])
            grads = [
                d_x,
                d_h0,
                d_c0,
                tf.matmul(x2, d_z2, transpose_a=True),
                tf.matmul(h_prev, d_z2, transpose_a=True),
            ]
            if bias is not None:
                grads.append(tf.reduce_sum(d_z2, 0))
            return grads

        return [outputs, h, c], grad

    return fused(*inputs)


def _zeros_if_none(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _project(x_t, kernel, bias):
    """`x_t·W + b` for every step: (timesteps, batch, 4·units)."""
    projected = tf.matmul(tf.reshape(x_t, [-1, x_t.shape[-1]]), kernel)
    if bias is not None:
        projected = projected + bias
    shape = tf.shape(x_t)
    return tf.reshape(projected, [shape[0], shape[1], kernel.shape[-1]])


def _gates(z):
    z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    return tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c), tf.sigmoid(z_o)


def _loop_forward(projected, recurrent_kernel, h, c, keep):
    """Returns the outputs (timesteps, batch, units), the last `h` and `c`, and
    with `keep` each step's `[z_t, C_t]` (timesteps, batch, 5·units), written as
    one slice per step: the backward pass recomputes the gates from `z_t`."""
    steps = tf.shape(projected)[0]
    hs = tf.TensorArray(tf.float32, size=steps)
    kept = tf.TensorArray(tf.float32, size=steps)
    current = projected[0]
    for t in tf.range(steps):
        following = projected[tf.minimum(t + 1, steps - 1)]  # read one step ahead
        z = current + tf.matmul(h, recurrent_kernel)
        i, f, c_tilde, o = _gates(z)
        c = f * c + i * c_tilde
        h = o * tf.tanh(c)
        hs = hs.write(t, h)
        if keep:
            kept = kept.write(t, tf.concat([z, c], -1))
        current = following
    if keep:
        return hs.stack(), h, c, kept.stack()
    return hs.stack(), h, c


@tf.function(jit_compile=True)
def _forward(projected, recurrent_kernel, h, c):
    return _loop_forward(projected, recurrent_kernel, h, c, keep=False)


@tf.function(jit_compile=True)
def _forward_keep(projected, recurrent_kernel, h, c):
    return _loop_forward(projected, recurrent_kernel, h, c, keep=True)


@tf.function(jit_compile=True)
def _backward(d_hs, d_h, d_c, recurrent_kernel, kept, c0):
    """Reverse loop: the gradient w.r.t. each step's pre-activations `z_t`,
    and w.r.t. the initial states."""
    steps = tf.shape(kept)[0]
    units = c0.shape[-1]
    recurrent_t = tf.transpose(recurrent_kernel)
    d_zs = tf.TensorArray(tf.float32, size=steps)
    c_prev_all = tf.concat([c0[None], kept[:-1, :, 4 * units :]], 0)

    def read(t):
        return kept[t], c_prev_all[t], d_hs[t]

    current = read(steps - 1)
    for t in tf.range(steps - 1, -1, -1):
        following = read(tf.maximum(t - 1, 0))  # one step ahead (backwards)
        step_kept, c_prev, d_out = current
        i, f, c_tilde, o = _gates(step_kept[:, : 4 * units])
        c = step_kept[:, 4 * units :]
        d_h = d_h + d_out
        tanh_c = tf.tanh(c)
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
        d_c = d_c * f
        d_h = tf.matmul(d_z, recurrent_t)
        current = following
    return d_zs.stack(), d_h, d_c


def layer_and_weights(shape, seed=0):
    batch, steps, features, units = shape
    layer = keras_lstm.LSTM(units, return_sequences=True, return_state=True)
    layer.build((batch, steps, features))
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.uniform(-0.3, 0.3, w.shape).astype("float32"))
    x = tf.constant(rng.standard_normal((batch, steps, features)).astype("float32"))
    return layer, x


def check_gradients():
    """Fused vs TensorFlow autodiff of the reference cell, small shape."""
    layer, x = layer_and_weights((3, 7, 5, 4))
    layer.use_cudnn = False
    weights = [tf.convert_to_tensor(w) for w in layer.weights]
    h0 = tf.constant(np.random.default_rng(1).standard_normal((3, 4)), tf.float32)
    c0 = h0 * 0.5
    probes = [
        tf.constant(np.random.default_rng(i).standard_normal(s), tf.float32)
        for i, s in enumerate([(3, 7, 4), (3, 4), (3, 4)])
    ]
    worst = 0.0
    for fused_path in (True, False):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0, *weights])
            if fused_path:
                outs = lstm(x, h0, c0, *weights)
            else:
                outs = layer(x, initial_state=[h0, c0], training=True)
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(outs, probes))
        sources = weights if fused_path else layer.trainable_weights
        grads = tape.gradient(loss, [x, h0, c0, *sources])
        if fused_path:
            expected = grads
        else:
            worst = max(
                float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(expected, grads)
            )
    print(f"max |fused - reference| over all gradients: {worst:.2e}")
    assert worst < 1e-5, worst


def bench(name, shape):
    layer, x = layer_and_weights(shape)
    reference = keras_lstm.LSTM(
        shape[3], return_sequences=True, return_state=True, use_cudnn=False
    )
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    h0 = tf.zeros((shape[0], shape[3]))

    @tf.function
    def fused_train(x, weights):
        # Gradients w.r.t. the weights only, as in fit for a first layer.
        with tf.GradientTape() as tape:
            tape.watch(weights)
            outputs, _, _ = lstm(x, h0, h0, *weights)
            loss = tf.reduce_sum(outputs[:, -1])
        return tape.gradient(loss, weights)

    @tf.function
    def layer_train(x):
        with tf.GradientTape() as tape:
            outputs = reference(x, training=True)[0]
            loss = tf.reduce_sum(outputs[:, -1])
        return tape.gradient(loss, reference.trainable_weights)

    fused_infer = tf.function(lambda x, weights: lstm(x, h0, h0, *weights, keep=False))
    layer_infer = tf.function(lambda x: layer(x, training=False))
    weights = [tf.convert_to_tensor(w) for w in layer.weights]
    contenders = {
        "train fused": lambda: fused_train(x, weights),
        "train keras_lstm (plain graph)": lambda: layer_train(x),
        "infer fused": lambda: fused_infer(x, weights),
        "infer keras_lstm (XLA reference loop)": lambda: layer_infer(x),
    }
    times = {k: [] for k in contenders}
    for repeat in range(4):
        order = list(contenders.items())[:: 1 if repeat % 2 == 0 else -1]
        for key, fn in order:
            times[key].append(measure(fn, calls=10, repeats=3))
    for key, runs in times.items():
        print(
            f"{name:8s} {key:40s} {statistics.median(runs):7.2f} ms "
            f"(best {min(runs):.2f})"
        )


def main():
    import sys

    shapes = dict(SHAPES)
    if sys.argv[1:]:  # extra shapes as batch,timesteps,features,units
        shapes = {arg: tuple(int(v) for v in arg.split(",")) for arg in sys.argv[1:]}
    check_gradients()
    for name, shape in shapes.items():
        bench(name, shape)


if __name__ == "__main__":
    main()
