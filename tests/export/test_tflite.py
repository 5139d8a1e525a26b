"""TFLite export: builtin ops only, fused LSTM where possible, equal to Keras
(right-padded variable lengths included), checked in LiteRT's own interpreter."""

import json

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm import export
from keras_lstm.export import _lowering
from tests.export import helpers as h

FUSED = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def lstm_last(x):
    return keras.layers.Dense(1)(keras_lstm.LSTM(6)(x))


def lstm_sequences(x):
    # Masked steps repeat the previous output (zero_output_for_mask=False).
    return keras_lstm.LSTM(4, return_sequences=True)(x)


def lstm_backwards_zero_output(x):
    return keras_lstm.LSTM(
        4, go_backwards=True, return_sequences=True, zero_output_for_mask=True
    )(x)


def lstm_return_state(x):
    return keras_lstm.LSTM(4, return_sequences=True, return_state=True)(x)


def lstm_then_gru(x):
    # The fused LSTM's right-padding fix-up feeds a masked GRU WHILE loop.
    x = keras_lstm.LSTM(5, return_sequences=True)(x)
    return keras_lstm.GRU(3)(x)


def gru_next_to_lstm(x):
    # A WHILE loop and a fused op of the same units: the loop's zero initial
    # state must not be merged with the fused op's state tensor, which LiteRT
    # keeps (and the op overwrites) from one invocation to the next.
    return [keras_lstm.GRU(4)(x), keras_lstm.LSTM(4)(x)]


# name: (model body, fused LSTM ops expected)
CONFIGS = {
    "lstm_last_output": (lstm_last, 1),
    "lstm_sequences": (lstm_sequences, 1),
    "lstm_go_backwards_zero_output": (lstm_backwards_zero_output, 1),
    "bidirectional_stacked": (h.bidirectional_stack, 5),
    "gru_bidirectional_go_backwards": (h.gru_stack, 0),
    "lstm_return_state": (lstm_return_state, 0),
    "lstm_then_gru": (lstm_then_gru, 1),
    "gru_next_to_lstm": (gru_next_to_lstm, 1),
}


def export_and_check(model, path, rows, **kwargs):
    report = export.export_tflite(model, path, **kwargs)
    ops = export.tflite_op_names(path)
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    assert report["passed"] and report["max_abs_diff"] <= h.ATOL
    assert json.loads((path.parent / (path.name + ".json")).read_text()) == report
    # Independent of the exporter's own check: other inputs, LiteRT directly.
    inputs = list(rows.values())
    diff = h.max_diff(h.litert_outputs(path, rows), h.keras_out(model, *inputs))
    assert diff <= h.ATOL
    return report, ops


@pytest.mark.parametrize("name", list(CONFIGS))
def test_masked_model_runs_in_litert_equal_to_keras(name, tmp_path):
    body, fused = CONFIGS[name]
    model = h.text_model(body)
    ids, _ = h.right_padded_ids(6, h.STEPS, seed=7)
    report, ops = export_and_check(
        model, tmp_path / "m.tflite", {"ids": ids}, max_length=h.STEPS, batch_size=2
    )
    assert ops.count(FUSED) == fused == report["fused_lstm_ops"]
    lowered_as_fused = [v for v in report["layers"].values() if v.startswith("fused")]
    assert len(lowered_as_fused) == fused


def test_float_ids_are_verified_as_ids_with_padding(tmp_path):
    """`keras.Input((T,))` is float32 by default; an Embedding casts it. The
    verification draws such an input as ids (integers from 1, zeros where
    padded), not as normals, as it does an int32 input."""
    from keras_lstm.export import _verify

    x = keras.Input((h.STEPS,), name="ids")  # float32
    y = keras.layers.Embedding(h.VOCAB, 4, mask_zero=True)(x)
    y = keras_lstm.LSTM(5)(y)
    model = h.randomize(keras.Model(x, keras.layers.Dense(2)(y)))
    ids, _ = h.right_padded_ids(4, h.STEPS, seed=5)
    report, ops = export_and_check(
        model, tmp_path / "m.tflite", {"ids": ids.astype("float32")}, batch_size=2
    )
    assert ops.count(FUSED) == 1
    assert any(c["case"].startswith("right-padded") for c in report["cases"])
    specs = export._static_specs(export._input_specs(model, None), 2, None)
    cases = dict(_verify.random_cases(model, specs, 4, h.STEPS, "right", 0))
    drawn = cases["random, full length"][0]
    assert drawn.dtype == np.float32 and (drawn == np.round(drawn)).all()
    assert 1 <= drawn.min() and drawn.max() < h.VOCAB
    padded = next(v[0] for k, v in cases.items() if k.startswith("right-padded"))
    assert (padded[2] == 0).all() and (padded[0] > 0).all()  # lengths T, 1, 0


def test_masking_layer_and_static_shape_float_inputs(tmp_path):
    x = keras.Input((h.STEPS, 3), batch_size=1, name="features")
    y = keras.layers.Masking(0.0)(x)
    y = keras_lstm.LSTM(5, go_backwards=True)(y)
    model = h.randomize(keras.Model(x, keras.layers.Dense(2)(y)))
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((4, h.STEPS, 3)).astype("float32")
    for r, n in enumerate([h.STEPS, 1, 0, 5]):
        rows[r, n:] = 0.0
    report, ops = export_and_check(model, tmp_path / "m.tflite", {"features": rows})
    assert ops.count(FUSED) == 1
    assert any(c["case"].startswith("right-padded") for c in report["cases"])


@pytest.mark.parametrize("fallback", ["while", "unroll"])
def test_padding_any_handles_holes_and_left_padding(fallback, tmp_path):
    def body(x):
        x = keras_lstm.LSTM(5, return_sequences=True)(x)
        return keras.layers.Bidirectional(keras_lstm.GRU(3))(x)

    model = h.text_model(body)
    ids, _ = h.right_padded_ids(6, h.STEPS, seed=2)
    ids[0, 2] = 0  # a hole
    ids[3] = np.roll(ids[3], 3)  # left padding
    report, ops = export_and_check(
        model,
        tmp_path / "m.tflite",
        {"ids": ids},
        max_length=h.STEPS,
        padding="any",
        fallback=fallback,
    )
    assert FUSED not in ops
    assert ("WHILE" in ops) == (fallback == "while")
    assert "left padding and holes" in [c["case"] for c in report["cases"]]


@pytest.mark.parametrize("fallback", ["while", "unroll"])
def test_unrolled_layers_keep_keras_unrolled_masking(fallback, tmp_path):
    """Keras' `unroll=True` loop zeroes a `go_backwards` layer's masked outputs
    with the mask in input order, not in the reversed order its while loop uses
    (keras/src/backend/tensorflow/rnn.py); `Bidirectional` sets
    `zero_output_for_mask` when it returns sequences. The export follows the
    layer's own loop, so both exports equal the Keras model."""

    def body(x):
        x = keras.layers.Bidirectional(
            keras_lstm.LSTM(3, unroll=True, return_sequences=True)
        )(x)
        options = dict(unroll=True, go_backwards=True, return_sequences=True)
        return keras_lstm.GRU(4, **options)(x)

    model = h.text_model(body, steps=h.STEPS)
    model.layers[-1].zero_output_for_mask = True
    ids, _ = h.right_padded_ids(6, h.STEPS, seed=3)
    report, ops = export_and_check(
        model, tmp_path / "m.tflite", {"ids": ids}, batch_size=2, fallback=fallback
    )
    assert ops.count(FUSED) == 1  # the forward LSTM, masked as its while loop
    assert "unroll=True" in report["layers"]["bidirectional/backward_lstm"]


def test_fused_op_is_wrong_for_holes_so_padding_right_is_documented(tmp_path):
    """The fused path assumes right padding: a hole changes its results. This
    pins the documented limit (and shows the check can fail)."""
    model = h.text_model(lstm_last)
    path = tmp_path / "m.tflite"
    export.export_tflite(model, path, max_length=h.STEPS, padding="right")
    ids, _ = h.right_padded_ids(1, h.STEPS, seed=4)
    ids[0, 1] = 0
    diff = h.max_diff(h.litert_outputs(path, {"ids": ids}), h.keras_out(model, ids))
    assert diff > 1e-3
    # Given such rows to verify on, the export is refused and says what to do.
    with pytest.raises(export.ExportVerificationError, match="with padding=.any."):
        export.export_tflite(
            model, tmp_path / "holes.tflite", max_length=h.STEPS, verify_inputs=[ids]
        )
    assert not (tmp_path / "holes.tflite").exists()


def test_fuse_lstm_false_unrolls_with_builtins(tmp_path):
    model = h.text_model(lstm_last)
    ids, _ = h.right_padded_ids(3, h.STEPS, seed=5)
    report, ops = export_and_check(
        model, tmp_path / "m.tflite", {"ids": ids}, max_length=h.STEPS, fuse_lstm=False
    )
    assert FUSED not in ops and "WHILE" in ops
    assert list(report["layers"].values()) == ["builtin WHILE loop (fuse_lstm=False)"]


def test_one_step_generator_with_state_inputs(tmp_path):
    """Text generation: (char id, h, c) -> (logits, h, c), an initial_state."""
    char = keras.Input((1,), dtype="int32", name="char")
    h_in = keras.Input((8,), name="h")
    c_in = keras.Input((8,), name="c")
    x = keras.layers.Embedding(h.VOCAB, 6)(char)
    x, h_out, c_out = keras_lstm.LSTM(8, return_state=True)(
        x, initial_state=[h_in, c_in]
    )
    logits = keras.layers.Dense(h.VOCAB)(x)
    model = h.randomize(keras.Model([char, h_in, c_in], [logits, h_out, c_out]))
    rng = np.random.default_rng(1)
    rows = {
        "char": rng.integers(0, h.VOCAB, (3, 1)).astype("int32"),
        "h": rng.standard_normal((3, 8)).astype("float32"),
        "c": rng.standard_normal((3, 8)).astype("float32"),
    }
    report, _ = export_and_check(model, tmp_path / "step.tflite", rows)
    (reason,) = report["layers"].values()
    assert "return_state" in reason


@pytest.mark.parametrize("reset_step", [True, False])
def test_fused_model_is_stateless_across_invocations(reset_step, tmp_path, monkeypatch):
    """TFLite keeps the fused op's h and c in variable tensors between calls; the
    export's reset step makes every call start from zeros. Without it, the second
    call starts from the first call's final state (this is what the step fixes)."""
    monkeypatch.setattr(_lowering, "_RESET_STEP", reset_step)
    model = h.text_model(lstm_last)
    path = tmp_path / "m.tflite"
    export.export_tflite(model, path, max_length=h.STEPS, verify=False)
    ids, _ = h.right_padded_ids(2, h.STEPS, seed=8)  # lengths STEPS and 1
    first, second = h.litert_outputs(path, {"ids": ids})[0]  # two calls, batch 1
    want = h.keras_out(model, ids)[0]
    assert np.abs(first - want[0]).max() <= h.ATOL
    second_diff = np.abs(second - want[1]).max()
    if reset_step:
        assert second_diff <= h.ATOL
    else:
        assert second_diff > 1e-3


@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_nan_input_gives_keras_nans_and_leaves_the_next_call_alone(
    go_backwards, tmp_path
):
    """A NaN input gives NaN from its step on, as in Keras (right-padded rows
    through Masking; the other row and the padding stay finite), and the next
    call is exact again: the fused op's state variables would keep the NaN
    (the reset step's 0 * NaN is NaN), making every later call NaN."""
    x = keras.Input((6, 3), batch_size=2, name="x")
    masked = keras.layers.Masking(-1.0)(x)
    layer = keras_lstm.LSTM(4, go_backwards=go_backwards, return_sequences=True)
    model = h.randomize(keras.Model(x, layer(masked)))
    path = tmp_path / "m.tflite"
    report = export.export_tflite(model, path, batch_size=2)
    assert report["fused_lstm_ops"] == 1
    clean = np.random.default_rng(3).standard_normal((2, 6, 3)).astype("float32")
    clean[1, 4:] = -1.0  # row 1 has 4 steps
    bad = clean.copy()
    bad[0, 2, 1] = bad[1, 3, 0] = np.nan  # row 1: at its last valid step
    run = export.tflite_runner(path)
    got, want = run(x=bad)["output_0"], np.asarray(model(bad))
    assert 0 < np.isnan(want).sum() < want.size
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=h.ATOL)  # NaN where both are
    np.testing.assert_allclose(run(x=clean)["output_0"], model(clean), atol=h.ATOL)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_nan_in_masked_padding_changes_nothing(go_backwards, tmp_path):
    """Keras never reads a masked step, so a NaN there changes no output; the
    fused op runs over the padding too, so it must not see that NaN (its last
    valid output is picked by a weighted sum over every step, and its state
    would carry the NaN into the next call). An explicit mask input: through
    Masking, a NaN step is never masked."""
    x = keras.Input((6, 3), batch_size=2, name="x")
    m = keras.Input((6,), batch_size=2, dtype="bool", name="m")
    layer = keras_lstm.LSTM(4, go_backwards=go_backwards, return_sequences=True)
    model = h.randomize(keras.Model([x, m], layer(x, mask=m)))
    rng = np.random.default_rng(3)
    clean = rng.standard_normal((2, 6, 3)).astype("float32")
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False  # row 1 has 4 steps
    path = tmp_path / "m.tflite"
    report = export.export_tflite(model, path, verify_inputs=[clean, mask])
    assert report["fused_lstm_ops"] == 1
    bad = clean.copy()
    bad[1, 5, 0] = np.nan  # in row 1's padding
    run = export.tflite_runner(path)
    want = np.asarray(model([bad, mask]))
    assert not np.isnan(want).any()
    np.testing.assert_allclose(run(x=bad, m=mask)["output_0"], want, atol=h.ATOL)
    np.testing.assert_allclose(
        run(x=clean, m=mask)["output_0"], model([clean, mask]), atol=h.ATOL
    )


def test_keras_own_lstm_export_needs_flex_ops(tmp_path):
    """The baseline of the README table: Keras' own `model.export(format=
    "litert")` of `keras.layers.LSTM` needs Flex ops, which the standalone LiteRT
    interpreter lacks. If a Keras release fixes this, update the README."""
    from ai_edge_litert.interpreter import Interpreter

    x = keras.Input((h.STEPS, 3), batch_size=1)
    model = keras.Model(x, keras.layers.LSTM(4)(x))
    path = tmp_path / "keras.tflite"
    model.export(str(path), format="litert", verbose=False)
    assert "FlexTensorListReserve" in export.tflite_op_names(path)
    with pytest.raises(Exception, match="Flex"):
        Interpreter(model_path=str(path)).allocate_tensors()


def test_composite_function_body_equals_the_layer():
    """The fused function's TF body (what runs if the converter ever stops fusing
    it) computes our LSTM: same sequence and final states as the layer."""
    import tensorflow as tf

    layer = keras_lstm.LSTM(5, return_sequences=True, return_state=True)
    x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype("float32")
    layer.build(x.shape)
    h.randomize(layer)
    zeros = tf.zeros((2, 5))
    cell = layer.cell
    last, sequence, h_t, c_t, _ = _lowering._fused_lstm_function()(
        tf.constant(x), zeros, zeros, cell.kernel, cell.recurrent_kernel, cell.bias
    )
    want = h.keras_out(layer, x)
    assert h.max_diff([sequence.numpy(), h_t.numpy(), c_t.numpy()], want) <= h.ATOL
    assert h.max_diff([last.numpy()], [want[1]]) <= h.ATOL


def test_a_shared_layer_reports_how_each_call_was_lowered(tmp_path):
    """One LSTM called on a masked and an unmasked input: with padding="any"
    the masked call needs the WHILE loop, the other takes the fused op; the
    report names both calls (the second once overwrote the first)."""
    shared = keras_lstm.LSTM(3, name="shared")
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 2), name="b")
    y = keras.layers.Add()([shared(keras.layers.Masking()(a)), shared(b)])
    model = h.randomize(keras.Model([a, b], y))
    report = export.export_tflite(
        model, tmp_path / "m.tflite", max_length=5, padding="any"
    )
    assert report["passed"]
    assert report["layers"] == {
        "shared": "builtin WHILE loop (masked and padding='any' (the fused op "
        "takes no mask))",
        "shared (call 2)": "fused UNIDIRECTIONAL_SEQUENCE_LSTM",
    }
    assert report["ops"]["WHILE"] == 1 and report["fused_lstm_ops"] == 1
