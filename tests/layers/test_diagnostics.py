"""record_gates replays the layer exactly and matches a NumPy LSTM written from
the equations."""

import keras
import numpy as np
import pytest

import keras_lstm
from tests.layers.helpers import numpy, randomize, value_and_grad

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


def test_a_stateful_layer_starts_from_its_carried_states():
    """Like the layer itself: a stateful layer's next call starts where the
    last one ended, and so does record_gates by default."""
    layer = keras_lstm.LSTM(UNITS, return_sequences=True, stateful=True)
    layer.build((BATCH, STEPS, FEATURES))
    randomize(layer)
    x = inputs()
    layer(x[:, ::-1])  # carried states, not zeros
    carried = [numpy(s) for s in layer.states]
    assert np.abs(carried[0]).max() > 0.1
    gates = keras_lstm.record_gates(layer, x)
    for state, before in zip(layer.states, carried):  # only read
        np.testing.assert_array_equal(numpy(state), before)
    np.testing.assert_allclose(gates["h"], numpy(layer(x))[0], atol=1e-6)
    with pytest.raises(ValueError, match="batches of 3 rows; `sequences` has 2"):
        keras_lstm.record_gates(layer, x[:2])


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


@pytest.mark.parametrize(
    "policy, atol", [("mixed_float16", 5e-3), ("mixed_bfloat16", 3e-2)]
)
def test_mixed_precision_gates_are_the_layers(policy, atol):
    """Under a mixed policy the layer computes in float16 / bfloat16 from float32
    variables; record_gates replays it in the same dtype (it once crashed on
    TensorFlow and silently computed in float32 on jax and torch). Tolerances
    as in test_mixed_precision.py; a (batch, steps, 1) mask is taken too."""
    layer = keras_lstm.LSTM(UNITS, return_sequences=True, dtype=policy)
    layer.build((BATCH, STEPS, FEATURES))
    randomize(layer)
    x = inputs()
    (sequence,) = numpy(layer(x, mask=MASK))
    gates = keras_lstm.record_gates(layer, x, mask=MASK[..., None])
    dtype = policy.split("_")[1]
    for name in keras_lstm.diagnostics.GATES:
        assert keras.backend.standardize_dtype(gates[name].dtype) == dtype, name
    np.testing.assert_allclose(
        gates["h"].astype("float32"), sequence.astype("float32"), atol=atol
    )
    float32 = built_lstm()
    float32.set_weights(layer.get_weights())
    reference = keras_lstm.record_gates(float32, x, mask=MASK)
    for name in keras_lstm.diagnostics.GATES:
        np.testing.assert_allclose(
            gates[name].astype("float32"), reference[name], atol=atol, err_msg=name
        )


def test_layer_is_unchanged():
    layer = built_lstm()
    before = [w.copy() for w in layer.get_weights()]
    keras_lstm.record_gates(layer, inputs(), mask=MASK)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- gradient flow: ||dL/dx_t|| -------------------------------------------------


def tiny_model(kind):
    """A recurrent layer (ours or SimpleRNN) and a Dense head, random weights."""
    recurrent = {
        "lstm": lambda: keras_lstm.LSTM(UNITS),
        "simple_rnn": lambda: keras.layers.SimpleRNN(UNITS),
    }[kind]()
    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), recurrent, keras.layers.Dense(2)]
    )
    for seed, layer in enumerate(model.layers):
        randomize(layer, seed=seed)
    return model


def numpy_model_loss(kind, weights, x, y):
    """The tiny model's batch-mean squared error, in float64 NumPy."""
    if kind == "lstm":
        last_h = numpy_lstm(x, *weights[:3])["h"][:, -1]
        dense = weights[3:]
    else:
        kernel, recurrent_kernel, bias = weights[:3]
        last_h = np.zeros((x.shape[0], UNITS))
        for t in range(x.shape[1]):
            last_h = np.tanh(x[:, t] @ kernel + last_h @ recurrent_kernel + bias)
        dense = weights[3:]
    prediction = last_h @ dense[0] + dense[1]
    return np.mean(np.mean((prediction - y) ** 2, axis=-1))


def central_differences(fn, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", ["lstm", "simple_rnn"])
def test_input_gradients_match_float64_finite_differences(kind):
    """Reference independent of every backend: a NumPy float64 forward pass of the
    same weights, differentiated by central differences."""
    model = tiny_model(kind)
    x = inputs()
    y = np.random.default_rng(5).standard_normal((BATCH, 2)).astype("float32")
    weights = [w.astype("float64") for w in model.get_weights()]
    expected = central_differences(
        lambda xx: numpy_model_loss(kind, weights, xx, y), x.astype("float64")
    )
    grad = keras_lstm.input_gradients(model, x, y, loss="mse")
    assert grad.shape == x.shape
    # float32 forward/backward against a float64 reference: 1e-5 of the scale.
    scale = np.abs(expected).max()
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-5 * scale)
    norms = keras_lstm.gradient_norms(model, x, y, loss="mse")
    expected_norms = np.sqrt((expected**2).sum(axis=(0, 2)))
    np.testing.assert_allclose(norms, expected_norms, rtol=1e-4)


def test_gradient_norms_match_explicit_autodiff():
    """Second reference: the backend's autodiff called directly (the tests'
    helper), with a Loss object and a model that outputs a sequence."""
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    randomize(layer)
    x = inputs()
    y = np.random.default_rng(6).standard_normal((BATCH, STEPS, UNITS))
    y = y.astype("float32")
    loss = keras.losses.MeanAbsoluteError()

    def value(x_tensor):
        return loss(keras.ops.convert_to_tensor(y), model(x_tensor))

    _, (expected,) = value_and_grad(value, [x])
    grad = keras_lstm.input_gradients(model, x, y, loss=loss)
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-7)
    norms = keras_lstm.gradient_norms(model, x, y, loss=loss)
    np.testing.assert_allclose(norms, np.sqrt((expected**2).sum(axis=(0, 2))), 1e-6)


def test_gradient_norms_decay_geometrically_in_a_contracting_rnn():
    """The measured claim on a known case: a SimpleRNN with recurrent matrix
    0.5·I and a linear activation passes exactly 0.5^(T-1-t) of the last step's
    gradient back to step t."""
    steps = 12
    rnn = keras.layers.SimpleRNN(2, activation="linear", use_bias=False)
    model = keras.Sequential([keras.Input((steps, 2)), rnn])
    rnn.set_weights([np.eye(2, dtype="float32"), 0.5 * np.eye(2, dtype="float32")])
    x = np.ones((1, steps, 2), "float32")
    norms = keras_lstm.gradient_norms(model, x, np.zeros((1, 2), "float32"))
    ratios = norms[:-1] / norms[1:]
    np.testing.assert_allclose(ratios, 0.5, rtol=1e-5)


def test_gradient_bad_input():
    model = tiny_model("lstm")
    y = np.zeros((BATCH, 2), "float32")
    with pytest.raises(ValueError, match="`x`.*float"):
        keras_lstm.gradient_norms(model, np.zeros((BATCH, STEPS, FEATURES), int), y)
    with pytest.raises(ValueError, match=r"`x`.*\(2, 3\)"):
        keras_lstm.gradient_norms(model, np.zeros((2, 3), "float32"), y)
    with pytest.raises(ValueError, match="`loss`"):
        keras_lstm.gradient_norms(model, inputs(), y, loss=None)


# --- plots --------------------------------------------------------------------


def test_plot_gates_writes_an_image(tmp_path):
    layer = built_lstm()
    x = inputs()
    record = keras_lstm.record_gates(layer, x, mask=MASK)  # NaN gates are drawn too
    path = str(tmp_path / "gates.png")
    labels = ["w%d" % t for t in range(STEPS)]
    assert keras_lstm.plot_gates(record, path, labels, example=2, inputs=x) == path
    assert (tmp_path / "gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_bad_input(tmp_path):
    record = keras_lstm.record_gates(built_lstm(), inputs())
    path = str(tmp_path / "x.png")
    with pytest.raises(ValueError, match="token_labels.*6"):
        keras_lstm.plot_gates(record, path, token_labels=["a", "b"])
    with pytest.raises(ValueError, match="example"):
        keras_lstm.plot_gates(record, path, example=BATCH)
    with pytest.raises(ValueError, match="names"):
        keras_lstm.plot_gates(record, path, names=("g",))
    with pytest.raises(ValueError, match="inputs"):
        keras_lstm.plot_gates(record, path, inputs=np.zeros((BATCH, 2, 1)))
    with pytest.raises(ValueError, match="curves"):
        keras_lstm.plot_gradient_norms({}, path)
    with pytest.raises(ValueError, match="curves"):
        keras_lstm.plot_gradient_norms({"a": np.zeros((2, 2))}, path)


def test_plot_paths_name_the_file_written(tmp_path):
    """matplotlib appends `.png` to a path without an extension: the plots
    return the file it wrote, not the path asked for (which does not exist)."""
    record = keras_lstm.record_gates(built_lstm(), inputs())
    written = keras_lstm.plot_gates(record, str(tmp_path / "gates"))
    assert written == str(tmp_path / "gates.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gates.png"]
    curve = {"toy": 0.9 ** np.arange(5.0)}
    written = keras_lstm.plot_gradient_norms(curve, tmp_path / "norms.svg")
    assert written == str(tmp_path / "norms.svg")
    assert (tmp_path / "norms.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        keras_lstm.plot_gates(record, str(tmp_path))
    with pytest.raises(ValueError, match="matplotlib writes .*png.*not 'xyz'"):
        keras_lstm.plot_gradient_norms(curve, str(tmp_path / "norms.xyz"))


def test_a_failed_plot_keeps_the_earlier_image(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "gates.png"
    path.write_bytes(b"earlier image")

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    record = keras_lstm.record_gates(built_lstm(), inputs())
    with pytest.raises(OSError, match="disk full"):
        keras_lstm.plot_gates(record, str(path))
    assert path.read_bytes() == b"earlier image"
    assert [p.name for p in tmp_path.iterdir()] == ["gates.png"]
