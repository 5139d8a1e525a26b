"""Exploratory: which way of writing the LSTM step is fastest in TensorFlow's CPU
while-loop? Times a forward pass and a gradient step (tf.function, no Keras
trainer) for the built-in, our layer, and rejected variants of our cell, all with
the same weights. Results and conclusions are in benchmarks/NOTES.md.

    python benchmarks/tf_loop_variants.py            # IMDB-like and weather shapes
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

import keras_lstm  # noqa: E402


class BiasRightAfterInputMatmul(keras_lstm.LSTMCell):
    """x·W + b first, then + h·U: grappler fuses MatMul+BiasAdd (oneDNN)."""

    def call(self, inputs, states, training=False):
        return self.recurrent_step(self.project_inputs(inputs), states)


class OneSigmoidAndSlices(keras_lstm.LSTMCell):
    """sigmoid over all 4 gates at once, then strided slices."""

    def call(self, inputs, states, training=False):
        u = self.units
        z = ops.matmul(inputs, self.kernel) + ops.matmul(
            states[0], self.recurrent_kernel
        )
        z = ops.add(z, self.bias)
        s = ops.sigmoid(z)
        c = s[:, u : 2 * u] * states[1] + s[:, :u] * ops.tanh(z[:, 2 * u : 3 * u])
        h = s[:, 3 * u :] * ops.tanh(c)
        return h, [h, c]


class ConcatenatedMatmul(keras_lstm.LSTMCell):
    """The seed article's W·[h_{t-1}, x_t]: one matmul on concatenated inputs."""

    def call(self, inputs, states, training=False):
        w = ops.concatenate([self.kernel, self.recurrent_kernel], axis=0)
        z = ops.matmul(ops.concatenate([inputs, states[0]], axis=-1), w)
        return self.recurrent_step(z, states, add_bias=True)


def rnn_with(cell_cls):
    return lambda units: keras.layers.RNN(cell_cls(units))


VARIANTS = {
    "keras.layers.LSTM": keras.layers.LSTM,
    "keras_lstm.LSTM (kept)": keras_lstm.LSTM,
    "bias right after x·W": rnn_with(BiasRightAfterInputMatmul),
    "one sigmoid + slices": rnn_with(OneSigmoidAndSlices),
    "concatenated matmul": rnn_with(ConcatenatedMatmul),
}
SHAPES = {"imdb": (64, 200, 128, 64), "weather": (256, 120, 14, 32)}


def measure(fn, calls=5, repeats=3):
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls * 1000)
    return statistics.median(runs)


def main():
    for shape, (batch, steps, features, units) in SHAPES.items():
        x = tf.constant(
            np.random.default_rng(0).standard_normal((batch, steps, features)),
            tf.float32,
        )
        weights = None
        print(f"\n{shape}: batch {batch}, {steps} steps, {features}->{units}")
        for name, make in VARIANTS.items():
            layer = make(units)
            layer.build(x.shape)
            weights = weights or layer.get_weights()
            layer.set_weights(weights)

            @tf.function
            def forward(layer=layer):
                return layer(x)

            @tf.function
            def gradient(layer=layer):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(layer(x, training=True))
                return tape.gradient(loss, layer.trainable_weights)

            print(
                f"  {name:<26} forward {measure(forward):6.1f} ms   "
                f"forward+backward {measure(gradient):6.1f} ms"
            )


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()  # no options; --help prints the docstring instead of running
    main()
