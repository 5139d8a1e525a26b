"""Backpropagation through time: gradients w.r.t. the inputs and every weight equal
the built-in's (float32) and central finite differences on a float64 copy."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    ATOL,
    BACKEND,
    compiled,
    float64_enabled,
    pair,
    randomize,
    share_random_weights,
    value_and_grad,
)

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 3
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 1, 0]], bool)  # a hole and right padding

CONFIGS = [
    ("lstm", {}, None),
    ("lstm", {}, MASK),
    ("lstm", {"go_backwards": True, "unit_forget_bias": False}, MASK),
    ("gru", {}, None),
    ("gru", {}, MASK),
    ("gru", {"reset_after": False}, MASK),
]
IDS = [
    f"{k}-{'-'.join(o) or 'default'}-{'mask' if m is not None else 'nomask'}"
    for k, o, m in CONFIGS
]


def weighted_sum_loss(layer, x, mask):
    """Returns f(x, *weights) = sum_k <output_k, probe_k> over all outputs.

    Random probes make every element of every output (sequence and final states)
    contribute with its own weight, so no gradient entry can hide.
    """
    if mask is not None:
        # keras.layers.LSTM on torch needs a tensor mask under stateless_call.
        mask = keras.ops.convert_to_tensor(mask)
    outputs = layer(x, mask=mask)
    rng = np.random.default_rng(7)
    probes = [rng.standard_normal(o.shape).astype(x.dtype) for o in outputs]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(x, *weights):
        outs, _ = layer.stateless_call(list(weights), non_trainable, x, mask=mask)
        return sum(
            keras.ops.sum(o * keras.ops.convert_to_tensor(p))
            for o, p in zip(outs, probes)
        )

    return loss


def trainable_arrays(layer):
    return [keras.ops.convert_to_numpy(v.value) for v in layer.trainable_variables]


def make_inputs(dtype):
    return (
        np.random.default_rng(3).standard_normal((BATCH, STEPS, FEATURES)).astype(dtype)
    )


@pytest.mark.parametrize("kind,options,mask", CONFIGS, ids=IDS)
def test_gradients_equal_builtin(kind, options, mask):
    ours, builtin = pair(
        kind, UNITS, return_sequences=True, return_state=True, **options
    )
    x = make_inputs("float32")
    share_random_weights(ours, builtin, x.shape)
    arrays = [x] + trainable_arrays(ours)
    value, grads = value_and_grad(weighted_sum_loss(ours, x, mask), arrays)
    ref_value, ref_grads = value_and_grad(weighted_sum_loss(builtin, x, mask), arrays)
    assert value == pytest.approx(ref_value, abs=ATOL)
    assert len(grads) == 1 + len(ours.trainable_variables)
    for name, g, r in zip(
        ["inputs"] + [v.path for v in ours.trainable_variables], grads, ref_grads
    ):
        np.testing.assert_allclose(g, r, rtol=0, atol=ATOL, err_msg=name)
        assert np.abs(g).max() > 0, f"gradient of {name} is all zeros"


@pytest.mark.parametrize("kind,options,mask", CONFIGS, ids=IDS)
def test_gradients_equal_finite_differences_float64(kind, options, mask):
    # On torch too: keras.ops.matmul computes float64 in float32 there, but our
    # cells multiply through `keras_lstm.recurrent.matmul`, which stays float64.
    with float64_enabled():
        check_finite_differences(kind, options, mask)


def float64_tanh(x):
    """tanh through sigmoid: keeps float64 on every backend."""
    return 2.0 * keras.ops.sigmoid(2.0 * x) - 1.0


def check_finite_differences(kind, options, mask):
    if BACKEND == "jax":
        # Keras on JAX computes `ops.tanh` of a float64 tensor in float32
        # (BIT64_TO_BIT32_DTYPE in keras/src/backend/common/dtypes.py), which
        # would put float32 rounding into the finite differences. The same
        # function, written through sigmoid, stays in float64.
        options = {**options, "activation": float64_tanh}
    layer, _ = pair(
        kind,
        UNITS,
        return_sequences=True,
        return_state=True,
        dtype="float64",
        **options,
    )
    x = make_inputs("float64")
    layer.build(x.shape)
    randomize(layer)
    loss = weighted_sum_loss(layer, x, mask)
    arrays = [x] + trainable_arrays(layer)
    assert all(a.dtype == np.float64 for a in arrays)
    _, grads = value_and_grad(loss, arrays)

    f = compiled(loss)
    eps = 1e-5
    for index, (array, grad) in enumerate(zip(arrays, grads)):
        numeric = np.zeros_like(array)
        for j in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][j] = array[j] + eps
            plus = float(keras.ops.convert_to_numpy(f(*shifted)))
            shifted[index][j] = array[j] - eps
            minus = float(keras.ops.convert_to_numpy(f(*shifted)))
            numeric[j] = (plus - minus) / (2 * eps)
        error = np.linalg.norm(numeric - grad) / np.linalg.norm(numeric)
        assert error <= 1e-6, f"array {index}: relative error {error:.2e}"
