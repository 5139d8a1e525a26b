"""The training engine's forward loop (plain TensorFlow graph, `tf_bptt`) against
a variant that drops the input projection for all steps and multiplies
[x_t, h_{t-1}] by [W; U] inside each step (NOTES section 23).

    python -u benchmarks/tf_forward_concat.py 64,100,256,1024

(batch, steps, features, units.)

Prints the largest difference between the two loops' outputs and the median
milliseconds of each, twice, alternating (an idle machine needed).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import tensorflow as tf

from keras_lstm.fused import tf_bptt


def main(shape: str) -> None:
    batch, steps, features, units = map(int, shape.split(","))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, steps, features)), tf.float32)
    kernel = tf.constant(rng.standard_normal((features, 4 * units)) * 0.05, tf.float32)
    recurrent = tf.constant(rng.standard_normal((units, 4 * units)) * 0.03, tf.float32)
    bias = tf.zeros([4 * units])
    h0 = c0 = tf.zeros([batch, units])

    @tf.function(autograph=False)
    def shipped(x):
        x_t = tf.transpose(x, [1, 0, 2])
        projected = tf_bptt._project(x_t, kernel, bias)
        hs, _, _, kept = tf_bptt._forward(projected, recurrent, h0, c0)
        return hs, kept

    @tf.function(autograph=False)
    def concat(x):
        x_t = tf.transpose(x, [1, 0, 2])
        both = tf.concat([kernel, recurrent], 0)

        def body(t, h, c, hs, kept):
            z = tf.matmul(tf.concat([x_t[t], h], 1), both) + bias
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            i, f, c_tilde, o = (
                tf.sigmoid(z_i),
                tf.sigmoid(z_f),
                tf.tanh(z_c),
                tf.sigmoid(z_o),
            )
            c = f * c + i * c_tilde
            tanh_c = tf.tanh(c)
            h = o * tanh_c
            kept = kept.write(t, tf.concat([i, f, c_tilde, o, c, tanh_c], -1))
            return t + 1, h, c, hs.write(t, h), kept

        hs = tf.TensorArray(tf.float32, size=steps, element_shape=h0.shape)
        kept = tf.TensorArray(tf.float32, size=steps, element_shape=[batch, 6 * units])
        _, _, _, hs, kept = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), h0, c0, hs, kept),
            maximum_iterations=steps,
        )
        return hs.stack(), kept.stack()

    def median_ms(loop, repeats=7):
        loop(x)
        loop(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            [t.numpy() for t in loop(x)]
            times.append(time.perf_counter() - start)
        return float(np.median(times)) * 1e3

    difference = tf.reduce_max(tf.abs(shipped(x)[0] - concat(x)[0]))
    print("max |difference| of the outputs", float(difference))
    for name, loop in [("shipped", shipped), ("concat", concat)] * 2:
        print(name, round(median_ms(loop), 1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "64,100,256,1024")
