"""The long-range task: adding-problem data, parameter matching, chrono init,
the sentiment gate map, and a tiny run of `python -m tasks.long_range`."""

import json
import re

import keras
import numpy as np
import pytest

import keras_lstm
from tasks import common
from tasks.long_range import config as long_range_config
from tasks.long_range import sentiment_gates, task
from tasks.long_range.adding import (
    CONSTANT_GUESS_MSE,
    AddingBatches,
    adding_problem,
    adding_targets,
)

to_numpy = keras.ops.convert_to_numpy


# --- data ---------------------------------------------------------------------


def test_targets_on_hand_made_sequences():
    x = np.zeros((3, 5, 2), "float32")
    x[..., 0] = [
        [0.1, 0.2, 0.3, 0.4, 0.5],
        [1.0, 0.0, 0.25, 0.5, 0.75],
        [0.9, 0.8, 0.7, 0.6, 0.5],
    ]
    x[0, [0, 4], 1] = 1  # 0.1 + 0.5
    x[1, [1, 2], 1] = 1  # 0.0 + 0.25: a marked zero counts as zero
    x[2, [3, 4], 1] = 1  # 0.6 + 0.5: both markers late
    np.testing.assert_allclose(adding_targets(x), [[0.6], [0.25], [1.1]], rtol=1e-6)


def test_generated_sequences_follow_the_definition():
    length = 11
    x, y = adding_problem(500, length, seed=3)
    assert x.shape == (500, length, 2) and y.shape == (500, 1)
    assert x.dtype == y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(1), 1)  # one per half
    np.testing.assert_array_equal(markers[:, half:].sum(1), 1)
    # Target by explicit lookup of the two marked positions.
    for row in range(500):
        first, second = np.flatnonzero(markers[row])
        assert y[row, 0] == pytest.approx(values[row, first] + values[row, second])
    # Every position of each half is used (uniform draw, 500 samples).
    assert len(np.unique(np.argmax(markers[:, :half], 1))) == half
    assert len(np.unique(np.argmax(markers[:, half:], 1))) == length - half


def test_constant_guess_scores_one_sixth():
    _, y = adding_problem(200_000, 4, seed=0)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(CONSTANT_GUESS_MSE, abs=2e-3)


def test_seeds_make_data_reproducible():
    a, b = adding_problem(4, 9, seed=1), adding_problem(4, 9, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], adding_problem(4, 9, seed=2)[0])
    batches = AddingBatches(9, 4, steps=3, seed=5)
    first = batches[1][0]
    batches.set_epoch(1)
    assert not np.array_equal(first, batches[1][0])
    batches.set_epoch(0)
    np.testing.assert_array_equal(first, batches[1][0])


def test_bad_data_arguments():
    with pytest.raises(ValueError, match="num_sequences"):
        adding_problem(0, 10)
    with pytest.raises(ValueError, match="length"):
        adding_problem(2, 1)
    with pytest.raises(ValueError, match=r"sequences.*\(2, 3, 1\)"):
        adding_targets(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="batch_size"):
        AddingBatches(10, 0, steps=1)


# --- models -------------------------------------------------------------------


@pytest.mark.parametrize("name", long_range_config.MODELS)
def test_parameter_counts_match_keras_and_the_lstm(name):
    config = task.LongRangeConfig(init="keras")
    model = task.build_model(config, name, length=7)
    units = task.matched_units(name, config.units)
    assert model.count_params() == task.recurrent_parameters(name, units)
    lstm = task.recurrent_parameters("lstm", config.units)
    assert abs(model.count_params() - lstm) / lstm < 0.03


def test_per_model_learning_rates():
    config = task.LongRangeConfig(model_learning_rates="simple_rnn=1e-3,gru=0.5")
    assert config.learning_rate_for("simple_rnn") == 1e-3
    assert config.learning_rate_for("gru") == 0.5
    assert config.learning_rate_for("lstm") == config.learning_rate
    model = task.build_model(config, "gru", length=5)
    assert float(model.optimizer.learning_rate) == 0.5


def test_chrono_init_sets_memory_biases_and_keeps_ours_equal_to_keras():
    config = task.LongRangeConfig()
    keras.utils.set_random_seed(0)
    ours = task.build_model(config, "lstm", length=50)
    keras.utils.set_random_seed(0)
    builtin = task.build_model(config, "keras_lstm", length=50)
    units = config.units
    bias = ours.get_layer("lstm").get_weights()[2]
    forget, input_gate = bias[units : 2 * units], bias[:units]
    assert (forget >= 0).all() and (forget <= np.log(49)).all()
    np.testing.assert_array_equal(input_gate, -forget)
    for a, b in zip(ours.get_weights(), builtin.get_weights()):
        np.testing.assert_array_equal(a, b)
    x, _ = adding_problem(4, 50, seed=0)
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(builtin(x)), atol=1e-5)
    gru = task.build_model(config, "gru", length=50).get_layer("gru")
    gru_bias = gru.get_weights()[2]
    assert (gru_bias[0, : gru.units] > 0).all() and (
        gru_bias[1, : gru.units] == 0
    ).all()


@pytest.mark.parametrize(
    "argv, length",
    [
        ([], 200),  # the README's grid
        (["--lengths", "400", "--models", "lstm"], 400),  # narrowed: no error
        (["--lengths", "50,100"], 100),
        (["--lengths", "50,100", "--gradient-length", "50"], 50),
        (["--gradient-length", "0"], 0),
        (["--models", "gru", "--lengths", "10"], 0),  # the plot needs lstm/rnn
    ],
)
def test_gradient_flow_is_drawn_where_the_grid_allows(argv, length):
    assert common.parse(task.LongRangeConfig, argv).gradient_flow_length() == length


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lengths", "1"], "--lengths"),
        (["--lengths", "a,b"], "--lengths"),
        (["--models", "lstm,rnn"], "--models"),
        (["--gradient-length", "300"], "--gradient-length=300"),
        (["--models", "gru", "--lengths", "10", "--gradient-length", "10"], "neither"),
        (["--cell", "keras"], "use --models"),
        (["--model-learning-rates", "lstm:1"], "--model-learning-rates"),
        (["--model-learning-rates", "rnn=1"], "--model-learning-rates"),
        (["--model-learning-rates", "lstm=inf"], "finite rates > 0"),
        (["--model-learning-rates", "lstm=1e400"], "finite rates > 0"),
        (["--model-learning-rates", "lstm=1,lstm=2"], "each once"),
        (["--mixed-precision"], "--mixed-precision/--distribute: not supported"),
        (["--distribute", "mirrored"], "--mixed-precision/--distribute"),
        (["--solved-mse", "nan"], "--solved-mse: must be a finite number"),
        (["--solved-mse", "-1"], "--solved-mse=-1.0: must be > 0"),
        (["--lengths", "3,5,3"], "--lengths='3,5,3': each T once"),
        (["--models", "lstm,gru,lstm"], "--models='lstm,gru,lstm': each model once"),
        (["--seed", "4294967294"], "--seed=4294967294: must be in [0, 4294967293]"),
        (["--gradient-length", "-2"], "--gradient-length=-2: a T from --lengths"),
    ],
)
def test_bad_flags_exit_with_a_message_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit):
        task.main(argv)
    assert message in capsys.readouterr().err


def test_help_leaves_out_the_shared_options_this_task_refuses(capsys):
    """--rnn, --cell, --mixed-precision, --distribute and --cpu-replicas are
    refused above (a clear message each); --help no longer offers them."""
    with pytest.raises(SystemExit):
        task.main(["--help"])
    help_text = capsys.readouterr().out
    for flag in ("--models", "--lengths", "--learning-rate", "--seed", "--resume"):
        assert flag in help_text, flag
    for flag in ("--rnn", "--cell", "mixed-precision", "--distribute", "--cpu-"):
        assert flag not in help_text, flag


# --- sentiment gate map -------------------------------------------------------


def test_sentiment_gates_replay_the_forward_lstm(tmp_path):
    vocabulary = ["", "[UNK]", "a", "quiet", "triumph", "."]
    embedding = keras.layers.Embedding(len(vocabulary), 6, mask_zero=True)
    bidirectional = keras.layers.Bidirectional(keras_lstm.LSTM(3))
    model = keras.Sequential(
        [
            keras.Input((8,), dtype="int32"),
            embedding,
            bidirectional,
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    review = "A quiet, triumph."  # ',' is not in the vocabulary
    ids = np.array([[2, 3, 1, 4, 5, 0, 0, 0]], "int32")
    record = sentiment_gates.review_gates(model, ids)
    assert record["h"].shape == (1, 5, 3)  # the padding is cut off
    forward = to_numpy(bidirectional.forward_layer(embedding(ids), mask=ids != 0))
    np.testing.assert_allclose(record["h"][:, -1], forward, atol=1e-6)
    path = sentiment_gates.plot_review(
        model, vocabulary, 8, review, str(tmp_path / "gates.png"), tmp_path / "v.json"
    )
    assert (tmp_path / "gates.png").stat().st_size > 1000 and path.endswith(".png")
    # The numbers behind the plot, against the built-in LSTM with the same
    # weights (hidden states per step) and the model's own prediction.
    values = json.loads((tmp_path / "v.json").read_text())
    assert values["tokens"] == ["a", "quiet", ", (unk)", "triumph", "."]
    np.testing.assert_allclose(
        values["p_positive"], model.predict(ids, verbose=0)[0, 0]
    )
    builtin = keras.layers.LSTM(3, return_sequences=True)
    builtin.build((1, 5, 6))
    builtin.set_weights(bidirectional.forward_layer.get_weights())
    states = to_numpy(builtin(embedding(ids[:, :5])))[0]
    np.testing.assert_allclose(values["mean"]["h"], states.mean(axis=1), atol=1e-6)
    c = np.asarray(values["gates"]["c"])
    np.testing.assert_allclose(
        values["mean_abs_c_change"],
        np.abs(c - np.vstack([np.zeros(3), c[:-1]])).mean(axis=1),
        atol=1e-7,
    )
    with pytest.raises(ValueError, match="is the PNG's own path"):
        png = str(tmp_path / "same.png")
        sentiment_gates.plot_review(model, vocabulary, 8, review, png, png)
    with pytest.raises(ValueError, match="has no words to show"):
        sentiment_gates.plot_review(model, vocabulary, 8, " ", str(tmp_path / "x.png"))


def test_gates_command_checks_its_output_paths_first(tmp_path):
    """--out / --values that cannot be written are named with their flag
    before the model loads (the model folder here does not exist) and before
    either file is written; they were an OSError naming an internal temporary
    file, after the PNG had been written."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for extra, message in [
        (["--out", ""], "--out='': give a file name"),
        (["--out", str(tmp_path)], f"--out={str(tmp_path)!r}: a folder"),
        (["--values", str(a_file / "v.json")], "--values=.*: cannot make its folder"),
    ]:
        argv = ["--model-dir", str(tmp_path / "none"), "--out", str(tmp_path / "g.png")]
        with pytest.raises(SystemExit) as exit_info:
            sentiment_gates.main(["fine", *argv, *extra])
        assert re.match(f"error: {message}", exit_info.value.code), exit_info.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_gates_command_names_a_model_dir_of_another_task(tmp_path):
    x = keras.Input((None,), dtype="int32")
    model = keras.Model(x, keras.layers.Embedding(5, 2)(x))  # a variable length
    model.save(tmp_path / "model.keras")
    (tmp_path / "vocabulary.json").write_text('["", "[UNK]", "a"]')
    with pytest.raises(SystemExit) as exit_info:
        sentiment_gates.main(["fine", "--model-dir", str(tmp_path)])
    assert exit_info.value.code.startswith(
        f"error: --model-dir={tmp_path}: {tmp_path} is not a sentiment export"
    )


def test_sentiment_gates_need_our_lstm():
    model = keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(5, 2),
            keras.layers.GRU(2),
        ]
    )
    with pytest.raises(ValueError, match="keras_lstm.LSTM"):
        sentiment_gates.review_gates(model, np.ones((1, 4), "int32"))


# --- end to end ---------------------------------------------------------------


def test_tiny_run_end_to_end(tmp_path, capsys):
    task.main(
        [
            "--lengths",
            "12",
            "--models",
            "lstm,simple_rnn",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "8",
            "--validation-size",
            "16",
            "--test-size",
            "16",
            "--gradient-length",
            "12",
            "--verbose",
            "0",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    (run,) = (tmp_path / "long_range").iterdir()
    for name in [
        "config.json",
        "metrics.json",
        "results.md",
        "val_mse.png",
        "gradient_flow_T12.png",
        "T12-lstm/gates.png",
        "T12-lstm/history.csv",
        "T12-simple_rnn/best.keras",
    ]:
        assert (run / name).is_file(), name
    results = json.loads((run / "metrics.json").read_text())["results"]
    assert [(r["model"], r["length"]) for r in results] == [
        ("lstm", 12),
        ("simple_rnn", 12),
    ]
    for r in results:
        assert np.isfinite(r["test_mse"]) and r["steps_run"] in (2, 4)
        assert len(r["gradient_norms_init"]) == 12
    assert len(results[0]["gradient_norms_keras_init"]) == 12  # lstm at T=12
    table = (run / "results.md").read_text()
    assert "| our LSTM (32, 4513) |" in table and "SimpleRNN (65, 4486)" in table
    assert "run folder:" in capsys.readouterr().out

    # --resume keeps finished models and redoes an unfinished one identically.
    (run / "T12-simple_rnn" / "metrics.json").unlink()
    task.main(["--resume", "latest", "--runs-dir", str(tmp_path)])
    again = json.loads((run / "metrics.json").read_text())["results"]
    for before, after in zip(results, again):
        assert after["test_mse"] == pytest.approx(before["test_mse"], rel=1e-6)
        assert after["gradient_norms_trained"] == pytest.approx(
            before["gradient_norms_trained"], rel=1e-5
        )


def test_tuple_validation_reaches_tensorflow_fit_as_batches_of_32(
    tmp_path, monkeypatch
):
    """long_range validates on `(x, y)` arrays; on tensorflow `tasks.common.fit`
    batches them by 32 (Keras' default for arrays) into `for_tensorflow_fit`."""
    from tasks.common import training

    wrapped = []
    real = training.for_tensorflow_fit

    def spy(batches):
        wrapped.append(batches)
        return real(batches)

    monkeypatch.setattr(training, "for_tensorflow_fit", spy)
    args = "--lengths 12 --models lstm --epochs 1 --steps-per-epoch 2 --batch-size 8"
    args += " --validation-size 40 --test-size 16 --gradient-length 12 --verbose 0"
    task.main([*args.split(), "--runs-dir", str(tmp_path)])
    if keras.backend.backend() != "tensorflow":
        assert wrapped == []
        return
    train, validation = wrapped
    assert len(train) == 2 and train.batch_size == 8
    assert validation.batch_size == 32 and validation.rows == 40
    assert len(validation) == 2  # 32 + 8 rows


def test_cosine_schedule_runs(tmp_path):
    """--lr-schedule cosine needs the batches per epoch, which the grid passes
    (it used to stop with "needs the number of steps per epoch")."""
    config = task.LongRangeConfig(lr_schedule="cosine", epochs=3)
    model = task.build_model(config, "lstm", length=5, steps_per_epoch=4)
    assert model.optimizer._learning_rate.decay_steps == 12
    task.main(
        ["--lengths", "6", "--models", "lstm", "--epochs", "1", "--steps-per-epoch",
         "2", "--batch-size", "4", "--validation-size", "8", "--test-size", "8",
         "--gradient-length", "6", "--lr-schedule", "cosine", "--verbose", "0",
         "--runs-dir", str(tmp_path)]
    )  # fmt: skip
    (run,) = (tmp_path / "long_range").iterdir()
    (result,) = json.loads((run / "metrics.json").read_text())["results"]
    assert result["steps_run"] == 2 and np.isfinite(result["test_mse"])


def test_a_failure_before_training_leaves_no_run_folder(tmp_path, monkeypatch):
    """As in the other tasks: a run that stops before its first epoch, with a
    traceback too, removes its folder (so --resume latest does not pick it)."""

    def a_bug(config, length):
        raise RuntimeError("a bug")

    monkeypatch.setattr(task, "load_data", a_bug)
    with pytest.raises(RuntimeError):
        task.main(["--lengths", "12", "--models", "lstm", "--runs-dir", str(tmp_path)])
    assert list((tmp_path / "long_range").iterdir()) == []


def test_sizes_too_large_for_memory_end_in_one_line(tmp_path):
    """A test set of 10^13 sequences (past any address space): NumPy's
    MemoryError as one `error:` line (it was a traceback), no run folder left."""
    with pytest.raises(SystemExit) as exit_info:
        task.main(
            ["--lengths", "12", "--models", "lstm", "--test-size", "10000000000000",
             "--runs-dir", str(tmp_path)]
        )  # fmt: skip
    assert re.fullmatch(
        r"error: out of memory \(Unable to allocate .*\); smaller sizes \(batch, "
        r"data or model options\) may fit",
        str(exit_info.value.code),
    )
    assert list((tmp_path / "long_range").iterdir()) == []


def test_a_model_that_diverges_is_a_result_not_the_end_of_the_grid(tmp_path):
    """Plain RNNs may diverge: the grid goes on and the table says so."""
    argv = "--lengths 12 --models simple_rnn,lstm --epochs 2 --steps-per-epoch 2 "
    argv += "--batch-size 8 --validation-size 16 --test-size 16 --gradient-length 0 "
    argv += "--verbose 0 --model-learning-rates simple_rnn=1e30"
    task.main([*argv.split(), "--runs-dir", str(tmp_path)])
    (run,) = (tmp_path / "long_range").iterdir()
    text = (run / "metrics.json").read_text()
    results = json.loads(text, parse_constant=strict_json_has_no)["results"]
    by_model = {r["model"]: r for r in results}
    assert by_model["simple_rnn"]["test_mse"] is None  # NaN, as strict JSON
    assert np.isfinite(by_model["lstm"]["test_mse"])
    # The table gives the steps it ran (TerminateOnNaN ended it after the
    # first epoch), not the budget of 4.
    steps = by_model["simple_rnn"]["steps_run"]
    assert (
        steps == 2 and "| nan · not solved in 2 |" in (run / "results.md").read_text()
    )
    # Resuming the finished grid reads the NaN back and trains nothing.
    task.main([*argv.split(), "--runs-dir", str(tmp_path), "--resume", "latest"])
    again = json.loads(
        (run / "metrics.json").read_text(), parse_constant=strict_json_has_no
    )
    assert again["results"] == results


def strict_json_has_no(constant):
    raise AssertionError(f"{constant} is not JSON; strict parsers reject it")
