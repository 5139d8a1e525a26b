"""The optional hoisted input projection (`hoist_input_projection = True`) computes
the same results as the per-step cell and as the built-ins."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    OURS,
    assert_all_close,
    pair,
    randomize,
    share_random_weights,
)

MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 1]], bool)
OPTIONS = [
    {},
    {"go_backwards": True},
    {"unroll": True, "zero_output_for_mask": True},
    {"dropout": 0.3, "seed": 4},
    {"dropout": 0.3, "recurrent_dropout": 0.2, "seed": 4},
]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "default")
def test_hoisted_equals_builtin(kind, options):
    extra = [{}] if kind == "lstm" else [{}, {"reset_after": False}]
    for more in extra:
        ours, builtin = pair(
            kind, 4, return_sequences=True, return_state=True, **options, **more
        )
        ours.hoist_input_projection = True
        x = np.random.default_rng(0).standard_normal((3, 6, 5)).astype("float32")
        share_random_weights(ours, builtin, x.shape)
        training = "dropout" in options
        assert_all_close(
            ours(x, mask=MASK, training=training),
            builtin(x, mask=MASK, training=training),
        )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_project_inputs_is_the_input_half_of_the_step(kind):
    """One step of `call` == `recurrent_step(project_inputs(x))`, by hand."""
    layer = OURS[kind](4)
    x = np.random.default_rng(1).standard_normal((2, 3, 5)).astype("float32")
    layer(x)
    randomize(layer)
    cell = layer.cell
    kernel, _, bias = layer.get_weights()
    h = np.random.default_rng(2).standard_normal((2, 4)).astype("float32")
    states = [h, h] if kind == "lstm" else [h]
    states = [keras.ops.convert_to_tensor(s) for s in states]
    projected = cell.project_inputs(keras.ops.convert_to_tensor(x))
    expected = x @ kernel + (bias if kind == "lstm" else bias[0])
    assert_all_close(projected, expected)
    assert_all_close(
        cell.recurrent_step(projected[:, 0], states),
        cell.call(keras.ops.convert_to_tensor(x[:, 0]), states),
    )
