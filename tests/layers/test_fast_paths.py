"""Fast paths (`use_cudnn="auto"`, keras_lstm/fused) engage exactly where
documented and compute what the keras.ops reference cell (`use_cudnn=False`) and
the built-ins compute: outputs, states and gradients, float32 atol 1e-5.

Where a fast path engages: torch backend, no mask (PyTorch's fused kernels);
tensorflow backend on a CPU, inference (the reference loop compiled by XLA, from
16 rows on two halves of the batch side by side); never on jax. Every other
test in tests/layers also runs through whichever path engages; this file adds
the reference cell side by side.
"""

import contextlib

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm import fused
from keras_lstm.recurrent import _jax_on_gpu
from tests.layers.helpers import (
    ATOL,
    BACKEND,
    BUILTIN,
    OURS,
    assert_all_close,
    randomize,
    value_and_grad,
)
from tests.layers.test_equivalence import CONFIGS, ids

BATCH, STEPS, FEATURES, UNITS = 3, 6, 5, 4
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 1]], bool)


def assert_fits_agree(build, fit, seed):
    """`build(use_cudnn)` (a compiled model, from `seed`) trained by `fit(net)`
    with the shipped path and with the reference cell: same losses and final
    weights (float32)."""
    results = []
    for use_cudnn in ("auto", False):
        keras.utils.set_random_seed(seed)
        net = build(use_cudnn)
        history = fit(net)
        results.append((history.history["loss"], net.get_weights()))
    assert_same_training(results)


def assert_same_training(results):
    """`results`: (losses, final weights) of `fit` with the shipped path, then
    with the reference cell; they must agree (float32)."""
    (loss, weights), (want_loss, want_weights) = results
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, want in zip(weights, want_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def expected_to_engage(layer, mask, training) -> bool:
    cell = layer.cell
    if layer.use_cudnn != "auto" or layer.unroll:
        return False
    if BACKEND == "torch":
        return (
            mask is None
            and default_activations(cell)
            and getattr(cell, "reset_after", True)
            and not (training and cell.recurrent_dropout)
            and not (training and cell.dropout and cell.implementation == 1)
        )
    if BACKEND == "tensorflow":
        if not training:
            return cell.units <= 256
        # keras_lstm/fused/tf_bptt.py: the LSTM's hand-written gradient.
        return (
            hasattr(cell, "unit_forget_bias")
            and mask is None
            and default_activations(cell)
            and not (cell.dropout or cell.recurrent_dropout)
            and cell.compute_dtype == "float32"
            and (BATCH * cell.units <= 4096 or (cell.units >= 256 and BATCH <= 512))
        )
    return False


def default_activations(cell) -> bool:
    return cell.activation is keras.activations.tanh and (
        cell.recurrent_activation is keras.activations.sigmoid
    )


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def trio(kind, **kwargs):
    """Ours as shipped, ours with the reference cell forced, and the built-in,
    built with the same random weights."""
    layers = (
        OURS[kind](UNITS, **kwargs),
        OURS[kind](UNITS, use_cudnn=False, **kwargs),
        BUILTIN[kind](UNITS, **kwargs),
    )
    for layer in layers:
        layer.build((BATCH, STEPS, FEATURES))
    weights = randomize(layers[0])
    for layer in layers[1:]:
        layer.set_weights(weights)
    return layers


DROPOUT_CONFIGS = [
    ("lstm", {"dropout": 0.3, "seed": 3, "return_sequences": True}),
    ("gru", {"dropout": 0.3, "seed": 3, "return_state": True}),
    ("lstm", {"recurrent_dropout": 0.3, "seed": 3}),
]
# Inference for every configuration of test_equivalence and the dropout ones;
# training for the dropout ones (where dropout changes the result) and for every
# LSTM configuration (torch's engine runs training too).
CASES = [(k, o, False) for k, o in CONFIGS + DROPOUT_CONFIGS] + [
    (k, o, True) for k, o in DROPOUT_CONFIGS
]
CASES += [(k, o, True) for k, o in CONFIGS if k == "lstm"]


@pytest.mark.parametrize(
    "kind,kwargs,training",
    CASES,
    ids=[ids((k, o)) + ("-train" if t else "-infer") for k, o, t in CASES],
)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_fast_equals_reference_and_builtin(kind, kwargs, training, masked):
    fast, reference, builtin = trio(kind, **kwargs)
    x, mask = inputs(), (MASK if masked else None)
    engages = fused.select(fast, x, mask, training) is not None
    assert engages == expected_to_engage(fast, mask, training)
    if training:
        # Same seed, same draws: each layer's dropout masks equal the others'.
        expected = builtin(x, mask=mask, training=True)
        assert_all_close(reference(x, mask=mask, training=True), expected)
        assert_all_close(fast(x, mask=mask, training=True), expected)
        return
    if BACKEND == "torch" and masked and kwargs.get("unroll"):
        if kwargs.get("go_backwards"):
            # Keras' own torch loop (keras.src.backend.torch.rnn, unroll=True
            # with a mask and go_backwards) raises "'tuple' object has no
            # attribute 'shape'" for the built-in and for our reference alike.
            pytest.xfail("Keras 3.15.1 torch rnn: unroll + mask + go_backwards")
    expected = builtin(x, mask=mask)
    assert_all_close(reference(x, mask=mask), expected)
    assert_all_close(fast(x, mask=mask), expected)


def assert_gradients_equal(fast, reference, count, mask=None, training=False):
    """d(sum of outputs·probes) / d(inputs, initial state, weights) of `fast`,
    whichever path runs, equals the reference cell's, through `stateless_call`."""
    x = inputs()
    h0 = np.random.default_rng(3).standard_normal((count, BATCH, UNITS))
    h0 = list(h0.astype("float32"))
    rng = np.random.default_rng(7)
    outputs = keras.tree.flatten(fast(x, initial_state=h0, mask=mask))
    # Every call advances a layer's dropout seed (as in the built-ins), so both
    # layers are called once to keep their draws in step.
    reference(x, initial_state=h0, mask=mask)
    probes = [rng.standard_normal(o.shape).astype("float32") for o in outputs]

    def grads(layer):
        def loss(x, *rest):
            states, weights = list(rest[:count]), list(rest[count:])
            outs, _ = layer.stateless_call(
                weights,
                non_trainable,
                x,
                initial_state=states,
                mask=mask,
                training=training,
            )
            return sum(
                keras.ops.sum(o * keras.ops.convert_to_tensor(p))
                for o, p in zip(keras.tree.flatten(outs), probes)
            )

        non_trainable = [v.value for v in layer.non_trainable_variables]
        trainable = [keras.ops.convert_to_numpy(w) for w in layer.trainable_variables]
        return value_and_grad(loss, [x, *h0, *trainable])

    (value, fast_grads), (expected, reference_grads) = grads(fast), grads(reference)
    assert abs(value - expected) < 1e-4
    count_all = 1 + count + len(fast.trainable_variables)
    assert len(fast_grads) == len(reference_grads) == count_all
    for got, want in zip(fast_grads, reference_grads):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("training", [False, True], ids=["infer", "train"])
def test_fast_gradients_equal_reference(kind, masked, training):
    fast, reference, _ = trio(kind, return_sequences=True, return_state=True)
    mask = keras.ops.convert_to_tensor(MASK) if masked else None
    count = 2 if kind == "lstm" else 1
    assert_gradients_equal(fast, reference, count, mask, training)


TRAINING_CONFIGS = [
    {},
    {"go_backwards": True, "return_sequences": True},
    {"use_bias": False, "return_state": True},
    {"dropout": 0.3, "seed": 3, "return_sequences": True},
]


@pytest.mark.parametrize(
    "kwargs", TRAINING_CONFIGS, ids=[ids(("lstm", c)) for c in TRAINING_CONFIGS]
)
def test_lstm_training_gradients_equal_reference(kwargs):
    """Training gradients of LSTM variants a training engine accepts (torch's
    fused kernel, tensorflow's hand-written BPTT without dropout; jax trains
    through the reference loop)."""
    fast, reference, _ = trio("lstm", **kwargs)
    engages = fused.select(fast, inputs(), None, True) is not None
    assert engages == (
        BACKEND == "torch" or (BACKEND == "tensorflow" and "dropout" not in kwargs)
    )
    assert_gradients_equal(fast, reference, 2, training=True)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_use_cudnn_false_never_takes_a_fast_path(kind, monkeypatch):
    layer = OURS[kind](UNITS, use_cudnn=False)
    assert fused.select(layer, inputs(), None, False) is None

    def forbidden(*args):
        raise AssertionError("a fast path was consulted")

    monkeypatch.setattr(fused, "select", forbidden)
    layer(inputs())  # runs the reference loop only


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_fast_path_is_what_runs(kind, monkeypatch):
    """When a fast path engages, the layer's output comes from it."""
    layer = OURS[kind](UNITS, return_sequences=True)
    x = inputs()
    layer.build(x.shape)
    engines = {"calls": 0}
    real_select = fused.select

    def spy(*args):
        run = real_select(*args)
        if run is None:
            return None

        def counted(*inner):
            engines["calls"] += 1
            return run(*inner)

        return counted

    monkeypatch.setattr(fused, "select", spy)
    layer(x)
    assert engines["calls"] == (1 if BACKEND in ("torch", "tensorflow") else 0)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_predict_compiles_the_loop_with_xla():
    from keras_lstm.fused import tf_xla

    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), keras_lstm.LSTM(UNITS), keras.layers.Dense(1)]
    )
    builtin = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras.layers.LSTM(UNITS),
            keras.layers.Dense(1),
        ]
    )
    randomize(model)
    builtin.set_weights(model.get_weights())
    x = inputs()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), builtin.predict(x, verbose=0), rtol=0, atol=1e-5
    )
    compiled = tf_xla._compiled_loop(model.layers[0])
    assert compiled.experimental_get_tracing_count() >= 1
    # Training runs without the XLA inference loop (and still trains).
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((BATCH, 1), "float32"), verbose=0)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_only_up_to_256_units():
    """XLA:CPU matmuls are slower than oneDNN's at large sizes (NOTES 8b)."""
    x = inputs()
    assert fused.select(keras_lstm.LSTM(256), x, None, False) is not None
    assert fused.select(keras_lstm.LSTM(257), x, None, False) is None
    assert fused.select(keras_lstm.GRU(1024), x, None, False) is None


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
@pytest.mark.parametrize("batch", [1, 15, 16, 33])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_tensorflow_xla_runs_two_halves_of_the_batch(batch, masked, monkeypatch):
    """From 16 rows on (two cores or more) the compiled loop runs on two halves
    of the batch, of equal size (padded with zero rows to a multiple of 8, so
    that XLA compiles once for both): outputs, states and the gradient (replayed
    through the plain loop) equal the built-in's, for odd sizes too; with one
    core, one call."""
    import tensorflow as tf

    from keras_lstm.fused import tf_xla

    monkeypatch.setattr(tf_xla, "cores", lambda: 2)
    kwargs = {"return_sequences": True, "return_state": True}
    ours, builtin = pair_built("lstm", batch, **kwargs)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, STEPS, FEATURES)).astype("float32")
    mask = rng.random((batch, STEPS)) > 0.3 if masked else None
    states = list(rng.standard_normal((2, batch, UNITS)).astype("float32"))
    assert fused.select(ours, x, mask, False) is not None

    def outputs_and_grads(layer):
        @tf.function
        def step(x, mask, states):
            with tf.GradientTape() as tape:
                out = layer(x, mask=mask, initial_state=states, training=False)
                loss = sum(tf.reduce_sum(o * o) for o in out)
            return out, tape.gradient(loss, layer.trainable_weights)

        return step(x, mask, states)

    (got, got_grads), (want, want_grads) = map(outputs_and_grads, (ours, builtin))
    for a, b in zip(got, want):
        assert_all_close(a, b)
    for a, b in zip(got_grads, want_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)

    # Which rows each loop gets (a stand-in loop that returns its inputs).
    rows, padding = [], []

    def loop(sequences, states, mask):
        rows.append(int(sequences.shape[0]))
        if mask is not None:
            assert mask.shape[0] == sequences.shape[0]
        first = (len(rows) - 1) * rows[0]  # this part's first row in the batch
        padding.append(sequences[max(batch - first, 0) :])
        return sequences[:, -1], sequences, states

    parts = tf_xla.call_in_parts(loop, x, states, mask)
    half = {16: 8, 33: 24}.get(batch)  # 17 rows -> 24: a multiple of 8
    assert rows == ([half, half] if batch >= 16 else [batch])
    assert all(not np.any(p) for p in padding)  # the added rows are zeros
    rows.clear()  # bucket=1 (the training engine's fixed batch): one row at most
    parts = tf_xla.call_in_parts(loop, x, states, mask, bucket=1)
    assert rows == ([(batch + 1) // 2] * 2 if batch >= 16 else [batch])
    np.testing.assert_array_equal(parts[1], x)
    np.testing.assert_array_equal(parts[1], x)
    np.testing.assert_array_equal(parts[2][1], states[1])
    monkeypatch.setattr(tf_xla, "cores", lambda: 1)
    rows.clear()
    tf_xla.call_in_parts(loop, x, states, mask)
    assert rows == [batch]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_halves_with_a_batch_unknown_when_traced(monkeypatch):
    """Traced with no batch size (as `predict` does), the halves' padding is
    computed at run time: one row gives halves of 8 rows, 15 of them padding."""
    import tensorflow as tf

    from keras_lstm.fused import tf_xla

    monkeypatch.setattr(tf_xla, "cores", lambda: 2)
    ours, builtin = pair_built("lstm", 17, return_sequences=True)
    spec = tf.TensorSpec((None, STEPS, FEATURES), tf.float32)
    run = tf.function(lambda x: ours(x), input_signature=[spec])
    for batch in (1, 2, 17):
        x = np.random.default_rng(batch).standard_normal((batch, STEPS, FEATURES))
        x = x.astype("float32")
        assert_all_close(run(x), builtin(x))


def pair_built(kind, batch, **kwargs):
    ours, builtin = OURS[kind](UNITS, **kwargs), BUILTIN[kind](UNITS, **kwargs)
    for layer in (ours, builtin):
        layer.build((batch, STEPS, FEATURES))
    builtin.set_weights(randomize(ours))
    return ours, builtin


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's fused kernels")
def test_torch_fast_path_trains_like_the_builtin():
    """Five SGD steps through the fused kernel follow the built-in's loss curve."""

    def model(layer):
        return keras.Sequential(
            [keras.Input((STEPS, FEATURES)), layer, keras.layers.Dense(1)]
        )

    ours, builtin = model(keras_lstm.GRU(UNITS)), model(keras.layers.GRU(UNITS))
    randomize(ours)
    builtin.set_weights(ours.get_weights())
    x, y = inputs(), np.random.default_rng(1).standard_normal((BATCH, 1))
    losses = []
    for m in (ours, builtin):
        m.compile(optimizer="sgd", loss="mse")
        history = m.fit(x, y.astype("float32"), epochs=5, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=0, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's fused kernels")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("transform", ["vmap", "per-sample grad", "jvp", "dual"])
def test_torch_func_transforms_work_as_on_the_builtin(kind, transform):
    """The fused kernels have no vmap batching rule and (mkldnn, CPU) no forward
    derivative; under torch.func or forward-mode AD the reference loop runs, so
    these work as they do on the built-in (whose CPU loop is plain torch)."""
    import torch
    from torch.autograd import forward_ad

    def model(layer):
        return keras.Sequential([keras.Input((STEPS, FEATURES)), layer])

    ours, builtin = model(OURS[kind](UNITS)), model(BUILTIN[kind](UNITS))
    randomize(ours)
    builtin.set_weights(ours.get_weights())
    x = torch.tensor(inputs())

    def run(m):
        if transform == "vmap":
            return torch.func.vmap(lambda row: m(row[None])[0])(x)
        if transform == "per-sample grad":
            weights = [v.value for v in m.trainable_variables]
            fixed = [v.value for v in m.non_trainable_variables]

            def loss(weights, row):
                return (m.stateless_call(weights, fixed, row[None])[0] ** 2).sum()

            grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))
            return grads(weights, x)
        if transform == "jvp":
            return torch.func.jvp(m, (x,), (torch.ones_like(x),))[1]
        with forward_ad.dual_level():
            out = m(forward_ad.make_dual(x, torch.ones_like(x)))
            return forward_ad.unpack_dual(out).tangent

    for got, want in zip(
        keras.tree.flatten(run(ours)), keras.tree.flatten(run(builtin))
    ):
        np.testing.assert_allclose(got.detach(), want.detach(), rtol=0, atol=1e-5)


def test_hoisting_is_automatic_only_for_jax_on_a_gpu():
    from keras_lstm.recurrent import RecurrentLayer, _jax_on_gpu

    assert RecurrentLayer.hoist_input_projection == "auto"
    if BACKEND != "jax":
        assert not _jax_on_gpu()
        return
    device = keras.distribution.list_devices()[0].lower()
    assert _jax_on_gpu() == device.startswith(("gpu", "cuda"))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's training engine")
def test_tensorflow_bptt_engages_only_where_documented():
    """keras_lstm/fused/tf_bptt.py: a fixed batch of at most 4096 cells (batch x
    units), or 256 units and more with up to 512 rows or a batch size unknown
    when traced; no mask, no dropout, LSTM only (benchmarks/NOTES.md, sections 15
    and 18)."""
    import tensorflow as tf

    def engages(layer, batch, mask=None, features=FEATURES):
        x = np.zeros((batch, STEPS, features), "float32")
        return fused.select(layer, x, mask, True) is not None

    assert engages(keras_lstm.LSTM(64), 64)
    assert not engages(keras_lstm.LSTM(64), 65)
    assert not engages(keras_lstm.LSTM(255), 17)
    assert engages(keras_lstm.LSTM(256), 17)
    assert engages(keras_lstm.LSTM(1024), 512)
    assert not engages(keras_lstm.LSTM(1024), 513)
    assert not engages(keras_lstm.LSTM(256), 3, mask=MASK)
    assert not engages(keras_lstm.LSTM(256, dropout=0.1), 3)
    assert not engages(keras_lstm.LSTM(4), 3, mask=MASK)
    assert not engages(keras_lstm.LSTM(4, dropout=0.1), 3)
    assert not engages(keras_lstm.LSTM(4, recurrent_dropout=0.1), 3)
    assert not engages(keras_lstm.LSTM(4, activation="relu"), 3)
    assert not engages(keras_lstm.GRU(4), 3)

    def engages_traced(layer):
        """With the batch size unknown when the graph is traced."""
        seen = []

        @tf.function(input_signature=[tf.TensorSpec((None, STEPS, FEATURES))])
        def traced(x):
            seen.append(fused.select(layer, x, None, True) is not None)
            return x

        traced(np.zeros((BATCH, STEPS, FEATURES), "float32"))
        (engaged,) = seen
        return engaged

    # The reference loop, except from 256 units on, where the rule needs no
    # batch size.
    assert not engages_traced(keras_lstm.LSTM(4))
    assert engages_traced(keras_lstm.LSTM(256))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's training engine")
@pytest.mark.parametrize(
    "batch,loops,steps_per_execution",
    [(3, "xla", 1), (20, "xla", 1), (20, "graph", 1), (20, "xla", 3)],
    ids=["whole", "halves", "graph-loops", "steps_per_execution"],
)
def test_tensorflow_bptt_fit_equals_reference(
    batch, loops, steps_per_execution, monkeypatch
):
    """`fit` of two stacked LSTMs (the lower one's input gradient is used) on a
    fixed batch size, against the same model on the reference loop: same losses
    and weights after two epochs of four steps. `graph-loops`: with the loops
    without XLA that large layers (`GRAPH_UNITS`) run, on the whole batch.
    `steps_per_execution`: Keras runs the steps in a tf.while_loop (3, then
    1 of each epoch's 4), where the engines still run: the step's tape is
    inside the loop (tf_xla.in_control_flow)."""
    import tensorflow as tf

    from keras_lstm.fused import tf_bptt

    calls = []
    real_lstm = tf_bptt.lstm

    def counted(x, *args, xla=True):
        calls.append((x.shape[0], xla))
        return real_lstm(x, *args, xla=xla)

    monkeypatch.setattr(tf_bptt, "lstm", counted)
    if loops == "graph":  # both layers, the go_backwards one too
        monkeypatch.setattr(tf_bptt, "GRAPH_UNITS", UNITS)
        # As for layers that large: dW and dU from one matmul too.
        monkeypatch.setattr(tf_bptt, "ONE_MATMUL_UNITS", UNITS)
    # Which loop functions run: the XLA ones, or the ones without XLA; and
    # whether the forward one multiplies [x_t, h]·[W; U] in each step.
    ran = set()

    def spied(xla, loop):
        def run(*args, **kwargs):
            ran.add((xla, kwargs.get("per_step", False)))
            return loop(*args, **kwargs)

        return run

    monkeypatch.setattr(
        tf_bptt,
        "_LOOPS",
        {xla: tuple(spied(xla, f) for f in fs) for xla, fs in tf_bptt._LOOPS.items()},
    )

    def model(use_cudnn):
        keras.utils.set_random_seed(5)
        return keras.Sequential(
            [
                keras.Input((STEPS, FEATURES)),
                keras_lstm.LSTM(8, return_sequences=True, use_cudnn=use_cudnn),
                keras_lstm.LSTM(UNITS, go_backwards=True, use_cudnn=use_cudnn),
                keras.layers.Dense(1),
            ]
        )

    rng = np.random.default_rng(2)
    x = rng.standard_normal((4 * batch, STEPS, FEATURES)).astype("float32")
    y = rng.standard_normal((4 * batch, 1)).astype("float32")
    # Whole batches only, so that the batch size is in the traced graph.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)
    results = []
    for use_cudnn in ("auto", False):
        net = model(use_cudnn)
        net.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss="mse",
            steps_per_execution=steps_per_execution,
        )
        history = net.fit(data, epochs=2, shuffle=False, verbose=0)
        results.append((history.history["loss"], net.get_weights()))
        # Traced once per layer (and per half), for ours only.
        assert bool(calls) == (use_cudnn == "auto")
        if calls:  # (rows, xla) per traced call
            halves = batch // 2 if batch >= 16 else batch
            want = {(halves, True)} if loops == "xla" else {(batch, False)}
            assert set(calls) == want
        calls.clear()
    assert_same_training(results)
    # Without XLA, a batch of up to PER_STEP_ROWS (20 here) runs the per-step
    # forward loop; the backward loop is the same for both.
    graph_loops = {(False, True), (False, False)}
    assert ran == ({(True, False)} if loops == "xla" else graph_loops)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's training engine")
@pytest.mark.parametrize("one_matmul", [False, True], ids=["two-matmuls", "one-matmul"])
@pytest.mark.parametrize(
    "xla,per_step",
    [(True, False), (False, False), (False, True)],
    ids=["xla", "graph", "graph-per-step"],
)
def test_tensorflow_bptt_gradients_equal_plain_ops(
    xla, per_step, one_matmul, monkeypatch
):
    """`tf_bptt.lstm`'s hand-written gradient, with both loop kinds, against
    TensorFlow's autodiff of the same LSTM in plain ops (`tf.scan`): all six
    gradients, with random initial states and a loss on every output.
    `one-matmul`: dW and dU from one transposed matmul, as from
    `ONE_MATMUL_UNITS` units. `per-step`: the forward loop without XLA that
    multiplies [x_t, h]·[W; U] in each step, as up to `PER_STEP_ROWS` rows."""
    import tensorflow as tf

    from keras_lstm.fused import tf_bptt

    monkeypatch.setattr(tf_bptt, "ONE_MATMUL_UNITS", 1 if one_matmul else 10**6)
    monkeypatch.setattr(tf_bptt, "PER_STEP_ROWS", BATCH if per_step else BATCH - 1)

    rng = np.random.default_rng(11)
    units = 6
    shapes = [
        (BATCH, STEPS, FEATURES),  # x
        (BATCH, units),  # h0
        (BATCH, units),  # c0
        (FEATURES, 4 * units),  # kernel
        (units, 4 * units),  # recurrent kernel
        (4 * units,),  # bias
    ]
    args = [tf.constant(rng.uniform(-0.8, 0.8, s).astype("float32")) for s in shapes]
    probes = [
        tf.constant(rng.standard_normal(s).astype("float32"))
        for s in [(BATCH, STEPS, units), (BATCH, units), (BATCH, units)]
    ]
    grads = []
    for fn in (lambda *a: tf_bptt.lstm(*a, xla=xla), tf_bptt._plain_lstm):
        with tf.GradientTape() as tape:
            tape.watch(args)
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(fn(*args), probes))
        grads.append(tape.gradient(loss, args))
    for got, want in zip(*grads, strict=True):
        assert float(tf.reduce_max(tf.abs(want))) > 1e-3  # nothing vanished
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's training engine")
def test_tensorflow_bptt_chooses_the_forward_loop_when_it_runs(monkeypatch):
    """Without XLA and with the batch size unknown when traced, the forward
    loop is chosen when the graph runs: per step ([x_t, h]·[W; U]) up to
    `PER_STEP_ROWS` rows, projected for all steps above. Either way the outputs
    and the gradients (no bias here) equal TensorFlow's autodiff of plain ops."""
    import tensorflow as tf

    from keras_lstm.fused import tf_bptt

    monkeypatch.setattr(tf_bptt, "PER_STEP_ROWS", 4)
    forward, backward = tf_bptt._LOOPS[False]
    taken = []

    def counted(*args, per_step=False, **kwargs):
        # Notes, when the graph runs, the branch of the tf.cond taken.
        def note():
            taken.append(per_step)
            return np.int32(0)

        with tf.control_dependencies([tf.numpy_function(note, [], tf.int32)]):
            return [tf.identity(t) for t in forward(*args, per_step=per_step, **kwargs)]

    monkeypatch.setitem(tf_bptt._LOOPS, False, (counted, backward))
    rng = np.random.default_rng(4)
    weights = [
        tf.constant(rng.uniform(-0.8, 0.8, s).astype("float32"))
        for s in [(FEATURES, 4 * UNITS), (UNITS, 4 * UNITS)]
    ]

    @tf.function(input_signature=[tf.TensorSpec((None, STEPS, FEATURES))])
    def run(x):
        states = [tf.zeros([tf.shape(x)[0], UNITS]) + 0.3 for _ in range(2)]
        results = []
        for fn in (lambda *a: tf_bptt.lstm(*a, xla=False), tf_bptt._plain_lstm):
            with tf.GradientTape() as tape:
                tape.watch([x, *weights])
                outputs, h, c = fn(x, *states, *weights)
                loss = tf.reduce_sum(outputs * outputs) + tf.reduce_sum(h * c)
            results.append([outputs, *tape.gradient(loss, [x, *weights])])
        return results

    for rows, per_step in [(3, True), (4, True), (5, False)]:
        x = rng.uniform(-1, 1, (rows, STEPS, FEATURES)).astype("float32")
        taken.clear()
        got, want = run(x)
        assert taken == [per_step]
        for g, w in zip(got, want, strict=True):
            assert float(tf.reduce_max(tf.abs(w))) > 1e-3
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's training engine")
@pytest.mark.parametrize("loops", ["xla", "graph"])
def test_tensorflow_bptt_fit_of_a_large_layer_with_unknown_batch_equals_reference(
    loops, monkeypatch
):
    """From 256 units the engine trains at a batch size unknown when traced
    (numpy arrays with a smaller last batch, as the text-generation task feeds
    it): same losses and weights as the reference loop after two epochs.
    `graph`: with the loops without XLA that layers of `GRAPH_UNITS` run."""
    from keras_lstm.fused import tf_bptt

    calls = []
    real_lstm = tf_bptt.lstm

    def counted(x, *args, xla=True):
        calls.append((x.shape[0], xla))
        return real_lstm(x, *args, xla=xla)

    monkeypatch.setattr(tf_bptt, "lstm", counted)
    if loops == "graph":
        monkeypatch.setattr(tf_bptt, "GRAPH_UNITS", 256)
        # As for layers that large: dW and dU from one matmul too.
        monkeypatch.setattr(tf_bptt, "ONE_MATMUL_UNITS", 256)
    split = []
    real_split = tf_bptt.tf_xla.call_in_parts

    def counted_split(*args, **kwargs):
        split.append(1)
        return real_split(*args, **kwargs)

    monkeypatch.setattr(tf_bptt.tf_xla, "call_in_parts", counted_split)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((23, STEPS, FEATURES)).astype("float32")
    y = rng.standard_normal((23, 2)).astype("float32")

    def build(use_cudnn):
        net = keras.Sequential(
            [
                keras.Input((STEPS, FEATURES)),
                keras_lstm.LSTM(256, return_sequences=True, use_cudnn=use_cudnn),
                keras_lstm.LSTM(256, use_cudnn=use_cudnn),
                keras.layers.Dense(2),
            ]
        )
        net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return net

    assert_fits_agree(
        build,
        lambda net: net.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0),
        seed=7,
    )
    # Traced for both layers with the batch unknown (two halves each, or the
    # whole batch without XLA), ours only.
    assert calls and set(calls) == {(None, loops == "xla")}
    assert bool(split) == (loops == "xla")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_compiles_once_for_both_directions_and_a_short_batch():
    """XLA compiles per function and input shape (0.5-1 s each): a Bidirectional's
    two directions share one compiled loop (the backward one reverses its input
    outside it), and a last batch of 59 rows reuses the halves of 64 (32 rows
    each). Outputs equal the built-in Bidirectional's, masked."""
    from keras_lstm.fused import tf_xla

    # Arguments no other test uses, so that the loop is compiled here first.
    kwargs = {"return_sequences": True, "unit_forget_bias": False}
    ours = keras.layers.Bidirectional(keras_lstm.LSTM(7, **kwargs))
    builtin = keras.layers.Bidirectional(keras.layers.LSTM(7, **kwargs))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, STEPS, FEATURES)).astype("float32")
    mask = rng.random((64, STEPS)) > 0.3
    ours.build(x.shape)
    builtin.build(x.shape)
    builtin.set_weights(randomize(ours))
    for rows in (64, 59):
        got = ours(x[:rows], mask=mask[:rows], training=False)
        assert_all_close(got, builtin(x[:rows], mask=mask[:rows], training=False))
    compiled = tf_xla._compiled_loop(ours.forward_layer)
    assert tf_xla._compiled_loop(ours.backward_layer) is compiled
    assert compiled.experimental_get_tracing_count() == 1  # one shape, (32, ...)
    # Different loops do not share: other units, our class subclassed.
    assert tf_xla._compiled_loop(keras_lstm.LSTM(8, **kwargs)) is not compiled

    class Subclass(keras_lstm.LSTM):
        pass

    assert tf_xla._sharing_key(Subclass(7, **kwargs)) is None


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_eager_calls_of_many_lengths_retrace_quietly():
    """Called eagerly on sequences of eight lengths (as in a notebook), the
    compiled loop traces at most twice, the second time with the shapes
    relaxed, instead of once per length, which made TensorFlow warn
    "triggered tf.function retracing" from the fifth length on (the built-in
    printed nothing). Every output equals the built-in's."""
    import logging

    import tensorflow as tf

    from keras_lstm.fused import tf_xla

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    # Arguments no other test uses, so that the loop is compiled here first.
    kwargs = {"return_sequences": True, "unit_forget_bias": False, "use_bias": False}
    ours = keras_lstm.LSTM(5, **kwargs)
    builtin = keras.layers.LSTM(5, **kwargs)
    ours.build((None, None, FEATURES))
    builtin.build((None, None, FEATURES))
    builtin.set_weights(randomize(ours))
    rng = np.random.default_rng(3)
    tf.get_logger().addHandler(handler)
    try:
        for steps in range(3, 11):
            x = rng.standard_normal((16, steps, FEATURES)).astype("float32")
            assert_all_close(ours(x, training=False), builtin(x, training=False))
    finally:
        tf.get_logger().removeHandler(handler)
    compiled = tf_xla._compiled_loop(ours)
    assert compiled.experimental_get_tracing_count() <= 2
    assert not [m for m in messages if "retracing" in m], messages


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_loops_are_not_shared_between_different_activations():
    """A config names a plain function by its name only: two functions made by
    one factory (or one redefined in a notebook) look alike there, but each
    layer must run its own. Components whose config cannot be written (a
    regularizer without get_config, a functools.partial activation) must not
    break inference either. Each equals the built-in with the same weights."""
    import functools

    def leaky(slope):
        def leaky(t):
            return keras.ops.leaky_relu(t, negative_slope=slope)

        return leaky

    class Penalty(keras.regularizers.Regularizer):  # no get_config
        def __call__(self, weights):
            return 0.01 * keras.ops.sum(keras.ops.square(weights))

    x = inputs()
    cases = [
        {"activation": leaky(0.01)},
        {"activation": leaky(0.5)},
        {"activation": functools.partial(keras.ops.leaky_relu, negative_slope=0.2)},
        {"kernel_regularizer": Penalty()},
    ]
    for kwargs in cases:
        ours = keras_lstm.LSTM(UNITS, return_sequences=True, **kwargs)
        builtin = keras.layers.LSTM(UNITS, return_sequences=True, **kwargs)
        ours.build(x.shape)
        builtin.build(x.shape)
        builtin.set_weights(randomize(ours))
        assert expected_to_engage(ours, None, False)
        assert_all_close(ours(x, training=False), builtin(x, training=False))


@pytest.mark.skipif(
    BACKEND == "jax" and not _jax_on_gpu(),
    reason="jax on a CPU has no engine: use_cudnn='auto' runs the reference loop",
)
@pytest.mark.parametrize("run_eagerly", [False, True], ids=["graph", "eager"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stateful_training_with_the_fast_path_equals_the_reference(kind, run_eagerly):
    """A stateful layer's state variables are assigned after each batch, before
    an eager gradient is computed: the engines must have read their values
    (TensorFlow), and on torch PyTorch's fused kernel must not keep the
    variables for backward. Losses and weights after 3 epochs equal
    use_cudnn=False's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, STEPS, FEATURES)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")

    def build(use_cudnn):
        net = keras.Sequential(
            [
                keras.Input((STEPS, FEATURES), batch_size=4),
                OURS[kind](UNITS, stateful=True, use_cudnn=use_cudnn),
                keras.layers.Dense(1),
            ]
        )
        net.compile(
            optimizer=keras.optimizers.SGD(0.1), loss="mse", run_eagerly=run_eagerly
        )
        return net

    assert_fits_agree(
        build,
        lambda net: net.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0),
        seed=1,
    )


def _tensorflow_pair(kind, units=UNITS, **kwargs):
    """Ours as shipped and ours with the reference cell, same weights."""
    x = inputs()
    layers = [OURS[kind](units, use_cudnn=u, **kwargs) for u in ("auto", False)]
    for layer in layers:
        layer.build(x.shape)
    layers[1].set_weights(randomize(layers[0]))
    return layers


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's engines")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_tensorflow_eager_gradient_through_a_stateful_layer(kind, training):
    """Eagerly, RNN.call assigns a stateful layer's new states before the tape
    computes the gradient, which must start from the old ones. Two calls in a
    row (the second from carried states): gradients equal the reference's."""
    import tensorflow as tf

    x = tf.constant(inputs())
    results = []
    for layer in _tensorflow_pair(kind, stateful=True):
        layer(x[:, ::-1])
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(layer(x, training=training)))
        results.append(tape.gradient(loss, layer.trainable_weights))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's engines")
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_tensorflow_gradient_penalty_through_the_engines(training, graph):
    """A gradient of a gradient (a WGAN-GP style penalty on d loss / d x): the
    engines' own backward loops are not differentiable, so when their gradient
    is itself recorded they replay the LSTM in plain ops."""
    import tensorflow as tf

    x = tf.constant(inputs())
    results = []
    for layer in _tensorflow_pair("lstm", return_sequences=True):

        def penalty_gradient(x, layer=layer):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    loss = tf.reduce_sum(tf.sin(layer(x, training=training)))
                penalty = tf.reduce_sum(inner.gradient(loss, x) ** 2)
            return outer.gradient(penalty, layer.trainable_weights)

        fn = tf.function(penalty_gradient) if graph else penalty_gradient
        results.append(fn(x))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's engines")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_tensorflow_forward_mode_through_the_engines(kind, training):
    """tf.autodiff.ForwardAccumulator: eagerly the engines step aside (their
    loops are invisible to it); around a tf.function it goes through their
    custom gradients. Directional derivatives equal the reference's."""
    import tensorflow as tf

    x = tf.constant(inputs())
    tangent = tf.constant(np.random.default_rng(5).standard_normal(x.shape), x.dtype)
    for graph in (False, True):
        jvps = []
        for layer in _tensorflow_pair(kind, return_sequences=True):
            call = lambda x, layer=layer: layer(x, training=training)  # noqa: E731
            call = tf.function(call) if graph else call
            with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
                y = call(x)
            jvps.append(accumulator.jvp(y))
        assert jvps[0] is not None
        np.testing.assert_allclose(jvps[0], jvps[1], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_xla_loop_of_an_unshared_layer_does_not_keep_it_alive():
    """A layer that shares its compiled loop with none (a subclass) keeps the
    loop to itself, and both are freed together once the layer is dropped.
    Its output still equals the reference cell's."""
    import gc
    import weakref

    from keras_lstm.fused import tf_xla

    class Subclass(keras_lstm.LSTM):
        pass

    def run():
        layer = Subclass(6, return_sequences=True)
        x = inputs()
        got = layer(x, training=False)
        reference = Subclass.from_config({**layer.get_config(), "use_cudnn": False})
        reference.build(x.shape)
        reference.set_weights(layer.get_weights())
        assert_all_close(got, reference(x, training=False))
        assert tf_xla._compiled_loop(layer).experimental_get_tracing_count() == 1
        return weakref.ref(layer)

    layer = run()
    gc.collect()
    assert layer() is None


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_eager_gradient_of_a_dropped_layers_inference_call():
    """An eager tape keeps what it needs for the gradient: a layer dropped (and
    collected) between its inference call and `tape.gradient` still gives the
    built-in's gradient."""
    import gc

    import tensorflow as tf

    x = tf.constant(inputs())
    builtin = keras.layers.LSTM(UNITS)
    builtin.build(x.shape)

    def call_temporary_layer(tape):
        layer = keras_lstm.LSTM(UNITS)
        layer.build(x.shape)
        layer.set_weights(randomize(builtin))
        with tape:
            tape.watch(x)
            return layer(x)

    tape = tf.GradientTape()
    y = call_temporary_layer(tape)
    gc.collect()
    with tf.GradientTape() as reference:
        reference.watch(x)
        want = builtin(x)
    assert_all_close(tape.gradient(y, x), reference.gradient(want, x))


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_shared_xla_loops_do_not_keep_dropped_layers_alive():
    """Layers of one configuration share a compiled loop while one of them is
    alive; once all are dropped, they are freed (with their weights) as the
    built-in's layers are, instead of staying in a module-level table."""
    import gc
    import weakref

    from keras_lstm.fused import tf_xla

    def run(lstm):
        kwargs = {"return_sequences": True, "unit_forget_bias": False}
        model = keras.Sequential(
            [
                keras.Input((STEPS, FEATURES)),
                keras.layers.Bidirectional(lstm(9, **kwargs)),
            ]
        )
        model.predict(inputs(), verbose=0)
        return weakref.ref(model.layers[0].forward_layer)

    builtin = run(keras.layers.LSTM)
    first = run(keras_lstm.LSTM)
    while_alive = first()
    second = run(keras_lstm.LSTM)
    assert tf_xla._compiled_loop(second()) is tf_xla._compiled_loop(while_alive)
    del while_alive
    gc.collect()
    assert builtin() is None  # the reference
    assert first() is None and second() is None


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA path is TensorFlow's")
def test_tensorflow_shared_xla_loop_exports_the_exporting_models_weights(tmp_path):
    """Two models of one configuration share a compiled loop (traced with the
    first model's variables as the template); the second model's SavedModel
    still holds its own weights only and reproduces its outputs."""
    import tensorflow as tf

    from keras_lstm.fused import tf_xla

    def model(seed):
        keras.utils.set_random_seed(seed)
        layer = keras_lstm.LSTM(5, return_sequences=True, unit_forget_bias=False)
        return keras.Sequential(
            [keras.Input((STEPS, FEATURES)), keras.layers.Bidirectional(layer)]
        )

    x = inputs()
    first, second = model(1), model(2)
    first_out = first.predict(x, verbose=0)
    want = second.predict(x, verbose=0)
    assert np.max(np.abs(first_out - want)) > 0.1  # different weights
    loops = [tf_xla._compiled_loop(m.layers[0].forward_layer) for m in (first, second)]
    assert loops[0] is loops[1]
    second.export(str(tmp_path / "second"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "second"))
    np.testing.assert_allclose(reloaded.serve(x), want, rtol=0, atol=1e-6)
    first_paths = {w.path for w in first.weights}
    saved = {v.name.split(":")[0] for v in reloaded.variables}
    assert {w.path for w in second.weights} <= saved
    assert not first_paths & saved


def _control_flow_gradients(use_cudnn, construct, training, units, outer_tape):
    """Gradients w.r.t. inputs and weights of an LSTM called inside `construct`
    (a tf.function), the tapes outside it; random weights from seed 0."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 3, 2)), tf.float32)
    layer = keras_lstm.LSTM(units, use_cudnn=use_cudnn)
    layer.build((None, 3, 2))
    randomize(layer, scale=0.3)

    # Named like Keras' trainer functions (step and multi-step loop), so that
    # "map_fn over tf.function" also shows that the names alone do not make
    # Keras' loop, which keeps the engines (tf_xla.in_control_flow).
    def one_step_on_data(sequences):
        return layer(sequences, training=training)

    call, function = one_step_on_data, tf.function(one_step_on_data)

    def body(x):
        if construct == "map_fn":
            return tf.map_fn(lambda s: call(s[None])[0], x)
        if construct == "map_fn over tf.function":
            return tf.map_fn(lambda s: function(s[None])[0], x)
        if construct == "cond":
            return tf.cond(
                tf.reduce_sum(x) > -1e9, lambda: call(x), lambda: call(2 * x)
            )
        return tf.switch_case(tf.constant(0), [lambda: call(x), lambda: call(2 * x)])

    # The training engine takes small layers with a batch size fixed in the
    # graph, 256 units with any.
    batch = None if units >= 256 else 2

    @tf.function(input_signature=[tf.TensorSpec((batch, 3, 2))])
    def multi_step_on_iterator(x):
        with contextlib.ExitStack() as stack:
            if outer_tape:  # e.g. for a gradient penalty, recording meanwhile
                stack.enter_context(tf.GradientTape()).watch(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.sin(body(x)))
            return tape.gradient(loss, [x, *layer.trainable_variables])

    return [g.numpy() for g in multi_step_on_iterator(x)]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's engines")
@pytest.mark.parametrize(
    "construct, training, units, outer_tape",
    [
        ("map_fn", True, 8, True),
        ("map_fn", False, 8, True),
        ("map_fn over tf.function", True, 8, True),
        ("cond", True, 8, True),
        # The batch unknown in the graph, where the training engine would take
        # 256 units (without an outer tape: 3 s, not 22, and the guard that
        # keeps the reference loop comes before the engine's choice).
        ("cond", True, 256, False),
        ("switch_case", True, 8, False),
    ],
)
def test_gradients_through_tensorflow_control_flow_equal_the_reference(
    construct, training, units, outer_tape
):
    """A tape outside tf.map_fn / tf.cond / tf.switch_case differentiates the
    layer (also when a tf.function calls it) through the construct's gradient
    graphs. There the engines' custom gradients gave zeros for dx, dW, db (a
    second tape recording) or raised ("Could not find external tensor
    capture"), so inside control flow the reference loop runs. Found by a
    fuzzing review; the reference agrees with keras.layers.LSTM exactly in
    the same script."""
    fast = _control_flow_gradients("auto", construct, training, units, outer_tape)
    reference = _control_flow_gradients(False, construct, training, units, outer_tape)
    for name, f, r in zip(["dx", "kernel", "recurrent", "bias"], fast, reference):
        assert np.abs(r).max() > 1e-3, name  # a gradient that can be wrong
        np.testing.assert_allclose(f, r, atol=ATOL, rtol=1e-5, err_msg=name)
