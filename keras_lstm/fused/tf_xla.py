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
allowed. XLA compiles once per input shape; the compiled function is cached per
layer.
"""

from __future__ import annotations

import os
import weakref

import keras
import tensorflow as tf

# Private, but the only way to keep an active GradientTape from recording the
# compiled call (its forward-with-intermediates variant is what XLA rejects); the
# custom gradient below is recorded instead. Checked by tests/layers/test_fast_paths.
from tensorflow.python.eager import record

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# XLA:CPU runs its matmuls without oneDNN: at 1024 units the compiled loop was
# 2.9x slower than the plain one, at 256 units 0.6x, at 32-64 units 0.3-0.5x
# (benchmarks/NOTES.md, section 8b). So only up to this many units.
MAX_UNITS = 256


def select(layer, sequences, mask, training):
    if training:  # the LSTM's hand-written gradient, where it applies
        from keras_lstm.fused import tf_bptt

        return tf_bptt.select(layer, sequences, mask, training)
    if layer.cell.compute_dtype != "float32":
        return None
    if layer.cell.units > MAX_UNITS:
        return None
    if tf.config.list_logical_devices("GPU"):
        return None
    cell = layer.cell
    variables = list(cell.weights)

    def reference(sequences, states, mask, weights):
        # The weights come in as arguments (not captured): a tf.function would
        # otherwise freeze the tensors that `stateless_call` maps them to.
        with keras.StatelessScope(state_mapping=list(zip(variables, weights))):
            return layer.reference_loop(sequences, list(states), mask, False)

    compiled = _COMPILED.get(layer)
    if compiled is None:
        compiled = tf.function(reference, jit_compile=True, autograph=False)
        _COMPILED[layer] = compiled

    def run(sequences, initial_state, mask):
        structure = None
        count = 1 + len(initial_state)

        @tf.custom_gradient
        def fused(*inputs):
            nonlocal structure
            sequences, states, weights = inputs[0], inputs[1:count], inputs[count:]
            with record.stop_recording():
                structure = call_in_parts(
                    lambda s, st, m: compiled(s, st, m, list(weights)),
                    sequences,
                    list(states),
                    mask,
                )
            flat = tf.nest.flatten(structure)

            def grad(*dys):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    replay = reference(sequences, states, mask, weights)
                dys = [tf.zeros_like(y) if d is None else d for y, d in zip(flat, dys)]
                return tape.gradient(
                    tf.nest.flatten(replay),
                    list(inputs),
                    output_gradients=dys,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )

            return flat, grad

        weights = [tf.convert_to_tensor(v) for v in variables]  # reads them
        flat = fused(sequences, *initial_state, *weights)
        return tf.nest.pack_sequence_as(structure, flat)

    return run


# From this many rows on. Measured at batches of 64 and 256 on 2 cores; four
# parts on 2 cores were slower than two; more cores were not measured.
MIN_SPLIT_BATCH = 16


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def call_in_parts(fn, sequences, states, mask):
    """`fn(sequences, states, mask)` -> (last, outputs, states), all batch-major,
    run on two halves of the batch and concatenated; or on the whole batch when
    splitting is not worth it."""
    batch = sequences.shape[0]
    if cores() < 2 or (batch is not None and batch < MIN_SPLIT_BATCH):
        return fn(sequences, states, mask)
    rows = tf.shape(sequences)[0]
    sizes = tf.stack([rows - rows // 2, rows // 2])

    def halves(tensor):
        return tf.split(tensor, sizes, axis=0)

    seq_parts, mask_parts = halves(sequences), [None, None]
    if mask is not None:
        mask_parts = halves(mask)
    state_parts = list(zip(*[halves(s) for s in states])) or [(), ()]
    results = [fn(seq_parts[k], list(state_parts[k]), mask_parts[k]) for k in (0, 1)]
    return tf.nest.map_structure(lambda a, b: tf.concat([a, b], 0), *results)
