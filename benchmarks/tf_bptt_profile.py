"""Where a training step of `tf_bptt` (the loops without XLA) spends its time,
per TensorFlow op type: one traced step (forward, backward, weight gradients)
at char-gen's shape, from TensorFlow's step statistics (NOTES section 24).

    python -u benchmarks/tf_bptt_profile.py
    TF_CPU_ALLOCATOR_USE_BFC=true python -u benchmarks/tf_bptt_profile.py

Prints the traced step's wall time, the sum of op times (ops run side by side
on the inter-op threads, so it can exceed the wall time) and the op types and
nodes that took longest. Tracing adds overhead: compare runs, not absolutes.
"""

from __future__ import annotations

import collections
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lstm.fused import tf_bptt  # noqa: E402


def main(shape: str = "64,100,256,1024") -> None:
    batch, steps, features, units = map(int, shape.split(","))
    tf.compat.v1.disable_eager_execution()  # a Session returns step statistics
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, steps, features)), tf.float32)
    weights = [
        tf.constant(rng.standard_normal(s) * 0.03, tf.float32)
        for s in [(features, 4 * units), (units, 4 * units), (4 * units,)]
    ]
    h0 = tf.zeros([batch, units])
    with tf.GradientTape() as tape:
        tape.watch(weights)
        outputs, _, _ = tf_bptt.lstm(x, h0, h0, *weights, xla=False)
        loss = tf.reduce_sum(outputs * outputs)
    gradients = tape.gradient(loss, weights)
    session = tf.compat.v1.Session()
    for _ in range(2):  # warm-up
        session.run(gradients)
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    metadata = tf.compat.v1.RunMetadata()
    start = time.perf_counter()
    session.run(gradients, options=options, run_metadata=metadata)
    print(f"traced step {(time.perf_counter() - start) * 1e3:.0f} ms wall")
    by_type, counts, by_node = (collections.Counter() for _ in range(3))
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            micros = node.op_end_rel_micros - node.op_start_rel_micros
            label = node.timeline_label
            kind = label.split("=")[1].split("(")[0].strip() if "=" in label else "?"
            by_type[kind] += micros
            counts[kind] += 1
            by_node[node.node_name] += micros
    print(f"sum of op times {sum(by_type.values()) / 1e3:.0f} ms")
    for kind, micros in by_type.most_common(12):
        print(f"  {kind:24s} {micros / 1e3:8.1f} ms over {counts[kind]} runs")
    print("longest nodes:")
    for name, micros in by_node.most_common(8):
        print(f"  {name[:64]:64s} {micros / 1e3:8.1f} ms")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("shape", nargs="?", default="64,100,256,1024")
    main(parser.parse_args().shape)
