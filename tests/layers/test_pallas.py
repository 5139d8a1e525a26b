"""The opt-in Pallas kernels (jax GPU engine) against the keras.ops cell.

No GPU here: the kernels run in Pallas' interpreter, which executes the same
kernel bodies (loads, stores, dots, the time loop) with XLA on the CPU, and a
separate test lowers them with Triton for CUDA, which is where a kernel that
Triton cannot compile fails first.
"""

import numpy as np
import pytest

from tests.layers.helpers import BACKEND, assert_all_close, pair, randomize

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="a jax engine")

if BACKEND == "jax":
    import jax
    import jax.numpy as jnp

    from keras_lstm.fused import jax_pallas

BATCH, STEPS, FEATURES, UNITS = 32, 6, 3, 16


def arrays(seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, STEPS, FEATURES)).astype("float32")
    h0, c0 = rng.standard_normal((2, batch, UNITS)).astype("float32")
    return x, h0, c0


def reference_layer():
    """Our layer on the keras.ops cell (`use_cudnn=False`), random weights."""
    layer, _ = pair(
        "lstm", UNITS, return_sequences=True, return_state=True, use_cudnn=False
    )
    layer.build((BATCH, STEPS, FEATURES))
    randomize(layer, seed=3)
    return layer


# 10 rows: padded to 16 for the kernels (one program), the padding dropped.
@pytest.mark.parametrize("batch", [BATCH, 10])
def test_kernels_equal_the_reference_cell_and_so_do_their_gradients(batch):
    layer = reference_layer()
    weights = [jnp.asarray(w) for w in layer.get_weights()]
    constants = [v.value for v in layer.non_trainable_variables]

    def reference(x, h0, c0, kernel, recurrent_kernel, bias):
        trainable = [kernel, recurrent_kernel, bias]
        out, _ = layer.stateless_call(trainable, constants, x, initial_state=[h0, c0])
        return tuple(out)

    def loss(fn):
        def value(*args):
            outputs, h, c = fn(*args)
            # Every output feeds the loss, nonlinearly, so each gradient path counts.
            return (
                jnp.sum(outputs * jnp.sin(outputs)) + jnp.sum(1.3 * h) + jnp.sum(c * c)
            )

        return value

    args = (*arrays(batch=batch), *weights)
    assert_all_close(jax_pallas.lstm_sequence(*args), reference(*args))
    ours = jax.jit(jax.grad(loss(jax_pallas.lstm_sequence), argnums=tuple(range(6))))(
        *args
    )
    theirs = jax.jit(jax.grad(loss(reference), argnums=tuple(range(6))))(*args)
    for name, a, b in zip(["x", "h0", "c0", "W", "U", "b"], ours, theirs):
        scale = float(jnp.max(jnp.abs(b)))
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * max(scale, 1.0), name


@pytest.fixture
def engine_on(monkeypatch):
    """KERAS_LSTM_PALLAS=1, and the CPU taken for a GPU; counts the kernel calls."""
    monkeypatch.setenv("KERAS_LSTM_PALLAS", "1")
    monkeypatch.setattr(jax_pallas, "_on_gpu", lambda x: True)
    calls = []
    real = jax_pallas.lstm_sequence

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(jax_pallas, "lstm_sequence", counted)
    return calls


@pytest.mark.parametrize(
    "kwargs, batch",
    [({}, BATCH), ({"go_backwards": True, "use_bias": False}, BATCH), ({}, 3)],
    ids=["plain", "back", "batch3"],
)
def test_layer_runs_the_kernels_when_enabled_and_equals_the_builtin(
    engine_on, kwargs, batch
):
    ours, builtin = pair("lstm", UNITS, return_state=True, **kwargs)
    x, h0, c0 = arrays(1, batch)
    ours.build(x.shape)
    builtin.build(x.shape)
    builtin.set_weights(randomize(ours, seed=4))
    got = ours(x, initial_state=[h0, c0])
    assert engine_on == [x.shape]
    assert_all_close(got, builtin(x, initial_state=[h0, c0]))


def test_off_unless_enabled_and_for_what_the_kernels_lack(engine_on, monkeypatch):
    x = jnp.zeros((BATCH, STEPS, FEATURES))

    def engages(layer, x=x, mask=None, training=False):
        layer.build(x.shape)
        return jax_pallas.select(layer, x, mask, training) is not None

    lstm, gru = pair("lstm", UNITS)[0], pair("gru", UNITS)[0]
    assert engages(lstm)
    assert not engages(gru)
    assert not engages(pair("lstm", 24)[0])  # units not a power of two
    assert not engages(pair("lstm", 128)[0])  # U would not fit in shared memory
    assert not engages(lstm, mask=jnp.ones((BATCH, STEPS), bool))
    assert not engages(pair("lstm", UNITS, dropout=0.1)[0], training=True)
    monkeypatch.setenv("KERAS_LSTM_PALLAS", "")
    assert not engages(lstm)


def test_kernels_lower_to_triton_for_cuda():
    """The compiled kernels (not the interpreter), lowered for a CUDA GPU: Pallas
    turns them into Triton IR here, so unsupported operations fail on a CPU."""
    from jax import export

    layer = reference_layer()
    args = (*arrays(), *[jnp.asarray(w) for w in layer.get_weights()])

    def loss(*args):
        outputs, h, c = jax_pallas.lstm_sequence(*args, interpret=False)
        return jnp.sum(outputs) + jnp.sum(h) + jnp.sum(c)

    triton = "__gpu$xla.gpu.triton"
    exported = export.export(
        jax.jit(jax.grad(loss, argnums=tuple(range(6)))),
        platforms=["cuda"],
        disabled_checks=[export.DisabledSafetyCheck.custom_call(triton)],
    )(*args)
    assert exported.mlir_module().count(f"@{triton}") == 2  # forward, backward


@pytest.mark.parametrize("setting", [None, "float32"])
def test_kernel_dots_follow_jax_default_matmul_precision(setting):
    """On a GPU the kernels' dots are Triton dots, TF32 unless asked otherwise:
    they must follow `jax.default_matmul_precision` as XLA's dots (the reference
    cell's scan) do, so that "float32" gives full float32 in both."""
    layer = reference_layer()
    args = (*arrays(), *[jnp.asarray(w) for w in layer.get_weights()])

    def loss(*args):
        return jnp.sum(jax_pallas.lstm_sequence(*args, interpret=False)[0])

    with jax.default_matmul_precision(setting):
        jaxpr = str(jax.make_jaxpr(jax.grad(loss, argnums=(3, 4)))(*args))
    assert jaxpr.count("pallas_call") == 2  # forward and backward kernels
    dots = jaxpr.count("dot_general")
    full = jaxpr.count("precision=(Precision.HIGHEST, Precision.HIGHEST)")
    # 4 dots in the forward kernel, 8 in the backward one, 3 outside.
    assert dots == 15
    assert full == (dots if setting == "float32" else 0)


def test_fit_with_the_kernels_equals_fit_with_the_builtin(engine_on):
    """Keras' jitted train step differentiates through the kernels (custom_vjp):
    two epochs of `fit` (Adam, a smaller last batch) leave the same weights as the
    built-in's."""
    import keras

    x, _, _ = arrays(2, batch=40)
    y = np.random.default_rng(5).standard_normal((40, 1)).astype("float32")
    models = []
    for layer in pair("lstm", UNITS):
        model = keras.Sequential(
            [keras.Input((STEPS, FEATURES)), layer, keras.layers.Dense(1)]
        )
        models.append(model)
    start = models[0].get_weights()
    models[1].set_weights(start)
    for model in models:
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert engine_on and {shape[0] for shape in engine_on} == {16, 8}
    assert_all_close(models[0].get_weights(), models[1].get_weights())
    # And training moved the weights (equal untouched weights would prove nothing).
    moved = [np.max(np.abs(a - b)) for a, b in zip(models[0].get_weights(), start)]
    assert min(moved) > 1e-2


def test_benchmark_times_the_kernels_only_where_they_run(monkeypatch):
    """benchmarks/bench_layers.py's "pallas" contender: made only where the
    engine takes the layer, so its row never times the plain engine."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "bench_layers.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as when run as a script
    spec = importlib.util.spec_from_file_location("bench_layers", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(RuntimeError, match="declines.*jax on cpu, 16 units"):
        bench.KerasContender("pallas", "lstm", STEPS, FEATURES, UNITS, BATCH)
    monkeypatch.setattr(jax_pallas, "_on_gpu", lambda x: True)  # as on a GPU
    contender = bench.KerasContender("pallas", "lstm", STEPS, FEATURES, UNITS, BATCH)
    assert contender.env == {"KERAS_LSTM_PALLAS": "1"}
    for rnn, units in (("lstm", 1024), ("gru", UNITS)):
        with pytest.raises(RuntimeError, match=f"declines.*{units} units"):
            bench.KerasContender("pallas", rnn, STEPS, FEATURES, units, BATCH)
