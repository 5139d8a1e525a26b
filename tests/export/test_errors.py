"""Bad input gives clear errors and leaves existing exports untouched; writes
are atomic (no half-written artifact, no temporary leftovers)."""

import json
import warnings

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm import export
from keras_lstm.export import _verify
from tests.export import helpers as h


def lstm_model():
    return h.text_model(lambda x: keras_lstm.LSTM(4)(x))


def snapshot(folder):
    """Every file under `folder` with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_unbuilt_model(fn, tmp_path):
    model = keras.Sequential([keras_lstm.LSTM(4)])
    with pytest.raises(ValueError, match="is not built"):
        fn(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "layer", [keras.layers.LSTM(4), keras.layers.Bidirectional(keras.layers.GRU(4))]
)
def test_builtin_keras_rnn_is_unsupported_for_tflite(layer, tmp_path):
    model = h.text_model(layer)
    with pytest.raises(ValueError, match=r"unsupported layer.*Flex ops.*keras_lstm"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", [keras.layers.LSTM, keras.layers.GRU])
def test_builtin_rnn_models_export_after_replace_builtins(kind, tmp_path):
    """What the refusal suggests: the same model with our layers, whose
    .tflite (builtin ops only) computes what the built-in Keras model does."""
    model = h.text_model(lambda x: keras.layers.Bidirectional(kind(4))(x))
    with pytest.raises(ValueError, match=r"replace_builtins\(model\)"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=h.STEPS)
    ours = keras_lstm.replace_builtins(model)
    report = export.export_tflite(ours, tmp_path / "m.tflite", max_length=h.STEPS)
    assert report["passed"] and not any(op.startswith("Flex") for op in report["ops"])
    ids, _ = h.right_padded_ids(3, h.STEPS, seed=7)
    got = [
        h.litert_outputs(tmp_path / "m.tflite", {"ids": ids[i : i + 1]})[0]
        for i in range(3)
    ]
    want = h.keras_out(model, ids)
    assert h.max_diff([np.concatenate(got)], want) <= h.ATOL


def test_stateful_layer_is_unsupported_for_tflite(tmp_path):
    x = keras.Input((3, 2), batch_size=1)
    model = keras.Model(x, keras_lstm.LSTM(4, stateful=True)(x))
    with pytest.raises(ValueError, match="stateful=True"):
        export.export_tflite(model, tmp_path / "m.tflite")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "variable time axis.*max_length"),
        ({"max_length": 0}, "max_length must be a positive int"),
        ({"max_length": 4, "batch_size": 0}, "batch_size must be a positive int"),
        ({"max_length": True}, "max_length must be a positive int; received True"),
        ({"max_length": 4.0}, "max_length must be a positive int; received 4.0"),
        ({"max_length": 4, "atol": float("nan")}, "atol must be a positive number"),
        ({"max_length": 4, "padding": "left"}, "padding must be 'right' or 'any'"),
        ({"max_length": 4, "atol": 0}, "atol must be a positive number"),
        ({"max_length": 4, "fallback": "scan"}, "fallback must be 'while' or 'unroll'"),
    ],
)
def test_bad_tflite_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        export.export_tflite(lstm_model(), tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_numpy_scalars_are_taken_for_sizes_and_tolerance(tmp_path):
    """`max_length=lengths.max()` is a numpy integer; it was refused."""
    lengths = np.array([3, 4])
    report = export.export_tflite(
        lstm_model(),
        tmp_path / "m.tflite",
        max_length=lengths.max(),
        batch_size=np.int32(2),
        atol=np.float32(1e-5),
    )
    assert report["passed"]
    assert report["inputs"][0]["shape"] == [2, 4]
    atol = json.loads((tmp_path / "m.tflite.json").read_text())["atol"]
    assert atol == pytest.approx(1e-5, rel=1e-6)


def test_existing_exports_need_overwrite_and_stay_untouched(tmp_path):
    model = lstm_model()
    export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    export.export_saved_model(model, tmp_path / "serving")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_saved_model(model, tmp_path / "serving")
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_whole_export_without_leftovers(tmp_path):
    first, second = lstm_model(), h.randomize(lstm_model(), seed=1)
    path = tmp_path / "m.tflite"
    export.export_tflite(first, path, max_length=4)
    export.export_saved_model(first, tmp_path / "serving")
    old = path.read_bytes()
    report = export.export_tflite(second, path, max_length=4, overwrite=True)
    export.export_saved_model(second, tmp_path / "serving", overwrite=True)
    assert path.read_bytes() != old and report["passed"]
    assert json.loads((tmp_path / "m.tflite.json").read_text()) == report
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.tflite",
        "m.tflite.json",
        "serving",
        "serving.json",
    ]
    ids, _ = h.right_padded_ids(3, 4, seed=0)
    got = h.litert_outputs(path, {"ids": ids})
    assert h.max_diff(got, h.keras_out(second, ids)) <= h.ATOL


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_failed_verification_keeps_the_old_export(fn, tmp_path, monkeypatch):
    model = lstm_model()
    path = tmp_path / "out"
    fn(model, path, **({"max_length": 4} if fn is export.export_tflite else {}))
    before = snapshot(tmp_path)
    monkeypatch.setattr(_verify, "max_abs_diff", lambda a, e: 1.0)
    with pytest.raises(export.ExportVerificationError, match="Nothing was written"):
        fn(
            h.randomize(lstm_model(), seed=3),
            path,
            overwrite=True,
            **({"max_length": 4} if fn is export.export_tflite else {}),
        )
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.json"]


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_a_report_that_cannot_be_written_keeps_the_old_export(
    fn, tmp_path, monkeypatch
):
    """A full disk while writing the JSON report: the error, with the earlier
    export and its report as they were (the new artifact was installed first,
    beside the old report that describes another model)."""
    import pathlib

    kwargs = {"max_length": 4} if fn is export.export_tflite else {}
    path = tmp_path / "out"
    fn(lstm_model(), path, **kwargs)
    before = snapshot(tmp_path)
    real = pathlib.Path.write_text

    def disk_full(self, *args, **kwargs):
        if ".json" in self.name:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "write_text", disk_full)
        with pytest.raises(OSError, match="No space left"):
            fn(h.randomize(lstm_model(), seed=3), path, overwrite=True, **kwargs)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.json"]


def test_verify_inputs_must_match_the_signature(tmp_path):
    with pytest.raises(ValueError, match="verify_inputs has 2 arrays"):
        export.export_saved_model(
            lstm_model(), tmp_path / "s", verify_inputs=[np.ones((1, 3)), np.ones(1)]
        )


def test_overwrite_replaces_only_an_export_of_the_same_kind(tmp_path):
    """overwrite=True never deletes a folder of other things (a task's
    saved_models/<task>/) nor swaps a file for a folder or back."""
    model = lstm_model()
    task = tmp_path / "task"
    (task / "serving").mkdir(parents=True)
    (task / "model.keras").write_bytes(b"trained model")
    (tmp_path / "notes.txt").write_text("keep")
    before = snapshot(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export.export_tflite(model, task, max_length=4, overwrite=True)
    with pytest.raises(FileExistsError, match="not a SavedModel"):
        export.export_saved_model(model, task, overwrite=True)
    with pytest.raises(FileExistsError, match="is a file"):
        export.export_saved_model(model, tmp_path / "notes.txt", overwrite=True)
    assert snapshot(tmp_path) == before
    # An empty folder, or a SavedModel, is replaced.
    export.export_saved_model(model, task / "serving", overwrite=True)
    export.export_saved_model(model, task / "serving", overwrite=True)
    assert (task / "serving" / "saved_model.pb").is_file()
    assert (task / "model.keras").read_bytes() == b"trained model"


def test_an_existing_report_file_needs_overwrite_too(tmp_path):
    """The report goes to <path>.json: a file of that name (say the user's
    model.to_json()) is not replaced without overwrite=True."""
    (tmp_path / "model.json").write_text('{"class_name": "Functional"}')
    with pytest.raises(FileExistsError, match="model.json"):
        export.export_saved_model(lstm_model(), tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]


def test_a_rejected_export_creates_no_folders(tmp_path):
    with pytest.raises(ValueError, match="variable time axis"):
        export.export_tflite(lstm_model(), tmp_path / "a" / "b" / "m.tflite")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("policy", ["mixed_float16", "float64"])
def test_non_float32_layers_are_unsupported_for_tflite(policy, tmp_path):
    """TFLite's builtin recurrent ops compute in float32; the error says so
    instead of failing in the converter."""
    model = h.text_model(lambda x: keras_lstm.GRU(4, dtype=policy)(x))
    with pytest.raises(ValueError, match=f"'{policy}'.*float32 copy"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    assert list(tmp_path.iterdir()) == []


def test_other_non_float32_layers_are_named_before_converting(tmp_path):
    """A float32 LSTM between a mixed-precision Embedding and Dense: their
    float16 Gather / MatMul are no TFLite builtins; named, not a converter
    failure with pages of MLIR ("needs ops outside TFLite's builtins")."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(20, 6, dtype="mixed_float16")(ids)
    x = keras_lstm.LSTM(5, dtype="float32")(x)
    model = keras.Model(ids, keras.layers.Dense(2, dtype="mixed_float16")(x))
    with pytest.raises(
        ValueError, match="'embedding' .dtype policy 'mixed_float16'.*; 'dense'"
    ):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    assert list(tmp_path.iterdir()) == []


def test_float32_layers_built_under_a_mixed_global_policy_export(tmp_path):
    """Under a global mixed_float16 policy, a model whose layers are all given
    float32 exports: its InputLayer (no maths) took the global policy and was
    refused by the check above."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        x = keras.Input((5, 3), dtype="float32", name="x")
        hidden = keras_lstm.LSTM(4, dtype="float32")(x)
        model = keras.Model(x, keras.layers.Dense(2, dtype="float32")(hidden))
    finally:
        keras.config.set_dtype_policy(policy)
    report = export.export_tflite(h.randomize(model), tmp_path / "m.tflite")
    assert report["passed"] and report["fused_lstm_ops"] == 1


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_an_input_signature_without_a_shape_is_named(fn, tmp_path):
    """keras.InputSpec(ndim=3) has no shape: named, not TensorFlow's "as_list()
    is not defined on an unknown TensorShape"."""
    x = keras.Input((None, 3), name="x")
    model = keras.Model(x, keras_lstm.LSTM(4)(x))
    with pytest.raises(ValueError, match="input_signature item 0 .* has no shape"):
        fn(model, tmp_path / "out", input_signature=[keras.InputSpec(ndim=3)])
    assert list(tmp_path.iterdir()) == []


def test_batch_size_must_agree_with_a_static_batch(tmp_path):
    x = keras.Input((5, 3), batch_size=2)
    model = h.randomize(keras.Model(x, keras_lstm.LSTM(4)(x)))
    with pytest.raises(ValueError, match="static batch size of 2 but batch_size=8"):
        export.export_tflite(model, tmp_path / "m.tflite", batch_size=8)
    report = export.export_tflite(model, tmp_path / "m.tflite", batch_size=2)
    assert report["inputs"][0]["shape"] == [2, 5, 3] and report["passed"]


def test_max_length_applies_to_variable_time_axes_only(tmp_path):
    """A second input without a time axis, (batch, 5), keeps its shape."""
    seq = keras.Input((None, 3), name="seq")
    aux = keras.Input((5,), name="aux")
    out = keras.layers.Concatenate()([keras_lstm.LSTM(4)(seq), aux])
    model = h.randomize(keras.Model([seq, aux], out))
    report = export.export_tflite(model, tmp_path / "m.tflite", max_length=8)
    assert [i["shape"] for i in report["inputs"]] == [[1, 8, 3], [1, 5]]
    rng = np.random.default_rng(1)
    rows = {
        "seq": rng.standard_normal((3, 8, 3)).astype("float32"),
        "aux": rng.standard_normal((3, 5)).astype("float32"),
    }
    got = h.litert_outputs(tmp_path / "m.tflite", rows)
    assert h.max_diff(got, h.keras_out(model, rows["seq"], rows["aux"])) <= h.ATOL
    # All static: max_length must name some input's steps (it names none here).
    seq = keras.Input((8, 3), name="seq")
    out = keras.layers.Concatenate()([keras_lstm.LSTM(4)(seq), aux])
    model = h.randomize(keras.Model([seq, aux], out))
    with pytest.raises(ValueError, match="'seq' has 8 timesteps but max_length=9"):
        export.export_tflite(model, tmp_path / "s.tflite", max_length=9)
    report = export.export_tflite(model, tmp_path / "s.tflite", max_length=8)
    assert [i["shape"] for i in report["inputs"]] == [[1, 8, 3], [1, 5]]
    scalar = keras.Input(())  # one number per row: no time axis at all
    out = keras.layers.Dense(2)(keras.layers.Reshape((1,))(scalar))
    model = h.randomize(keras.Model(scalar, out))
    with pytest.raises(ValueError, match="max_length=8, but no input has a time"):
        export.export_tflite(model, tmp_path / "f.tflite", max_length=8)


def test_verify_inputs_are_checked_against_the_signature(tmp_path):
    model = lstm_model()
    with pytest.raises(ValueError, match=r"'ids' has shape \(2, 3\).*pad .* to 4"):
        export.export_tflite(
            model, tmp_path / "m.tflite", max_length=4, verify_inputs=np.ones((2, 3))
        )
    with pytest.raises(ValueError, match="'ids' has dtype float64.*int32"):
        export.export_tflite(
            model, tmp_path / "m.tflite", max_length=4, verify_inputs=np.ones((2, 4))
        )
    floats = h.randomize(keras.Sequential([keras.Input((4, 2)), keras_lstm.GRU(3)]))
    with warnings.catch_warnings():  # the error, not NumPy's overflow warning
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="beyond float32's range"):
            export.export_saved_model(
                floats, tmp_path / "s", verify_inputs=np.full((1, 4, 2), 1e300)
            )
    with pytest.raises(ValueError, match="outside int32's range"):
        export.export_saved_model(
            model, tmp_path / "s", verify_inputs=np.full((1, 4), 2**40)
        )
    assert list(tmp_path.iterdir()) == []
    # int64 ids (here a nested list) are cast to the signature's int32.
    ids, _ = h.right_padded_ids(3, 4, seed=2)
    report = export.export_tflite(
        model, tmp_path / "m.tflite", max_length=4, verify_inputs=[ids.tolist()]
    )
    assert report["cases"][0]["case"] == "given verify_inputs" and report["passed"]


def test_tflite_readers_name_a_path_that_is_not_a_tflite(tmp_path):
    """A folder (a SavedModel, say), a missing path or another file: one
    ValueError naming the path, not IsADirectoryError or LiteRT's "not a
    valid Flatbuffer buffer"."""
    (tmp_path / "notes.tflite").write_text("not a model at all")
    cases = {
        tmp_path: "is not a .tflite file: it is a folder",
        tmp_path / "missing.tflite": "is not a .tflite file: it is missing",
        tmp_path / "notes.tflite": "is not a TFLite model",
    }
    for path, message in cases.items():
        for reader in (export.tflite_op_names, export.tflite_runner):
            with pytest.raises(ValueError, match=message) as error:
                reader(path)
            assert str(path) in str(error.value)
    with pytest.raises(ValueError, match="These bytes are not a TFLite model"):
        export.tflite_runner(b"x" * 16)


def test_tflite_runner_checks_its_inputs(tmp_path):
    model = lstm_model()
    export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    run = export.tflite_runner(tmp_path / "m.tflite")
    ids, _ = h.right_padded_ids(1, 4, seed=4)
    with pytest.raises(ValueError, match=r"'ids' has shape \(1, 3\).*\(1, 4\)"):
        run(ids=ids[:, :3])
    with pytest.raises(ValueError, match=r"takes inputs \['ids'\]; received \['x'\]"):
        run(x=ids)
    got = run(ids=ids.astype("int64"))["output_0"]  # cast, and still usable
    assert h.max_diff([got], h.keras_out(model, ids)) <= h.ATOL
    # Ids outside the Embedding (known from the export's report) are named;
    # negative ones count from the end, as Keras' own model reads them.
    report = json.loads((tmp_path / "m.tflite.json").read_text())
    assert report["inputs"][0]["embedding_rows"] == h.VOCAB
    ids[0, 2] = h.VOCAB
    with pytest.raises(
        ValueError,
        match=rf"'ids' holds id {h.VOCAB} at \[0, 2\].*-{h.VOCAB} to -1 count from",
    ):
        run(ids=ids)
    ids[0, 2] = -3
    got = run(ids=ids)["output_0"]
    assert h.max_diff([got], h.keras_out(model, ids)) <= h.ATOL
    from_bytes = export.tflite_runner((tmp_path / "m.tflite").read_bytes())
    ids[0, 2] = h.VOCAB  # no report to go by: LiteRT's own error
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        from_bytes(ids=ids)


def test_a_failed_check_of_a_diverged_model_says_so(tmp_path, monkeypatch):
    """Weights past 1e4 (a diverged run's): the error says that float32
    rounding tells runtimes apart at that size, not to change padding."""
    model = h.text_model(lambda x: keras_lstm.LSTM(3)(x))
    monkeypatch.setattr(_verify, "max_abs_diff", lambda a, e: 1.0)
    with pytest.raises(export.ExportVerificationError) as info:
        export.export_tflite(model, tmp_path / "a.tflite", max_length=4)
    assert "largest weight" not in str(info.value)
    weights = model.get_weights()
    weights[1][0, 0] = -3e5  # the LSTM's kernel
    model.set_weights(weights)
    with pytest.raises(export.ExportVerificationError) as info:
        export.export_tflite(model, tmp_path / "a.tflite", max_length=4)
    assert "The model's largest weight is 3e+05: at that size float32" in str(
        info.value
    )
    assert "Did training diverge" in str(info.value)
    assert "padding='any'" not in str(info.value)
    assert _verify.largest_weight(model) == 3e5


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_a_failed_export_removes_the_folders_it_created(fn, tmp_path, monkeypatch):
    """Folders made for the export are removed again when it fails later
    (verification), and checks that need no conversion come first."""
    kwargs = {"max_length": 4} if fn is export.export_tflite else {}
    (tmp_path / "kept").mkdir()
    monkeypatch.setattr(_verify, "max_abs_diff", lambda a, e: 1.0)
    with pytest.raises(export.ExportVerificationError):
        fn(lstm_model(), tmp_path / "kept" / "a" / "b" / "out", **kwargs)
    with pytest.raises(ValueError, match="Nothing to verify on"):
        fn(lstm_model(), tmp_path / "c" / "out", preprocess=lambda t: t, **kwargs)
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]


def test_rows_not_a_multiple_of_the_batch_are_refused_before_converting(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(export, "_convert", None)  # would raise TypeError if called
    with pytest.raises(ValueError, match="batches of exactly batch_size=2"):
        export.export_tflite(
            lstm_model(),
            tmp_path / "m.tflite",
            max_length=4,
            batch_size=2,
            verify_inputs=[np.ones((3, 4), "int32")],
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path, error, match",
    [
        (".", ValueError, "names no file or folder"),
        ("", ValueError, "names no file or folder"),
        ("notes.txt/out", NotADirectoryError, "notes.txt' is a file"),
    ],
)
def test_paths_that_cannot_be_an_export(path, error, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    for fn in (export.export_saved_model, export.export_tflite):
        with pytest.raises(error, match=match):
            fn(lstm_model(), path, max_length=4) if fn is export.export_tflite else fn(
                lstm_model(), path
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_link_to_a_saved_model_is_not_called_a_file(tmp_path):
    """overwrite=True replaces a SavedModel folder, not a symbolic link to one."""
    export.export_saved_model(lstm_model(), tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    before = snapshot(tmp_path / "real")
    with pytest.raises(FileExistsError, match="'.*link' is a symbolic link"):
        export.export_saved_model(lstm_model(), tmp_path / "link", overwrite=True)
    assert snapshot(tmp_path / "real") == before
    assert (tmp_path / "link").is_symlink()


def test_a_bool_mask_input_exports_with_verify_inputs(tmp_path):
    """Inputs that cannot be drawn at random (a bool mask) are verified on the
    given verify_inputs; without them the error names the input, before
    anything is written."""
    x = keras.Input((None, 2), name="x")
    mask = keras.Input((None,), dtype="bool", name="m")
    model = h.randomize(keras.Model([x, mask], keras_lstm.LSTM(3)(x, mask=mask)))
    xs = np.random.default_rng(0).standard_normal((2, 4, 2)).astype("float32")
    ms = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    with pytest.raises(ValueError, match="dtype bool for input 'm'"):
        export.export_saved_model(model, tmp_path / "s")
    assert list(tmp_path.iterdir()) == []
    saved = export.export_saved_model(model, tmp_path / "s", verify_inputs=[xs, ms])
    lite = export.export_tflite(
        model, tmp_path / "m.tflite", max_length=4, verify_inputs={"m": ms, "x": xs}
    )
    for report in (saved, lite):
        assert report["cases"][0]["case"] == "given verify_inputs"
        assert not [c for c in report["cases"] if c["case"].startswith("random")]
        assert report["passed"]
    want = h.keras_out(model, xs, ms)
    assert (
        h.max_diff(h.litert_outputs(tmp_path / "m.tflite", {"x": xs, "m": ms}), want)
        <= h.ATOL
    )


def test_preprocess_with_variables_exports_to_both_formats(tmp_path):
    """A tf.Module holding a variable (TFLite tracked it nowhere: 'untracked
    resource'), and a Keras layer not built yet (built inside the trace, its
    weights were graph tensors that cannot be saved)."""
    import tensorflow as tf

    class Shift(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable([0.5, -0.5])

        def __call__(self, t):
            return t + self.v

    x = keras.Input((None, 2), name="x")
    model = h.randomize(keras.Model(x, keras_lstm.LSTM(2)(x)))
    rows = [np.random.default_rng(0).standard_normal((1, 3, 2)).astype("float32")]
    for name, preprocess in [
        ("shift", Shift()),
        ("norm", keras.layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])),
    ]:
        for fn, kwargs in [
            (export.export_saved_model, {}),
            (export.export_tflite, {"max_length": 3}),
        ]:
            report = fn(
                model,
                tmp_path / f"{name}-{fn.__name__}",
                preprocess=preprocess,
                verify_inputs=rows,
                **kwargs,
            )
            assert report["passed"]
    want = keras.ops.convert_to_numpy(model(rows[0] + np.array([0.5, -0.5])))
    got = h.litert_outputs(tmp_path / "shift-export_tflite", {"x": rows[0]})
    assert h.max_diff(got, [want]) <= h.ATOL


def test_an_unbuilt_preprocess_layer_exports_without_verify_inputs(tmp_path):
    """verify=False and no verify_inputs: the layer is built on a blank row
    first, and the SavedModel still computes model(preprocess(x))."""
    import tensorflow as tf

    x = keras.Input((None, 2), name="x")
    model = h.randomize(keras.Model(x, keras_lstm.LSTM(2)(x)))
    norm = keras.layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    export.export_saved_model(model, tmp_path / "s", preprocess=norm, verify=False)
    rows = np.random.default_rng(1).standard_normal((3, 5, 2)).astype("float32")
    serve = tf.saved_model.load(str(tmp_path / "s")).signatures["serving_default"]
    got = serve(x=tf.constant(rows))["output_0"].numpy()
    want = keras.ops.convert_to_numpy(model((rows - [1.0, 2.0]) / [2.0, 3.0]))
    assert h.max_diff([got], [want]) <= h.ATOL


@pytest.mark.parametrize("fallback", ["while", "unroll"])
def test_a_preprocess_that_makes_the_time_axis_dynamic_is_named(fallback, tmp_path):
    """TFLite's loops need the steps when traced; a `preprocess` that trims the
    padding makes them data-dependent. The error names the layer and the axis
    (it was 'None values not supported' from inside the loop), and nothing is
    written."""
    import tensorflow as tf

    model = h.randomize(
        keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),
                keras.layers.Embedding(50, 8, mask_zero=True),
                keras_lstm.GRU(4, name="gru_here"),
                keras.layers.Dense(1),
            ]
        )
    )

    def trim(ids):
        steps = tf.reduce_max(tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1))
        return ids[:, :steps]

    ids = np.array([[3, 4, 0, 0, 0, 0, 0, 0]], "int32")
    with pytest.raises(ValueError, match=r"gru_here'.*\(1, None, 8\).*time size"):
        export.export_tflite(
            model,
            tmp_path / "m.tflite",
            max_length=8,
            preprocess=trim,
            verify_inputs=[ids],
            fallback=fallback,
        )
    assert list(tmp_path.iterdir()) == []


def test_max_length_without_a_time_axis_points_at_preprocess(tmp_path):
    """A string signature has no time axis; the steps come from `preprocess`."""
    import tensorflow as tf

    model = lstm_model()
    vectorize = keras.layers.TextVectorization(max_tokens=50)
    vectorize.adapt(["a b c", "b c d"])
    with pytest.raises(ValueError, match="no input has a time axis.*preprocess"):
        export.export_tflite(
            model,
            tmp_path / "m.tflite",
            max_length=5,
            preprocess=vectorize,
            input_signature=[tf.TensorSpec((None,), tf.string, name="text")],
        )
    assert list(tmp_path.iterdir()) == []


# --- arguments a user may get wrong -------------------------------------------


def two_input_model(as_dict: bool):
    """Inputs x and y of one shape: swapped, the model still runs, so only
    the values tell."""
    x = keras.Input((None, 2), name="x")
    y = keras.Input((None, 2), name="y")
    merged = keras.layers.Concatenate()([keras_lstm.LSTM(3)(x), keras_lstm.GRU(2)(y)])
    model = keras.Model({"x": x, "y": y} if as_dict else [x, y], merged)
    return h.randomize(model)


@pytest.mark.parametrize("as_dict", [True, False])
def test_an_input_signature_in_another_order_is_refused(as_dict, tmp_path):
    """Its specs reach the model by position: listed as (y, x), the served
    model swapped them (1.2 off Keras) and the check, fed the same way,
    passed."""
    import tensorflow as tf

    model = two_input_model(as_dict)
    spec = {n: tf.TensorSpec((None, None, 2), tf.float32, n) for n in "xy"}
    for fn, kwargs in [
        (export.export_saved_model, {}),
        (export.export_tflite, {"max_length": 4}),
    ]:
        with pytest.raises(ValueError, match=r"another order \(\['y', 'x'\]"):
            swapped = [spec["y"], spec["x"]]
            fn(model, tmp_path / "out", input_signature=swapped, **kwargs)
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "sm"
    export.export_saved_model(model, path, input_signature=[spec["x"], spec["y"]])
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 3, 5, 2)).astype("float32")
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = served(x=tf.constant(x), y=tf.constant(y))["output_0"].numpy()
    expected = model({"x": x, "y": y} if as_dict else [x, y])
    assert h.max_diff([got], [keras.ops.convert_to_numpy(expected)]) <= h.ATOL


@pytest.mark.parametrize("names", [["self", "args"], ["inputs", "Inputs"]])
def test_input_names_tensorflow_refuses_are_renamed(names, tmp_path):
    """`self` is the traced method's parameter and TensorFlow compares names in
    lower case: both stopped the export with TensorFlow's own TypeError."""
    inputs = [keras.Input((None, 2), name=n) for n in names]
    model = keras.Model(inputs, keras_lstm.GRU(3)(keras.layers.Concatenate()(inputs)))
    report = export.export_saved_model(model, tmp_path / "sm")
    renamed = [entry["name"] for entry in report["inputs"]]
    expected = ["inputs_0", "args"] if "self" in names else ["inputs", "inputs_1"]
    assert renamed == expected
    assert report["passed"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fuse_lstm": "no"}, r"`fuse_lstm` must be True or False.*'no'"),
        ({"verify": "yes"}, r"`verify` must be True or False"),
        ({"overwrite": None}, r"`overwrite` must be True or False"),
        ({"seed": -1}, r"seed must be an int in \[0, 2\*\*32\); received seed=-1"),
        ({"seed": "a"}, r"seed must be an int"),
        ({"seed": True}, r"seed must be an int"),
        ({"max_length": 0}, r"max_length must be a positive int"),  # path exists
    ],
)
def test_bad_arguments_are_named_before_the_path(kwargs, message, tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"earlier")
    kwargs = {"max_length": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        export.export_tflite(lstm_model(), tmp_path / "m.tflite", **kwargs)
    assert snapshot(tmp_path) == {"m.tflite": b"earlier"}


def test_a_numpy_seed_is_taken_and_written_as_a_number(tmp_path):
    """np.int64 went into the report unconverted: json failed after the
    export was installed, leaving it without its report (or with the old)."""
    report = export.export_tflite(
        lstm_model(), tmp_path / "m.tflite", max_length=4, seed=np.int64(3)
    )
    assert report["seed"] == 3
    assert json.loads((tmp_path / "m.tflite.json").read_text())["seed"] == 3


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_verify_inputs_are_checked_before_conversion(fn, tmp_path):
    """Ids past the Embedding's rows stopped with TensorFlow's or LiteRT's bare
    gather error; zero rows with 'differs by inf'."""
    kwargs = {"max_length": h.STEPS} if fn is export.export_tflite else {}
    ids = np.ones((2, h.STEPS), "int32")
    ids[1, 3] = h.VOCAB
    with pytest.raises(ValueError, match=rf"verify_inputs 'ids' holds id {h.VOCAB}"):
        fn(lstm_model(), tmp_path / "out", verify_inputs=[ids], **kwargs)
    with pytest.raises(ValueError, match="verify_inputs has 0 rows"):
        fn(lstm_model(), tmp_path / "out", verify_inputs=[ids[:0]], **kwargs)
    assert list(tmp_path.iterdir()) == []
