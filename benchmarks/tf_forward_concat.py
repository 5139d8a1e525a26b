"""The training engine's two forward loops without XLA (`tf_bptt._forward`):
x·W + b projected for all steps before the loop, against [x_t, h_{t-1}]·[W; U]
inside each step, which `tf_bptt` runs up to `PER_STEP_ROWS` rows (NOTES
section 23).

    python -u benchmarks/tf_forward_concat.py 64,100,256,1024
    python -u benchmarks/tf_forward_concat.py 64,100,256,1024 --train

(batch, steps, features, units.)

Prints the largest difference between the two loops' outputs and the median
milliseconds of each, twice, alternating (an idle machine needed). `--train`
times instead a whole training step through `tf_bptt.lstm` without XLA
(forward, backward, weight gradients) with each forward loop, 14 rounds, and
prints each round's pair and the median of the per-round ratios.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from keras_lstm.fused import tf_bptt

forward = tf_bptt._LOOPS[False][0]  # the plain-graph forward loop


def main(shape: str, train: bool = False) -> None:
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

    if train:
        compare_training(x, [kernel, recurrent, bias], h0)
        return
    difference = tf.reduce_max(tf.abs(projected(x)[0] - per_step(x)[0]))
    print("max |difference| of the outputs", float(difference))
    for name, loop in [("projected", projected), ("per-step", per_step)] * 2:
        print(name, round(median_ms(loop), 1), flush=True)


def compare_training(x, weights, h0, rounds=14):
    """Training steps with the forward loop projected (`PER_STEP_ROWS` 0) and
    per step (as shipped), paired round by round, order alternating."""

    def traced(per_step_rows):
        @tf.function
        def step(x, weights):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                outputs, _, _ = tf_bptt.lstm(x, h0, h0, *weights, xla=False)
                loss = tf.reduce_sum(outputs * outputs)
            return tape.gradient(loss, weights)

        shipped, tf_bptt.PER_STEP_ROWS = tf_bptt.PER_STEP_ROWS, per_step_rows
        step.get_concrete_function(x, weights)  # traced with this setting
        tf_bptt.PER_STEP_ROWS = shipped
        return step

    steps = {"projected": traced(0), "per-step": traced(tf_bptt.PER_STEP_ROWS)}
    for step in steps.values():
        step(x, weights)
    ratios = []
    for r in range(rounds):
        ms = {}
        for name, step in list(steps.items())[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            [g.numpy() for g in step(x, weights)]
            ms[name] = (time.perf_counter() - start) * 1e3
        ratios.append(ms["per-step"] / ms["projected"])
        print(
            f"round {r}: projected {ms['projected']:.0f} ms, per-step "
            f"{ms['per-step']:.0f} ms",
            flush=True,
        )
    print("median per-step / projected", round(float(np.median(ratios)), 3))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("shape", nargs="?", default="64,100,256,1024")
    parser.add_argument("--train", action="store_true")
    args = parser.parse_args()
    main(args.shape, train=args.train)
