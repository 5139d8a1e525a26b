"""record_gates replays the layer exactly and matches a NumPy LSTM written from
the equations."""

import numpy as np
import pytest

import keras_lstm
from tests.layers.helpers import numpy, randomize

BATCH, STEPS, FEATURES, UNITS = 3, 6, 5, 4
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1]], bool)


def built_lstm(**kwargs):
    layer = keras_lstm.LSTM(UNITS, return_sequences=True, return_state=True, **kwargs)
    layer.build((BATCH, STEPS, FEATURES))
    randomize(layer)
    return layer


def inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm(x, kernel, recurrent_kernel, bias):
    """The seed article's equations, in NumPy, gate order i, f, c, o."""
    h = np.zeros((x.shape[0], UNITS))
    c = np.zeros((x.shape[0], UNITS))
    out = {name: [] for name in keras_lstm.diagnostics.GATES}
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
        i, f, c_tilde, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_c), sigmoid(z_o)
        c = f * c + i * c_tilde
        h = o * np.tanh(c)
        for name, value in zip(out, (i, f, c_tilde, o, c, h)):
            out[name].append(value)
    return {name: np.stack(v, axis=1) for name, v in out.items()}


def test_gates_match_numpy_equations():
    layer = built_lstm()
    x = inputs()
    gates = keras_lstm.record_gates(layer, x)
    expected = numpy_lstm(x.astype("float64"), *layer.get_weights())
    for name in expected:
        assert gates[name].shape == (BATCH, STEPS, UNITS)
        np.testing.assert_allclose(gates[name], expected[name], atol=1e-5, err_msg=name)
    # Sanity of the gates themselves: i, f, o in (0, 1); h = o * tanh(C).
    for name in ("i", "f", "o"):
        assert ((gates[name] > 0) & (gates[name] < 1)).all()
    np.testing.assert_allclose(gates["h"], gates["o"] * np.tanh(gates["c"]), atol=1e-6)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask", [None, MASK], ids=["nomask", "mask"])
def test_recorded_states_reproduce_the_layer(go_backwards, mask):
    layer = built_lstm(go_backwards=go_backwards)
    x = inputs()
    sequence, h_last, c_last = numpy(layer(x, mask=mask))
    gates = keras_lstm.record_gates(layer, x, mask=mask)
    h = gates["h"][:, ::-1] if go_backwards else gates["h"]
    np.testing.assert_allclose(h, sequence, atol=1e-6)
    last = 0 if go_backwards else -1
    np.testing.assert_allclose(gates["h"][:, last], h_last, atol=1e-6)
    np.testing.assert_allclose(gates["c"][:, last], c_last, atol=1e-6)
    if mask is not None:
        assert np.isnan(gates["i"][~mask]).all()
        assert not np.isnan(gates["i"][mask]).any()


def test_initial_state_is_used():
    layer = built_lstm()
    x = inputs()
    rng = np.random.default_rng(3)
    state = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(2)]
    sequence = numpy(layer(x, initial_state=state))[0]
    gates = keras_lstm.record_gates(layer, x, initial_state=state)
    np.testing.assert_allclose(gates["h"], sequence, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="keras_lstm.LSTM.*GRU"):
        gru = keras_lstm.GRU(UNITS)
        gru.build((BATCH, STEPS, FEATURES))
        keras_lstm.record_gates(gru, inputs())
    with pytest.raises(ValueError, match="not built"):
        keras_lstm.record_gates(keras_lstm.LSTM(UNITS), inputs())
    layer = built_lstm()
    with pytest.raises(ValueError, match=r"sequences.*\(3, 6, 2\)"):
        keras_lstm.record_gates(layer, np.zeros((3, 6, 2), "float32"))
    with pytest.raises(ValueError, match=r"mask.*\(3, 5\)"):
        keras_lstm.record_gates(layer, inputs(), mask=np.ones((3, 5), bool))


def test_layer_is_unchanged():
    layer = built_lstm()
    before = [w.copy() for w in layer.get_weights()]
    keras_lstm.record_gates(layer, inputs(), mask=MASK)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
