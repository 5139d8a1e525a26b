"""Our LSTM/GRU equal keras.layers.LSTM/GRU (float32, atol 1e-5), weights copied."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    assert_all_close,
    copy_weights,
    pair,
    randomize,
    share_random_weights,
)

BATCH, STEPS, FEATURES, UNITS = 3, 7, 5, 4

CONFIGS = [
    # (kind, layer kwargs)
    ("lstm", {}),
    ("lstm", {"return_sequences": True}),
    ("lstm", {"return_state": True}),
    ("lstm", {"return_sequences": True, "return_state": True}),
    ("lstm", {"go_backwards": True, "return_sequences": True, "return_state": True}),
    ("lstm", {"unroll": True, "return_sequences": True, "return_state": True}),
    ("lstm", {"use_bias": False, "return_state": True}),
    ("lstm", {"unit_forget_bias": False, "return_state": True}),
    ("lstm", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("lstm", {"implementation": 1, "return_sequences": True}),
    ("gru", {}),
    ("gru", {"return_sequences": True, "return_state": True}),
    ("gru", {"go_backwards": True, "return_sequences": True, "return_state": True}),
    ("gru", {"unroll": True, "return_sequences": True}),
    ("gru", {"use_bias": False, "return_state": True}),
    ("gru", {"reset_after": False, "return_sequences": True, "return_state": True}),
    ("gru", {"reset_after": False, "use_bias": False, "return_state": True}),
    ("gru", {"reset_after": False, "go_backwards": True, "unroll": True}),
    ("gru", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("gru", {"implementation": 1, "return_sequences": True}),
]


def inputs(seed=0, batch=BATCH, steps=STEPS):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, steps, FEATURES)).astype("float32")


def ids(config):
    kind, kwargs = config
    return kind + "-" + ("-".join(f"{k}={v}" for k, v in kwargs.items()) or "default")


@pytest.mark.parametrize("kind,kwargs", CONFIGS, ids=[ids(c) for c in CONFIGS])
def test_same_outputs_and_states(kind, kwargs):
    ours, builtin = pair(kind, UNITS, **kwargs)
    x = inputs()
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x), builtin(x))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weights_move_from_builtin_to_ours(kind):
    """set_weights works in the other direction too (built-in initializers)."""
    ours, builtin = pair(kind, UNITS, return_sequences=True)
    x = inputs()
    expected = builtin(x)
    ours.build(x.shape)
    copy_weights(builtin, ours)
    assert_all_close(ours(x), expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_initial_state(kind):
    ours, builtin = pair(kind, UNITS, return_sequences=True, return_state=True)
    x = inputs()
    rng = np.random.default_rng(1)
    count = 2 if kind == "lstm" else 1
    states = [
        rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(count)
    ]
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x, initial_state=states), builtin(x, initial_state=states))
    # The initial state matters: without it the result differs.
    with pytest.raises(AssertionError):
        assert_all_close(ours(x, initial_state=states), ours(x))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stateful_two_batches_then_reset(kind):
    ours, builtin = pair(kind, UNITS, stateful=True, return_sequences=True)
    first, second = inputs(0), inputs(1)
    ours.build(first.shape)
    builtin.build(first.shape)
    randomize(ours)
    copy_weights(ours, builtin)
    for x in (first, second):
        assert_all_close(ours(x), builtin(x))
    assert_all_close(ours.states, builtin.states)
    carried = keras.ops.convert_to_numpy(ours(first))
    ours.reset_state()
    builtin.reset_state()
    fresh = ours(first)
    assert_all_close(fresh, builtin(first))
    # After reset the layer starts from zeros again, not from the carried state.
    assert not np.allclose(carried, keras.ops.convert_to_numpy(fresh), atol=1e-3)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_bidirectional(kind, merge_mode):
    ours, builtin = pair(kind, UNITS, return_sequences=True, return_state=True)
    ours = keras.layers.Bidirectional(ours, merge_mode=merge_mode)
    builtin = keras.layers.Bidirectional(builtin, merge_mode=merge_mode)
    x = inputs()
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x), builtin(x))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stacked(kind):
    def model(layers):
        return keras.Sequential(
            [
                keras.Input((STEPS, FEATURES)),
                layers[kind](6, return_sequences=True),
                layers[kind](UNITS, return_sequences=True),
                layers[kind](3),
            ]
        )

    from tests.layers.helpers import BUILTIN, OURS

    ours, builtin = model(OURS), model(BUILTIN)
    randomize(ours)
    copy_weights(ours, builtin)
    x = inputs()
    assert_all_close(ours(x), builtin(x))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_use_cudnn_true_behaves_like_builtin(kind):
    """use_cudnn=True delegates to the backend kernel, or raises like Keras."""
    ours, builtin = pair(kind, UNITS, use_cudnn=True)
    x = inputs()
    try:
        expected = builtin(x)
    except ValueError:
        with pytest.raises(ValueError, match="use_cudnn"):
            ours(x)
        return
    ours.build(x.shape)
    copy_weights(builtin, ours)
    assert_all_close(ours(x), expected)
