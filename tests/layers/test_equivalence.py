"""Our LSTM/GRU equal keras.layers.LSTM/GRU (float32, atol 1e-5), weights copied."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    BUILTIN,
    OURS,
    assert_all_close,
    copy_weights,
    float64_enabled,
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
@pytest.mark.parametrize("training", [False, True], ids=["infer", "train"])
def test_integer_sequences(kind, training):
    """int32 features (e.g. 0/1 flags) are promoted to the compute dtype as by the
    built-ins, on every engine (torch's fused kernels and TensorFlow's BPTT loop
    take floats only)."""
    ours, builtin = pair(kind, UNITS, return_sequences=True, return_state=True)
    x = np.random.default_rng(0).integers(0, 2, (BATCH, STEPS, FEATURES))
    x = x.astype("int32")
    share_random_weights(ours, builtin, x.shape)
    expected = builtin(x, training=training)
    assert_all_close(ours(x, training=training), expected)
    assert_all_close(ours(x.astype("float32"), training=training), expected)


FLOAT64_CONFIGS = [
    ("lstm", {"activation": "relu"}),
    ("lstm", {"recurrent_activation": "hard_sigmoid"}),
    ("gru", {"activation": "relu"}),
    ("gru", {"recurrent_activation": "hard_sigmoid"}),
]


@pytest.mark.parametrize(
    "kind,kwargs", FLOAT64_CONFIGS, ids=[ids(c) for c in FLOAT64_CONFIGS]
)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "allvalid"])
def test_float64_is_float64_precise(kind, kwargs, masked):
    """dtype="float64" with activations no fused kernel has (our keras.ops cell
    runs): as exact as the built-in, whose unmasked torch loop uses
    torch.matmul. keras.ops.matmul on torch computes float64 in float32 (error
    ~1e-7 here). The all-True mask sends ours through Keras' masked loop."""
    with float64_enabled():
        ours, builtin = pair(
            kind, UNITS, return_sequences=True, dtype="float64", **kwargs
        )
        x = 2 * np.random.default_rng(1).standard_normal((BATCH, 10, FEATURES))
        share_random_weights(ours, builtin, x.shape)
        mask = np.ones(x.shape[:2], bool) if masked else None
        assert_all_close(ours(x, mask=mask), builtin(x), atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weights_move_from_builtin_to_ours(kind):
    """set_weights works in the other direction too (built-in initializers)."""
    ours, builtin = pair(kind, UNITS, return_sequences=True)
    x = inputs()
    expected = builtin(x)
    ours.build(x.shape)
    copy_weights(builtin, ours)
    assert_all_close(ours(x), expected)


INIT_CONFIGS = [
    ("lstm", {}),
    ("lstm", {"unit_forget_bias": False}),
    ("lstm", {"use_bias": False}),
    ("gru", {}),
    ("gru", {"reset_after": False}),
    ("gru", {"bias_initializer": "ones"}),
]


@pytest.mark.parametrize(
    "kind,kwargs", INIT_CONFIGS, ids=[ids(c) for c in INIT_CONFIGS]
)
def test_initial_weights_equal_builtins(kind, kwargs):
    """The initializers, not only the maths: from the same global seed, a new
    layer starts with the built-in's weights (glorot_uniform kernel, orthogonal
    recurrent kernel, zero bias with the forget gate's set to 1 under
    unit_forget_bias), drawn in the same order."""
    layers = []
    for make in (OURS[kind], BUILTIN[kind]):
        keras.utils.set_random_seed(7)  # unseeded initializers draw theirs here
        layers.append(make(UNITS, **kwargs))
        layers[-1].build((BATCH, STEPS, FEATURES))
    ours, builtin = layers
    expected = builtin.get_weights()
    assert len(ours.get_weights()) == len(expected)
    for got, want in zip(ours.get_weights(), expected):
        np.testing.assert_array_equal(got, want)
    if (
        kind == "lstm"
        and kwargs.get("unit_forget_bias", True)
        and "use_bias" not in kwargs
    ):
        # An independent look at the bias: 1 for the forget gate (i, f, c, o).
        bias = np.zeros(4 * UNITS, "float32")
        bias[UNITS : 2 * UNITS] = 1.0
        np.testing.assert_array_equal(ours.get_weights()[-1], bias)


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
