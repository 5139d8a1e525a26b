"""Masking gives the built-ins' outputs and states: padding on either side, holes,
fully masked rows, with Embedding(mask_zero=True) or an explicit mask."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    BUILTIN,
    OURS,
    assert_all_close,
    copy_weights,
    pair,
    randomize,
    share_random_weights,
)

STEPS, FEATURES, UNITS, VOCAB = 6, 5, 4, 11

# 1 = valid step, 0 = padding. Rows: full, right-padded, left-padded, a hole in the
# middle, a single valid step, and a fully masked row.
MASK = np.array(
    [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 1],
        [1, 1, 0, 0, 1, 1],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=bool,
)


def tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=MASK.shape)
    return np.where(MASK, ids, 0).astype("int32")


OPTIONS = [
    {"return_sequences": True, "return_state": True},
    {"return_sequences": True, "return_state": True, "zero_output_for_mask": True},
    {"return_state": True},
    {"return_sequences": True, "go_backwards": True, "return_state": True},
    {"return_sequences": True, "unroll": True, "zero_output_for_mask": True},
]


def embedding_model(layers, kind, options):
    inp = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)(inp)
    out = layers[kind](UNITS, **options)(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o))
def test_embedding_mask_zero(kind, options):
    ours = embedding_model(OURS, kind, options)
    builtin = embedding_model(BUILTIN, kind, options)
    randomize(ours)
    copy_weights(ours, builtin)
    x = tokens()
    assert_all_close(ours(x), builtin(x))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("options", OPTIONS[:2], ids=lambda o: "-".join(o))
def test_explicit_mask(kind, options):
    ours, builtin = pair(kind, UNITS, **options)
    x = np.random.default_rng(1).standard_normal((len(MASK), STEPS, FEATURES))
    x = x.astype("float32")
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x, mask=MASK), builtin(x, mask=MASK))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_mask_with_trailing_unit_axis(kind):
    """A (batch, timesteps, 1) mask, the shape Keras' loop uses inside, is
    accepted as by the built-ins and means the same as (batch, timesteps)."""
    ours, builtin = pair(kind, UNITS, **OPTIONS[0])
    x = np.random.default_rng(1).standard_normal((len(MASK), STEPS, FEATURES))
    x = x.astype("float32")
    share_random_weights(ours, builtin, x.shape)
    expected = builtin(x, mask=MASK)
    assert_all_close(builtin(x, mask=MASK[..., None]), expected)
    assert_all_close(ours(x, mask=MASK[..., None]), expected)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masked_steps_do_not_change_states(kind):
    """Independent of the built-ins: a padded row ends in the same state as the
    same row without padding; a fully masked row keeps its initial (zero) state."""
    layer = OURS[kind](UNITS, return_state=True)
    x = np.random.default_rng(2).standard_normal((1, 4, FEATURES)).astype("float32")
    pad = np.zeros((1, 3, FEATURES), "float32")
    padded = np.concatenate([pad, x, pad], axis=1)
    mask = np.array([[0, 0, 0, 1, 1, 1, 1, 0, 0, 0]], bool)
    assert_all_close(layer(padded, mask=mask), layer(x))
    states = layer(padded, mask=np.zeros_like(mask))[1:]
    for state in states:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(state), 0.0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_with_mask(kind):
    def model(layers):
        inp = keras.Input((STEPS,), dtype="int32")
        x = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)(inp)
        out = keras.layers.Bidirectional(
            layers[kind](UNITS, return_sequences=True, return_state=True)
        )(x)
        return keras.Model(inp, out)

    ours, builtin = model(OURS), model(BUILTIN)
    randomize(ours)
    copy_weights(ours, builtin)
    x = tokens()
    assert_all_close(ours(x), builtin(x))
