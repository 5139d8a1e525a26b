"""LSTM cell and layer, written with `keras.ops`."""

from __future__ import annotations

import keras
from keras import ops
from keras.src import backend as keras_backend

from keras_lstm import _checks
from keras_lstm.recurrent import (
    DropoutRNNCell,
    RecurrentLayer,
    cell_property,
    common_cell_config,
    drops,
    masked_matmul,
)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTMCell(keras.layers.Layer, DropoutRNNCell):
    r"""Long Short-Term Memory cell: one timestep of `keras_lstm.LSTM`.

    For input `x_t`, previous hidden state `h_{t-1}` and previous cell state
    `C_{t-1}`, with `σ` = `recurrent_activation` (sigmoid), `tanh` = `activation`
    and `⊙` the element-wise product::

        f_t  = σ(x_t·W_f + h_{t-1}·U_f + b_f)        forget gate
        i_t  = σ(x_t·W_i + h_{t-1}·U_i + b_i)        input gate
        C̃_t  = tanh(x_t·W_c + h_{t-1}·U_c + b_c)     candidate cell state
        C_t  = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t             cell state
        o_t  = σ(x_t·W_o + h_{t-1}·U_o + b_o)        output gate
        h_t  = o_t ⊙ tanh(C_t)                       hidden state (the output)

    This is the seed article's `W·[h_{t-1}, x_t] + b`, with `W` split into the
    input part (`kernel`) and the recurrent part (`recurrent_kernel`). The weights
    use the layout of `keras.layers.LSTMCell`: `kernel` (features, 4·units),
    `recurrent_kernel` (units, 4·units) and `bias` (4·units,), gate blocks in the
    order i, f, c, o. So `set_weights` moves weights to and from the built-in.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation for the candidate and the output (`tanh`).
        recurrent_activation: Activation for the gates (`sigmoid`).
        use_bias: Whether the cell uses a bias vector (`True`).
        kernel_initializer: Initializer for `kernel` (`"glorot_uniform"`).
        recurrent_initializer: Initializer for `recurrent_kernel`
            (`"orthogonal"`).
        bias_initializer: Initializer for `bias` (`"zeros"`).
        unit_forget_bias: If `True` (default), add 1 to the forget-gate bias at
            initialization (Jozefowicz et al., 2015).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional
            regularizers for the three weights.
        kernel_constraint, recurrent_constraint, bias_constraint: Optional
            constraints for the three weights.
        dropout: Float in [0, 1]: fraction of the inputs dropped (one mask per
            sequence, shared by all timesteps). 1.0 drops nothing, as in
            `keras.layers.LSTMCell` (the built-in layer's fused kernels, and
            ours with `use_cudnn=True`, zero the inputs instead).
        recurrent_dropout: Float in [0, 1]: fraction of `h_{t-1}` dropped
            (1.0: none, as `dropout`).
        seed: Random seed for dropout.

    Call arguments:
        inputs: A 2D tensor `(batch, features)`.
        states: List of two 2D tensors `[h_{t-1}, C_{t-1}]`, each
            `(batch, units)`.
        training: Whether dropout is active.

    Returns `(h_t, [h_t, C_t])`. Masking is applied by the enclosing RNN layer.

    Example:

    >>> import numpy as np, keras, keras_lstm
    >>> rnn = keras.layers.RNN(keras_lstm.LSTMCell(4), return_state=True)
    >>> h, h_again, c = rnn(np.ones((2, 3, 5), "float32"))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997; forget gate:
        Gers, Schmidhuber & Cummins, 2000.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        implementation = _checks.implementation(kwargs.pop("implementation", 2))
        super().__init__(**kwargs)
        self.units = _checks.positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = _checks.rate("dropout", dropout)
        self.recurrent_dropout = _checks.rate("recurrent_dropout", recurrent_dropout)
        # Same rule as keras.layers.LSTMCell: recurrent dropout (or
        # implementation=1) draws a separate dropout mask for each gate.
        self.implementation = 1 if self.recurrent_dropout else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 4
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        super().build(input_shape)
        units = self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4 * units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(units, 4 * units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            bias_initializer = self.bias_initializer
            if self.unit_forget_bias:

                def bias_initializer(_, *args, **kwargs):
                    init = self.bias_initializer
                    return ops.concatenate(
                        [
                            init((units,), *args, **kwargs),
                            keras.initializers.Ones()((units,), *args, **kwargs),
                            init((2 * units,), *args, **kwargs),
                        ]
                    )

            self.bias = self.add_weight(
                shape=(4 * units,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def project_inputs(self, inputs, training=False, with_bias=True):
        """`x·W + b` for one step `(batch, features)` or all steps at once
        `(batch, timesteps, features)`, input dropout included."""
        masks = None
        if training and drops(self.dropout):
            step = inputs[:, 0, :] if len(inputs.shape) == 3 else inputs
            masks = self.get_dropout_mask(step)
        projected = masked_matmul(inputs, self.kernel, masks, 4)
        if with_bias and self.use_bias:
            projected = ops.add(projected, self.bias)
        return projected

    def recurrent_step(self, projected, states, training=False, add_bias=False):
        """One timestep, given this step's `x_t·W + b` (from `project_inputs`)."""
        values = self.step_values(projected, states, training, add_bias)
        return values["h"], [values["h"], values["c"]]

    def step_values(self, projected, states, training=False, add_bias=False):
        """The gates and states of one timestep: a dict with `i`, `f`,
        `c_tilde`, `o`, `c`, `h` (each `(batch, units)`). The one place where the
        LSTM equations are written; `keras_lstm.record_gates` reads it too.

        With `add_bias=True`, `projected` is `x_t·W` and the bias is added here,
        after both matmuls, as keras.layers.LSTMCell does. On TensorFlow this
        order matters for speed: a bias added right after a MatMul is fused by
        grappler into one oneDNN op that made the whole loop about 1.5x slower
        (benchmarks/NOTES.md).
        """
        h_tm1, c_tm1 = states[0], states[1]
        masks = None
        if training and drops(self.recurrent_dropout):
            masks = self.get_recurrent_dropout_mask(h_tm1)
        z = projected + masked_matmul(h_tm1, self.recurrent_kernel, masks, 4)
        if add_bias and self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c_tilde = self.activation(z_c)
        o = self.recurrent_activation(z_o)
        c = f * c_tm1 + i * c_tilde
        h = o * self.activation(c)
        return {"i": i, "f": f, "c_tilde": c_tilde, "o": o, "c": c, "h": h}

    def call(self, inputs, states, training=False):
        projected = self.project_inputs(inputs, training=training, with_bias=False)
        return self.recurrent_step(projected, states, training=training, add_bias=True)

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size
        ]

    def get_config(self):
        config = common_cell_config(self)
        config["unit_forget_bias"] = self.unit_forget_bias
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTM(RecurrentLayer):
    """Long Short-Term Memory layer: a drop-in for `keras.layers.LSTM`.

    Same constructor arguments, defaults, call signature, weights and outputs as
    `keras.layers.LSTM`; the gates are computed by `keras_lstm.LSTMCell` (see its
    docstring for the equations), one timestep at a time in Keras' loop, or by
    a faster engine that computes the same (see `use_cudnn`).

    Args:
        units, activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, unit_forget_bias,
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint, dropout,
        recurrent_dropout, seed: As in `keras_lstm.LSTMCell`.
        activity_regularizer: Regularizer applied to the layer's output.
        return_sequences: Return the full sequence `(batch, timesteps, units)`
            instead of the last output `(batch, units)`.
        return_state: Also return the final states `h` and `C`.
        go_backwards: Process the sequence backwards (and return the reversed
            sequence, as Keras does).
        stateful: Carry the final states of batch `k` into batch `k + 1`
            (needs a static batch size; `reset_state()` clears them).
        unroll: Unroll the loop in Python (short sequences only).
        use_cudnn: `"auto"` (default): a fast path computing the same
            result when the configuration allows it (`keras_lstm.fused`:
            PyTorch's fused kernel on torch without a mask, the loop compiled
            by XLA for inference on a TensorFlow CPU, hand-written BPTT for
            training on a TensorFlow CPU), else the keras.ops cell.
            `False`: always the keras.ops cell, the reference. `True`: the
            backend's fused kernel (cuDNN on GPU) exactly as `keras.layers.LSTM`
            does; raises a `ValueError` when there is none for this
            configuration and device.
        zero_output_for_mask: If `True`, masked timesteps output zeros instead
            of repeating the last unmasked output.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional list `[h_0, C_0]`, each `(batch, units)`.
        mask: Optional boolean `(batch, timesteps)`; `True` means "use this
            step". A masked step leaves `h` and `C` unchanged, so padding on
            either side (or holes) does not change the states. A row with no
            valid step keeps its initial state. Masks from
            `Embedding(mask_zero=True)` or `Masking` arrive automatically.
        training: Whether dropout is active.

    Example:

    >>> import numpy as np, keras_lstm
    >>> lstm = keras_lstm.LSTM(4, return_sequences=True, return_state=True)
    >>> seq, h, c = lstm(np.ones((32, 10, 8), "float32"))
    >>> tuple(seq.shape), tuple(h.shape), tuple(c.shape)
    ((32, 10, 4), (32, 4), (32, 4))

    Reference:
        Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            unit_forget_bias=unit_forget_bias,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
            seed=seed,
            implementation=kwargs.pop("implementation", 2),
        )
        super().__init__(
            cell,
            use_cudnn=use_cudnn,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    unit_forget_bias = cell_property("unit_forget_bias")

    def _fused_kernel(self):
        cell = self.cell

        def run(sequences, initial_state, mask):
            return keras_backend.lstm(
                sequences,
                initial_state[0],
                initial_state[1],
                mask,
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
            )

        return run
