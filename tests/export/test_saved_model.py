"""SavedModel export: verified against Keras, and served in a fresh process in
which keras_lstm cannot be imported."""

import json
import subprocess
import sys

import keras
import numpy as np
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
