"""keras_lstm.replace_builtins: a model's keras.layers.LSTM / GRU swapped for
ours gives the same outputs as the original built-in model (the reference)."""

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm.twins import builtin_rnns
from tests.layers.helpers import ATOL, numpy, randomize

STEPS, VOCAB = 7, 30


def builtin_model():
    """Masked ids -> Bidirectional(LSTM) and an LSTM with options; float
    features -> a nested Sequential with a GRU; concatenated -> Dense:
    built-ins at every depth."""
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 5, mask_zero=True)(ids)
    both = keras.layers.Bidirectional(keras.layers.LSTM(4))(x)
    back = keras.layers.LSTM(
        3, go_backwards=True, unit_forget_bias=False, recurrent_dropout=0.1
    )(x)
    features = keras.Input((STEPS, 2))
    inner = keras.Sequential([keras.Input((STEPS, 2)), keras.layers.GRU(3)])
    x = keras.layers.Concatenate()([both, back, inner(features)])
    model = keras.Model([ids, features], keras.layers.Dense(2)(x))
    randomize(model)
    return model


def inputs():
    rng = np.random.default_rng(1)
    rows = rng.integers(1, VOCAB, size=(4, STEPS)).astype("int32")
    rows[1, 4:] = 0  # right padding
    rows[2, :3] = 0  # left padding
    rows[3, 2] = 0  # a hole
    return [rows, rng.standard_normal((4, STEPS, 2)).astype("float32")]


def test_the_copy_has_our_layers_and_computes_what_the_builtins_do():
    model = builtin_model()
    assert len(builtin_rnns(model)) == 4  # two directions, the GRU, the LSTM
    copy = keras_lstm.replace_builtins(model)
    assert type(copy) is type(model) and not builtin_rnns(copy)
    ours = [
        layer
        for layer in copy._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (keras_lstm.LSTM, keras_lstm.GRU))
    ]
    assert len(ours) == 4
    (back,) = [x for x in copy.layers if isinstance(x, keras_lstm.LSTM)]
    assert (back.go_backwards, back.unit_forget_bias, back.recurrent_dropout) == (
        True,
        False,
        0.1,
    )
    x = inputs()
    np.testing.assert_allclose(numpy(copy(x))[0], numpy(model(x))[0], atol=ATOL, rtol=0)
    assert len(builtin_rnns(model)) == 4  # the original is left as it was


def test_stateful_layers_keep_their_current_states():
    """States are variables but not weights: the copy starts where the
    original stands, also inside a Bidirectional, and stays equal."""
    x = np.random.default_rng(0).normal(size=(3, STEPS, 5)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(3, STEPS, 5)),
            keras.layers.Bidirectional(
                keras.layers.LSTM(3, stateful=True, return_sequences=True)
            ),
            keras.layers.GRU(2, stateful=True),
        ]
    )
    randomize(model)
    model(x)  # the states move off zero
    copy = keras_lstm.replace_builtins(model)
    np.testing.assert_allclose(numpy(copy(x)), numpy(model(x)), atol=ATOL, rtol=0)
    # Without the states, the copy would start from zeros: the check can fail.
    copy.layers[-1].reset_state()
    assert np.abs(numpy(copy(x))[0] - numpy(model(x))[0]).max() > 1e-3


def test_a_model_without_builtins_is_returned_as_is():
    x = keras.Input((STEPS, 3))
    model = keras.Model(x, keras_lstm.LSTM(2)(x))
    assert keras_lstm.replace_builtins(model) is model


def test_a_mixed_precision_policy_is_kept():
    x = keras.Input((STEPS, 3))
    model = keras.Model(x, keras.layers.LSTM(2, dtype="mixed_bfloat16")(x))
    copy = keras_lstm.replace_builtins(model)
    assert isinstance(copy.layers[-1], keras_lstm.LSTM)
    assert copy.layers[-1].dtype_policy.name == "mixed_bfloat16"


def test_models_it_cannot_rebuild_are_named():
    class Subclassed(keras.Model):
        def __init__(self, units):
            super().__init__()
            self.rnn = keras.layers.LSTM(units)

        def call(self, x):
            return self.rnn(x)

    model = Subclassed(2)
    with pytest.raises(ValueError, match="is not built"):
        keras_lstm.replace_builtins(model)
    model(np.zeros((1, STEPS, 3), "float32"))
    with pytest.raises(ValueError, match=r"'subclassed.*cannot be rebuilt"):
        keras_lstm.replace_builtins(model)
    with pytest.raises(ValueError, match="must be a keras.Model"):
        keras_lstm.replace_builtins(keras.layers.LSTM(2))
