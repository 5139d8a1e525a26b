"""tensorflow backend, CPU, inference: the reference loop compiled with XLA.

The same keras.ops cell and the same `keras.src.backend.rnn` loop, traced into a
`tf.function(jit_compile=True)`: XLA fuses each step's element-wise gate math and
removes the per-op executor overhead of TensorFlow's while loop, which dominates
at these sizes (benchmarks/NOTES.md).

Training (`training=True`) keeps the plain graph: differentiating through the
compiled loop would hand its TensorList of intermediates across the XLA boundary,
which TensorFlow does not support. For the same reason a gradient taken through
an inference call (`training=False` under a GradientTape) is computed by a
custom gradient that replays the plain reference loop.

Engaged for: inference (`training=False`), on a CPU, float32, at most
`MAX_UNITS` (256) units, not unrolled, inside or outside `tf.function`; masks
allowed. XLA compiles once per input shape; the compiled function is cached per
layer.
"""

from __future__ import annotations

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
    if training or layer.cell.compute_dtype != "float32":
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
                structure = compiled(sequences, list(states), mask, list(weights))
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
