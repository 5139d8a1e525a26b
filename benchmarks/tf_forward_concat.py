"""The training engine's two forward loops without XLA (`tf_bptt._forward`):
x·W + b projected for all steps before the loop, against [x_t, h_{t-1}]·[W; U]
inside each step, which `tf_bptt` runs up to `PER_STEP_ROWS` rows (NOTES
section 23).

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

forward = tf_bptt._LOOPS[False][0]  # the plain-graph forward loop


def main(shape: str) -> None:
    batch, steps, features, units = map(int, shape.split(","))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, steps, features)), tf.float32)
    kernel = tf.constant(rng.standard_normal((features, 4 * units)) * 0.05, tf.float32)
    recurrent = tf.constant(rng.standard_normal((units, 4 * units)) * 0.03, tf.float32)
    bias = tf.zeros([4 * units])
    h0 = c0 = tf.zeros([batch, units])

    @tf.function(autograph=False)
    def projected(x):
        x_t = tf.transpose(x, [1, 0, 2])
        inputs = tf_bptt._project(x_t, kernel, bias)
        hs, _, _, kept = forward(inputs, recurrent, h0, c0)
        return hs, kept

    @tf.function(autograph=False)
    def per_step(x):
        x_t = tf.transpose(x, [1, 0, 2])
        weights = tf.concat([kernel, recurrent], 0)
        hs, _, _, kept = forward(x_t, weights, h0, c0, bias, per_step=True)
        return hs, kept

    def median_ms(loop, repeats=7):
        loop(x)
        loop(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            [t.numpy() for t in loop(x)]
            times.append(time.perf_counter() - start)
        return float(np.median(times)) * 1e3

    difference = tf.reduce_max(tf.abs(projected(x)[0] - per_step(x)[0]))
    print("max |difference| of the outputs", float(difference))
    for name, loop in [("projected", projected), ("per-step", per_step)] * 2:
        print(name, round(median_ms(loop), 1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "64,100,256,1024")
