"""The sentiment task: data, tokenizer, a tiny end-to-end run, resume, predict."""

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_lstm
from tasks.common.bundled import DATA_DIR
from tasks.sentiment import data, text
from tasks.sentiment import task as sentiment
from tests.tasks.helpers import assert_cosine_over_all_steps

ROOT = Path(__file__).resolve().parents[2]
TF_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow export/tfds path"
)


def tiny_config(tmp_path, **overrides):
    """A model small enough to train in seconds on the bundled data."""
    values = dict(
        embedding_dim=8,
        units=4,
        max_tokens=500,
        batch_size=32,
        steps_per_epoch=6,
        epochs=2,
        learning_rate=2e-2,
        dropout=0.0,
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "export"),
        verbose="0",
    )
    values.update(overrides)
    return sentiment.SentimentConfig(**values)


# Data ---------------------------------------------------------------------------


def test_tokenizer_on_hand_made_examples():
    assert text.tokenize("It's a MUST-see, 10/10!") == [
        "it's", "a", "must", "-", "see", ",", "10", "/", "10", "!",
    ]  # fmt: skip
    assert text.tokenize("  ") == []
    assert text.tokenize("Café naïve") == ["caf", "é", "na", "ï", "ve"]


def test_vocabulary_comes_from_the_training_split_only():
    vocabulary = text.build_vocabulary(["b a b", "c b"], max_tokens=10)
    assert vocabulary == ["", "[UNK]", "b", "a", "c"]
    assert text.build_vocabulary(["b a b", "c b"], max_tokens=3) == ["", "[UNK]", "b"]
    ids = text.encode(["a z b", "", "b b b b b"], vocabulary, length=4)
    assert ids.tolist() == [[3, 1, 2, 0], [1, 0, 0, 0], [2, 2, 2, 2]]

    splits = data.load_rotten_tomatoes()
    prepared = sentiment.load_data(tiny_config(Path("/tmp"), max_tokens=10**6))
    train_tokens = {t for s in splits["train"][0] for t in text.tokenize(s)}
    test_tokens = {t for s in splits["test"][0] for t in text.tokenize(s)}
    assert set(prepared.vocabulary[2:]) <= train_tokens
    assert test_tokens - train_tokens, "the test split has words never seen in train"
    assert not (test_tokens - train_tokens) & set(prepared.vocabulary)


def test_bundled_split_is_deduplicated_stratified_and_reproducible():
    sys.path.insert(0, str(DATA_DIR))
    import build_rotten_tomatoes as build

    raw = gzip.decompress((DATA_DIR / "rotten_tomatoes.csv.gz").read_bytes())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert len(rows) == 12751
    keys = [row["text"].casefold() for row in rows]
    assert len(set(keys)) == len(keys), "a text appears twice (so maybe in two splits)"
    labels = np.array([int(row["label"]) for row in rows])
    stored = np.array([row["split"] for row in rows])
    assert np.array_equal(build.stratified_split(labels), stored)
    for split, share in build.FRACTIONS.items():
        assert abs(np.mean(stored == split) - share) < 0.002
        assert abs(labels[stored == split].mean() - labels.mean()) < 0.002
    loaded = data.load_rotten_tomatoes()
    assert [len(loaded[s][0]) for s in data.SPLITS] == [10200, 1275, 1276]


@TF_ONLY
def test_tensorflow_tokenizer_gives_the_same_ids_as_python():
    import tensorflow as tf

    vocabulary = ["", "[UNK]", "it's", "a", "!", "good", "é", "film", "-", "caf"]
    texts = [
        "",
        "It's a GOOD film!",
        "Café\tfilm\n\n-good-\v\f",
        "ÉTÉ film 日本 🎬 ★",
        "  spaces   everywhere  ",
        "good " * 50,
    ]
    table = text.tf_vocabulary_table(vocabulary)
    got = text.tf_token_ids(tf.constant(texts), table, 12).numpy()
    assert np.array_equal(got, text.encode(texts, vocabulary, 12))


# Training -----------------------------------------------------------------------


def read_history(run):
    with open(run.history) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run with its export, shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("sentiment")
    keras.utils.set_random_seed(1234)
    config = tiny_config(tmp_path, epochs=3, steps_per_epoch=20)
    model, run, metrics = sentiment.train(config)
    return config, model, run, metrics


def test_tiny_run_learns_and_writes_every_artifact(trained):
    config, model, run, metrics = trained
    losses = [float(row["loss"]) for row in read_history(run)]
    assert losses[-1] < losses[0] - 0.02, losses
    seconds = [float(row["epoch_seconds"]) for row in read_history(run)]
    assert len(seconds) == 3 and min(seconds) > 0
    assert sum(seconds) <= metrics["train_seconds_this_session"] + 0.1  # fit's time
    for name in (
        "config.json",
        "history.csv",
        "metrics.json",
        "loss.png",
        "accuracy.png",
        "best.keras",
        "vocabulary.json",
    ):
        assert (run.path / name).is_file(), name
    saved = json.loads((run.path / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert json.loads((run.path / "config.json").read_text())["units"] == 4
    export = Path(config.export_dir)
    assert json.loads((export / "task.json").read_text()) == {"task": "sentiment"}
    report = json.loads((export / "export_report.json").read_text())
    assert report["keras_reload_max_abs_diff"] <= 1e-5
    if keras.backend.backend() == "tensorflow":
        assert report["saved_model_max_abs_diff"] <= 1e-5
        assert report["saved_model_vs_python_tokenizer_max_abs_diff"] <= 1e-5
        assert report["tflite_max_abs_diff"] <= 1e-5
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in report["tflite_ops"]
        served = serve_in_fresh_process(export / "saved_model", ["", "Superb!"])
        vocabulary = json.loads((export / "vocabulary.json").read_text())
        ids = text.encode(["", "Superb!"], vocabulary, metrics["length_cap"])
        expected = model.predict(ids, verbose=0).reshape(-1)
        np.testing.assert_allclose(served, expected, atol=1e-5)


def serve_in_fresh_process(path, texts):
    """Raw strings through the SavedModel, in a process without keras_lstm."""
    script = (
        "import json, sys, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(path)!r})\n"
        "assert 'keras_lstm' not in sys.modules and 'tasks' not in sys.modules\n"
        f"out = model.signatures['serving_default'](text=tf.constant({texts!r}))\n"
        "print(json.dumps(out['output_0'].numpy().reshape(-1).tolist()))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


CHECK_TEXTS = ["very good film !", "dull , dull , bad", ""]


def assert_tflite_predicts_like(model, vocabulary, export_dir):
    """The export's model.tflite (one row per call) against `model` on
    CHECK_TEXTS, within 1e-5; returns `model`'s predictions."""
    from keras_lstm import export as lite

    ids = text.encode(CHECK_TEXTS, vocabulary, 12)
    expected = model.predict(ids, verbose=0).reshape(-1)
    run = lite.tflite_runner(export_dir / "model.tflite")
    rows = [run(token_ids=ids[i : i + 1])["output_0"] for i in range(len(ids))]
    np.testing.assert_allclose(np.concatenate(rows).reshape(-1), expected, atol=1e-5)
    return expected


@TF_ONLY
def test_mixed_precision_model_exports_a_float32_copy(tmp_path):
    """--mixed-precision: model.keras stays the trained (mixed) model; the
    SavedModel and .tflite come from a float32 copy of it, which computes what
    a float32 model built alike with the same weights computes."""

    config = tiny_config(tmp_path, mixed_precision=True, layers=2)
    vocabulary = ["", "[UNK]", "good", "bad", "film", "very", "dull", "!"]
    keras.config.set_dtype_policy("mixed_bfloat16")  # as a run sets it
    model = sentiment.build_model(config, len(vocabulary), 12)
    keras.config.set_dtype_policy("float32")
    reference = sentiment.build_model(config, len(vocabulary), 12)
    reference.set_weights(model.get_weights())
    keras.config.set_dtype_policy("mixed_bfloat16")  # still set at export time

    report = sentiment.export(model, vocabulary, 12, str(tmp_path / "export"))
    assert report["exported_float32_copy_of"] == "mixed_bfloat16"
    assert report["tflite_max_abs_diff"] <= 1e-5
    assert report["saved_model_vs_python_tokenizer_max_abs_diff"] <= 1e-5
    saved = keras.saving.load_model(tmp_path / "export" / "model.keras")
    wrappers = [x for x in saved.layers if isinstance(x, keras.layers.Bidirectional)]
    policies = [x.forward_layer.dtype_policy.name for x in wrappers]
    assert policies == ["mixed_bfloat16"] * 2
    expected = assert_tflite_predicts_like(reference, vocabulary, tmp_path / "export")
    # In this process (the tiny run's test serves an export in a fresh one).
    import tensorflow as tf

    saved = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    served = saved.signatures["serving_default"](text=tf.constant(CHECK_TEXTS))
    np.testing.assert_allclose(
        served["output_0"].numpy().reshape(-1), expected, atol=1e-5
    )


@TF_ONLY
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_builtin_cell_model_exports_through_keras_lstm_twins(rnn, tmp_path):
    """--cell keras: model.keras keeps the built-in layers; the SavedModel and
    .tflite (which the built-ins' loop cannot give without Flex ops) come from
    a copy with our layers, and equal the trained built-in model."""

    config = tiny_config(tmp_path, cell="keras", rnn=rnn)
    vocabulary = ["", "[UNK]", "good", "bad", "film", "very", "dull", "!"]
    model = sentiment.build_model(config, len(vocabulary), 12)
    report = sentiment.export(model, vocabulary, 12, str(tmp_path / "export"))
    assert report["exported_keras_lstm_twins_of"] == [
        f"bidirectional/{side}_{rnn}" for side in ("backward", "forward")
    ]
    assert report["keras_lstm_twins_max_abs_diff"] <= 1e-5
    saved = keras.saving.load_model(tmp_path / "export" / "model.keras")
    (wrapper,) = [x for x in saved.layers if isinstance(x, keras.layers.Bidirectional)]
    assert type(wrapper.forward_layer).__module__.startswith("keras.src.layers.rnn")
    assert_tflite_predicts_like(model, vocabulary, tmp_path / "export")


class Killed(Exception):
    pass


class KillMidEpoch(keras.callbacks.Callback):
    """Stands in for a killed process: stops training inside an epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Killed(f"killed in epoch {self.epoch} after batch {batch}")


def test_fit_feeds_tensorflow_untuned_tf_data(tmp_path, monkeypatch):
    """On tensorflow (no --distribute) `tasks.common.fit` hands Keras the train and
    validation batches through `for_tensorflow_fit`; other backends get the
    PyDatasets themselves."""
    from tasks.common import training

    wrapped = []

    def spy(batches):
        wrapped.append(batches)
        return real(batches)

    real = training.for_tensorflow_fit
    monkeypatch.setattr(training, "for_tensorflow_fit", spy)
    sentiment.train(tiny_config(tmp_path, epochs=1, steps_per_epoch=2, export_dir=""))
    if keras.backend.backend() == "tensorflow":
        assert [type(b).__name__ for b in wrapped] == ["ArrayBatches"] * 2
        assert len(wrapped[0]) == 2 and len(wrapped[1]) > 2  # train, validation
    else:
        assert wrapped == []


def test_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    overrides = dict(epochs=3, steps_per_epoch=5, export_dir="", dropout=0.3)
    _, whole_run, whole = sentiment.train(tiny_config(tmp_path / "a", **overrides))

    config = tiny_config(tmp_path / "b", **overrides)
    with pytest.raises(Killed):
        sentiment.train(config, extra_callbacks=[KillMidEpoch(epoch=1, batch=2)])
    keras.utils.clear_session()
    resumed_config = tiny_config(tmp_path / "b", resume="latest", **overrides)
    _, resumed_run, resumed = sentiment.train(resumed_config)

    assert len(read_history(resumed_run)) == 3
    for row_a, row_b in zip(read_history(whole_run), read_history(resumed_run)):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert float(row_a[key]) == pytest.approx(float(row_b[key]), abs=1e-6)
    for key in ("test_accuracy", "test_loss", "best_val_loss"):
        assert whole[key] == pytest.approx(resumed[key], abs=1e-6)


def test_tensorboard_logs_every_epoch(tmp_path):
    """--tensorboard: event files whose epoch losses are history.csv's."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.util.tensor_util import make_ndarray

    config = tiny_config(
        tmp_path, tensorboard=True, epochs=2, steps_per_epoch=2, export_dir=""
    )
    _, run, _ = sentiment.train(config)
    history = read_history(run)
    for folder, column in (("train", "loss"), ("validation", "val_loss")):
        assert list((run.logs / folder).glob("events.out.tfevents.*")), folder
        events = EventAccumulator(str(run.logs / folder), {"tensors": 0})
        events.Reload()
        logged = [make_ndarray(e.tensor_proto) for e in events.Tensors("epoch_loss")]
        expected = [float(row[column]) for row in history]
        np.testing.assert_allclose(logged, expected, rtol=1e-6)


def test_tensorboard_missing_stops_before_training(tmp_path, monkeypatch):
    """Without the tensorboard package, --tensorboard stops at once with one
    line (it used to train a whole epoch, then raise TBNotInstalledError)."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # not importable
    with pytest.raises(SystemExit) as exit:
        sentiment.main(
            ["--tensorboard", "--runs-dir", str(tmp_path / "runs"), "--export-dir", ""]
            + ["--epochs", "1", "--steps-per-epoch", "1", "--units", "4"]
        )
    assert exit.value.code == (
        "error: --tensorboard: needs the tensorboard package, not installed here: "
        "`pip install tensorboard`, or run without --tensorboard"
    )
    assert not (tmp_path / "runs").exists()


# Predict and bad input ------------------------------------------------------------


def run_cli(*args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tasks.sentiment", *args],
        capture_output=True,
        text=True,
        cwd=kwargs.get("cwd", ROOT),
        env=env,
        timeout=300,
    )


def test_predict_cli_handles_empty_non_ascii_and_long_reviews(trained):
    config, model, _, metrics = trained
    reviews = ["", "Très émouvant — ★★★★ 日本", "a wonderful, moving film " * 40]
    result = run_cli("predict", *reviews, "--model-dir", config.export_dir)
    assert result.returncode == 0, result.stderr
    printed = [float(line.split()[0]) for line in result.stdout.splitlines()]
    length = metrics["length_cap"]
    vocabulary = json.loads((Path(config.export_dir) / "vocabulary.json").read_text())
    expected = model.predict(text.encode(reviews, vocabulary, length), verbose=0)
    assert np.allclose(printed, expected.reshape(-1), atol=6e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "yelp"], "choose from 'rotten_tomatoes', 'imdb'"),
        (["--units", "0"], "--units=0: must be a positive integer"),
        (["--length-percentile", "50"], "--length-percentile=50.0: must be in"),
        (["--dropout", "1"], "--dropout=1.0: must be in [0, 1)"),
    ],
)
def test_bad_input_gets_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sentiment.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_min_count_that_keeps_no_word_stops_before_training(tmp_path, capsys):
    """Only padding and [UNK] left: refused with the flag named (the run went
    on to train and then failed in the export's lookup table), and the run
    folder is not left for --resume latest to pick."""
    argv = ["--min-count", "1000000", "--runs-dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as exit_info:
        sentiment.main(argv + ["--export-dir", str(tmp_path / "export")])
    assert "--min-count=1000000: keeps no word" in str(exit_info.value.code)
    assert not list((tmp_path / "runs").rglob("config.json"))
    assert not (tmp_path / "export").exists()


def test_predict_on_another_tasks_export_is_one_line(tmp_path):
    """A folder with a model.keras that takes something other than token ids
    (here weather-like float windows) is named, not a traceback."""
    x = keras.Input((None, 3))
    keras.Model(x, keras.layers.Dense(1)(keras_lstm.LSTM(2)(x))).save(
        tmp_path / "model.keras"
    )
    (tmp_path / "vocabulary.json").write_text('["", "[UNK]", "good"]')

    def error(folder=tmp_path) -> str:
        with pytest.raises(SystemExit) as exit_info:
            sentiment.main(["predict", "good", "--model-dir", str(folder)])
        return exit_info.value.code

    prefix = f"error: --model-dir={tmp_path}: "
    assert error().startswith(prefix + f"{tmp_path} is not a sentiment export")
    # A weather export has a model.keras but no vocabulary.json: named too,
    # not "[Errno 2] No such file or directory".
    (tmp_path / "vocabulary.json").unlink()
    assert error() == prefix + (
        f"{tmp_path} is not a sentiment export: it has no vocabulary.json "
        "(another task's export?)"
    )
    # An export that says its task (task.json) is named by it.
    (tmp_path / "task.json").write_text('{"task": "weather"}')
    assert "is a weather export, not a sentiment one" in error()
    none = tmp_path / "none"
    assert error(none) == (
        f"error: --model-dir={none}: no trained model at {none / 'model.keras'}: "
        "train one with `python -m tasks.sentiment` (or pass --model-dir)"
    )


def test_a_damaged_export_is_named(trained, tmp_path):
    """A damaged vocabulary.json or model.keras, or the files of two exports:
    one error naming the file (not a JSON parser's bare message, Keras' "File
    not found" for a file that is there, or predictions from a mismatch)."""
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("model.keras", "vocabulary.json", "task.json"):
        shutil.copy(Path(trained[0].export_dir) / name, folder / name)
    words = folder / "vocabulary.json"
    good = words.read_text()
    for content, message in [
        (good[:10], "vocabulary.json is not valid JSON"),
        ("[1, 2, 3]", "vocabulary.json does not hold a vocabulary"),
        ('{"a": 5}', "vocabulary.json does not hold a vocabulary"),
        (json.dumps(json.loads(good) + ["extra"] * 400), "vocabulary.json has .* "
         "entries, but the model's Embedding takes .* ids"),
    ]:  # fmt: skip
        words.write_text(content)
        with pytest.raises(ValueError, match=message):
            sentiment.load_exported(folder)
    words.write_text(good)
    model_file = folder / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"model.keras is not a .keras file"):
        sentiment.load_exported(folder)


def test_bad_input_from_the_command_line_prints_no_traceback():
    result = run_cli("--dataset", "yelp")
    assert result.returncode == 2
    assert "invalid choice: 'yelp'" in result.stderr
    assert "Traceback" not in result.stderr
    # The usage line names the command that was run, not "__main__.py".
    assert "usage: python -m tasks.sentiment [-h]" in result.stderr


def test_corrupt_data_file_names_the_file_and_the_fix(tmp_path, monkeypatch):
    from tasks.common import bundled

    fake = tmp_path / "data"
    fake.mkdir()
    (fake / "SHA256SUMS").write_text((DATA_DIR / "SHA256SUMS").read_text())
    (fake / "rotten_tomatoes.csv.gz").write_bytes(b"not the corpus")
    monkeypatch.setattr(bundled, "DATA_DIR", fake)
    monkeypatch.setattr(bundled.read_bundled, "__defaults__", (fake,), raising=True)
    with pytest.raises(
        bundled.BundledDataError, match="rotten_tomatoes.csv.gz is corrupt"
    ):
        data.load_rotten_tomatoes()


# IMDB through tfds ----------------------------------------------------------------


@TF_ONLY
def test_imdb_uses_the_real_tfds_loader_offline(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        splits = data.load_imdb(seed=3)
        assert [len(splits[s][0]) for s in data.SPLITS] == [36, 4, 40]
        assert all(isinstance(t, str) for t in splits["train"][0])
        _, _, metrics = sentiment.train(
            tiny_config(
                tmp_path, dataset="imdb", epochs=1, steps_per_epoch=2, export_dir=""
            )
        )
    assert metrics["rows"] == {"train": 36, "validation": 4, "test": 40}


def offline(monkeypatch, reachable=False):
    """No network: connecting fails (or succeeds and the download fails), and
    tfds' downloader is never reached."""
    import socket
    import urllib.request

    import requests
    import tensorflow_datasets as tfds

    def connect(address, timeout=None):
        if not reachable:
            raise OSError(f"[Errno -2] Name or service not known: {address[0]}")
        return io.BytesIO()  # has close()

    def download_and_prepare(self, *args, **kwargs):
        if not reachable:
            raise AssertionError("tried to download although offline")
        raise requests.exceptions.ConnectionError("Max retries exceeded")

    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})
    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(
        tfds.core.DatasetBuilder, "download_and_prepare", download_and_prepare
    )


@TF_ONLY
@pytest.mark.parametrize("reachable", [False, True])
def test_imdb_not_cached_and_offline_fails_at_once_naming_the_fix(
    tmp_path, monkeypatch, reachable
):
    from tasks.common.datasets import DatasetError

    offline(monkeypatch, reachable)
    with pytest.raises(DatasetError) as error:
        data.load_imdb(seed=3, data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"tfds dataset 'imdb_reviews' is not in the TFDS data dir {tmp_path / 'tfds'}"
    )
    why = "ConnectionError: Max retries" if reachable else "ai.stanford.edu:80"
    assert why in message
    assert "tfds.builder('imdb_reviews').download_and_prepare()" in message


@TF_ONLY
def test_imdb_offline_from_the_command_line_is_one_line(tmp_path, monkeypatch):
    from tasks.common import datasets

    offline(monkeypatch)
    load = datasets.tfds_load
    monkeypatch.setattr(
        data,
        "tfds_load",
        lambda name, splits, data_dir=None, **kw: load(
            name, splits, str(tmp_path / "tfds"), **kw
        ),
    )
    with pytest.raises(SystemExit) as exit:
        sentiment.main(
            ["--dataset", "imdb", "--runs-dir", str(tmp_path), "--export-dir", ""]
        )
    assert str(exit.value.code).startswith("error: tfds dataset 'imdb_reviews'")
    assert "\n" not in str(exit.value.code)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_never_reaches_the_prediction(tmp_path, pooling):
    """Masking end to end: the same review padded to 10 or 30 tokens agrees."""
    config = tiny_config(tmp_path, pooling=pooling, layers=2)
    short = sentiment.build_model(config, 50, 10)
    long = sentiment.build_model(config, 50, 30)
    long.set_weights(short.get_weights())
    review = np.array([[5, 6, 7, 8, 1, 9]])
    padded = [np.pad(review, ((0, 0), (0, n - 6))) for n in (10, 30)]
    a, b = short.predict(padded[0], verbose=0), long.predict(padded[1], verbose=0)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_cosine_schedule_spans_every_training_step(tmp_path):
    """--lr-schedule cosine decays over epochs x training batches (the model
    needs their number when it is built)."""
    config = tiny_config(
        tmp_path, lr_schedule="cosine", epochs=2, steps_per_epoch=3, export_dir=""
    )
    model, _, metrics = sentiment.train(config)
    assert_cosine_over_all_steps(model, metrics, epochs=2, steps=3)
