"""tensorflow backend, CPU, inference: the reference loop compiled with XLA.

The same keras.ops cell and the same `keras.src.backend.rnn` loop, traced into a
`tf.function(jit_compile=True)`: XLA fuses each step's element-wise gate math and
removes the per-op executor overhead of TensorFlow's while loop, which dominates
at these sizes (benchmarks/NOTES.md).

Training (`training=True`) does not use this loop: differentiating through the
compiled loop would hand its TensorList of intermediates across the XLA boundary,
which TensorFlow does not support (`select` hands training to `tf_bptt`, the
LSTM's hand-written gradient, or the plain graph). For the same reason a
gradient taken through an inference call (`training=False` under a
GradientTape) is computed by a custom gradient that replays the plain
reference loop.

XLA:CPU runs one compiled loop on one core. Rows of a batch never interact in a
recurrent layer, so with two cores or more and a batch of at least
`MIN_SPLIT_BATCH` rows (or one unknown when the graph is traced) the batch runs
as two halves, two independent compiled calls that TensorFlow's executor runs
side by side inside a `tf.function` (as in `predict`): 1.2-1.5x faster on the
2-core machine (benchmarks/NOTES.md, section 13), same rows as for the whole
batch. (The same split for training, two plain loops side by side, was 0.94x
at the weather shape but 1.05-1.17x elsewhere inside `fit`, section 14; not
used.)

Engaged for: inference (`training=False`), on a CPU, float32, at most
`MAX_UNITS` (256) units, not unrolled, inside or outside `tf.function`; masks
allowed. XLA compiles once per input shape; the compiled function is shared by
layers of the same configuration (a Bidirectional's two directions included).
"""

from __future__ import annotations

import json
import os
import weakref

import keras
import tensorflow as tf

# Private, but the only way to keep an active GradientTape from recording the
# compiled call (its forward-with-intermediates variant is what XLA rejects); the
# custom gradient below is recorded instead. Checked by tests/layers/test_fast_paths.
from tensorflow.python.eager import forwardprop_util, record
from tensorflow.python.framework.func_graph import FuncGraph
from tensorflow.python.ops.control_flow_v2_func_graphs import (
    CondBranchFuncGraph,
    ControlFlowFuncGraph,
    WhileBodyFuncGraph,
)

# Each layer keeps its compiled loop in this attribute (the loop's closure
# refers to the layer that made it; the cycle is collected with them), and
# `_SHARED` finds it for other layers of the same configuration (see
# _compiled_loop) for only as long as one of them is alive: a strong table
# would keep every layer that ever made a loop, with its weights, alive.
_OWN = "_keras_lstm_xla_loop"


class _Loop:
    """Holds a layer's compiled loop. A plain object: `tf.saved_model.save`
    saves a `tf.function` found in a layer's attributes as part of it."""

    __slots__ = ("function", "__weakref__")

    def __init__(self, function):
        self.function = function


_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


# XLA:CPU runs its matmuls without oneDNN: at 1024 units the compiled loop was
# 2.9x slower than the plain one, at 256 units 0.6x, at 32-64 units 0.3-0.5x
# (benchmarks/NOTES.md, section 8b). So only up to this many units.
MAX_UNITS = 256


# Keras' TensorFlow trainer runs `steps_per_execution` > 1 steps of `fit` and
# `evaluate` in a tf.while_loop in its `multi_step_on_iterator` function, each
# step a call of its `one_step_on_data` function, whose tape (train_step's) is
# inside the step: gradients taken there are right with the engines
# (tests/layers/test_fast_paths.py), so the search stops at that step.
_KERAS_STEP = "one_step_on_data"
_KERAS_LOOP = "multi_step_on_iterator"


def in_control_flow() -> bool:
    """Whether this is traced inside a `tf.cond` / `tf.switch_case` branch or a
    `tf.while_loop` body (`tf.map_fn`), at any depth, `tf.function` calls
    included. A tape outside such a construct differentiates it through the
    construct's own gradient graphs, where the engines' custom gradients gave
    zeros (with a second tape recording) or failed; the reference loop runs
    there instead (NOTES section 25). Keras' own loop over
    `steps_per_execution` steps does not count: the step's tape is inside it."""
    graph = tf.compat.v1.get_default_graph()
    while isinstance(graph, FuncGraph):
        if isinstance(graph, ControlFlowFuncGraph):
            return True
        if _is_keras_step(graph):
            return False
        graph = graph.outer_graph
    return False


def _is_keras_step(graph: FuncGraph) -> bool:
    """`graph` is Keras' step function called as its trainer calls it: in a
    tf.cond branch in the tf.while_loop body of its outermost function (names
    and nesting both, so that a user's functions named alike but nested
    otherwise, e.g. around a tf.map_fn, do not pass)."""
    branch = graph.outer_graph
    body = getattr(branch, "outer_graph", None)
    loop = getattr(body, "outer_graph", None)
    return (
        graph.name == _KERAS_STEP
        and isinstance(branch, CondBranchFuncGraph)
        and isinstance(body, WhileBodyFuncGraph)
        and isinstance(loop, FuncGraph)
        and loop.name == _KERAS_LOOP
        and not isinstance(loop.outer_graph, FuncGraph)
    )


def select(layer, sequences, mask, training):
    if in_control_flow():
        return None
    if training:  # the LSTM's hand-written gradient, where it applies
        from keras_lstm.fused import tf_bptt

        return tf_bptt.select(layer, sequences, mask, training)
    if layer.cell.compute_dtype != "float32":
        return None
    if layer.cell.units > MAX_UNITS:
        return None
    if tf.config.list_logical_devices("GPU"):
        return None
    variables = list(layer.cell.weights)
    # The gradient below replays the reference loop. In a graph, TensorFlow
    # keeps each custom gradient function in a global registry for good, so
    # there it must not hold the layer (and its weights) alive and looks it up
    # weakly; an eager tape lives only as long as the user keeps it, and the
    # layer may be dropped before its gradient is taken, so there it holds it.
    eager_layer = layer if tf.executing_eagerly() else None
    layer_ref = weakref.ref(layer)
    compiled = _compiled_loop(layer)

    def run(sequences, initial_state, mask):
        # Values, not a stateful layer's state variables (see tf_bptt.select).
        initial_state = [tf.convert_to_tensor(s) for s in initial_state]
        weights = [tf.convert_to_tensor(v) for v in variables]  # reads them
        if forward_mode([sequences, *initial_state, *weights]):
            return layer.reference_loop(sequences, initial_state, mask, False)
        structure = None
        count = 1 + len(initial_state)

        @tf.custom_gradient
        def fused(*inputs):
            nonlocal structure
            sequences, states, weights = inputs[0], inputs[1:count], inputs[count:]
            with record.stop_recording():
                forward, forward_mask = sequences, mask
                if layer.go_backwards:  # reversed here, not in the shared loop
                    forward = tf.reverse(sequences, [1])
                    if mask is not None:
                        forward_mask = tf.reverse(mask, [1])
                structure = call_in_parts(
                    lambda s, st, m: compiled(s, st, m, list(weights)),
                    forward,
                    list(states),
                    forward_mask,
                )
            flat = tf.nest.flatten(structure)

            def grad(*dys):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    alive = eager_layer
                    if alive is None:  # a graph's gradient: the weak lookup
                        alive = _alive(layer_ref)
                    reference = _reference_loop(alive)
                    replay = reference(sequences, states, mask, weights)
                dys = [tf.zeros_like(y) if d is None else d for y, d in zip(flat, dys)]
                return tape.gradient(
                    tf.nest.flatten(replay),
                    list(inputs),
                    output_gradients=dys,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )

            return flat, grad

        flat = fused(sequences, *initial_state, *weights)
        return tf.nest.pack_sequence_as(structure, flat)

    return run


def _alive(layer_ref):
    layer = layer_ref()
    if layer is None:
        raise RuntimeError(
            "keras_lstm: the gradient of a layer's inference call was asked "
            "for after the layer was deleted"
        )
    return layer


def forward_mode(tensors) -> bool:
    """Whether an eager `tf.autodiff.ForwardAccumulator` tracks any of
    `tensors`. It would not see inside the engines (their loops run with
    recording stopped), so the reference loop runs instead. (Inside a
    tf.function, forward mode goes through the custom gradients.)"""
    return bool(forwardprop_util.pack_tangents(tensors).indices)


def _reference_loop(layer, go_backwards=None):
    """The layer's inference loop as a function of `(sequences, states, mask,
    weights)`. The weights come in as arguments (not captured): a tf.function
    would otherwise freeze the tensors that `stateless_call` maps them to."""
    variables = list(layer.cell.weights)

    def loop(sequences, states, mask, weights):
        with keras.StatelessScope(state_mapping=list(zip(variables, weights))):
            return layer.reference_loop(
                sequences, list(states), mask, False, go_backwards=go_backwards
            )

    return loop


def _compiled_loop(layer):
    """The layer's reference loop, forwards, compiled by XLA: a tf.function of
    `(sequences, states, mask, weights)`.

    XLA compiles once per function and input shape (0.5-1 s here), so layers
    that compute the same loop share one function: a Bidirectional's two
    directions, and layers made while one of the same configuration is
    alive. Shared only between our own classes (a subclass may compute more
    than its config says), with every configuration entry that affects
    inference equal and the same activation functions (`_sharing_key`); the
    layer that made the function is its template, whose variables the weights
    replace, and stays alive as long as a layer sharing it does.
    """
    held = layer.__dict__.get(_OWN)
    key = _sharing_key(layer) if held is None else None
    if key is not None:
        held = _SHARED.get(key)
    if held is None:
        forwards = _reference_loop(layer, go_backwards=False)
        held = _Loop(
            tf.function(
                forwards, jit_compile=True, autograph=False, reduce_retracing=True
            )
        )
        if key is not None:
            _SHARED[key] = held
    object.__setattr__(layer, _OWN, held)  # not tracked by Keras
    return held.function


# Configuration entries that do not change the inference loop (go_backwards is
# applied outside it); the activations enter the key as objects, below.
_NOT_IN_LOOP = {
    "name", "trainable", "go_backwards", "dropout", "recurrent_dropout", "seed",
    "return_state", "stateful", "activity_regularizer", "activation",
    "recurrent_activation",
}  # fmt: skip


def _sharing_key(layer):
    """What makes two layers' inference loops the same, or None: share none.

    The activations count as the objects themselves: a config names a plain
    function only by its name, which two different functions can share (one
    made by a factory, or one redefined in a notebook). A layer whose config
    cannot be written (e.g. a regularizer without `get_config`) shares none.
    """
    from keras_lstm import GRU, LSTM, GRUCell, LSTMCell

    if (type(layer), type(layer.cell)) not in ((LSTM, LSTMCell), (GRU, GRUCell)):
        return None
    try:
        config = {
            k: v
            for k, v in layer.get_config().items()
            if k not in _NOT_IN_LOOP
            and not k.endswith(("_initializer", "_regularizer", "_constraint"))
        }
        key = (
            type(layer).__name__,
            json.dumps(config, sort_keys=True),
            layer.cell.activation,
            layer.cell.recurrent_activation,
            repr(layer.hoist_input_projection),
            tuple(tuple(v.shape) for v in layer.cell.weights),
        )
        hash(key)
    except Exception:  # unserializable or unhashable: the layer's own loop
        return None
    return key


# From this many rows on. Measured at batches of 64 and 256 on 2 cores; four
# parts on 2 cores were slower than two; more cores were not measured.
MIN_SPLIT_BATCH = 16


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# For inference both halves get the same number of rows, rounded up to a multiple
# of this with zero rows that are dropped afterwards: XLA compiles once per input
# shape (0.5-1 s each), so a batch of 59 rows (a `predict`'s last batch) reuses
# the compile of the batch of 64 instead of compiling halves of 30 and 29 rows.
ROW_BUCKET = 8


def call_in_parts(fn, sequences, states, mask, bucket=ROW_BUCKET):
    """`fn(sequences, states, mask)` -> (last, outputs, states), all batch-major,
    run on two equal halves of the batch (padded with zero rows to a multiple
    of `bucket`) and concatenated; or on the whole batch when splitting is not
    worth it. (`tf_bptt`, whose batch size is fixed, pads one row at most.)"""
    batch = sequences.shape[0]
    if cores() < 2 or (batch is not None and batch < MIN_SPLIT_BATCH):
        return fn(sequences, states, mask)
    rows = tf.shape(sequences)[0]
    half = -(-((rows + 1) // 2) // bucket) * bucket
    pad = 2 * half - rows

    def halves(tensor):
        padding = [[0, pad]] + [[0, 0]] * (len(tensor.shape) - 1)
        return tf.split(tf.pad(tensor, padding), [half, half], axis=0)

    seq_parts, mask_parts = halves(sequences), [None, None]
    if mask is not None:
        mask_parts = halves(mask)
    state_parts = list(zip(*[halves(s) for s in states])) or [(), ()]
    results = [fn(seq_parts[k], list(state_parts[k]), mask_parts[k]) for k in (0, 1)]

    def join(a, b):
        joined = tf.concat([a, b], 0)[:rows]
        joined.set_shape(tf.TensorShape([batch]).concatenate(a.shape[1:]))
        return joined

    return tf.nest.map_structure(join, *results)
