"""Training with our layer follows the built-in step for step; dropout acts only
in training."""

import keras
import numpy as np
import pytest

from tests.layers.helpers import (
    BUILTIN,
    OURS,
    assert_all_close,
    copy_weights,
    numpy,
    randomize,
    share_random_weights,
)

STEPS, VOCAB, FEATURES, UNITS, BATCH = 8, 20, 6, 8, 16


def sentiment_like_data(seed=0, batches=4):
    """Token ids with right padding (masked) and a learnable binary label."""
    rng = np.random.default_rng(seed)
    n = BATCH * batches
    ids = rng.integers(1, VOCAB, size=(n, STEPS))
    lengths = rng.integers(2, STEPS + 1, size=n)
    ids[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0
    labels = (ids % 2 == 0).sum(axis=1) > (lengths / 2)
    return ids.astype("int32"), labels.astype("float32")[:, None]


def model(layers, kind, **layer_kwargs):
    inp = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, FEATURES, mask_zero=True)(inp)
    x = layers[kind](UNITS, **layer_kwargs)(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_twenty_steps_follow_the_builtin(kind):
    ours, builtin = model(OURS, kind), model(BUILTIN, kind)
    randomize(ours, scale=0.3)
    copy_weights(ours, builtin)
    for m in (ours, builtin):
        m.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ids, labels = sentiment_like_data()
    losses = {"ours": [], "builtin": []}
    for step in range(20):
        batch = slice((step % 4) * BATCH, (step % 4 + 1) * BATCH)
        losses["ours"].append(float(ours.train_on_batch(ids[batch], labels[batch])))
        losses["builtin"].append(
            float(builtin.train_on_batch(ids[batch], labels[batch]))
        )
    np.testing.assert_allclose(losses["ours"], losses["builtin"], rtol=0, atol=1e-4)
    # The models really trained (so equal curves are not two flat lines).
    assert losses["ours"][-1] < losses["ours"][0] - 0.05
    assert_all_close(ours.get_weights(), builtin.get_weights(), atol=1e-4)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_only_in_training(kind):
    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    layer = OURS[kind](UNITS, dropout=0.4, recurrent_dropout=0.4, seed=3)
    plain = OURS[kind](UNITS)
    layer.build(x.shape)
    plain.build(x.shape)
    randomize(layer)
    copy_weights(layer, plain)
    inference = numpy(layer(x, training=False))[0]
    np.testing.assert_array_equal(inference, numpy(plain(x))[0])
    trained_a = numpy(layer(x, training=True))[0]
    trained_b = numpy(layer(x, training=True))[0]
    assert np.abs(trained_a - inference).max() > 1e-3
    assert np.abs(trained_a - trained_b).max() > 1e-3  # fresh masks per call


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize(
    "rates", [(0.3, 0.0), (0.0, 0.3), (0.3, 0.3)], ids=["input", "recurrent", "both"]
)
def test_dropout_masks_match_builtin_with_same_seed(kind, rates):
    """Same seed, same masks: our training-mode outputs equal the built-in's."""
    dropout, recurrent_dropout = rates
    kwargs = dict(
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        seed=11,
        return_sequences=True,
    )
    ours, builtin = OURS[kind](UNITS, **kwargs), BUILTIN[kind](UNITS, **kwargs)
    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x, training=True), builtin(x, training=True))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("implementation", [0, 3])
def test_any_integer_implementation_runs_as_the_builtin(kind, implementation):
    """The built-ins run every implementation but 1 as 2 and keep the value in
    their cells (0 comes from old code); ours did not accept 0 or 3. Dropout in
    training shows the mode: 1 draws a mask per gate, 2 one mask."""
    kwargs = dict(implementation=implementation, dropout=0.3, seed=11)
    ours, builtin = OURS[kind](UNITS, **kwargs), BUILTIN[kind](UNITS, **kwargs)
    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    share_random_weights(ours, builtin, x.shape)
    assert_all_close(ours(x, training=True), builtin(x, training=True))
    assert ours.cell.implementation == builtin.cell.implementation == implementation
    with pytest.raises(ValueError, match="`implementation` must be an integer"):
        OURS[kind](UNITS, implementation="fast")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
def test_rate_one_drops_nothing_like_builtin_cell(kind, name):
    """A rate of 1.0 (what keras.layers.LSTM saves for 1.0 or more) is accepted,
    also from the built-in's config, and applies no dropout, as the built-in's
    cell does (`0.0 < self.dropout < 1.0`). An all-True mask makes the built-in
    run its cell on every backend: without a mask its fused torch (and jax GRU)
    paths multiply the inputs by a rate-1.0 dropout mask, i.e. by zero."""
    kwargs = {name: 1.0, "seed": 5, "return_sequences": True}
    ours, builtin = OURS[kind](UNITS, **kwargs), BUILTIN[kind](UNITS, **kwargs)
    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    share_random_weights(ours, builtin, x.shape)
    everything = np.ones((4, STEPS), bool)
    expected = builtin(x, mask=everything, training=True)
    assert_all_close(ours(x, training=True), expected)
    assert_all_close(ours(x, mask=everything, training=True), expected)
    assert_all_close(ours(x, training=True), ours(x, training=False))

    restored = OURS[kind].from_config(builtin.get_config())
    assert getattr(restored, name) == 1.0
    assert restored.get_config()[name] == builtin.get_config()[name]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rate_one_with_use_cudnn_true_is_the_builtin_fused_path(kind):
    """use_cudnn=True hands the loop to the backend's fused kernel exactly as
    the built-in layer does, input dropout at rate 1.0 (zeros) included."""
    kwargs = {"dropout": 1.0, "seed": 5, "return_sequences": True}
    ours = OURS[kind](UNITS, use_cudnn=True, **kwargs)
    builtin = BUILTIN[kind](UNITS, use_cudnn=True, **kwargs)
    x = np.random.default_rng(0).standard_normal((4, STEPS, FEATURES)).astype("float32")
    share_random_weights(ours, builtin, x.shape)
    try:
        expected = builtin(x, training=True)
    except Exception:  # noqa: BLE001 - no fused kernel here (a TF or jax CPU)
        with pytest.raises(ValueError, match="no fused kernel"):
            ours(x, training=True)
        return
    assert_all_close(ours(x, training=True), expected)
