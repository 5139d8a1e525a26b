"""tasks.common: flags from dataclasses, run folders, batches, bundled data."""

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import keras
import numpy as np
import pytest

from tasks import common
from tasks.common import bundled, config, interrupt, runs
from tasks.common.data import ArrayBatches, EpochOrder, for_tensorflow_fit


@dataclasses.dataclass
class Small(common.TrainConfig):
    width: int = common.option(8, "how wide")
    name: str = common.option("a", "which one", choices=("a", "b"))


def test_flags_come_from_the_dataclass(capsys):
    parsed = common.parse(
        Small, ["--width", "3", "--name", "b", "--rnn", "gru", "--mixed-precision"]
    )
    assert (parsed.width, parsed.name, parsed.rnn) == (3, "b", "gru")
    assert parsed.mixed_precision is True and parsed.epochs == Small().epochs
    description = "Small.\n\n    python -m tasks.small        # an example\n"
    with pytest.raises(SystemExit):
        common.parse(Small, ["--help"], description=description)
    help_text = capsys.readouterr().out
    for text in ("--width", "how wide", "--no-mixed-precision", "--clipnorm"):
        assert text in help_text
    # The description's example commands keep their own lines; defaults shown.
    assert "\n    python -m tasks.small        # an example\n" in help_text
    assert "how wide (default: 8)" in help_text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--name", "c"], "invalid choice: 'c' (choose from 'a', 'b')"),
        (["--epochs", "0"], "--epochs=0: must be a positive integer"),
        (["--learning-rate", "-1"], "--learning-rate=-1.0: must be a finite number"),
        (["--learning-rate", "inf"], "--learning-rate: must be a finite number"),
        (["--clipnorm", "nan"], "--clipnorm: must be a finite number, got 'nan'"),
        (["--clipnorm", "x"], "--clipnorm: invalid float value: 'x'"),
        (["--cpu-replicas", "2"], "--cpu-replicas=2: needs --distribute mirrored"),
        (["--batch-size", "x"], "invalid int value: 'x'"),
        (["--seed", "-5"], "--seed=-5: must be in [0, 4294967295]"),
        (["--seed", "4294967296"], "--seed=4294967296: must be in [0, 4294967295]"),
    ],
)
def test_bad_flags_exit_with_a_message_not_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        common.parse(Small, argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# Run with Keras, TensorFlow, JAX and PyTorch made unimportable (None in
# sys.modules), as `python -m tasks.<name>` runs: any import of them raises.
WITHOUT_KERAS = """
import runpy, sys
for name in ("keras", "tensorflow", "jax", "torch"):
    sys.modules[name] = None
sys.argv = ["-m", *sys.argv[1:]]
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "name, command, bad, message",
    [
        ("sentiment", "predict", [], "the following arguments are required: texts"),
        ("text_generation", "generate", ["--length", "0"], "--length=0: must be"),
        ("weather", "predict", [], "the following arguments are required: --csv"),
        ("long_range", "gates", [], "the following arguments are required: review"),
    ],
)
def test_help_and_bad_values_answer_without_importing_keras(
    name, command, bad, message
):
    """`python -m tasks.<name> --help`, its subcommand's `--help` and bad
    values are answered from the task's config module alone: importing Keras
    (TensorFlow) took 7-9 s here before the usage text appeared."""
    root = pathlib.Path(__file__).resolve().parents[2]

    def run(*argv):
        command_line = [sys.executable, "-c", WITHOUT_KERAS, f"tasks.{name}", *argv]
        return subprocess.run(
            command_line, cwd=root, capture_output=True, text=True, timeout=120
        )

    for argv, usage in (
        (["--help"], f"usage: python -m tasks.{name} [-h]"),
        ([command, "--help"], f"usage: python -m tasks.{name} {command} [-h]"),
    ):
        shown = run(*argv)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(usage), shown.stdout
    assert "--batch-size" in run("--help").stdout
    for argv, why in (
        (["--epochs", "0"], "--epochs=0: must be a positive"),
        ([command, *bad], message),
    ):
        refused = run(*argv)
        assert refused.returncode == 2, refused.stderr
        assert why in refused.stderr and "Traceback" not in refused.stderr


def test_run_main_hands_the_command_line_to_the_task(monkeypatch):
    """Valid options, a subcommand's too, reach the task's `main` unchanged;
    invalid ones stop before it (and before its import of Keras)."""
    import importlib

    task = importlib.import_module("tasks.weather.task")
    seen = []
    monkeypatch.setattr(task, "main", seen.append)
    for argv in (["--epochs", "2"], ["predict", "--csv", "recent.csv"]):
        monkeypatch.setattr(sys, "argv", ["-m", *argv])
        config.run_main("tasks.weather")
    assert seen == [["--epochs", "2"], ["predict", "--csv", "recent.csv"]]
    for argv in (["--epochs", "0"], ["predict", "--not-an-option"]):
        monkeypatch.setattr(sys, "argv", ["-m", *argv])
        with pytest.raises(SystemExit) as exit_info:
            config.run_main("tasks.weather")
        assert exit_info.value.code == 2
    assert len(seen) == 2


# A task package made of two in-memory modules whose `main` compiles a function
# with XLA, started through `run_main` as `python -m tasks.<name>` starts one.
XLA_TASK = """
import sys, types
config, task = types.ModuleType("probe.config"), types.ModuleType("probe.task")
config.parse_options = lambda argv: None
exec(
    "def main(argv):\\n"
    "    import tensorflow as tf\\n"
    "    double = tf.function(lambda x: 2 * x, jit_compile=True)\\n"
    "    print(float(double(tf.constant(1.5))))\\n",
    task.__dict__,
)
sys.modules.update({"probe": types.ModuleType("probe"), "probe.config": config,
                    "probe.task": task})
from tasks.common.config import run_main
run_main("probe")
"""


@pytest.mark.parametrize("level", [None, "0"])
def test_run_main_hides_tensorflows_info_lines_unless_asked(level):
    """`run_main` sets TF_CPP_MIN_LOG_LEVEL=1 before the task loads
    TensorFlow, so its C++ INFO lines (here: the XLA service's, at the first
    compile) stay out of Keras' progress bars; a value the user set wins."""
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run(
        [sys.executable, "-c", XLA_TASK],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3.0"]
    lines = [x for x in done.stderr.splitlines() if x.startswith("I")]
    xla_service = [x for x in lines if "XLA service" in x]
    assert len(xla_service) == (0 if level is None else 1), done.stderr[-2000:]


def test_the_seed_limit_is_the_one_keras_seeding_has():
    """--seed's range is checked up front because seeding refuses the rest
    with a NumPy traceback, after the run folder exists."""
    limit = common.config.MAX_SEED
    keras.utils.set_random_seed(limit)
    for bad in (limit + 1, -1):
        with pytest.raises(ValueError):
            keras.utils.set_random_seed(bad)
    assert common.parse(Small, ["--seed", str(limit)]).seed == limit


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    runs.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with runs.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"a": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_run_files_are_strict_json_and_read_back_nan(tmp_path):
    """NaN / inf (a diverged loss) would make metrics.json unreadable to strict
    parsers (JavaScript's JSON.parse, jq); they are written as null."""
    path = tmp_path / "metrics.json"
    data = {
        "val_loss": [0.5, np.float32("nan"), float("inf")],
        "norms": np.array([1.5, -np.inf]),
        "test_mse": np.float64("nan"),
        "epochs": np.int64(3),
        "solved": None,
    }
    runs.write_json(path, data)

    def reject(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(path.read_text(), parse_constant=reject) == {
        "val_loss": [0.5, None, None],
        "norms": [1.5, None],
        "test_mse": None,
        "epochs": 3,
        "solved": None,
    }
    back = runs.read_json(path)
    np.testing.assert_array_equal(back["val_loss"], [0.5, np.nan, np.nan])
    np.testing.assert_array_equal(back["norms"], [1.5, np.nan])
    assert back["test_mse"] is None and back["solved"] is None


def test_only_a_run_that_never_started_training_is_discarded(tmp_path):
    def start(**options):
        return common.start_run("demo", Small(runs_dir=str(tmp_path), **options))[1]

    failed = start()  # stopped before training: config.json only
    assert runs.discard_unstarted_run() == failed.path
    assert not failed.path.exists()
    trained = start()
    (trained.path / "history.csv").write_text("epoch,loss\n0,1.0\n")
    assert runs.discard_unstarted_run() is None and trained.path.exists()
    # A later call that fails before making a folder (a bad --resume) leaves
    # the folder of an earlier call alone, though it holds config.json only.
    earlier = start()
    with pytest.raises(common.ConfigError, match="not a run folder"):
        start(resume=str(tmp_path / "nothing"))
    assert runs.discard_unstarted_run() is None and earlier.path.exists()
    with pytest.raises(common.ConfigError, match="--learning-rate=inf"):
        start(learning_rate=float("inf"))  # refused in Python too
    with pytest.raises(common.ConfigError, match="--clipnorm=nan: must be a finite"):
        start(clipnorm=float("nan"))


def test_run_folders_and_resume_lookup(tmp_path):
    first = runs.new_run(tmp_path, "demo")
    second = runs.new_run(tmp_path, "demo")
    assert first.path != second.path and first.path.parent == tmp_path / "demo"
    (second.path / "config.json").write_text("{}")
    assert runs.find_run(tmp_path, "demo", str(second.path)).path == second.path
    with pytest.raises(ValueError, match="not a run folder"):
        runs.find_run(tmp_path, "demo", str(tmp_path))
    with pytest.raises(ValueError, match="no run of 'other'"):
        runs.find_run(tmp_path, "other", "latest")


def test_latest_run_is_the_last_made_also_past_ten_in_one_second(tmp_path, monkeypatch):
    """new_run suffixes -2, -3, ... within one second; 'latest' is the last one
    made (sorted as text, -10 came before -2)."""
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20261206-120000")
    made = [runs.new_run(tmp_path, "demo").path for _ in range(11)]
    assert made[-1].name == "20261206-120000-11"
    assert runs.find_run(tmp_path, "demo", "latest").path == made[-1]
    later = tmp_path / "demo" / "20261206-120001"
    later.mkdir()
    assert runs.find_run(tmp_path, "demo", "latest").path == later


def test_each_epoch_order_is_a_seeded_permutation():
    x, y = np.arange(10)[:, None], np.arange(10)
    batches = ArrayBatches(x, y, batch_size=4, shuffle=True, seed=7)
    assert len(batches) == 3

    def epoch(e):
        batches.set_epoch(e)
        return np.concatenate([batches[i][1] for i in range(len(batches))])

    e0, e1 = epoch(0), epoch(1)
    assert sorted(e0) == list(range(10)) and sorted(e1) == list(range(10))
    assert not np.array_equal(e0, e1)
    again = ArrayBatches(x, y, batch_size=4, shuffle=True, seed=7)
    again.set_epoch(1)
    assert np.array_equal(np.concatenate([again[i][1] for i in range(3)]), e1)
    assert len(ArrayBatches(x, y, batch_size=4, steps=2)) == 2


needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the tensorflow trainer's input"
)


@needs_tensorflow
def test_tensorflow_fit_input_yields_each_epochs_batches_untuned():
    """`for_tensorflow_fit` gives exactly the PyDataset's batches, in the order of
    the epoch set before each pass (last batch smaller), with autotuning off."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((10, 3, 2)), rng.integers(0, 5, (10, 4)))
    y = rng.standard_normal(10).astype("float32")
    batches = ArrayBatches(x, y, batch_size=4, shuffle=True, seed=7)
    dataset = for_tensorflow_fit(batches)
    assert int(dataset.cardinality()) == len(batches) == 3
    assert dataset.options().autotune.enabled is False
    orders = []
    for epoch in (0, 3, 0):
        batches.set_epoch(epoch)
        got = list(dataset.as_numpy_iterator())
        assert len(got) == 3
        orders.append(np.concatenate([gy for _, gy in got]))
        for index, ((gx0, gx1), gy) in enumerate(got):
            (wx0, wx1), wy = batches[index]
            np.testing.assert_array_equal(gx0, wx0)
            np.testing.assert_array_equal(gx1, wx1)
            np.testing.assert_array_equal(gy, wy)
    assert not np.array_equal(orders[0], orders[1])  # epoch 3 reordered
    np.testing.assert_array_equal(orders[0], orders[2])


@needs_tensorflow
def test_tensorflow_fit_input_trains_like_a_loop_over_the_epoch_orders():
    """Two shuffled epochs of `fit` on `for_tensorflow_fit` (with EpochOrder) end
    with the weights of an explicit loop: set_epoch(e), then train_on_batch on
    batches[0], batches[1], ... of that epoch."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((22, 5)).astype("float32")
    y = rng.standard_normal((22, 1)).astype("float32")

    def model_and_batches():
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        return model, ArrayBatches(x, y, batch_size=8, shuffle=True, seed=5)

    model, batches = model_and_batches()
    model.fit(
        for_tensorflow_fit(batches),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[EpochOrder(batches)],
    )
    loop, loop_batches = model_and_batches()
    for epoch in range(2):
        loop_batches.set_epoch(epoch)
        for index in range(len(loop_batches)):
            loop.train_on_batch(*loop_batches[index])
    for got, want in zip(model.get_weights(), loop.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_plots_are_written(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,.5,.7,.5,.7\n")
    written = common.plot_history(history, tmp_path)
    assert sorted(p.name for p in written) == ["accuracy.png", "loss.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)


def test_plots_replace_their_files_atomically(tmp_path, monkeypatch):
    """A plot whose write fails (disk full, a kill) keeps the previous PNG:
    it is written to a temporary sibling and renamed (it was written in
    place, truncating the old file first)."""
    import matplotlib.figure

    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_loss\n0,.7,.7\n1,.6,.65\n")
    common.plot_history(history, tmp_path)
    before = (tmp_path / "loss.png").read_bytes()

    def disk_full(self, fname, **kwargs):
        pathlib.Path(fname).write_bytes(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    with pytest.raises(OSError, match="No space"):
        common.plot_history(history, tmp_path)
    assert (tmp_path / "loss.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "loss.png"]


def test_bundled_files_match_their_checksums():
    for line in (bundled.DATA_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        data = (bundled.DATA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert bundled.read_bundled(name) == data


def test_missing_or_corrupt_bundled_file_names_the_file_and_the_fix(tmp_path):
    name = "rotten_tomatoes.csv.gz"
    shutil.copy(bundled.DATA_DIR / "SHA256SUMS", tmp_path)
    with pytest.raises(bundled.BundledDataError, match=f"{name} is missing.*git"):
        bundled.read_bundled(name, tmp_path)
    corrupt = bytearray((bundled.DATA_DIR / name).read_bytes())
    corrupt[100] ^= 1
    (tmp_path / name).write_bytes(bytes(corrupt))
    with pytest.raises(bundled.BundledDataError, match=f"{name} is corrupt.*rebuild"):
        bundled.read_bundled(name, tmp_path)


def test_checksum_list_missing_or_in_binary_mode(tmp_path):
    """SHA256SUMS itself gone: an error naming it and the fix (was a
    FileNotFoundError traceback); `sha256sum -b` lines (`digest *name`) read
    as the text-mode ones."""
    name = "rotten_tomatoes.csv.gz"
    shutil.copy(bundled.DATA_DIR / name, tmp_path)
    with pytest.raises(bundled.BundledDataError, match="cannot read .*SHA256SUMS.*git"):
        bundled.read_bundled(name, tmp_path)
    digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64} *other\n{digest} *{name}\n")
    assert bundled.read_bundled(name, tmp_path) == (tmp_path / name).read_bytes()


def test_config_round_trips_through_json():
    original = Small(width=5, rnn="gru")
    assert Small(**json.loads(original.to_json())) == original
    assert config.TrainConfig().validate() is None


def test_cosine_schedule_follows_the_formula_and_counts_optimizer_steps():
    """Peak * ((1 - floor) * (1 + cos(pi * step / total)) / 2 + floor), hand-computed;
    it reads the optimizer's iterations, so a restored optimizer resumes it."""
    import math

    import keras

    cfg = common.parse(Small, ["--lr-schedule", "cosine", "--epochs", "4"])
    optimizer = common.optimizer(cfg, steps_per_epoch=5)
    floor, peak, total = common.training.COSINE_FLOOR, cfg.learning_rate, 20
    schedule = optimizer._learning_rate
    for step in (0, 7, 10, 20, 25):
        done = min(step, total) / total
        expected = peak * ((1 - floor) * (1 + math.cos(math.pi * done)) / 2 + floor)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-6)
    weight = keras.Variable(np.ones(3, "float32"))
    optimizer.build([weight])
    for _ in range(3):
        optimizer.apply_gradients([(keras.ops.ones(3), weight)])
    assert int(optimizer.iterations) == 3
    assert float(optimizer.learning_rate) == pytest.approx(float(schedule(3)))
    constant = common.optimizer(Small())
    assert float(constant.learning_rate) == pytest.approx(Small().learning_rate)
    with pytest.raises(ValueError, match="steps per epoch"):
        common.optimizer(cfg)


@dataclasses.dataclass
class WithExport(Small):
    export_dir: str = common.option("", "export folder")


def test_unusable_runs_and_export_folders_are_named_before_any_run(tmp_path):
    (tmp_path / "a_file").write_text("keep")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    cases = [
        (dict(runs_dir=str(tmp_path / "a_file")), "--runs-dir=.*cannot create"),
        (
            dict(
                runs_dir=str(tmp_path / "exp" / "runs"),
                export_dir=str(tmp_path / "exp"),
            ),
            "--export-dir=.* and this task's run folders .* overlap",
        ),
        (
            dict(
                runs_dir=str(tmp_path / "runs"),
                export_dir=str(tmp_path / "runs" / "demo" / "x"),
            ),
            "--export-dir=.* and this task's run folders .* overlap",
        ),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append(
            (dict(runs_dir="r", export_dir=str(locked / "e")), "is not writable")
        )
    for options, message in cases:
        with pytest.raises(common.ConfigError, match=message):
            common.start_run("demo", WithExport(**options))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "locked"]
    # Beside the task's run folders is fine, e.g. --runs-dir . and saved_models/.
    common.start_run(
        "demo",
        WithExport(runs_dir=str(tmp_path), export_dir=str(tmp_path / "exports" / "d")),
    )


def test_export_dir_must_be_new_empty_or_an_earlier_export(tmp_path):
    """The export replaces the whole folder, so a folder of other files (say
    saved_models/ itself, or '.') is refused before any training, untouched."""
    others = tmp_path / "mine"
    others.mkdir()
    (others / "notes.txt").write_text("keep")
    (tmp_path / "a_file").write_text("keep")
    for path, message in [
        (others, "not an earlier export.*notes.txt"),
        (tmp_path / "a_file", "is a file"),
        (tmp_path / "a_file" / "sub", "a_file is a file"),
        (tmp_path, "not an earlier export"),
    ]:
        with pytest.raises(common.ConfigError, match=message):
            common.start_run("demo", WithExport(export_dir=str(path), runs_dir="r"))
        with pytest.raises(common.ConfigError, match=message):
            with runs.atomic_dir(path) as folder:
                (folder / "model.keras").write_text("new")
    assert (others / "notes.txt").read_text() == "keep"
    assert not (tmp_path / "r").exists()  # no run folder either
    # New, empty, or an earlier export: replaced as a whole.
    earlier = tmp_path / "earlier"
    for _ in range(2):
        with runs.atomic_dir(earlier) as folder:
            (folder / "model.keras").write_text("model")
            (folder / "saved_model").mkdir()
    assert sorted(p.name for p in earlier.iterdir()) == ["model.keras", "saved_model"]
    # Something added meanwhile (a user's file) stops the swap, the folder kept.
    (earlier / "notes.txt").write_text("keep")
    with pytest.raises(common.ConfigError, match=r"export plus other files \(notes"):
        with runs.atomic_dir(earlier) as folder:
            (folder / "model.keras").write_text("newer")
    assert (earlier / "model.keras").read_text() == "model"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_export_of_another_task_is_not_replaced(tmp_path):
    """--export-dir naming another task's export (say a weather run pointed at
    saved_models/sentiment) stops before training, the export untouched; the
    same task's export is replaced. Each export says its task in task.json;
    older ones are told by a file only one task writes."""
    sentiment = tmp_path / "sentiment"
    with runs.atomic_dir(sentiment, "sentiment") as folder:
        (folder / "model.keras").write_text("sentiment model")
        (folder / "vocabulary.json").write_text("[]")
    assert json.loads((sentiment / "task.json").read_text()) == {"task": "sentiment"}
    assert runs.export_task(sentiment) == "sentiment"
    message = "holds a sentiment export, which this weather export would replace"
    with pytest.raises(common.ConfigError, match=message):
        common.start_run("weather", WithExport(export_dir=str(sentiment), runs_dir="r"))
    with pytest.raises(common.ConfigError, match=message):
        with runs.atomic_dir(sentiment, "weather") as folder:
            (folder / "model.keras").write_text("weather model")
    assert (sentiment / "model.keras").read_text() == "sentiment model"
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="is a sentiment export, not a weather one"):
        common.check_export_of(sentiment, "weather")
    common.check_export_of(sentiment, "sentiment")
    with runs.atomic_dir(sentiment, "sentiment") as folder:  # the same task's
        (folder / "model.keras").write_text("newer")
    assert (sentiment / "model.keras").read_text() == "newer"

    # Exports written before task.json: told apart by their files where they can be.
    for files, task in [
        (["normalization.json"], "weather"),
        (["vocabulary.json", "generator"], "text_generation"),
        (["vocabulary.json", "saved_model"], "sentiment"),
        (["vocabulary.json"], None),  # sentiment or text generation off TensorFlow
    ]:
        old = tmp_path / "old" / "_".join(files)
        old.mkdir(parents=True)
        for name in ["model.keras", *files]:
            (old / name).mkdir() if "." not in name else (old / name).write_text("")
        assert runs.export_task(old) == task, files
        others = {"weather", "sentiment", "text_generation"} - {task}
        for other in sorted(others):
            if task is None:
                assert runs.check_export_dir(old, other) == old.resolve()
            else:
                with pytest.raises(common.ConfigError, match=f"holds a {task} export"):
                    runs.check_export_dir(old, other)


def test_resume_keeps_the_saved_options_and_rejects_changed_ones(tmp_path):
    first, run = common.start_run(
        "demo", WithExport(width=3, runs_dir=str(tmp_path), export_dir="out")
    )
    # Options left at their defaults come from the saved config.
    resumed, again = common.start_run(
        "demo", WithExport(runs_dir=str(tmp_path), resume="latest")
    )
    assert again.path == run.path and (resumed.width, resumed.export_dir) == (3, "out")
    # Where and how it reports may change; what it trains may not.
    resumed, _ = common.start_run(
        "demo",
        WithExport(runs_dir=str(tmp_path), resume="latest", export_dir="elsewhere"),
    )
    assert resumed.export_dir == "elsewhere" and resumed.width == 3
    with pytest.raises(common.ConfigError, match=r"--epochs=3: .*epochs = 10"):
        common.start_run(
            "demo", WithExport(runs_dir=str(tmp_path), resume="latest", epochs=3)
        )
    # Another task's run folder.
    (run.path / "config.json").write_text(json.dumps({"lookback": 24}))
    with pytest.raises(common.ConfigError, match="not a run of this task.*lookback"):
        common.start_run("demo", WithExport(resume=str(run.path)))


def tiny_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_failed_checkpoint_save_keeps_the_previous_best(tmp_path, monkeypatch):
    """best.keras is written to a temporary sibling and renamed: a save that
    dies halfway (disk full) leaves the previous best loadable."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 1))
    model = tiny_model()
    best = tmp_path / "best.keras"
    checkpoint = common.training.AtomicModelCheckpoint(
        str(best), monitor="loss", save_best_only=True
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    saved = best.read_bytes()
    real_save = keras.Model.save

    def disk_full(self, filepath, *args, **kwargs):
        real_save(self, filepath, *args, **kwargs)
        with open(filepath, "r+b") as f:
            f.truncate(12)
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(keras.Model, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    assert best.read_bytes() == saved and sorted(tmp_path.iterdir()) == [best]
    keras.saving.load_model(best)


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_history(tmp_path):
    """A finished run (no backup left, epochs in history.csv) resumed: fit
    loads best.keras and returns the saved history; history.csv untouched,
    plots drawn again if they were lost."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 1))
    cfg = Small(epochs=2, runs_dir=str(tmp_path), verbose="0")
    cfg, run = common.start_run("demo", cfg)
    train = ArrayBatches(x, y, batch_size=8, seed=0)
    model = tiny_model()
    model.compile(optimizer="adam", loss="mse")
    history = common.fit(model, train, (x, y), cfg, run)
    written = run.history.read_bytes()
    best = model.get_weights()
    plots = sorted(run.path.glob("*.png"))
    assert plots
    for plot in plots:  # as if killed between the end of fit and the plots
        plot.unlink()

    fits = []

    class CountFits(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fits.append(1)

    again = tiny_model()
    again.compile(optimizer="adam", loss="mse")
    resumed, run = common.start_run(
        "demo", Small(runs_dir=str(tmp_path), resume="latest")
    )
    counting = [CountFits()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. optimizer variables not loaded
        resumed_history = common.fit(
            again, train, (x, y), resumed, run, extra_callbacks=counting
        )
    assert resumed_history == history
    assert int(again.optimizer.iterations) == int(model.optimizer.iterations)
    assert fits == [] and run.history.read_bytes() == written
    assert sorted(run.path.glob("*.png")) == plots
    for got, want in zip(again.get_weights(), best):
        np.testing.assert_array_equal(got, want)


def test_resume_from_the_command_line_compares_typed_options(tmp_path):
    """Options typed with --resume count even at their default values: a
    session option goes back to its default, a training option at its default
    that differs from the saved one is refused."""
    runs_dir = ["--runs-dir", str(tmp_path)]
    common.start_run(
        "demo",
        common.parse(WithExport, [*runs_dir, "--epochs", "3", "--verbose", "0",
                                  "--tensorboard", "--export-dir", "out"]),
    )  # fmt: skip
    argv = [*runs_dir, "--resume", "latest"]
    resumed, _ = common.start_run("demo", common.parse(WithExport, argv))
    assert (resumed.epochs, resumed.verbose, resumed.tensorboard) == (3, "0", True)
    resumed, _ = common.start_run(
        "demo",
        common.parse(WithExport, [*argv, "--verbose", "auto", "--no-tensorboard",
                                  "--export-dir", ""]),
    )  # fmt: skip
    assert (resumed.verbose, resumed.tensorboard, resumed.export_dir) == (
        "auto", False, ""
    )  # fmt: skip
    with pytest.raises(common.ConfigError, match="--epochs=10: .*epochs = 3"):
        common.start_run("demo", common.parse(WithExport, [*argv, "--epochs", "10"]))


class Killed(Exception):
    """Stands in for a killed process."""


def fit_tiny(runs_dir, resume="", extra=(), epochs=4, patience=10, rate=0.05):
    """common.fit of a tiny model on fixed data: (history, weights, run)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 1))
    cfg = Small(
        epochs=epochs, patience=patience, runs_dir=str(runs_dir), verbose="0",
        resume=resume,
    )  # fmt: skip
    cfg, run = common.start_run("demo", cfg)
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="mse")
    history = common.fit(
        model, ArrayBatches(x, y, batch_size=8, seed=0), (x, y), cfg, run,
        extra_callbacks=list(extra),
    )  # fmt: skip
    return history, model.get_weights(), run


def assert_same_run(a, b):
    """Same history (but the epochs' wall times) and final weights."""

    def numbers(history):
        return {k: v for k, v in history.items() if k != "epoch_seconds"}

    np.testing.assert_equal(numbers(a[0]), numbers(b[0]))  # NaN equals NaN
    np.testing.assert_equal(numbers(common.read_history(a[2].history)), numbers(a[0]))
    for got, want in zip(a[1], b[1]):
        np.testing.assert_array_equal(got, want)


def test_killed_while_saving_the_best_epoch_resumes_to_the_same_run(
    tmp_path, monkeypatch
):
    """The backup of an epoch is written after its checkpoint: a run killed
    while best.keras is saved redoes that epoch instead of resuming after it
    without its checkpoint (which left the second-best model exported)."""
    whole = fit_tiny(tmp_path / "whole")
    real = common.training.AtomicModelCheckpoint._save_model

    def killed_in_the_last_epoch(self, epoch, batch, logs):
        if epoch == 3:  # its best: the loss falls every epoch here
            raise Killed("killed while saving best.keras")
        real(self, epoch, batch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(
            common.training.AtomicModelCheckpoint,
            "_save_model",
            killed_in_the_last_epoch,
        )
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    assert whole[0]["val_loss"] == sorted(whole[0]["val_loss"], reverse=True)
    assert_same_run(fit_tiny(tmp_path / "killed", resume="latest"), whole)


def test_killed_while_writing_the_backup_resumes_to_the_same_run(tmp_path, monkeypatch):
    """A backup killed halfway (a truncated weights file) is never the one a
    resumed run loads: the metadata, renamed into place last, names the
    previous epoch's complete file."""
    whole = fit_tiny(tmp_path / "whole")
    real = keras.Model.save_weights
    calls = []

    def killed_halfway(self, filepath, *args, **kwargs):
        real(self, filepath, *args, **kwargs)
        calls.append(filepath)
        if "backup" in str(filepath) and len(calls) == 3:
            with open(filepath, "r+b") as f:
                f.truncate(100)
            raise Killed("killed while writing the backup")

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "save_weights", killed_halfway)
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    resumed = fit_tiny(tmp_path / "killed", resume="latest")
    assert_same_run(resumed, whole)
    assert not list(resumed[2].path.glob(".*.tmp-*"))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "metadata", "mismatch"])
def test_a_damaged_backup_is_named_with_the_fix(tmp_path, monkeypatch, damage):
    """A killed run whose backup weights were lost or cut short (or whose
    metadata is not JSON): one ConfigError naming the backup folder, not an
    h5py or JSON traceback; deleting the metadata, as it says, trains the run
    again from its first epoch, to the uninterrupted run's result."""
    from tasks.common.training import AtomicModelCheckpoint

    real = AtomicModelCheckpoint._save_model

    def killed_in_epoch_2(self, epoch, batch, logs):
        if epoch == 2:
            raise Killed("killed")
        real(self, epoch, batch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(AtomicModelCheckpoint, "_save_model", killed_in_epoch_2)
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    (backup,) = (tmp_path / "killed" / "demo").glob("*/backup")
    (weights,) = backup.glob("*.weights.h5")
    if damage == "deleted":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "metadata":
        (backup / "training_metadata.json").write_text("{")
    else:  # a model that no longer matches the backup: not the backup's fault

        def mismatch(self, *args, **kwargs):
            raise ValueError("A total of 1 objects could not be loaded")

        with monkeypatch.context() as patch:
            patch.setattr(keras.Model, "load_weights", mismatch)
            with pytest.raises(ValueError, match="objects could not be loaded"):
                fit_tiny(tmp_path / "killed", resume="latest")
        return
    message = f"the backup {backup} of the interrupted run cannot be read .*: delete"
    with pytest.raises(common.ConfigError, match=message + " .*training_metadata"):
        fit_tiny(tmp_path / "killed", resume="latest")
    (backup / "training_metadata.json").unlink()  # as the message says
    assert_same_run(fit_tiny(tmp_path / "killed", resume="latest"), fit_tiny(
        tmp_path / "whole"))  # fmt: skip


def test_a_finished_run_without_its_checkpoint_is_refused(tmp_path):
    """Resuming a finished run evaluates its best.keras; without it the
    freshly built (untrained) model was evaluated and reported as the run's."""
    _, _, run = fit_tiny(tmp_path)
    run.checkpoint.unlink()
    with pytest.raises(common.ConfigError, match="training finished earlier, but its "
                       "best.keras is missing; start a new run"):  # fmt: skip
        fit_tiny(tmp_path, resume="latest")


def test_resume_reads_the_saved_config_or_names_it(tmp_path):
    """A missing, garbled or hand-edited config.json of the run 'latest' finds:
    a common.ConfigError naming it (were FileNotFoundError, JSONDecodeError,
    TypeError tracebacks). A folder named by hand is not 'latest'."""
    made = runs.new_run(tmp_path, "demo")
    (tmp_path / "demo" / "my copy").mkdir()  # sorts after the time stamps
    resume = Small(runs_dir=str(tmp_path), resume="latest")
    for text, problem in [
        (None, "cannot be read"),
        ("{", "cannot be read"),
        ("[1, 2]", "is not a run's config"),
        ('{"epochs": "3"}', "'<' not supported"),
    ]:
        if text is not None:
            made.config.write_text(text)
        with pytest.raises(common.ConfigError, match=f"{made.config}.* {problem}"):
            common.start_run("demo", resume)


def test_resume_refuses_an_option_its_older_config_lacks(tmp_path):
    """A run saved before an option existed ran with its default: giving
    another value is refused like any other change (it was ignored); the
    default itself and the session options pass."""
    _, run = common.start_run("demo", Small(runs_dir=str(tmp_path)))
    saved = json.loads(run.config.read_text())
    del saved["width"]
    run.config.write_text(json.dumps(saved))
    argv = ["--runs-dir", str(tmp_path), "--resume", "latest"]
    message = r"--width=5: .*\(width = 8, the default: not in its config.json\)"
    with pytest.raises(common.ConfigError, match=message):
        common.start_run("demo", common.parse(Small, [*argv, "--width", "5"]))
    config, _ = common.start_run(
        "demo", common.parse(Small, [*argv, "--width", "8", "--verbose", "0"])
    )
    assert (config.width, config.verbose) == (8, "0")


def test_a_runs_folder_that_cannot_take_a_run_is_named(tmp_path, monkeypatch):
    """`runs/<task>` exists but refuses a new folder (read-only, say): a
    common.ConfigError naming --runs-dir, not a PermissionError traceback."""
    (tmp_path / "demo").mkdir()
    real = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.parent == tmp_path / "demo":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(
        common.ConfigError, match="--runs-dir=.*: cannot create .*Permission"
    ):
        runs.new_run(tmp_path, "demo")


class StopAfterEpoch2(keras.callbacks.Callback):
    """A stop rule a resumed run can replay from its history (as long_range's
    StopWhenSolved does)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.stop_training = True

    def stopped_before(self, past_rows):
        return len(past_rows) >= 2


class KilledAtTrainEnd(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        raise Killed("killed after the last backup, before fit returned")


def test_a_run_killed_after_it_stopped_does_not_train_on(tmp_path):
    whole = fit_tiny(tmp_path / "whole", extra=[StopAfterEpoch2()])
    assert len(whole[0]["loss"]) == 2
    with pytest.raises(Killed):
        fit_tiny(tmp_path / "killed", extra=[StopAfterEpoch2(), KilledAtTrainEnd()])
    resumed = fit_tiny(tmp_path / "killed", resume="latest", extra=[StopAfterEpoch2()])
    assert_same_run(resumed, whole)
    assert not resumed[2].backup.exists()


@pytest.mark.parametrize("patience", [0, 1, 2])
@pytest.mark.parametrize(
    "past",
    [[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 2.0], [1.0], [2.0, 1.0, 1.5, 0.5]],
)
def test_early_stopping_replays_whether_the_past_epochs_stopped(past, patience):
    """The replay decides as Keras' own EarlyStopping did over those epochs
    (the reference: a real fit whose val_loss is the past values)."""

    class Replay(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = past[epoch]

    keras_stopping = keras.callbacks.EarlyStopping(patience=patience)
    model = tiny_model()
    x, y = np.zeros((4, 4)), np.zeros((4, 1))
    done = model.fit(
        x, y, epochs=len(past), verbose=0, callbacks=[Replay(), keras_stopping]
    )
    ran = len(done.history["loss"])  # Keras stopped after this many epochs
    stopped = keras_stopping.stopped_epoch > 0  # it never stops at epoch 0
    for n in range(1, ran + 1):  # every history a run could have left
        early = common.training.ResumableEarlyStopping(
            past[:n], monitor="val_loss", patience=patience
        )
        assert early.stopped_before([]) == (stopped and n == ran), n


def test_a_diverged_run_stops_with_a_clear_error_before_any_export(tmp_path):
    """Every epoch NaN: a one-line error (a ConfigError, which the CLIs print),
    not an export of NaN weights; also when such a run is resumed."""
    for resume in ("", "latest"):
        with pytest.raises(common.ConfigError, match="training diverged in epoch 1"):
            fit_tiny(tmp_path, resume=resume, rate=1e38)


@pytest.mark.parametrize("name", ["sentiment", "text_generation", "weather"])
def test_ctrl_c_ends_a_task_with_one_line_saying_how_to_resume(name, monkeypatch):
    import importlib

    task = importlib.import_module(f"tasks.{name}.task")

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(task, "train", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        task.main([])
    assert exit_info.value.code == common.INTERRUPTED
    assert "--resume latest" in common.INTERRUPTED


main_thread_only = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python handles signals in the main thread only",
)


@main_thread_only
def test_first_ctrl_c_stops_fit_before_the_next_batch(capfd):
    """The first Ctrl-C is noted, not raised where it lands (inside a
    tf.function trace it surfaced as a TypeError); `StopOnInterrupt` raises it
    before the next batch, and the block restores the previous handler."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((12, 3), "float32"), np.zeros((12, 1), "float32")
    ended = []

    class CtrlCAfterSecondBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ended.append(batch)
            if batch == 1:
                signal.raise_signal(signal.SIGINT)
                ended.append("noted")  # the handler returned: nothing raised

    before = signal.getsignal(signal.SIGINT)
    callbacks = [common.StopOnInterrupt(), CtrlCAfterSecondBatch()]
    with pytest.raises(KeyboardInterrupt):
        with common.deferred_interrupts():
            model.fit(x, y, batch_size=2, callbacks=callbacks, verbose=0)
    assert ended == [0, 1, "noted"]
    notices = capfd.readouterr().err.splitlines().count(interrupt.NOTICE.strip())
    assert notices == 1
    assert signal.getsignal(signal.SIGINT) is before
    # Noted where no batch follows: raised when the block ends.
    with pytest.raises(KeyboardInterrupt):
        with common.deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
            ended.append("after")
    assert ended[-1] == "after"


@main_thread_only
def test_after_a_first_ctrl_c_the_next_one_ends_the_process():
    """The first Ctrl-C gives SIGINT back its default action, so a second one
    ends the process at once, also inside a long TensorFlow step (where two
    presses would reach a Python handler as one). Where SIGINT is ignored
    (a background job), it stays ignored."""
    before = signal.getsignal(signal.SIGINT)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with common.deferred_interrupts():
            seen.append(signal.getsignal(signal.SIGINT))
            signal.raise_signal(signal.SIGINT)
            seen.append(signal.getsignal(signal.SIGINT))
    assert seen[0] not in (before, signal.SIG_DFL)  # our handler first
    assert seen[1] is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with common.deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@main_thread_only
def test_a_pipe_closed_by_the_same_ctrl_c_ends_the_run_as_interrupted(monkeypatch):
    """`python -m tasks.<name> | tee log`: Ctrl-C ends tee too, and the
    progress bar's next write fails with BrokenPipeError before the next
    batch: the run ends with the interrupted line, not a traceback. Without a
    Ctrl-C a broken pipe is not hidden."""
    silenced = []
    monkeypatch.setattr(interrupt, "_silence_stdout", lambda: silenced.append(1))

    def piped_work():
        signal.raise_signal(signal.SIGINT)
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SystemExit) as exit_info:
        common.interruptible(piped_work)
    assert exit_info.value.code == common.INTERRUPTED and silenced == [1]

    def broken_pipe():
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        common.interruptible(broken_pipe)


def test_ctrl_c_during_a_real_run_ends_it_with_one_line(tmp_path):
    """`python -m tasks.sentiment`, Ctrl-C soon after the model summary, while
    `fit` traces and runs: it stops before the next batch with the notice and
    the line saying how to resume, no traceback, no "Exception ignored", no
    TensorFlow error about iterators finalized at exit."""
    root = pathlib.Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tasks.sentiment", "--epochs", "3"]
    command += ["--steps-per-epoch", "50", "--units", "4", "--verbose", "2"]
    command += ["--runs-dir", str(tmp_path / "runs"), "--export-dir", ""]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user runs it
    with open(tmp_path / "stderr.txt", "w+") as stderr:
        run = subprocess.Popen(
            command, cwd=root, env=env, text=True, stdout=subprocess.PIPE,
            stderr=stderr,
        )  # fmt: skip
        watchdog = threading.Timer(300, run.kill)  # a stalled run fails, not hangs
        watchdog.start()
        try:
            for line in run.stdout:
                if "Total params" in line:
                    break
            time.sleep(0.5)
            run.send_signal(signal.SIGINT)
            out, _ = run.communicate(timeout=300)
        finally:
            watchdog.cancel()
            run.kill()
        stderr.seek(0)
        err = stderr.read()
    assert run.returncode == 1, err[-2000:]
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines[-1] == common.INTERRUPTED, err[-2000:]
    assert interrupt.NOTICE.strip() in lines
    for sign in ("Traceback", "Exception ignored", "generator_dataset_op"):
        assert sign not in err, err[-2000:]
    assert "test accuracy" not in out  # it did stop


def test_an_export_swap_killed_halfway_gets_the_previous_export_back(tmp_path):
    """Killed between moving the old export aside and moving the new one in:
    the next export first puts back the one set aside last (an older one may
    be half deleted, and touched later), then replaces it as usual and
    removes any other leftovers."""
    final = tmp_path / "export"
    with runs.atomic_dir(final) as folder:
        (folder / "model.keras").write_text("first")
    os.replace(final, tmp_path / ".export.old-123")  # an earlier version's name
    with pytest.raises(OSError, match="disk full"):  # this export fails too
        with runs.atomic_dir(final) as folder:
            raise OSError("disk full (simulated)")
    assert (final / "model.keras").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    # E1 set aside, half deleted by a killed run (so touched last); E2 set
    # aside later by a run killed between its renames.
    half = tmp_path / f".export.old-{10**18}"
    half.mkdir()
    (half / "model.keras").write_text("E1")
    os.replace(final, tmp_path / f".export.old-{2 * 10**18}")
    os.utime(half)  # its deletion touched it after E2 was set aside
    with pytest.raises(OSError, match="disk full"):
        with runs.atomic_dir(final) as folder:
            raise OSError("disk full (simulated)")
    assert (final / "model.keras").read_text() == "first"
    with runs.atomic_dir(final) as folder:
        (folder / "model.keras").write_text("second")
    assert (final / "model.keras").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_an_export_swap_that_fails_halfway_keeps_the_previous_export(
    tmp_path, monkeypatch
):
    """The new folder cannot be moved in after the old one was moved aside
    (an OSError): the old one is put back (it was deleted with the new one,
    leaving no export at all)."""
    final = tmp_path / "export"
    with runs.atomic_dir(final, "demo") as folder:
        (folder / "model.keras").write_text("first")
    real, calls = os.replace, []

    def fails_second(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the new folder into place
            raise OSError("cannot move it in (simulated)")
        return real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fails_second)
        with pytest.raises(OSError, match="simulated"):
            with runs.atomic_dir(final, "demo") as folder:
                (folder / "model.keras").write_text("second")
    assert (final / "model.keras").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_backup_in_keras_own_layout_still_resumes(tmp_path, monkeypatch):
    """A run killed before AtomicBackupAndRestore existed left Keras' layout
    (latest.weights.h5, metadata without "weights"): it resumes the same."""
    whole = fit_tiny(tmp_path / "whole")
    keras_save = keras.callbacks.BackupAndRestore._save_model
    real = common.training.AtomicModelCheckpoint._save_model

    def killed_in_epoch_2(self, epoch, batch, logs):
        if epoch == 2:
            raise Killed("killed while saving best.keras")
        real(self, epoch, batch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(common.training.AtomicBackupAndRestore, "_save_model", keras_save)
        patch.setattr(
            common.training.AtomicModelCheckpoint, "_save_model", killed_in_epoch_2
        )
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    (backup,) = (tmp_path / "killed" / "demo").glob("*/backup")
    assert sorted(p.name for p in backup.iterdir()) == [
        "latest.weights.h5",
        "training_metadata.json",
    ]
    assert_same_run(fit_tiny(tmp_path / "killed", resume="latest"), whole)


def test_killed_while_deleting_the_finished_backup_is_a_finished_run(
    tmp_path, monkeypatch
):
    """The backup is renamed aside in one step before it is deleted: a kill
    while deleting leaves a finished run (not half a backup to resume)."""
    whole = fit_tiny(tmp_path / "whole")
    real = shutil.rmtree

    def killed(path, *args, **kwargs):
        if "backup" in pathlib.Path(path).name:  # half deleted, then killed
            for name in ("training_metadata.json", "epoch-4.weights.h5"):
                (pathlib.Path(path) / name).unlink(missing_ok=True)
            raise Killed(f"killed while deleting {path}")
        real(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(shutil, "rmtree", killed)
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    epochs = []

    class CountEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    resumed = fit_tiny(tmp_path / "killed", resume="latest", extra=[CountEpochs()])
    assert_same_run(resumed, whole)
    assert epochs == []  # nothing trained again
    assert sorted(p.name for p in resumed[2].path.glob(".*")) == []


class NaNWeightsInEpoch3(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            self.model.set_weights([w * np.nan for w in self.model.get_weights()])


def test_a_run_killed_after_terminate_on_nan_does_not_train_on(tmp_path):
    """TerminateOnNaN's stop is replayed too (the history's last loss is NaN);
    the best (finite) epoch is what the run ends with."""
    whole = fit_tiny(tmp_path / "whole", extra=[NaNWeightsInEpoch3()])
    assert len(whole[0]["loss"]) == 4 and np.isnan(whole[0]["loss"][3])
    with pytest.raises(Killed):
        fit_tiny(tmp_path / "killed", extra=[NaNWeightsInEpoch3(), KilledAtTrainEnd()])
    resumed = fit_tiny(
        tmp_path / "killed", resume="latest", extra=[NaNWeightsInEpoch3()]
    )
    assert_same_run(resumed, whole)


class KilledInEpoch3(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            raise Killed("killed inside epoch 3")


def test_a_nan_past_epoch_does_not_stop_a_resumed_run_checkpointing(tmp_path):
    """ModelCheckpoint's best starts at the best finite past value: a NaN one
    (here the first epoch's) made every later epoch 'no improvement'."""
    whole = fit_tiny(tmp_path / "whole")
    with pytest.raises(Killed):
        fit_tiny(tmp_path / "killed", extra=[KilledInEpoch3()])
    (history,) = (tmp_path / "killed" / "demo").glob("*/history.csv")
    lines = history.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    first[header.index("val_loss")] = "nan"
    history.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    resumed = fit_tiny(tmp_path / "killed", resume="latest")
    for got, want in zip(resumed[1], whole[1]):  # best.keras: the last epoch
        np.testing.assert_array_equal(got, want)


def test_expected_retracing_leaves_out_only_tensorflows_retracing_warning():
    """TensorFlow warns once a function has traced five times; inside
    `expected_retracing` that warning is left out and other warnings show."""
    import logging

    import tensorflow as tf

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = tf.get_logger()
    logger.addHandler(handler)

    def trace_six_times(function):
        # TensorFlow counts traces per Python function: one for each part.
        traced = tf.function(function, autograph=False)
        for n in range(1, 7):  # a new shape each call: a new trace
            traced(tf.zeros([n]))

    try:
        with common.expected_retracing():
            trace_six_times(lambda x: x + 1)
            logger.warning("another warning")
        inside = list(messages)
        trace_six_times(lambda x: x + 2)
    finally:
        logger.removeHandler(handler)
    assert inside == ["another warning"]
    retracing = [m for m in messages[1:] if "triggered tf.function retracing" in m]
    assert len(retracing) == 2  # the 5th and 6th traces, once the filter is gone


# --- exports --------------------------------------------------------------------


def test_export_run_names_the_run_folder_when_the_check_fails(tmp_path):
    from keras_lstm import export  # the module whose error this turns into one line

    run = runs.RunFolder(tmp_path / "run")
    metrics = {"loss": 1.0}
    common.export_run(run, metrics, lambda: {"passed": True})
    assert common.read_json(run.metrics) == {"loss": 1.0, "export": {"passed": True}}

    def failing():
        raise export.ExportVerificationError("tflite export of 'x' differs.")

    with pytest.raises(common.ExportFailed) as info:
        common.export_run(run, {"loss": 2.0}, failing)
    assert str(info.value) == (
        f"tflite export of 'x' differs. The run folder {run.path} keeps the trained "
        "model (best.keras) and its metrics."
    )
    assert common.read_json(run.metrics)["loss"] == 1.0  # not rewritten

    def broken():
        raise RuntimeError("not an export check")

    with pytest.raises(RuntimeError, match="not an export check"):
        common.export_run(run, {}, broken)


@pytest.mark.parametrize("name", ["sentiment", "text_generation", "weather"])
def test_a_failed_export_check_is_one_line(name, tmp_path, monkeypatch):
    import importlib

    task = importlib.import_module(f"tasks.{name}.task")

    def train(*args, **kwargs):
        raise common.ExportFailed("tflite export of 'x' differs. The run folder y")

    monkeypatch.setattr(task, "train", train)
    with pytest.raises(SystemExit) as info:
        task.main(["--runs-dir", str(tmp_path)])
    assert info.value.code == "error: tflite export of 'x' differs. The run folder y"


@pytest.mark.parametrize("lost", ["deleted", "never_written"])
def test_an_unfinished_run_without_its_backup_is_trained_again(
    tmp_path, monkeypatch, capsys, lost
):
    """A killed run whose backup is gone (deleted by hand, or never written:
    killed in its first epoch after its history row and best.keras, before
    the backup) trains again from its first epoch, to the uninterrupted
    run's result; it was taken for a finished run and reported with the
    epochs history.csv held (3 of 4, or 1)."""
    from tasks.common.training import AtomicBackupAndRestore, AtomicModelCheckpoint

    whole = fit_tiny(tmp_path / "whole")
    if lost == "deleted":
        target, real, at = AtomicModelCheckpoint, AtomicModelCheckpoint._save_model, 2
    else:
        target, real, at = (
            AtomicBackupAndRestore,
            AtomicBackupAndRestore.on_epoch_end,
            0,
        )

    def killed(self, epoch, *args, **kwargs):
        if epoch == at:
            raise Killed("killed")
        real(self, epoch, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(target, real.__name__, killed)
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed")
    (folder,) = (tmp_path / "killed" / "demo").iterdir()
    shutil.rmtree(folder / "backup", ignore_errors=lost == "never_written")
    assert (folder / "best.keras").exists()
    capsys.readouterr()

    class CountEpochs(keras.callbacks.Callback):  # a stop rule's count, as
        def stopped_before(self, past_rows):  # TimeBudget's time
            self.epochs = len(past_rows)
            return False

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

    counted = CountEpochs()
    resumed = fit_tiny(tmp_path / "killed", resume="latest", extra=[counted])
    assert_same_run(resumed, whole)
    assert f"no backup of its {at + 1} epoch(s)" in capsys.readouterr().out
    assert counted.epochs == 4  # not counting the discarded ones too


class StopsAfterEpoch2WithoutReplay(keras.callbacks.Callback):
    """A caller's stop rule that cannot replay itself (no `stopped_before`)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.stop_training = True


def test_a_run_that_ended_is_finished_whatever_stopped_it(tmp_path):
    """training_done.json records the end of training: a run stopped by a
    callback without `stopped_before` is not trained again on resume (its
    missing backup was taken for a lost one)."""
    whole = fit_tiny(tmp_path, extra=[StopsAfterEpoch2WithoutReplay()])
    assert len(whole[0]["loss"]) == 2 and whole[2].done.exists()
    epochs = []

    class CountEpochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    resumed = fit_tiny(tmp_path, resume="latest", extra=[CountEpochs()])
    assert_same_run(resumed, whole)
    assert epochs == []


def test_a_one_epoch_run_killed_before_its_checkpoint_trains_again(
    tmp_path, monkeypatch
):
    """--epochs 1, killed after the history row and before best.keras: its one
    row made it look finished, and it stopped asking for a new run."""
    from tasks.common.training import AtomicModelCheckpoint

    whole = fit_tiny(tmp_path / "whole", epochs=1)

    def killed(self, epoch, batch, logs):
        raise Killed("killed while saving best.keras")

    with monkeypatch.context() as patch:
        patch.setattr(AtomicModelCheckpoint, "_save_model", killed)
        with pytest.raises(Killed):
            fit_tiny(tmp_path / "killed", epochs=1)
    resumed = fit_tiny(tmp_path / "killed", resume="latest", epochs=1)
    assert_same_run(resumed, whole)
