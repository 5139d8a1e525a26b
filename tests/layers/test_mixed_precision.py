"""Mixed precision: variables stay float32, outputs are float16 / bfloat16 and
close to float32.

Tolerance: max abs difference of the RNN outputs (values in (-1, 1)) after two
stacked layers of 20 steps with random weights. float16 keeps 11 significant bits
and bfloat16 8. Measured on tensorflow, jax and torch (CPU, 2026-11-27; printed by
`pytest -s`): at most 1.0e-3 (float16) and 8.2e-3 (bfloat16). We allow 5e-3 and
3e-2, a margin of about 4x for other CPUs and GPUs.
"""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    ATOL,
    OURS,
    numpy,
    pair,
    randomize,
    share_random_weights,
)

TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}
STEPS, FEATURES, UNITS = 20, 8, 16


def build(kind, policy):
    keras.config.set_dtype_policy(policy)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            OURS[kind](UNITS, return_sequences=True),
            OURS[kind](UNITS),
            keras.layers.Dense(1, dtype="float32"),
        ]
    )
    keras.config.set_dtype_policy("float32")
    return model


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(kind, policy):
    reference = build(kind, "float32")
    randomize(reference, scale=0.3)
    mixed = build(kind, policy)
    mixed.set_weights(reference.get_weights())
    assert all(v.dtype == "float32" for v in mixed.weights)

    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    rnn = keras.Model(mixed.inputs[0], mixed.layers[1].output)
    ref_rnn = keras.Model(reference.inputs[0], reference.layers[1].output)
    low = rnn(x)
    assert keras.backend.standardize_dtype(low.dtype) == policy.split("_")[1]
    error = np.abs(numpy(low)[0].astype("float32") - numpy(ref_rnn(x))[0]).max()
    print(f"{kind} {policy}: max abs diff {error:.2e}")
    assert error <= TOLERANCE[policy]

    # A training step runs and keeps the variables float32 and finite.
    mixed.compile(optimizer="adam", loss="mse")
    loss = mixed.train_on_batch(x, np.ones((4, 1), "float32"))
    assert np.isfinite(loss)
    assert all(v.dtype == "float32" for v in mixed.weights)
    assert all(np.isfinite(w).all() for w in mixed.get_weights())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tensor"])
def test_stateless_call(kind, policy, as_tensor):
    """`layer.stateless_call` skips `Layer.__call__` (its input conversion and
    autocast scope); it still computes in the compute dtype and takes NumPy
    input, as the built-in LSTM does. Reference: the built-in's `__call__`
    (its GRU's own `stateless_call` fails under mixed precision on jax)."""
    ours, builtin = pair(kind, 4, return_sequences=True, dtype=policy)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    share_random_weights(ours, builtin, x.shape)
    trainable = [v.value for v in ours.trainable_variables]
    non_trainable = [v.value for v in ours.non_trainable_variables]
    inputs = keras.ops.convert_to_tensor(x) if as_tensor else x
    out, _ = ours.stateless_call(trainable, non_trainable, inputs)
    compute_dtype = policy.split("_")[-1]
    assert keras.backend.standardize_dtype(out.dtype) == compute_dtype
    expected = numpy(builtin(x))[0].astype("float32")
    error = np.abs(numpy(out)[0].astype("float32") - expected).max()
    assert error <= TOLERANCE.get(policy, ATOL)
