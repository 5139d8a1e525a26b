"""GRU cell and layer, written with `keras.ops`."""

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
    matmul,
)


@keras.saving.register_keras_serializable(package="keras_lstm")
class GRUCell(keras.layers.Layer, DropoutRNNCell):
    r"""Gated Recurrent Unit cell: one timestep of `keras_lstm.GRU`.

    With `σ` = `recurrent_activation` (sigmoid), `tanh` = `activation`::

        z_t  = σ(x_t·W_z + h_{t-1}·U_z + b_z)              update gate
        r_t  = σ(x_t·W_r + h_{t-1}·U_r + b_r)              reset gate
        h̃_t  = tanh(x_t·W_h + r_t ⊙ (h_{t-1}·U_h + b'_h))  reset_after=True
        h̃_t  = tanh(x_t·W_h + (r_t ⊙ h_{t-1})·U_h + b_h)   reset_after=False
        h_t  = z_t ⊙ h_{t-1} + (1 - z_t) ⊙ h̃_t

    `reset_after=True` (the default, and cuDNN's and PyTorch's convention) keeps a
    separate recurrent bias `b'`; the weights then are `kernel` (features, 3·units),
    `recurrent_kernel` (units, 3·units) and `bias` (2, 3·units) = [input bias,
    recurrent bias], gate blocks in the order z, r, h, as in
    `keras.layers.GRUCell`. With `reset_after=False`, `bias` is (3·units,).

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation for the candidate (`tanh`).
        recurrent_activation: Activation for the gates (`sigmoid`).
        use_bias: Whether the cell uses a bias (`True`).
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers (`"glorot_uniform"`, `"orthogonal"`, `"zeros"`).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional
            regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: Optional
            constraints.
        dropout: Float in [0, 1]: fraction of the inputs dropped (1.0 drops
            nothing, as in `keras.layers.GRUCell`; the built-in layer's fused
            kernels, and ours with `use_cudnn=True`, zero the inputs instead).
        recurrent_dropout: Float in [0, 1]: fraction of `h_{t-1}` dropped
            (1.0: none, as `dropout`).
        reset_after: Apply the reset gate after the recurrent matmul (`True`).
        seed: Random seed for dropout.

    Call arguments:
        inputs: A 2D tensor `(batch, features)`.
        states: `h_{t-1}`, `(batch, units)` (or a list holding it).
        training: Whether dropout is active.

    Example:

    >>> import numpy as np, keras, keras_lstm
    >>> rnn = keras.layers.RNN(keras_lstm.GRUCell(4))
    >>> tuple(rnn(np.ones((2, 3, 5), "float32")).shape)
    (2, 4)

    Reference:
        Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder
        for Statistical Machine Translation", 2014.
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
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
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
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = _checks.rate("dropout", dropout)
        self.recurrent_dropout = _checks.rate("recurrent_dropout", recurrent_dropout)
        # As keras.layers.GRUCell: one dropout mask per gate in implementation 1.
        self.implementation = 1 if self.recurrent_dropout else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 3
        self.reset_after = reset_after
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 3 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 3 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
            self.bias = self.add_weight(
                shape=shape,
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def project_inputs(self, inputs, training=False):
        """`x·W + b` for one step `(batch, features)` or all steps at once
        `(batch, timesteps, features)`, input dropout included."""
        masks = None
        if training and drops(self.dropout):
            step = inputs[:, 0, :] if len(inputs.shape) == 3 else inputs
            masks = self.get_dropout_mask(step)
        projected = masked_matmul(inputs, self.kernel, masks, 3)
        if self.use_bias:
            bias = self.bias[0] if self.reset_after else self.bias
            projected = ops.add(projected, bias)  # BiasAdd on TensorFlow
        return projected

    def recurrent_step(self, projected, states, training=False):
        """One timestep, given this step's `x_t·W + b` (from `project_inputs`)."""
        nested = keras.tree.is_nested(states)
        h_tm1 = states[0] if nested else states
        masks = None
        if training and drops(self.recurrent_dropout):
            masks = self.get_recurrent_dropout_mask(h_tm1)
        x_z, x_r, x_h = ops.split(projected, 3, axis=1)
        units = self.units
        if self.reset_after:
            inner = masked_matmul(h_tm1, self.recurrent_kernel, masks, 3)
            if self.use_bias:
                inner = ops.add(inner, self.bias[1])
            h_z, h_r, h_h = ops.split(inner, 3, axis=1)
        else:
            zr_masks = masks[:2] if isinstance(masks, list) else masks
            inner = masked_matmul(
                h_tm1, self.recurrent_kernel[:, : 2 * units], zr_masks, 2
            )
            h_z, h_r = ops.split(inner, 2, axis=1)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        if self.reset_after:
            recurrent_h = r * h_h
        else:
            h_mask = masks[2] if isinstance(masks, list) else masks
            h_in = h_tm1 if h_mask is None else h_tm1 * h_mask
            recurrent_h = matmul(r * h_in, self.recurrent_kernel[:, 2 * units :])
        h_tilde = self.activation(x_h + recurrent_h)
        h = z * h_tm1 + (1 - z) * h_tilde
        return h, ([h] if nested else h)

    def call(self, inputs, states, training=False):
        projected = self.project_inputs(inputs, training=training)
        return self.recurrent_step(projected, states, training=training)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = common_cell_config(self)
        config["reset_after"] = self.reset_after
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_lstm")
class GRU(RecurrentLayer):
    """Gated Recurrent Unit layer: a drop-in for `keras.layers.GRU`.

    Same constructor arguments, defaults, call signature, weights and outputs as
    `keras.layers.GRU`; the gates are computed by `keras_lstm.GRUCell` (see its
    docstring for the equations), one timestep at a time in Keras' loop, or by
    a faster engine that computes the same (see `use_cudnn` in
    `keras_lstm.LSTM`; PyTorch's fused kernel needs `reset_after=True`).

    Args:
        units, activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, kernel_regularizer,
        recurrent_regularizer, bias_regularizer, kernel_constraint,
        recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
        reset_after, seed: As in `keras_lstm.GRUCell`.
        activity_regularizer, return_sequences, return_state, go_backwards,
        stateful, unroll, use_cudnn, zero_output_for_mask: As in
        `keras_lstm.LSTM`.

    Call arguments:
        sequences: A 3D tensor `(batch, timesteps, features)`.
        initial_state: Optional `h_0` `(batch, units)` (or a list holding it).
        mask: Optional boolean `(batch, timesteps)`; a masked step leaves `h`
            unchanged (see `keras_lstm.LSTM`).
        training: Whether dropout is active.

    Example:

    >>> import numpy as np, keras_lstm
    >>> gru = keras_lstm.GRU(4, return_state=True)
    >>> out, h = gru(np.ones((32, 10, 8), "float32"))
    >>> tuple(out.shape), tuple(h.shape)
    ((32, 4), (32, 4))

    Reference:
        Cho et al., 2014; Chung et al., "Empirical Evaluation of Gated Recurrent
        Neural Networks on Sequence Modeling", 2014.
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
        reset_after=True,
        use_cudnn="auto",
        **kwargs,
    ):
        cell = GRUCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
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
            reset_after=reset_after,
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="gru_cell",
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

    reset_after = cell_property("reset_after")

    def _fused_kernel(self):
        cell = self.cell

        def run(sequences, initial_state, mask):
            return keras_backend.gru(
                sequences,
                initial_state[0],
                mask,
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
                reset_after=cell.reset_after,
            )

        return run
