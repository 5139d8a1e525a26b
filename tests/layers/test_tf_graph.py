"""TensorFlow: our LSTM loop does the same per-step work as keras.layers.LSTM.

Timings on a 2-core CI machine are too noisy to compare two equal layers (see
benchmarks/NOTES.md), so this compares what can be counted: the ops in the
while-loop body of the forward pass and of its gradient, and which ops feed
each. It guards against
regressions such as the MatMul+BiasAdd fusion that once made our loop 1.5x slower.
"""

import collections

import numpy as np
import pytest

from tests.layers.helpers import BACKEND, pair

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="inspects TensorFlow graphs"
)


def loop_ops(layer, x):
    import tensorflow as tf

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, layer.trainable_weights)

    graph = train_step.get_concrete_function().graph.as_graph_def()
    ops = {}
    for function in graph.library.function:
        name = function.signature.name
        if "while_body" in name and "rewritten" not in name:
            kind = "backward" if "_grad" in name else "forward"
            ops[kind] = op_edges(function)
    return ops


def op_edges(function):
    """Multiset of (op, ops that feed it): the loop body's wiring, names aside."""
    producer = {n.name: n.op for n in function.node_def}
    edges = collections.Counter()
    for node in function.node_def:
        inputs = [i.lstrip("^").split(":")[0] for i in node.input]
        edges[(node.op, tuple(sorted(producer.get(i, "arg") for i in inputs)))] += 1
    return edges


def test_lstm_has_the_same_ops_per_step_as_builtin():
    # The GRU reads its (2, 3·units) bias by row instead of Keras' split+squeeze,
    # a few cheap ops more per step; not compared here (see benchmarks/NOTES.md).
    x = np.random.default_rng(0).standard_normal((4, 6, 5)).astype("float32")
    ours, builtin = pair("lstm", 8)
    # The reference loop, which trains whenever keras_lstm/fused/tf_bptt.py does
    # not engage (a batch size unknown when traced, masks, dropout, ...); with
    # this fixed batch of 4 it would.
    ours.use_cudnn = False
    ours_ops, builtin_ops = loop_ops(ours, x), loop_ops(builtin, x)
    assert set(ours_ops) == {"forward", "backward"}
    assert ours_ops == builtin_ops
