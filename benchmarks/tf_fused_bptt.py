"""The fused LSTM for TensorFlow on a CPU with hand-written backpropagation
through time (`keras_lstm/fused/tf_bptt.py`), timed outside `fit`.

The script checks the gradients against TensorFlow's autodiff of the reference
layer (`keras_lstm.LSTM(use_cudnn=False)`), then times, per shape, a training
step (forward + weight gradients, as `fit` needs for a first layer; no
optimizer) on the whole batch and on two halves side by side, against the plain
while-loop graph, and a forward pass against the XLA-compiled reference loop
that inference uses; the order alternates, medians of repeats. History and
outcomes: benchmarks/NOTES.md, sections 13c, 15, 18 and 21.

    python benchmarks/tf_fused_bptt.py                 # IMDB-like and weather
    python benchmarks/tf_fused_bptt.py 64,200,128,32   # any batch,steps,features,units
    python benchmarks/tf_fused_bptt.py 64,100,256,1024 --contenders xla graph

Contenders (`--contenders`, default all): `xla` and `graph` train with the
engine's two loops compiled by XLA or as plain TensorFlow graphs, each on the
whole batch and on two halves; `plain` is TensorFlow's own gradient of the
reference loop; `infer` the forward passes.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tf_loop_variants import measure  # noqa: E402  (benchmarks/ is on the path)

import keras_lstm  # noqa: E402
from keras_lstm.fused.tf_bptt import lstm  # noqa: E402

SHAPES = {"imdb": (64, 200, 128, 64), "weather": (256, 120, 14, 32)}
GROUPS = ("xla", "graph", "plain", "infer")


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
    for variant in ("reference", "xla", "graph"):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0, *weights])
            if variant == "reference":
                outs = layer(x, initial_state=[h0, c0], training=True)
            else:
                outs = lstm(x, h0, c0, *weights, xla=variant == "xla")
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(outs, probes))
        sources = layer.trainable_weights if variant == "reference" else weights
        grads = tape.gradient(loss, [x, h0, c0, *sources])
        if variant == "reference":
            expected = grads
        else:
            worst = max(
                worst,
                *(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(expected, grads)),
            )
    print(
        f"max |fused - reference| over all gradients, XLA and plain loops: {worst:.2e}"
    )
    assert worst < 1e-5, worst


def bench(name, shape, groups):
    layer, x = layer_and_weights(shape)
    reference = keras_lstm.LSTM(
        shape[3], return_sequences=True, return_state=True, use_cudnn=False
    )
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    h0 = tf.zeros((shape[0], shape[3]))

    half = shape[0] // 2
    whole, halves = [slice(None)], [slice(0, half), slice(half, None)]

    def fused_train(xla, parts):
        @tf.function
        def train(x, weights):
            # Gradients w.r.t. the weights only, as in fit for a first layer;
            # with two parts, two independent fused calls, which TensorFlow's
            # executor can run side by side (NOTES 13d).
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = 0.0
                for part in parts:
                    outputs, _, _ = lstm(x[part], h0[part], h0[part], *weights, xla=xla)
                    loss += tf.reduce_sum(outputs[:, -1])
            return tape.gradient(loss, weights)

        return train

    @tf.function
    def layer_train(x):
        with tf.GradientTape() as tape:
            outputs = reference(x, training=True)[0]
            loss = tf.reduce_sum(outputs[:, -1])
        return tape.gradient(loss, reference.trainable_weights)

    fused_infer = tf.function(lambda x, weights: lstm(x, h0, h0, *weights))
    layer_infer = tf.function(lambda x: layer(x, training=False))
    weights = [tf.convert_to_tensor(w) for w in layer.weights]
    contenders = {}
    for group, xla, label in (("xla", True, ""), ("graph", False, ", no XLA")):
        for parts, suffix in ((whole, ""), (halves, ", two halves")):
            train = fused_train(xla, parts)
            contenders[(group, f"train fused{label}{suffix}")] = lambda train=train: (
                train(x, weights)
            )
    contenders |= {
        ("plain", "train keras_lstm (plain graph)"): lambda: layer_train(x),
        ("infer", "infer fused"): lambda: fused_infer(x, weights),
        ("infer", "infer keras_lstm (XLA reference loop)"): lambda: layer_infer(x),
    }
    contenders = {
        name: fn for (group, name), fn in contenders.items() if group in groups
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shapes", nargs="*", help="batch,timesteps,features,units")
    parser.add_argument("--contenders", nargs="+", choices=GROUPS, default=list(GROUPS))
    args = parser.parse_args()
    shapes = dict(SHAPES)
    if args.shapes:
        shapes = {arg: tuple(int(v) for v in arg.split(",")) for arg in args.shapes}
    check_gradients()
    for name, shape in shapes.items():
        bench(name, shape, args.contenders)


if __name__ == "__main__":
    main()
