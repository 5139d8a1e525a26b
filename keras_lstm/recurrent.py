"""What LSTM and GRU share: argument checks, config, and the recurrent loop.

The loop calls the cell's `call` once per timestep, as `keras.layers.RNN` does. As
an option (`hoist_input_projection`), it instead multiplies *all* timesteps by the
input kernel in one matmul (`cell.project_inputs`) and runs only the recurrent part
(`cell.recurrent_step`) inside the loop: the same arithmetic in another order.

Masking, `go_backwards`, `unroll`, `stateful` and `zero_output_for_mask` are handled
by Keras' own loop (`keras.src.backend.rnn`), exactly as for the built-in layers.

With `use_cudnn="auto"` (the default) `inner_loop` first asks `keras_lstm.fused`
for a faster engine that computes the same thing (PyTorch's fused kernels on the
torch backend, XLA for TensorFlow CPU inference); `reference_loop`, the keras.ops
cell in Keras' loop, runs otherwise and always with `use_cudnn=False`.
"""

from __future__ import annotations

import contextlib
import functools

import keras
from keras import ops

# Keras' public API does not export these two; they are what the built-in LSTM and
# GRU use, and using them keeps our dropout masks and loop semantics identical.
from keras.src import backend as keras_backend
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_lstm import _checks, fused

__all__ = [
    "DropoutRNNCell",
    "RecurrentLayer",
    "cell_property",
    "common_cell_config",
    "drops",
    "masked_matmul",
    "matmul",
]

# Layer-level keys that `keras.layers.Layer.get_config` already provides.
_BASE_KEYS = ("name", "trainable", "dtype")


def drops(rate: float) -> bool:
    """Whether a cell applies dropout at this `rate` (when training).

    As keras.layers.LSTMCell / GRUCell (`if training and 0.0 < self.dropout < 1.0`,
    keras/src/layers/rnn/lstm.py:235,258,273 and gru.py:197,218,256): a rate of
    1.0 is accepted but applies no dropout in the cell.
    """
    return 0.0 < rate < 1.0


def matmul(x, y):
    """`ops.matmul(x, y)`, but exact for float64 on the torch backend.

    Keras' torch `matmul` computes float64 in float32 and returns float32: it casts
    both operands to `dtypes.result_type(...)` (keras/src/backend/torch/numpy.py,
    `matmul`), which maps float64 to float32 on every backend but tensorflow
    (`BIT64_TO_BIT32_DTYPE`, keras/src/backend/common/dtypes.py:235). `ops.einsum`
    hands the tensors to `torch.einsum` unchanged.
    """
    if (
        keras.backend.backend() == "torch"
        and keras.backend.standardize_dtype(x.dtype) == "float64"
    ):
        return ops.einsum("...i,ij->...j", x, y)
    return ops.matmul(x, y)


def masked_matmul(x, kernel, masks, parts: int):
    """`x @ kernel`, with dropout `masks` applied to `x` first.

    `masks` is None, one mask for all gates, or a list of one mask per gate (then
    `kernel` is split into `parts` column blocks, one per gate). A mask has shape
    (batch, features) and is broadcast over the time axis when `x` is 3-D.
    """
    if masks is None:
        return matmul(x, kernel)

    def expand(mask):
        return ops.expand_dims(mask, 1) if len(x.shape) == 3 else mask

    if not isinstance(masks, (list, tuple)):
        return matmul(x * expand(masks), kernel)
    kernels = ops.split(kernel, parts, axis=-1)
    return ops.concatenate(
        [matmul(x * expand(m), k) for m, k in zip(masks, kernels)], axis=-1
    )


def common_cell_config(cell) -> dict:
    """The config entries LSTMCell and GRUCell share, serialized like Keras does."""
    return {
        "units": cell.units,
        "activation": keras.activations.serialize(cell.activation),
        "recurrent_activation": keras.activations.serialize(cell.recurrent_activation),
        "use_bias": cell.use_bias,
        "kernel_initializer": keras.initializers.serialize(cell.kernel_initializer),
        "recurrent_initializer": keras.initializers.serialize(
            cell.recurrent_initializer
        ),
        "bias_initializer": keras.initializers.serialize(cell.bias_initializer),
        "kernel_regularizer": keras.regularizers.serialize(cell.kernel_regularizer),
        "recurrent_regularizer": keras.regularizers.serialize(
            cell.recurrent_regularizer
        ),
        "bias_regularizer": keras.regularizers.serialize(cell.bias_regularizer),
        "kernel_constraint": keras.constraints.serialize(cell.kernel_constraint),
        "recurrent_constraint": keras.constraints.serialize(cell.recurrent_constraint),
        "bias_constraint": keras.constraints.serialize(cell.bias_constraint),
        "dropout": cell.dropout,
        "recurrent_dropout": cell.recurrent_dropout,
        "seed": cell.seed,
    }


@functools.lru_cache(maxsize=None)
def _jax_on_gpu() -> bool:
    """Whether Keras runs on jax and its first device is a GPU."""
    if keras.backend.backend() != "jax":
        return False
    devices = keras.distribution.list_devices()
    return bool(devices) and devices[0].lower().startswith(("gpu", "cuda"))


def _autocast_scope(layer):
    """The autocast scope `layer.__call__` would enter around `layer.call`
    (keras/src/layers/layer.py:983-997), or a null context where it would enter
    none (or one equal to the current scope). keras.layers.RNN calls its cell
    through `cell.__call__`, which enters it; we call the cell directly, so
    `RecurrentLayer.call` enters the cell's scope itself. Without it a mixed
    policy reads the float32 variables uncast under `stateless_call`, which
    skips the layer's `__call__` too."""
    current = keras_backend.get_autocast_scope()
    if current is not None:
        if not layer.autocast or not keras_backend.is_float_dtype(layer.compute_dtype):
            if current.dtype is not None:
                return keras_backend.AutocastScope(None)
        elif current.dtype != layer.compute_dtype:
            return keras_backend.AutocastScope(layer.compute_dtype)
    elif layer.compute_dtype != layer.variable_dtype:
        return keras_backend.AutocastScope(layer.compute_dtype)
    return contextlib.nullcontext()


def cell_property(name: str) -> property:
    """A read-only layer attribute forwarded to the cell, as the built-ins do."""
    return property(lambda self: getattr(self.cell, name), doc=f"`cell.{name}`")


class RecurrentLayer(keras.layers.RNN):
    """Base of `keras_lstm.LSTM` and `keras_lstm.GRU` (not used directly).

    The cell must provide `project_inputs(sequences, training)` and
    `recurrent_step(projected_t, states, training)`.
    """

    def __init__(self, cell, use_cudnn="auto", **kwargs):
        super().__init__(cell, **kwargs)
        self.use_cudnn = _checks.equal_to_one_of(
            "use_cudnn", use_cudnn, ("auto", True, False)
        )

    units = cell_property("units")
    activation = cell_property("activation")
    recurrent_activation = cell_property("recurrent_activation")
    use_bias = cell_property("use_bias")
    kernel_initializer = cell_property("kernel_initializer")
    recurrent_initializer = cell_property("recurrent_initializer")
    bias_initializer = cell_property("bias_initializer")
    kernel_regularizer = cell_property("kernel_regularizer")
    recurrent_regularizer = cell_property("recurrent_regularizer")
    bias_regularizer = cell_property("bias_regularizer")
    kernel_constraint = cell_property("kernel_constraint")
    recurrent_constraint = cell_property("recurrent_constraint")
    bias_constraint = cell_property("bias_constraint")
    dropout = cell_property("dropout")
    recurrent_dropout = cell_property("recurrent_dropout")

    # Whether `x·W + b` is computed for all timesteps in one matmul before the
    # loop (then only `h·U` runs per step). Same results either way. "auto" (the
    # default) hoists only on the jax backend with a GPU: measured on CPU
    # (benchmarks/NOTES.md) the (timesteps, batch, gates·units) tensor it creates
    # costs more than the per-step matmuls it saves, on all three backends, while
    # on an H100 with jax it saved 15-20% (issue 8). True / False force it; set it
    # on a layer (or here). The fast paths of `use_cudnn="auto"` ignore it.
    hoist_input_projection = "auto"

    def build(self, sequences_shape, initial_state_shape=None):
        _checks.sequences_shape(self.name, sequences_shape)
        super().build(sequences_shape, initial_state_shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        # Keras calls this, not `call`, on symbolic inputs (keras.Input):
        # a wrong initial state is refused there too, not at the first predict.
        if initial_state_shape is not None:
            _checks.state_shapes(
                self.name,
                initial_state_shape,
                len(self.state_size),
                self.cell.units,
                sequences_shape[0],
            )
        return super().compute_output_shape(sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = self._convert_sequences(sequences)
        shape = tuple(sequences.shape)
        _checks.sequences_shape(self.name, shape)
        _checks.features(self.name, shape, self.cell.kernel.shape[0])
        if initial_state is not None:
            _checks.states(
                self.name,
                initial_state,
                len(self.state_size),
                self.cell.units,
                shape[0],
            )
        if keras.tree.is_nested(mask):
            mask = keras.tree.flatten(mask)[0]
        if mask is not None:
            _checks.mask(self.name, mask, shape)
            mask = ops.convert_to_tensor(mask, dtype="bool")
            if len(mask.shape) == 3:
                # (batch, timesteps, 1): the shape Keras' loop uses internally
                # (keras/src/backend/tensorflow/rnn.py:44,102-103).
                mask = ops.squeeze(mask, axis=-1)
        with _autocast_scope(self.cell):
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )

    def _convert_sequences(self, sequences):
        """`sequences` as a tensor of the cell's compute dtype.

        keras.layers.RNN calls its cell through `Layer.__call__`, which converts
        each step's input (keras/src/layers/layer.py:882-900, `convert_input`:
        arrays to tensors, floats to the compute dtype); we call the cell
        directly, so it is done here once, which `stateless_call` needs too.
        Integer (and bool) inputs, which `convert_input` leaves alone, reach the
        built-in's matmul, which promotes them to the kernel's float dtype
        (keras' `result_type`; keras/src/backend/torch/rnn.py:567 casts them
        explicitly): cast here, so that every engine gets floats.
        """
        cell = self.cell
        if not (
            keras_backend.is_tensor(sequences)
            and keras_backend.standardize_dtype(sequences.dtype) == cell.compute_dtype
        ):
            sequences = cell.dtype_policy.convert_input(
                sequences, cell.autocast, cell.input_dtype
            )
            if not keras_backend.is_float_dtype(sequences.dtype):
                sequences = ops.cast(sequences, cell.compute_dtype)
        return sequences

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self.use_cudnn is True:
            return self._fused_inner_loop(sequences, initial_state, mask, training)
        if self.use_cudnn == "auto" and not self.unroll:
            fast = fused.select(self, sequences, mask, training)
            if fast is not None:
                return fast(sequences, list(initial_state), mask)
        return self.reference_loop(sequences, initial_state, mask, training)

    def reference_loop(
        self, sequences, initial_state, mask, training=False, go_backwards=None
    ):
        """The keras.ops cell in Keras' generic loop: the reference that every
        fast path is tested against (and what `use_cudnn=False` always runs).
        `go_backwards`: the layer's own unless given (the XLA path reverses the
        sequence itself, so that a Bidirectional pair shares one compiled loop)."""
        copy_states = keras.backend.backend() == "torch" and self.stateful
        cell = self.cell
        hoist = self.hoist_input_projection
        if hoist == "auto":
            hoist = _jax_on_gpu()
        if hoist:
            inputs = cell.project_inputs(sequences, training=training)
            cell_step = cell.recurrent_step
        else:
            inputs, cell_step = sequences, cell.call

        def step(inputs_t, states):
            if copy_states:
                # As in keras.layers.RNN: torch autograd must not see the state
                # variables modified in place.
                states = keras.tree.map_structure(ops.copy, states)
            return cell_step(inputs_t, states, training=training)

        return keras_backend.rnn(
            step,
            inputs,
            list(initial_state),
            go_backwards=self.go_backwards if go_backwards is None else go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def _fused_inner_loop(self, sequences, initial_state, mask, training):
        """`use_cudnn=True`: the backend's fused kernel, as in the built-in layer."""
        kernel_fn = self._fused_kernel()
        if not self.recurrent_dropout:
            if training and self.dropout:
                dp_mask = self.cell.get_dropout_mask(sequences[:, 0, :])
                sequences = sequences * ops.expand_dims(dp_mask, axis=1)
            try:
                out = kernel_fn(sequences, initial_state, mask)
                if keras.backend.backend() == "tensorflow":
                    self.supports_jit = False
                return out
            except NotImplementedError:
                pass
        raise ValueError(
            f"Layer '{self.name}': use_cudnn=True was specified, but the backend "
            f"'{keras.backend.backend()}' has no fused kernel for this "
            "configuration and device. Pass use_cudnn='auto' to run the keras.ops "
            "cell."
        )

    def _fused_kernel(self):
        raise NotImplementedError

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {k: v for k, v in cell_config.items() if k not in _BASE_KEYS}
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        if self.use_cudnn is not True:
            # Kept: "auto" or False (the exact reference loop) run anywhere.
            # True demands a fused kernel of the machine, so, as the built-in
            # does, it is not saved: a file written where it ran must load
            # and run on a machine without one (as "auto").
            config["use_cudnn"] = self.use_cudnn
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
