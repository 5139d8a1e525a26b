"""TensorFlow's fused whole-sequence op `BlockLSTMV2` against our training
engine (`tf_bptt.lstm`, loops without XLA) for one training step: forward,
backward, weight gradients (NOTES section 8a).

    TF_CPU_ALLOCATOR_USE_BFC=true python -u benchmarks/tf_block_lstm.py 64,100,256,1024

Checks both against TensorFlow's autodiff of the plain-ops LSTM at a small
shape, then times paired rounds (order alternating) at the given
batch, steps, features, units.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lstm.fused import tf_bptt  # noqa: E402


def problem(batch, steps, features, units):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, steps, features)), tf.float32)
    weights = [
        tf.constant(rng.standard_normal(s).astype("float32") * 0.03)
        for s in [(features, 4 * units), (units, 4 * units), (4 * units,)]
    ]
    return x, weights, tf.zeros([batch, units])


def block_lstm(x, h0, kernel, recurrent_kernel, bias):
    """BlockLSTMV2 (gate order i, f, c, o as Keras', no peepholes, no clip)."""
    zeros = tf.zeros(tf.shape(bias)[0] // 4)
    outputs = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(tf.shape(x)[1], tf.int64),
        x=tf.transpose(x, [1, 0, 2]),
        cs_prev=h0,
        h_prev=h0,
        w=tf.concat([kernel, recurrent_kernel], 0),
        wci=zeros,
        wcf=zeros,
        wco=zeros,
        b=bias,
        cell_clip=0.0,
        use_peephole=False,
    )
    return tf.transpose(outputs[6], [1, 0, 2])  # h of every step


def contenders(x, weights, h0):
    def step(run):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            outputs = run()
            loss = tf.reduce_sum(outputs * outputs)
        return outputs, tape.gradient(loss, weights)

    return {
        "ours": lambda: step(lambda: tf_bptt.lstm(x, h0, h0, *weights, xla=False)[0]),
        "block": lambda: step(lambda: block_lstm(x, h0, *weights)),
        "plain": lambda: step(lambda: tf_bptt._plain_lstm(x, h0, h0, *weights)[0]),
    }


def main(shape: str = "64,100,256,1024", rounds: int = 6) -> None:
    runs = contenders(*problem(4, 5, 3, 2))
    reference_out, reference = runs["plain"]()
    for name in ("ours", "block"):
        out, grads = runs[name]()
        output_gap = float(tf.reduce_max(tf.abs(out - reference_out)))
        relative = [
            float(tf.reduce_max(tf.abs(g - r)) / tf.reduce_max(tf.abs(r)))
            for g, r in zip(grads, reference)
        ]
        print(
            f"{name} vs autodiff of plain ops (4,5,3,2): outputs {output_gap:.1e},"
            f" gradients (kernel, recurrent, bias) relative "
            + ", ".join(f"{v:.1e}" for v in relative)
        )
    runs = {
        name: tf.function(run, autograph=False)
        for name, run in contenders(*problem(*map(int, shape.split(",")))).items()
        if name != "plain"
    }
    times = {name: [] for name in runs}
    for name, run in runs.items():
        run()  # trace and warm up
    for index in range(rounds):
        for name in sorted(runs, reverse=bool(index % 2)):
            start = time.perf_counter()
            runs[name]()[1][0].numpy()
            times[name].append((time.perf_counter() - start) * 1e3)
    for name, values in times.items():
        print(
            f"{name}: median {np.median(values):.0f} ms, "
            f"all {[round(v) for v in values]}"
        )
    ratios = np.array(times["block"]) / np.array(times["ours"])
    print(f"block / ours, paired median: {np.median(ratios):.2f} ({shape})")


if __name__ == "__main__":
    main(*sys.argv[1:2])
