"""SavedModel export: verified against Keras, and served in a fresh process in
which keras_lstm cannot be imported."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import export
from tests.export import helpers as h

# Runs in a fresh interpreter where importing keras_lstm raises ImportError: load
# each SavedModel, call its serving signature on saved inputs, save the outputs.
SERVE_SCRIPT = """
import json, sys
sys.modules["keras_lstm"] = None  # any import of keras_lstm now fails
import numpy as np
import pytest
import tensorflow as tf

for folder, inputs, outputs in json.loads(sys.argv[1]):
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    arrays = dict(np.load(inputs))
    result = serve(**{k: tf.constant(v) for k, v in arrays.items()})
    np.savez(outputs, **{k: v.numpy() for k, v in result.items()})
print(json.dumps({"keras_lstm": sys.modules["keras_lstm"] is not None}))
"""


def sentiment_parts():
    """Raw strings -> TextVectorization -> masked Bidirectional LSTM -> Dense."""
    texts = ["a fine film", "dull and slow", "fine acting, slow plot", "a film"]
    vectorize = keras.layers.TextVectorization(
        max_tokens=h.VOCAB, output_sequence_length=h.STEPS
    )
    vectorize.adapt(texts)
    ids = keras.Input((h.STEPS,), dtype="int64")
    x = keras.layers.Embedding(h.VOCAB, 6, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(keras_lstm.LSTM(5))(x)
    model = h.randomize(keras.Model(ids, keras.layers.Dense(1)(x)))
    return model, vectorize, np.array(texts + ["slow", ""], dtype=object)


def test_saved_models_serve_in_fresh_process_without_keras_lstm(tmp_path):
    jobs, expected = [], []

    masked = h.text_model(h.bidirectional_stack)
    report = export.export_saved_model(masked, tmp_path / "masked")
    assert report["passed"] and report["max_abs_diff"] <= h.ATOL
    assert [c["case"] for c in report["cases"]][:3] == [
        "random, full length",
        "right-padded, lengths [12, 1, 0, 6, 6, 9]",
        "left padding and holes",
    ]
    ids, _ = h.right_padded_ids(5, 11, seed=9)
    np.savez(tmp_path / "masked_in.npz", ids=ids)
    jobs.append([str(tmp_path / "masked"), str(tmp_path / "masked_in.npz")])
    expected.append(h.keras_out(masked, ids))

    model, vectorize, texts = sentiment_parts()
    report = export.export_saved_model(
        model,
        tmp_path / "sentiment",
        input_signature=[tf.TensorSpec((None,), tf.string, "text")],
        preprocess=vectorize,
        verify_inputs=[texts],
    )
    assert report["passed"]
    more = np.array(["fine fine fine", "unknown words only", "a"], dtype=object)
    np.savez(tmp_path / "sentiment_in.npz", text=more.astype(bytes))
    jobs.append([str(tmp_path / "sentiment"), str(tmp_path / "sentiment_in.npz")])
    expected.append(h.keras_out(model, vectorize(more)))

    for job in jobs:
        job.append(job[1].replace("_in.npz", "_out.npz"))
    run = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, json.dumps(jobs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    imported = json.loads(run.stdout.strip().splitlines()[-1])
    # (`import tensorflow` itself imports keras in TF 2.21; keras_lstm never.)
    assert imported == {"keras_lstm": False}
    for job, want in zip(jobs, expected):
        got = dict(np.load(job[2]))
        assert h.max_diff([got["output_0"]], want) <= h.ATOL


def test_report_next_to_artifact_and_signature_names(tmp_path):
    model = h.text_model(h.gru_stack)
    path = tmp_path / "gru"
    report = export.export_saved_model(model, path)
    assert json.loads((tmp_path / "gru.json").read_text()) == report
    assert report["inputs"] == [
        {"name": "ids", "shape": [None, None], "dtype": "int32"}
    ]
    loaded = tf.saved_model.load(str(path))
    assert {"serve", "serving_default"} <= set(loaded.signatures)
    ids, _ = h.right_padded_ids(4, 6, seed=1)
    got = loaded.signatures["serve"](ids=tf.constant(ids))["output_0"].numpy()
    assert h.max_diff([got], h.keras_out(model, ids)) <= h.ATOL


def test_dict_inputs_in_any_key_order(tmp_path):
    """A functional model on a dict of Inputs whose keys are not sorted: the
    serving signature's named inputs reach the right keys."""
    z = keras.Input((None, 3), name="z")
    a = keras.Input((None, 2), name="a")
    joined = keras.layers.Concatenate()([keras_lstm.LSTM(4)(z), keras_lstm.GRU(3)(a)])
    model = h.randomize(keras.Model({"z": z, "a": a}, joined))
    report = export.export_saved_model(model, tmp_path / "serving")
    assert report["passed"]
    serve = tf.saved_model.load(str(tmp_path / "serving")).signatures["serving_default"]
    rng = np.random.default_rng(0)
    xz = rng.standard_normal((2, 6, 3)).astype("float32")
    xa = rng.standard_normal((2, 6, 2)).astype("float32")
    got = serve(z=tf.constant(xz), a=tf.constant(xa))["output_0"].numpy()
    want = keras.ops.convert_to_numpy(model({"z": xz, "a": xa}))
    assert h.max_diff([got], [want]) <= h.ATOL
    lite = export.export_tflite(model, tmp_path / "m.tflite", max_length=6)
    assert lite["passed"]
    got = h.litert_outputs(tmp_path / "m.tflite", {"z": xz, "a": xa})
    assert h.max_diff(got, [want]) <= h.ATOL


def test_static_batch_and_stateful_models_export_and_keep_their_states(tmp_path):
    """An Input with batch_size=2 (as a stateful layer needs) is verified on
    2 rows; verifying leaves the stateful layer's carried states as they were."""
    x = keras.Input((5, 3), batch_size=2)
    model = h.randomize(keras.Model(x, keras_lstm.LSTM(4, stateful=True)(x)))
    model(np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32"))
    layer = model.layers[-1]
    before = [keras.ops.convert_to_numpy(s) for s in layer.states]
    assert max(np.abs(b).max() for b in before) > 0  # some carried state
    report = export.export_saved_model(model, tmp_path / "serving")
    assert report["passed"] and report["inputs"][0]["shape"] == [2, 5, 3]
    after = [keras.ops.convert_to_numpy(s) for s in layer.states]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_input_names_become_valid_unique_signature_names(tmp_path):
    """A name TF cannot take as a signature argument (a leading underscore,
    non-ASCII, a Python keyword) or a generated one is replaced by
    inputs_<i>, unique even next to an Input explicitly named inputs_0."""
    inputs = [
        keras.Input((None, 2)),  # Keras names it keras_tensor_<n>
        keras.Input((None, 2), name="inputs_0"),
        keras.Input((None, 2), name="_x"),
        keras.Input((None, 2), name="für"),
        keras.Input((None, 2), name="class"),
        keras.Input((None, 2), name="ok_1"),
    ]
    joined = keras.layers.Concatenate()(inputs)
    model = h.randomize(keras.Model(inputs, keras_lstm.GRU(3)(joined)))
    names = ["inputs_0_1", "inputs_0", "inputs_2", "inputs_3", "inputs_4", "ok_1"]
    report = export.export_saved_model(model, tmp_path / "serving")
    assert [i["name"] for i in report["inputs"]] == names
    lite = export.export_tflite(model, tmp_path / "m.tflite", max_length=3)
    assert [i["name"] for i in lite["inputs"]] == names
    assert report["passed"] and lite["passed"]


def xla_compiled_calls(folder) -> int:
    """Calls in a SavedModel's graph that XLA must compile (`_XlaMustCompile`),
    which TF Serving runs only behind --xla_cpu_compilation_enabled."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    library = saved.meta_graphs[0].graph_def.library
    marked = [n for f in library.function for n in f.node_def]  # calls
    marked += list(saved.meta_graphs[0].graph_def.node)
    marked += list(library.function)  # the compiled functions themselves
    return sum(bool(n.attr["_XlaMustCompile"].b) for n in marked)


def test_saved_model_has_no_xla_compiled_calls_like_the_builtins(tmp_path):
    def build(lstm, gru):
        inp = keras.Input((h.STEPS,), dtype="int32")
        x = keras.layers.Embedding(h.VOCAB, 4, mask_zero=True)(inp)
        x = keras.layers.Bidirectional(lstm(5, return_sequences=True))(x)
        return keras.Model(inp, gru(3)(x))

    ours = build(keras_lstm.LSTM, keras_lstm.GRU)
    builtin = build(keras.layers.LSTM, keras.layers.GRU)
    builtin.set_weights(ours.get_weights())
    export.export_saved_model(ours, tmp_path / "ours")
    builtin.export(str(tmp_path / "builtin"), verbose=False)
    assert xla_compiled_calls(tmp_path / "builtin") == 0  # the reference
    assert xla_compiled_calls(tmp_path / "ours") == 0
    if not tf.config.list_logical_devices("GPU"):  # opted in: XLA kept
        report = export.export_saved_model(ours, tmp_path / "ours_xla", xla=True)
        assert report["passed"] and report["xla_compiled_calls"] > 0
        assert xla_compiled_calls(tmp_path / "ours_xla") > 0
    # Where the engine does not apply (float16 compute), xla=True says so.
    inp = keras.Input((h.STEPS, 3))
    half = keras.Model(inp, keras_lstm.LSTM(4, dtype="mixed_float16")(inp))
    with pytest.warns(UserWarning, match="the SavedModel has plain loops"):
        report = export.export_saved_model(half, tmp_path / "half", xla=True, atol=1e-2)
    assert report["xla_compiled_calls"] == 0 == xla_compiled_calls(tmp_path / "half")
    with pytest.raises(ValueError, match="`xla` must be True or False"):
        export.export_saved_model(half, tmp_path / "x", xla="no")
    # Keras' own export traces our layers' inference engine (XLA, on a CPU)
    # unless told, and so does tf.saved_model.save:
    ours.export(str(tmp_path / "plain"), verbose=False)
    if not tf.config.list_logical_devices("GPU"):
        assert xla_compiled_calls(tmp_path / "plain") > 0
    with keras_lstm.fused.disabled():
        ours.export(str(tmp_path / "disabled"), verbose=False)
        tf.saved_model.save(ours, str(tmp_path / "tf_saved"))
    assert xla_compiled_calls(tmp_path / "disabled") == 0
    # ... the layers' own compiled loops (attributes) are not saved with them:
    assert xla_compiled_calls(tmp_path / "tf_saved") == 0
    ids = np.random.default_rng(0).integers(1, h.VOCAB, (2, h.STEPS), dtype="int32")
    ids[0, 4:] = 0
    loaded = tf.saved_model.load(str(tmp_path / "disabled"))
    expected = builtin.predict(ids, verbose=0)
    np.testing.assert_allclose(loaded.serve(ids), expected, atol=1e-5)
