"""The text generation task: corpus, held-out works, one-step model, sampling,
a tiny end-to-end run with exports, and bad input."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tasks.common import ConfigError
from tasks.common.bundled import DATA_DIR
from tasks.text_generation import config as textgen_config
from tasks.text_generation import data, sampling
from tasks.text_generation import export as exporter
from tasks.text_generation import task as textgen

ROOT = Path(__file__).resolve().parents[2]
TF_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow export/tfds path"
)


def tiny_config(tmp_path, **overrides):
    """A model small enough to train in seconds on the bundled works."""
    values = dict(
        units=16,
        embedding_dim=8,
        seq_length=24,
        batch_size=16,
        steps_per_epoch=4,
        epochs=2,
        eval_windows=8,
        learning_rate=1e-2,
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "export"),
        verbose="0",
    )
    values.update(overrides)
    return textgen.TextGenerationConfig(**values)


# The two shortest held-out works (8.5k and 14k characters, against 230k+ by
# default), for tests that check the run's course rather than its scores:
# scoring the whole held-out text took most of their time.
SHORT_HELD_OUT = dict(
    validation_works="passionate_pilgrim", test_works="lovers_complaint"
)


@pytest.fixture(scope="module")
def works():
    return data.load_works()


# Data ---------------------------------------------------------------------------


def test_bundled_corpus_is_the_42_works_and_rebuilds_to_the_same_bytes(works):
    sys.path.insert(0, str(DATA_DIR))
    import build_shakespeare as build

    assert len(works) == 42 and tuple(works) == textgen_config.WORKS
    assert sum(len(t) for t in works.values()) == 5_057_198
    assert {"hamlet", "sonnets", "romeo_and_juliet", "macbeth"} <= set(works)
    assert works["hamlet"].startswith("HAMLET, PRINCE OF DENMARK")
    assert build.encode(works) == (DATA_DIR / data.CORPUS).read_bytes()


def test_held_out_works_never_overlap_training(works):
    config = textgen.TextGenerationConfig()
    validation = textgen_config.parse_names(config.validation_works)
    test = textgen_config.parse_names(config.test_works)
    texts, names = data.split_works(works, validation, test)
    assert sorted(sum(names.values(), [])) == sorted(works)
    assert not set(names["train"]) & (set(validation) | set(test))
    assert not set(validation) & set(test)
    # An independent check on the text itself: no 200-character passage of a
    # held-out split occurs in the training text (the same work under another
    # name would be caught here).
    rng = np.random.default_rng(0)
    for split in ("validation", "test"):
        text = texts[split]
        assert len(text) > 200_000
        for start in rng.integers(0, len(text) - 200, size=40):
            assert text[start : start + 200] not in texts["train"]
    assert (
        texts["validation"] in works["twelfth_night"] + "\n\n" + works["julius_caesar"]
    )


@pytest.mark.parametrize(
    "validation, test, message",
    [
        (["hamlet"], ["hamlet"], "a work is named twice: hamlet"),
        (["hamlet"], ["macbeth", "macbeth"], "a work is named twice: macbeth"),
        (["hamlett"], ["macbeth"], "--validation-works: unknown work(s) hamlett"),
        (["hamlet"], [], "--test-works: name at least one work"),
    ],
)
def test_bad_work_names_are_named(works, validation, test, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        data.split_works(works, validation, test)


def test_vocabulary_maps_rare_and_unseen_characters_to_the_unknown_id():
    vocabulary = data.build_vocabulary("abacabaX\n", min_count=2)
    assert vocabulary == [data.UNKNOWN, "a", "b"]
    assert data.encode("abcé", vocabulary).tolist() == [1, 2, 0, 0]
    assert data.decode([1, 0, 2], vocabulary) == "a\ufffdb"
    with pytest.raises(ValueError, match=r"'c' \(U\+0063\), 'é' \(U\+00E9\)"):
        data.encode("abcé", vocabulary, unknown="error")


def test_random_windows_depend_only_on_seed_epoch_and_index():
    ids = np.arange(1000, dtype="int32")
    a = data.RandomWindows(ids, length=10, batch_size=4, steps=3, seed=7)
    b = data.RandomWindows(ids, length=10, batch_size=4, steps=3, seed=7)
    a.set_epoch(2), b.set_epoch(0), b[0], b.set_epoch(2)
    x, y = a[1]
    np.testing.assert_array_equal(x, b[1][0])
    assert x.shape == y.shape == (4, 10) and len(a) == 3
    np.testing.assert_array_equal(y, x + 1)  # the next character
    a.set_epoch(3)
    assert not np.array_equal(a[1][0], x)


def test_held_out_windows_cover_the_text_without_overlap():
    ids = np.arange(101, dtype="int32")
    x, y = data.held_out_windows(ids, length=10, count=0)
    assert x.shape == (10, 10)
    np.testing.assert_array_equal(x.reshape(-1), np.arange(100))
    np.testing.assert_array_equal(y.reshape(-1), np.arange(1, 101))
    assert data.held_out_windows(ids, length=10, count=3)[0][:, 0].tolist() == [
        0,
        40,
        90,
    ]


# The one-step model --------------------------------------------------------------


def random_model(tmp_path, **overrides):
    config = tiny_config(tmp_path, **overrides)
    model = textgen.build_model(config, vocabulary_size=30)
    rng = np.random.default_rng(1)
    model.set_weights([0.3 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


@pytest.mark.parametrize(
    "rnn, cell, layers",
    [("lstm", "custom", 2), ("gru", "custom", 1), ("lstm", "keras", 1)],
)
def test_one_step_model_equals_the_full_sequence_model(tmp_path, rnn, cell, layers):
    model = random_model(tmp_path, rnn=rnn, cell=cell, layers=layers, dropout=0.3)
    text = np.random.default_rng(2).integers(1, 30, size=(1, 40)).astype("int32")
    expected = keras.ops.convert_to_numpy(model(text, training=False))[0]
    step_model = sampling.state_model(model, steps=1)
    step, states = sampling.keras_step(step_model), sampling.zero_states(step_model)
    assert list(states) == (["h", "c"] if rnn == "lstm" else ["h"])
    assert states["h"].shape == (1, layers, 16)
    got = []
    for t in range(text.shape[1]):
        logits, states = step(text[:, t : t + 1], states)
        got.append(logits[0])
    np.testing.assert_allclose(np.array(got), expected, atol=1e-5)


def test_one_step_model_computes_in_float32_after_mixed_precision(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")  # reset by conftest
    step_model = sampling.state_model(random_model(tmp_path), steps=1)
    assert {layer.compute_dtype for layer in step_model.layers[3:]} == {"float32"}
    assert all(output.dtype == "float32" for output in step_model.outputs)


def test_streamed_cross_entropy_equals_the_cross_entropy_of_the_whole_text(tmp_path):
    model = random_model(tmp_path, layers=2)
    ids = np.random.default_rng(3).integers(1, 30, size=61).astype("int32")
    logits = keras.ops.convert_to_numpy(model(ids[None, :-1], training=False))[0]
    logits = logits.astype("float64")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_p[np.arange(60), ids[1:]])
    stream = sampling.state_model(model, steps=None)
    nats, count = sampling.streamed_cross_entropy(stream, ids, streams=1, chunk=7)
    assert count == 60
    assert nats == pytest.approx(expected, abs=1e-5)


# Sampling -------------------------------------------------------------------------


def test_sampler_follows_softmax_over_temperature_and_top_k():
    logits = np.log(np.array([5.0, 1.0, 2.0, 3.0, 4.0]))  # id 0 = unknown
    rng = np.random.default_rng(0)
    draws = np.array([sampling.sample(logits, rng, 1.0) for _ in range(20000)])
    assert 0 not in draws
    freq = np.bincount(draws, minlength=5)[1:] / len(draws)
    np.testing.assert_allclose(freq, np.array([1, 2, 3, 4]) / 10, atol=0.01)
    sharp = [sampling.sample(logits, rng, 0.5) for _ in range(20000)]
    freq = np.bincount(sharp, minlength=5)[1:] / len(sharp)
    np.testing.assert_allclose(freq, np.array([1, 4, 9, 16]) / 30, atol=0.01)
    top2 = {sampling.sample(logits, rng, 1.0, top_k=2) for _ in range(2000)}
    assert top2 == {3, 4}
    assert {sampling.sample(logits, rng, 5.0, top_k=1) for _ in range(50)} == {4}


def test_generation_is_reproducible_with_a_seed(tmp_path):
    step_model = sampling.state_model(random_model(tmp_path), steps=1)
    step = sampling.keras_step(step_model)

    def run(seed):
        states = sampling.zero_states(step_model)
        return sampling.generate(step, states, [3, 4], 60, 0.8, 5, seed)

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert all(0 < i < 30 for i in run(1))


@pytest.mark.parametrize(
    "length, temperature, top_k, message",
    [
        (0, 0.8, None, "--length=0: must be a positive integer"),
        (-5, 0.8, None, "--length=-5: must be a positive integer"),
        (10, 0.0, None, "--temperature=0.0: must be > 0"),
        (10, -1.0, None, "--temperature=-1.0: must be > 0"),
        (10, float("nan"), None, "--temperature=nan: must be > 0"),
        (10, 0.8, 0, "--top-k=0: must be an integer >= 1"),
    ],
)
def test_bad_sampling_options_are_named(length, temperature, top_k, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sampling.check_sampling(length, temperature, top_k)


# End to end -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run with its export, shared by the tests below (scoring the
    short held-out works: the default ones, 300k+ characters, took most of
    its time; test_held_out_works_never_overlap_training checks those)."""
    tmp_path = tmp_path_factory.mktemp("textgen")
    config = tiny_config(tmp_path, layers=2, dropout=0.1, **SHORT_HELD_OUT)
    model, run, metrics = textgen.train(config)
    return config, model, run, metrics


def test_tiny_run_writes_scores_and_every_artifact(trained):
    config, model, run, metrics = trained
    for name in ("config.json", "history.csv", "metrics.json", "loss.png"):
        assert (run.path / name).is_file(), name
    for split in ("validation", "test"):
        nats = metrics[f"{split}_nats_per_char"]
        assert 0 < nats < math.log(metrics["vocabulary_size"]) + 0.5
        assert metrics[f"{split}_bits_per_char"] == pytest.approx(nats / math.log(2))
        scored = metrics[f"{split}_characters_scored"]
        assert (
            metrics["characters"][split] - 32 <= scored < metrics["characters"][split]
        )
    assert metrics["works"]["validation"] == ["passionate_pilgrim"]
    assert metrics["works"]["test"] == ["lovers_complaint"]
    assert metrics["steps_run"] == 8
    assert metrics["sample"].startswith("ROMEO:") and len(metrics["sample"]) == 306
    saved = json.loads((run.path / "metrics.json").read_text())
    assert saved["test_nats_per_char"] == pytest.approx(metrics["test_nats_per_char"])


@TF_ONLY
def test_exported_generators_give_the_keras_text(trained):
    config, model, _, _ = trained
    folder = Path(config.export_dir)
    assert json.loads((folder / "task.json").read_text()) == {"task": "text_generation"}
    report = json.loads((folder / "export_report.json").read_text())
    assert report["keras_reload_max_abs_diff"] <= 1e-5
    assert report["saved_model_max_abs_diff"] <= 1e-5
    assert report["tflite_max_abs_diff"] <= 1e-5
    assert not [op for op in report["tflite_ops"] if op.startswith("Flex")]
    keras_text = report["check_sample"]["keras_text"]
    assert report["saved_model_text"] == report["tflite_text"] == keras_text
    assert len(keras_text) == 200

    args = dict(temperature=0.8, top_k=10, seed=5)
    a = exporter.generate(folder, "ROMEO:", 120, runtime="keras", **args)
    b = exporter.generate(folder, "ROMEO:", 120, runtime="tflite", **args)
    assert a == b and a.startswith("ROMEO:") and len(a) == 126
    assert a != exporter.generate(folder, "ROMEO:", 120, **{**args, "seed": 6})


def test_prompt_characters_outside_the_vocabulary(trained):
    folder = Path(trained[0].export_dir)
    with pytest.raises(ValueError, match=r"'é' \(U\+00E9\).*--unknown replace"):
        exporter.generate(folder, "ROMEO: café", 10)
    text = exporter.generate(folder, "café", 10, unknown="replace", seed=3)
    assert text.startswith("café") and len(text) == 14
    # Read as the unknown id: the same sample as any other unknown character.
    assert (
        text[4:] == exporter.generate(folder, "caf@", 10, unknown="replace", seed=3)[4:]
    )


def test_generate_cli_prints_the_same_text_for_the_same_seed(trained):
    folder = trained[0].export_dir
    args = [
        "--prompt",
        "ROMEO:",
        "--length",
        "40",
        "--seed",
        "1",
        "--model-dir",
        folder,
    ]
    result = run_cli("generate", *args)
    assert result.returncode == 0, result.stderr
    expected = exporter.generate(folder, "ROMEO:", 40, temperature=0.8, seed=1)
    assert result.stdout == expected + "\n"


@TF_ONLY
def test_tiny_shakespeare_uses_the_real_tfds_loader_offline(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        texts = data.load_tiny_shakespeare()
        assert all(isinstance(texts[s], str) and len(texts[s]) > 100 for s in texts)
        _, _, metrics = textgen.train(
            tiny_config(
                tmp_path,
                dataset="tiny_shakespeare",
                seq_length=8,
                min_count=1,
                export_dir="",
                epochs=1,
            )
        )
    assert metrics["works"]["test"] == ["tiny_shakespeare/test"]
    assert metrics["characters"] == {s: len(texts[s]) for s in data.SPLITS}


@TF_ONLY
def test_tiny_shakespeare_not_cached_and_offline_fails_at_once(tmp_path, monkeypatch):
    import socket
    import urllib.request

    import tensorflow_datasets as tfds

    from tasks.common.datasets import DatasetError

    def no_network(address, timeout=None):
        raise OSError(f"[Errno -2] Name or service not known: {address[0]}")

    def no_download(self, *args, **kwargs):
        raise AssertionError("tried to download although offline")

    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(DatasetError) as error:
        data.load_tiny_shakespeare(data_dir=str(tmp_path))
    assert str(error.value).startswith(
        f"tfds dataset 'tiny_shakespeare' is not in the TFDS data dir {tmp_path} "
        "and cannot be downloaded (cannot connect to raw.githubusercontent.com:443"
    )
    assert "\n" not in str(error.value)


@TF_ONLY
@pytest.mark.parametrize("damage", ["garbled", "no shards"])
def test_a_damaged_tfds_folder_is_one_error_naming_it(tmp_path, damage):
    """A prepared dataset whose files are damaged (a garbled
    dataset_info.json) or incomplete (its info without the data files, as a
    copy cut short leaves it) names the folder and the fix; tfds raised a
    protobuf ParseError or a KeyError about empty splits."""
    import tensorflow_datasets as tfds

    from tasks.common.datasets import DatasetError

    builder = tfds.builder("tiny_shakespeare", data_dir=str(tmp_path))
    folder = Path(builder.data_dir)
    folder.mkdir(parents=True)
    if damage == "garbled":
        (folder / "dataset_info.json").write_text('{"name": "tiny\x01')
    else:
        builder.info.write_to_directory(str(folder))
    # A bug (here a misspelt keyword) is not blamed on the data.
    from tasks.common.datasets import tfds_load

    with pytest.raises(TypeError, match="as_supervsied"):
        tfds_load("tiny_shakespeare", ["train"], str(tmp_path), as_supervsied=True)
    with pytest.raises(DatasetError) as error:
        data.load_tiny_shakespeare(data_dir=str(tmp_path))
    message = str(error.value)
    assert message.startswith(
        f"tfds dataset 'tiny_shakespeare' in the TFDS data dir {tmp_path} cannot "
        "be read ("
    )
    assert message.endswith(
        f"delete {tmp_path}/tiny_shakespeare and download or copy it again"
    )
    assert "\n" not in message


# Bad input on the command line ------------------------------------------------------


def run_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tasks.text_generation", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--test-works", "hamlett"], "--test-works: unknown work(s) hamlett"),
        (["--units", "0"], "--units=0: must be a positive integer"),
        (["--dropout", "1"], "--dropout=1.0: must be in [0, 1)"),
        (["generate", "--length", "0"], "--length=0: must be a positive integer"),
        (["generate", "--temperature", "0"], "--temperature=0.0: must be > 0"),
        (["generate", "--top-k", "0"], "--top-k=0: must be an integer >= 1"),
        (["generate", "--model-dir", "/nonexistent"], "no trained model at"),
        (["generate", "--unknown", "skip"], "invalid choice: 'skip'"),
        (["generate", "--seed", "-1"], "--seed=-1: must be >= 0"),
    ],
)
def test_bad_input_gets_one_clear_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        textgen.main(args)
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert message in err or message in str(exit_info.value.code), err
    assert "Traceback" not in err


def test_generate_usage_names_the_subcommand(monkeypatch, capsys):
    """Run as `python -m tasks.text_generation generate`, its usage and errors
    say `generate` too (they named only the task)."""
    from tasks.common import config

    monkeypatch.setattr(config, "_program", lambda: "python -m tasks.text_generation")
    with pytest.raises(SystemExit):
        textgen.generate_main(["--length", "x"])
    err = capsys.readouterr().err
    assert "usage: python -m tasks.text_generation generate [-h]" in err
    assert "python -m tasks.text_generation generate: error: argument --length" in err


def test_generate_names_another_tasks_export(tmp_path):
    (tmp_path / "model.keras").write_text("not read")
    (tmp_path / "vocabulary.json").write_text(json.dumps(["", "[UNK]", "movie"]))
    with pytest.raises(
        ValueError,
        match="vocabulary.json does not hold a character vocabulary .*another task's",
    ):
        exporter.generate(tmp_path, "ROMEO:", 5)
    (tmp_path / "vocabulary.json").unlink()
    with pytest.raises(FileNotFoundError, match="not a text_generation export: it has"):
        exporter.generate(tmp_path, "ROMEO:", 5)
    (tmp_path / "task.json").write_text('{"task": "sentiment"}')
    with pytest.raises(ValueError, match="is a sentiment export, not a text_gen"):
        exporter.generate(tmp_path, "ROMEO:", 5)


def test_a_damaged_export_is_named(trained, tmp_path):
    """A damaged file of the export: one error naming it."""
    folder = tmp_path / "export"
    shutil.copytree(trained[0].export_dir, folder)
    (folder / "vocabulary.json").write_text('["\ufffd", "ab"]')
    with pytest.raises(ValueError, match="vocabulary.json does not hold a char"):
        exporter.generate(folder, "ROMEO:", 5)
    shutil.copy(Path(trained[0].export_dir) / "vocabulary.json", folder)
    model_file = folder / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"model.keras is not a .keras file"):
        exporter.generate(folder, "ROMEO:", 5)
    if keras.backend.backend() != "tensorflow":
        # An export made here has no generator.tflite: named, with the way out.
        with pytest.raises(FileNotFoundError, match="use --runtime keras"):
            exporter.generate(folder, "ROMEO:", 5, runtime="tflite")
        return
    tflite = folder / "generator.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    with pytest.raises(ValueError, match="generator.tflite cannot be loaded by LiteRT"):
        exporter.generate(folder, "ROMEO:", 5, runtime="tflite")
    (folder / "generator.tflite.json").write_text("{}")
    with pytest.raises(ValueError, match="generator.tflite.json does not hold"):
        exporter.generate(folder, "ROMEO:", 5, runtime="tflite")
    tflite.unlink()
    with pytest.raises(FileNotFoundError, match="generator.tflite is missing: only"):
        exporter.generate(folder, "ROMEO:", 5, runtime="tflite")


def test_a_min_count_that_keeps_no_characters_is_named(tmp_path):
    config = textgen.TextGenerationConfig(min_count=10**8, runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--min-count=100000000: keeps 0 char"):
        textgen.load_data(config)


class Killed(Exception):
    pass


class KillMidEpoch(keras.callbacks.Callback):
    """Stands in for a killed process: stops training inside epoch 1."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (1, 1):
            raise Killed("killed in epoch 1")


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    overrides = dict(epochs=3, export_dir="", dropout=0.2, **SHORT_HELD_OUT)
    _, _, whole = textgen.train(tiny_config(tmp_path / "a", **overrides))
    with pytest.raises(Killed):
        textgen.train(
            tiny_config(tmp_path / "b", **overrides), extra_callbacks=[KillMidEpoch()]
        )
    keras.utils.clear_session()
    _, _, resumed = textgen.train(
        tiny_config(tmp_path / "b", resume="latest", **overrides)
    )
    for key in (
        "validation_nats_per_char",
        "test_nats_per_char",
        "best_val_loss_subset",
    ):
        assert whole[key] == pytest.approx(resumed[key], abs=1e-6), key
    assert whole["sample"] == resumed["sample"]


def test_a_budget_stopped_run_resumed_keeps_saying_so(tmp_path):
    """A finished run resumed trains nothing; metrics.json still says that
    the time budget ended its training."""
    options = dict(epochs=3, max_minutes=1e-6, export_dir="", **SHORT_HELD_OUT)
    _, run, metrics = textgen.train(tiny_config(tmp_path, **options))
    assert metrics["stopped_by_time_budget"] and metrics["epochs_run"] == 1
    resumed = tiny_config(tmp_path, resume=str(run.path), **options)
    _, _, again = textgen.train(resumed)
    assert again["stopped_by_time_budget"] and again["epochs_run"] == 1


def test_time_budget_decides_live_as_it_replays_from_history():
    """The live decision after each epoch (from the logs' epoch_seconds, as
    history.csv records them) equals the one a resumed run replays from those
    rows, so a run killed after any epoch's backup stops where it would have."""
    seconds = [7.0, 2.5, 3.0, 2.0, 4.0, 1.0]

    class Model:
        stop_training = False

    live = textgen.TimeBudget(20 / 60)  # 20 s
    live.set_model(Model())
    for epoch, value in enumerate(seconds):
        live.on_epoch_end(epoch, {"epoch_seconds": value, "loss": 1.0})
        rows = [{"epoch_seconds": str(v)} for v in seconds[: epoch + 1]]
        replayed = textgen.TimeBudget(20 / 60).stopped_before(rows)
        assert live.model.stop_training == replayed, epoch
        # The reference: stop when one more epoch at the mean pace passes 20 s.
        spent = sum(seconds[: epoch + 1])
        assert replayed == (spent + spent / (epoch + 1) > 20), epoch


@pytest.mark.parametrize("past_seconds, epochs_run", [(40_000, 1), (20_000, 3)])
def test_a_resumed_run_counts_its_earlier_sessions_time(
    tmp_path, past_seconds, epochs_run
):
    """--max-minutes 1000 (60,000 s) with a first epoch of `past_seconds`: the
    uninterrupted run would stop after it when one more epoch at that pace
    passes the budget (40,000 s), else train on (20,000 s). A resumed run
    decides the same from history.csv, instead of starting a fresh budget."""
    config = dict(epochs=3, max_minutes=1000, export_dir="", **SHORT_HELD_OUT)
    with pytest.raises(Killed):
        textgen.train(tiny_config(tmp_path, **config), extra_callbacks=[KillMidEpoch()])
    (run,) = (tmp_path / "runs" / "text_generation").iterdir()
    history = (run / "history.csv").read_text().splitlines()
    column = history[0].split(",").index("epoch_seconds")
    row = history[1].split(",")
    row[column] = str(past_seconds)
    (run / "history.csv").write_text("\n".join([history[0], ",".join(row), ""]))
    keras.utils.clear_session()
    _, _, resumed = textgen.train(tiny_config(tmp_path, resume="latest", **config))
    assert resumed["epochs_run"] == epochs_run
    assert resumed["stopped_by_time_budget"] == (epochs_run == 1)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's CPU allocator"
)
@pytest.mark.parametrize(
    "module,setting,pooled",
    [
        ("tasks.text_generation", None, True),
        ("tasks.text_generation", "false", False),
        ("tasks.sentiment", None, False),
    ],
    ids=["text-generation", "opted-out", "other-task"],
)
def test_text_generation_uses_tensorflows_pooled_cpu_allocator(module, setting, pooled):
    """Importing the text-generation task turns on TensorFlow's BFC CPU
    allocator (NOTES section 24), which alone reports CPU allocator statistics;
    TF_CPU_ALLOCATOR_USE_BFC=false keeps the default, and other tasks leave it
    alone. In a fresh process, since TensorFlow reads the variable once."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = setting
    code = (
        f"import {module}, tensorflow as tf\n"
        "tf.matmul(tf.ones([256, 256]), tf.ones([256, 256])).numpy()\n"
        "try:\n"
        "    print(tf.config.experimental.get_memory_info('CPU:0')['peak'] > 0)\n"
        "except ValueError:\n"
        "    print('no statistics')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    want = "True" if pooled else "no statistics"
    assert result.stdout.strip().splitlines()[-1] == want
