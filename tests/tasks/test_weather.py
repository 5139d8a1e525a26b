"""The weather task: cleaning, splits, baselines, a tiny end-to-end run, predict."""

import csv
import dataclasses
import gzip
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from tasks import common
from tasks.common import ConfigError
from tasks.common.bundled import DATA_DIR
from tasks.common.datasets import DatasetError
from tasks.weather import baselines, data
from tasks.weather import export as weather_export
from tasks.weather import task as weather
from tests.tasks.helpers import assert_cosine_over_all_steps

ROOT = Path(__file__).resolve().parents[2]
HEADER = "time_utc,station," + ",".join(data.FEATURES)


def tiny_config(tmp_path, **overrides):
    """A model small enough to train in seconds."""
    values = dict(
        units=4,
        lookback=24,
        horizons="1,6,24",
        batch_size=32,
        steps_per_epoch=4,
        epochs=2,
        learning_rate=1e-2,
        members=1,
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "export"),
        verbose="0",
    )
    values.update(overrides)
    return weather.WeatherConfig(**values)


def observations(temps: np.ndarray, start: int = 0) -> data.Observations:
    """Synthetic one-feature-per-station observations (temperature only)."""
    temps = np.asarray(temps, dtype="float64").reshape(len(temps), -1)
    stations = [f"S{i}" for i in range(temps.shape[1])]
    hours = np.arange(start, start + len(temps))
    return data.Observations(hours, temps[:, :, None], stations, ["temp_c"], {})


# Reading and cleaning -------------------------------------------------------------


def test_bundled_file_has_every_station_and_si_units():
    raw = gzip.decompress((DATA_DIR / data.BUNDLED).read_bytes()).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(rows) == 26115
    first = rows[0]  # source: EWR 2013-01-01 06:00Z, 39.02 F, 270 deg at 10.357 mph
    assert first["time_utc"] == "2013-01-01 06:00" and first["station"] == "EWR"
    assert float(first["temp_c"]) == pytest.approx((39.02 - 32) * 5 / 9, abs=0.01)
    assert float(first["wind_u_ms"]) == pytest.approx(10.35702 * 0.44704, abs=0.01)
    assert float(first["wind_v_ms"]) == pytest.approx(0.0, abs=0.01)
    obs = data.load_nyc()
    assert obs.stations == ["EWR", "JFK", "LGA"]
    assert obs.values.shape == (8730, 3, len(data.FEATURES))
    assert obs.report["hours_missing_EWR"] == 27  # 8730 hours - 8703 rows


def test_wind_vectors_point_where_the_wind_blows():
    sys.path.insert(0, str(DATA_DIR))
    import build_weather as build

    u, v, _ = build.wind_vector(270.0, 5.0)  # from the west: blows eastward
    assert (u, v) == pytest.approx((5.0, 0.0))
    u, v, _ = build.wind_vector(0.0, 3.0)  # from the north: blows southward
    assert (u, v) == pytest.approx((0.0, -3.0))
    assert build.wind_vector(math.nan, 2.0) == (0.0, 0.0, "variable")
    assert build.wind_vector(90.0, 0.0) == (0.0, 0.0, "calm")
    assert build.celsius(212.0) == pytest.approx(100.0)


def test_short_gaps_are_interpolated_long_ones_kept():
    nan = np.nan
    series = np.array([nan, 1, nan, 3, nan, nan, nan, 7, nan, nan, nan, nan, 12, nan])
    filled, count = data.interpolate_short_gaps(series, max_gap=3)
    expected = [nan, 1, 2, 3, 4, 5, 6, 7, nan, nan, nan, nan, 12, nan]
    np.testing.assert_allclose(filled, expected)
    assert count == 4


def test_interpolation_stays_inside_each_split():
    """A gap that straddles a split boundary stays missing: filling the last
    training hour from the first validation value would leak it back."""
    nan = np.nan
    series = {"A": (np.arange(8), np.array([[1.0], [2.0], [3.0], [nan], [nan],
                                            [6.0], [7.0], [8.0]]))}  # fmt: skip
    obs = data.to_grid(series, ["temp_c"], ["A"])
    whole = data.clean(obs, max_gap=3)
    np.testing.assert_allclose(whole.values[:, 0, 0], np.arange(1.0, 9.0))
    split = data.clean(obs, max_gap=3, spans=[(0, 4), (4, 8)])
    expected = [1, 2, 3, nan, nan, 6, 7, 8]
    np.testing.assert_allclose(split.values[:, 0, 0], expected)
    assert split.report["values_interpolated_gaps_up_to_3h"] == 0
    inside = data.clean(obs, max_gap=3, spans=[(0, 2), (2, 8)])
    np.testing.assert_allclose(inside.values[:, 0, 0], np.arange(1.0, 9.0))


def test_reindexing_and_pressure_fill_are_counted():
    series = {
        "A": (np.array([10, 11, 13]), np.array([[1.0, 1000.0]] * 3)),
        "B": (np.array([10, 11, 12, 13]), np.array([[2.0, 1002.0]] * 4)),
        "C": (np.array([11, 12, 13]), np.array([[3.0, np.nan]] * 3)),
    }
    obs = data.to_grid(series, ["temp_c", "pressure_hpa"], ["A", "B", "C"])
    assert obs.report == {
        "hours_missing_A": 1,
        "hours_missing_B": 0,
        "hours_missing_C": 1,
        "hours": 4,
    }
    assert np.isnan(obs.values[2, 0]).all()  # hour 12 of A is missing
    cleaned = data.clean(obs, max_gap=1)
    pressure = cleaned.values[:, :, 1]
    # C had no pressure: the mean of A and B where known (B alone at hour 12).
    np.testing.assert_allclose(pressure[:, 2], [1001, 1001, 1002, 1001])
    np.testing.assert_allclose(pressure[:, 0], [1000, 1000, 1002, 1000])
    np.testing.assert_allclose(cleaned.values[:, 0, 0], [1, 1, 1, 1])  # interpolated
    assert np.isnan(cleaned.values[0, 2, 0])  # C's first hour: an edge, kept
    assert cleaned.report["pressure_filled_from_other_stations"] == 5


def test_reading_rejects_bad_files():
    good = [HEADER, "2013-01-01 00:00,EWR" + ",1" * len(data.FEATURES)]
    data.read_long_csv(good, data.FEATURES)
    with pytest.raises(ValueError, match="missing column.*visib_km"):
        data.read_long_csv([HEADER.rsplit(",", 1)[0]], data.FEATURES)
    with pytest.raises(ValueError, match="line 2: time_utc 'yesterday'"):
        data.read_long_csv([HEADER, good[1].replace("2013-01-01 00:00", "yesterday")],
                           data.FEATURES)  # fmt: skip
    with pytest.raises(ValueError, match="line 2: temp_c = 'warm' is not a number"):
        data.read_long_csv([HEADER, good[1].replace(",1", ",warm", 1)], data.FEATURES)
    with pytest.raises(ValueError, match="line 3: .*EWR are duplicated"):
        data.read_long_csv(good + good[1:], data.FEATURES)
    later = good[1].replace("00:00", "05:00")
    with pytest.raises(ValueError, match="line 3: .*EWR are not sorted"):
        data.read_long_csv([HEADER, later, good[1]], data.FEATURES)
    more = f"line 2: more fields than the header's {len(data.FEATURES) + 2}"
    with pytest.raises(ValueError, match=more):
        data.read_long_csv([HEADER, good[1] + ",7"], data.FEATURES)
    with pytest.raises(ValueError, match="line 4: more fields"):  # blank lines count
        data.read_long_csv([HEADER, "", "", good[1] + ",7"], data.FEATURES)
    with pytest.raises(ValueError, match="line 2: fewer fields than the header's"):
        data.read_long_csv([HEADER, good[1].rsplit(",", 2)[0]], data.FEATURES)
    with pytest.raises(ValueError, match="line 2: station is empty"):
        data.read_long_csv([HEADER, good[1].replace(",EWR", ",")], data.FEATURES)
    # A station written " EWR " (spreadsheet padding) is EWR, as its numbers
    # and time stamps are read with their spaces stripped.
    padded = data.read_long_csv([HEADER, good[1].replace(",EWR", ", EWR ")],
                                data.FEATURES)  # fmt: skip
    assert list(padded) == ["EWR"]


# Splits, windows and normalisation -------------------------------------------------


def test_no_window_straddles_a_split_boundary_or_a_gap():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    x[200, 1] = np.nan  # a long gap left after cleaning
    temps = x[:, :1].copy()
    lookback, horizons = 24, [1, 6]
    bounds = data.split_bounds(500, 0.2, 0.2)
    assert bounds == {"train": (0, 300), "validation": (300, 400), "test": (400, 500)}
    for start, end in bounds.values():
        anchors, dropped = data.window_anchors(
            x, temps, (start, end), lookback, horizons
        )
        expected = [  # brute force: every row the window reads, checked one by one
            t
            for t in range(end)
            if t - lookback + 1 >= start
            and t + max(horizons) < end
            and not np.isnan(x[t - lookback + 1 : t + 1]).any()
            and not any(np.isnan(x[t + h]).any() for h in horizons)
        ]
        assert anchors.tolist() == expected
        candidates = max(0, end - start - lookback + 1 - max(horizons))
        assert dropped == candidates - len(expected)
    train, _ = data.window_anchors(x, temps, bounds["train"], lookback, horizons)
    assert 200 not in [t + h for t in train for h in horizons]
    assert train.max() + max(horizons) < 300 and train.min() - lookback + 1 >= 0


def test_normalisation_uses_training_statistics_only(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    temps = rng.normal(10, 3, size=(400, 2))
    monkeypatch.setattr(data, "load_nyc", lambda: observations(temps))
    config = tiny_config(tmp_path, validation_fraction=0.25, test_fraction=0.25)
    prepared = weather.load_data(config)
    train = temps[:200]
    np.testing.assert_allclose(prepared.stats["mean"][:2], train.mean(axis=0))
    np.testing.assert_allclose(prepared.stats["std"][:2], train.std(axis=0))
    changed = temps.copy()
    changed[200:] = changed[200:] * 100 + 50  # validation and test far off
    monkeypatch.setattr(data, "load_nyc", lambda: observations(changed))
    again = weather.load_data(config)
    assert again.stats["mean"] == prepared.stats["mean"]
    assert again.stats["std"] == prepared.stats["std"]
    assert again.stats["target_scale"] == prepared.stats["target_scale"]
    np.testing.assert_allclose(again.x[:200], prepared.x[:200])


# Baselines ----------------------------------------------------------------------


def test_baselines_on_hand_made_series():
    ramp = np.arange(100.0)[:, None]  # +1 degree per hour
    anchors = np.array([30, 50, 70])
    horizons = [1, 6, 24]
    actual = data.future(ramp, anchors, horizons)
    persistence = baselines.persistence(ramp, anchors, horizons)
    assert baselines.mae_by_horizon(persistence, actual) == [1.0, 6.0, 24.0]
    seasonal = baselines.seasonal_naive(ramp, anchors, horizons)
    assert seasonal[0, :, 0].tolist() == [7.0, 12.0, 30.0]  # t+h-24 for t=30
    assert baselines.mae_by_horizon(seasonal, actual) == [24.0, 24.0, 24.0]
    assert baselines.seasonal_lag(25) == 23  # t+25 looks back to t-23 (= t+25-48)

    # A daily cycle 0, 1, ..., 23: seasonal naive is exact; persistence misses
    # by h, except across midnight where it misses by h - 24.
    cycle = (np.arange(200.0) % 24)[:, None]
    anchors = np.arange(30, 150)
    actual = data.future(cycle, anchors, [1, 6])
    seasonal = baselines.seasonal_naive(cycle, anchors, [1, 6])
    assert baselines.mae_by_horizon(seasonal, actual) == [0.0, 0.0]
    persistence = baselines.persistence(cycle, anchors, [1, 6])
    # Per 24 anchors: h=1 -> 23 misses of 1 + one of 23; h=6 -> 18 of 6, 6 of 18.
    expected = [(23 * 1 + 23) / 24, (18 * 6 + 6 * 18) / 24]
    np.testing.assert_allclose(baselines.mae_by_horizon(persistence, actual), expected)


def test_linear_baseline_matches_least_squares():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2))
    anchors = np.arange(5, 300)
    windows = data.Windows(x, anchors, lookback=3)
    flat = windows[np.arange(len(anchors))].reshape(len(anchors), -1)
    y = flat @ rng.normal(size=(6, 2)) + 0.5 + rng.normal(0, 0.1, size=(295, 2))
    model, scores = baselines.fit_linear((windows, y), (windows, y))
    assert model.strength == min(scores, key=scores.get)
    # Reference: ridge as ordinary least squares on rows augmented with
    # sqrt(strength) * identity (intercept column not penalised).
    design = np.c_[flat, np.ones(len(flat))]
    penalty = np.sqrt(model.strength) * np.eye(7)[:6]
    augmented = np.concatenate([design, penalty])
    target = np.concatenate([y, np.zeros((6, 2))])
    reference = np.linalg.lstsq(augmented, target, rcond=None)[0]
    np.testing.assert_allclose(model.weights, reference, atol=1e-6)
    np.testing.assert_allclose(model.predict(windows), design @ reference, atol=1e-5)
    assert scores[model.strength] < 0.1  # noise level: the fit is right


# Config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"horizons": "6,1"}, "--horizons='6,1'"),
        ({"horizons": "1,six"}, "--horizons='1,six'"),
        ({"lookback": 12}, "--lookback=12"),
        ({"members": 0}, "--members=0: must be positive"),
        ({"members": 10**12}, "--members=1000000000000: at most 4294968 (member k"),
        ({"max_gap": -1}, "--max-gap=-1: must be >= 0"),
        (
            {"members": 3, "seed": 2**32 - 1500},
            "--seed=4294965796: must be in [0, 4294965295] (member 3 trains with "
            "--seed + 2000)",
        ),
        ({"test_fraction": 0.9}, "--test-fraction=0.9"),
        ({"recurrent_dropout": 1.0}, "--recurrent-dropout=1.0: must be in [0, 1)"),
        ({"dropout": -0.1}, "--dropout=-0.1: must be in [0, 1)"),
        ({"jena_csv": "j.csv"}, "--jena-csv='j.csv': needs --dataset jena"),
        (
            {"jena_csv": "/no/such.csv", "dataset": "jena"},
            "--jena-csv='/no/such.csv': no such file",
        ),
    ],
)
def test_bad_options_name_the_flag(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        tiny_config(tmp_path, **overrides).validate()


def test_a_split_without_a_complete_window_says_how_to_get_one(tmp_path):
    """Gaps longer than --max-gap drop the windows that touch them: with no
    interpolation and a long lookback, the short test split keeps none, and
    the message says to raise --max-gap (it once said lower)."""
    config = tiny_config(tmp_path, max_gap=0, lookback=24 * 30, test_fraction=0.05)
    with pytest.raises(
        ConfigError, match=r"no complete window in the .*test.* raise --max-gap"
    ):
        weather.load_data(config)
    assert (
        weather.load_data(tiny_config(tmp_path, max_gap=0)).report[
            "values_interpolated_gaps_up_to_0h"
        ]
        == 0
    )


# Training, export, predict ---------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("weather")
    keras.utils.set_random_seed(1234)
    config = tiny_config(tmp_path, members=2)
    model, run, metrics = weather.train(config)
    prepared = weather.load_data(config)
    return config, model, run, metrics, prepared


def test_tiny_run_writes_metrics_plots_and_export(trained):
    config, _, run, metrics, _ = trained
    for name in ("config.json", "metrics.json"):
        assert (run.path / name).is_file(), name
    for member in ("member-1", "member-2"):
        for name in ("history.csv", "best.keras", "member_done.json"):
            assert (run.path / member / name).is_file(), (member, name)
        assert (run.path / member / "loss.png").stat().st_size > 1000
    assert [m["seed"] for m in metrics["members"]] == [config.seed, config.seed + 1000]
    # The ensemble's figures cover all members, not the first one's.
    assert metrics["epochs_run"] == sum(m["epochs_run"] for m in metrics["members"])
    assert "best_val_loss" not in metrics  # each member has its own
    for name in ("forecast_week.png", "mae_by_horizon.png"):
        assert (run.path / name).stat().st_size > 1000, name
    models = {"persistence", "seasonal naive", "linear", "keras_lstm.lstm"}
    assert set(metrics["test_mae"]) == models
    for maes in metrics["test_mae"].values():
        assert list(maes) == ["1", "6", "24"]
        assert all(0 < v < 20 for v in maes.values())
    assert metrics["data"]["windows_test"] > 1000
    assert metrics["export"]["keras_max_abs_diff"] < 1e-5
    expected = {"model.keras", "normalization.json", "task.json"}
    if keras.backend.backend() == "tensorflow":
        expected |= {"saved_model", "saved_model.json", "model.tflite"}
        expected |= {"model.tflite.json"}
        assert metrics["export"]["saved_model_max_abs_diff"] <= 1e-5
        assert metrics["export"]["tflite_max_abs_diff"] <= 1e-5
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in metrics["export"]["tflite_ops"]
        assert not any(op.startswith("Flex") for op in metrics["export"]["tflite_ops"])
        # The reports name their export relative to themselves, so they still
        # point at it once the temporary folder is swapped into place.
        for name in ("saved_model", "model.tflite"):
            report = json.loads((Path(config.export_dir) / f"{name}.json").read_text())
            assert report["path"] == name
    assert {p.name for p in Path(config.export_dir).iterdir()} == expected


def test_the_model_is_the_mean_of_its_members_trained_on_every_hour(trained):
    config, model, _, _, prepared = trained
    assert prepared.stats["trained_horizons"] == list(range(1, 25))
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["member_1", "member_2"]
    recurrent = [layer for layer in members[0].layers if hasattr(layer, "cell")]
    assert [layer.cell.recurrent_dropout for layer in recurrent] == [0.2]
    x = np.random.default_rng(0).normal(size=(5, config.lookback, 28))
    x = x.astype("float32")
    outputs = [np.asarray(m.predict(x, verbose=0)) for m in members]
    assert outputs[0].shape == (5, 24 * 3)
    assert not np.allclose(outputs[0], outputs[1])  # different seeds
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.mean(outputs, 0), atol=1e-6
    )
    # the reported horizons are picked out of the 24 trained ones
    windows, scaled = weather.split_arrays(prepared, "test", [1, 6, 24])
    picked = weather.split_arrays(prepared, "test")[1].reshape(-1, 24, 3)[:, [0, 5, 23]]
    np.testing.assert_allclose(scaled.reshape(-1, 3, 3), picked, rtol=1e-6)


def test_resuming_a_finished_ensemble_reuses_its_members(trained):
    config, model, run, metrics, _ = trained
    resumed = weather.WeatherConfig(
        **{**vars(config), "resume": str(run.path), "export_dir": ""}
    )
    fits = []

    class CountFits(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            fits.append(1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again, _, metrics_again = weather.train(resumed, extra_callbacks=[CountFits()])
    assert fits == []  # no member trained again: both were loaded
    assert metrics_again["members"] == metrics["members"]
    # Each member's best.keras loads whole, optimizer state included (Keras
    # skips the state of an unbuilt optimizer, with a UserWarning each).
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    members = [layer for layer in again.layers if isinstance(layer, keras.Model)]
    trained_members = [
        layer for layer in model.layers if isinstance(layer, keras.Model)
    ]
    assert len(members) == len(trained_members) == 2
    for loaded, original in zip(members, trained_members):
        assert (
            int(loaded.optimizer.iterations) == int(original.optimizer.iterations) > 0
        )
    for name, maes in metrics["test_mae"].items():
        assert metrics_again["test_mae"][name] == pytest.approx(maes, abs=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF export")
def test_builtin_cell_ensemble_exports_through_keras_lstm_twins(tmp_path):
    """--cell keras: the .tflite comes from a copy with our layers (the
    built-ins' loop needs Flex ops) and equals the trained built-in model."""
    from keras_lstm import export as lite

    config = tiny_config(tmp_path, members=1, cell="keras")
    stats = {"lookback": config.lookback, "inputs": [f"x{i}" for i in range(5)]}
    model = weather.ensemble([weather.build_model(config, 5, 3, "member_1")])
    report = weather.export(model, stats, str(tmp_path / "export"))
    assert report["exported_keras_lstm_twins_of"] == ["lstm"]
    assert report["keras_lstm_twins_max_abs_diff"] <= 1e-5
    windows = np.random.default_rng(5).normal(size=(1, 24, 5)).astype("float32")
    expected = model.predict(windows, verbose=0)
    run = lite.tflite_runner(tmp_path / "export" / "model.tflite")
    np.testing.assert_allclose(run(window=windows)["output_0"], expected, atol=1e-5)


def test_mixed_precision_ensemble_exports_a_float32_copy(tmp_path):
    """--mixed-precision: model.keras stays the trained (mixed) ensemble; the
    SavedModel and .tflite (TensorFlow only) come from a float32 copy, which
    computes what a float32 ensemble built alike with the same weights
    computes."""
    config = tiny_config(tmp_path, members=2, recurrent_dropout=0.0)
    stats = {"lookback": config.lookback, "inputs": [f"x{i}" for i in range(5)]}

    def build():
        members = [weather.build_model(config, 5, 3, f"member_{k + 1}") for k in (0, 1)]
        return weather.ensemble(members)

    keras.config.set_dtype_policy("mixed_bfloat16")  # as a run sets it
    model = build()
    keras.config.set_dtype_policy("float32")
    reference = build()
    reference.set_weights(model.get_weights())
    keras.config.set_dtype_policy("mixed_bfloat16")  # still set at export time

    report = weather.export(model, stats, str(tmp_path / "export"))
    saved = keras.saving.load_model(tmp_path / "export" / "model.keras")
    recurrent = saved.get_layer("member_1").layers[1]
    assert recurrent.dtype_policy.name == "mixed_bfloat16"
    if keras.backend.backend() != "tensorflow":  # model.keras is the export
        assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
            "model.keras", "normalization.json", "task.json",
        ]  # fmt: skip
        return
    import tensorflow as tf

    from keras_lstm import export as lite

    assert report["exported_float32_copy_of"] == "mixed_bfloat16"
    assert report["tflite_max_abs_diff"] <= 1e-5
    windows = np.random.default_rng(5).normal(size=(1, 24, 5)).astype("float32")
    expected = reference.predict(windows, verbose=0)
    run = lite.tflite_runner(tmp_path / "export" / "model.tflite")
    np.testing.assert_allclose(run(window=windows)["output_0"], expected, atol=1e-5)
    serve = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    got = serve.signatures["serving_default"](window=tf.constant(windows))
    np.testing.assert_allclose(got["output_0"].numpy(), expected, atol=1e-5)


@pytest.fixture(scope="module")
def cleaned():
    return data.clean(data.load_nyc(), max_gap=3)


def recent_csv(obs: data.Observations, path: Path, hours: int, edit=None) -> Path:
    """The cleaned observations of the last `hours` hours, in the bundled format.

    `edit` gets the lines (0: header, then EWR's rows, JFK's, LGA's) to spoil.
    """
    lines = [HEADER] + [
        ",".join(
            [data.format_hour(hour), station, *map(repr, map(float, obs.values[t, s]))]
        )
        for s, station in enumerate(obs.stations)
        for t, hour in list(enumerate(obs.hours))[-hours:]
    ]
    path.write_text("\n".join(edit(lines) if edit else lines) + "\n")
    return path


def test_predict_from_csv_equals_the_training_pipeline(trained, cleaned, tmp_path):
    config, model, _, _, prepared = trained
    path = recent_csv(cleaned, tmp_path / "r.csv", 30)
    result = weather.predict(path, config.export_dir)
    assert result["from"] == "2013-12-30 23:00"
    last = np.array([len(prepared.hours) - 1])  # the final hour, via load_data
    windows = data.Windows(prepared.x, last, config.lookback)
    expected = weather.forecast(model, windows, prepared.temps[last], prepared.stats)
    for s, station in enumerate(["EWR", "JFK", "LGA"]):
        got = list(result["forecasts"][station].values())
        np.testing.assert_allclose(got, expected[0, :, s], atol=1e-4)


def test_predict_reads_the_example_file(trained):
    example = ROOT / "tasks" / "weather" / "example_recent.csv"
    result = weather.predict(example, trained[0].export_dir)
    assert result["from"] == "2013-12-30 23:00"
    assert list(result["forecasts"]) == ["EWR", "JFK", "LGA"]
    for by_horizon in result["forecasts"].values():
        assert list(by_horizon) == [1, 6, 24]
        assert all(-30 < t < 45 for t in by_horizon.values())


def replace(index, old, new):
    """An edit that replaces `old` by `new` once in line `index`."""
    return lambda lines: [
        line.replace(old, new, 1) if i == index else line
        for i, line in enumerate(lines)
    ]


# Lines: 0 header, 1-30 EWR (2013-12-29 18:00 to 12-30 23:00), 31-60 JFK, 61-90 LGA.
@pytest.mark.parametrize(
    "hours, edit, message",
    [
        (30, lambda r: [x.rsplit(",", 1)[0] for x in r], "missing column.*visib_km"),
        (10, None, "too few rows: station EWR has 10 hours, the model reads the"),
        (30, lambda r: r[:20] + [r[20].rsplit(",", 1)[0] + ",nan"] + r[21:],
         "EWR, 2013-12-30 13:00: visib_km is missing .empty or NaN."),
        (30, lambda r: r[:60] + [r[60].rsplit(",", 1)[0] + ","] + r[61:],
         "JFK, 2013-12-30 23:00: visib_km is missing"),
        (30, lambda r: r[:20] + [r[20].rsplit(",", 1)[0] + ",-inf"] + r[21:],
         "EWR, 2013-12-30 13:00: visib_km = -inf; the last 24 hours must be "
         "complete and finite"),
        (30, replace(6, "2013-12-29", "2013-12-2x"), "line 7: time_utc '2013-12-2x"),
        (30, replace(90, ",LGA,", ",LGA,abc"), "line 91: temp_c = 'abc.*' is not a"),
        (30, lambda r: r[:1] + [r[2], r[1]] + r[3:], "line 3: .*EWR are not sorted"),
        (30, lambda r: r[:3] + [r[2]] + r[3:], "line 4: .*EWR are duplicated"),
        (30, lambda r: [x for x in r if ",JFK," not in x], "no rows for station.*JFK"),
        (30, lambda r: r[:20] + r[21:], "EWR: hours missing between"),
        (30, lambda r: r[:-1], "stations end at different hours"),
    ],
)  # fmt: skip
def test_predict_names_what_is_wrong_with_the_csv(
    trained, cleaned, tmp_path, hours, edit, message
):
    path = recent_csv(cleaned, tmp_path / "bad.csv", hours, edit)
    with pytest.raises(ValueError, match=message):
        weather.predict(path, trained[0].export_dir)


def test_predict_reads_a_csv_with_a_byte_order_mark(trained, cleaned, tmp_path):
    """Spreadsheets save "CSV UTF-8" with a BOM before the first column's name."""
    path = recent_csv(cleaned, tmp_path / "plain.csv", 30)
    marked = tmp_path / "bom.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    model, stats = weather_export.load_exported(trained[0].export_dir)
    assert weather.predict_with(marked, model, stats) == weather.predict_with(
        path, model, stats
    )


def test_predict_reads_a_gzipped_csv_or_names_it_cut_short(trained, cleaned, tmp_path):
    """A .csv.gz (the bundled data's format) is read as the CSV it holds; one
    cut short or damaged, or not gzip at all, is a ValueError / OSError
    naming that."""
    path = recent_csv(cleaned, tmp_path / "plain.csv", 30)
    packed = tmp_path / "recent.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    model, stats = weather_export.load_exported(trained[0].export_dir)
    assert weather.predict_with(packed, model, stats) == weather.predict_with(
        path, model, stats
    )
    whole = packed.read_bytes()
    packed.write_bytes(whole[:-20])
    with pytest.raises(ValueError, match="the gzip file is cut short"):
        weather.predict_with(packed, model, stats)
    # After the 10-byte header, a deflate block of the reserved type: zlib.error
    packed.write_bytes(whole[:10] + b"\xff" * 64)
    with pytest.raises(ValueError, match="the gzip file is damaged"):
        weather.predict_with(packed, model, stats)
    packed.write_bytes(path.read_bytes())
    with pytest.raises(OSError, match="Not a gzipped file"):
        weather.predict_with(packed, model, stats)


def test_a_damaged_export_is_named(trained, tmp_path):
    """A damaged normalization.json or model.keras: one error naming the file,
    not a KeyError or Keras' "File not found" for a file that is there."""
    folder = tmp_path / "export"
    shutil.copytree(trained[0].export_dir, folder)
    stats_file = folder / "normalization.json"
    good = stats_file.read_text()
    for content, message in [
        ("{}", "normalization.json does not hold the normalization statistics"),
        (good[: len(good) // 2], "normalization.json is not valid JSON"),
        ('{"lookback": 0}', "does not hold the normalization statistics"),
    ]:
        stats_file.write_text(content)
        with pytest.raises(ValueError, match=message):
            weather_export.load_exported(folder)
    stats_file.write_text(good)
    model_file = folder / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"model.keras is not a .keras file"):
        weather_export.load_exported(folder)


def test_predict_checks_the_csv_exists_first(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        weather.predict_main(["--csv", str(tmp_path / "none.csv")])
    assert exit_info.value.code == f"error: --csv={tmp_path / 'none.csv'}: no such file"


@pytest.mark.slow  # a fresh Python process / a second training run
def test_predict_command_prints_one_line_errors(trained, cleaned, tmp_path):
    path = recent_csv(cleaned, tmp_path / "short.csv", 5)
    done = subprocess.run(
        [sys.executable, "-m", "tasks.weather", "predict", "--csv", str(path),
         "--model-dir", trained[0].export_dir],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    # The last line; TensorFlow may log its start-up lines before it.
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {path}: too few rows: station EWR has 5 hours, the model reads "
        "the last 24"
    )


# Jena -----------------------------------------------------------------------------


JENA_HEADER = (
    '"Date Time","p (mbar)","T (degC)","Tpot (K)","Tdew (degC)","rh (%)",'
    '"VPmax (mbar)","VPact (mbar)","VPdef (mbar)","sh (g/kg)","H2OC (mmol/mol)",'
    '"rho (g/m**3)","wv (m/s)","max. wv (m/s)","wd (deg)"'
)


def write_jena(folder: Path, days: int) -> Path:
    """A small file in the Jena climate format: every 10 minutes, one error."""
    rng = np.random.default_rng(3)
    lines = [JENA_HEADER]
    for step in range(1, days * 144 + 1):
        minutes = step * 10
        day, rest = divmod(minutes, 1440)
        stamp = f"{day % 28 + 1:02d}.{day // 28 + 1:02d}.2009 "
        stamp += f"{rest // 60:02d}:{rest % 60:02d}:00"
        temp = 5 + 4 * math.sin(2 * math.pi * minutes / 1440) + rng.normal(0, 0.3)
        wind = -9999.0 if step == 72 else 2.0
        values = [996.5, temp, temp + 273, temp - 3, 80, 9, 7, 2, 4.4, 7, 1300]
        lines.append(stamp + "," + ",".join(f"{v:.2f}" for v in values)
                     + f",{wind},{wind + 1},{90.0}")  # fmt: skip
    folder.mkdir(parents=True)
    path = folder / "jena_climate_2009_2016.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow  # a fresh Python process / a second training run
def test_jena_loader_reads_the_extracted_folder(tmp_path, monkeypatch):
    folder = tmp_path / "jena_climate_2009_2016_extracted"
    write_jena(folder, days=20)
    calls = []

    def get_file(origin, extract, cache_dir):  # Keras 3 returns the extracted folder
        calls.append((origin, extract, cache_dir))
        return str(folder)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.utils, "get_file", get_file)
    obs = data.load_jena()
    assert calls == [(data.JENA_URL, True, str(tmp_path / "keras_home"))]
    assert obs.stations == ["jena"] and obs.features == data.JENA_FEATURES
    assert len(obs.hours) == 20 * 24  # 01:00 on day 1 to 00:00 on day 21
    assert obs.report["jena_wind_errors_set_missing"] == 2  # wv and max. wv, 12:00
    u = obs.values[:, 0, obs.features.index("wind_u_ms")]
    assert np.isnan(u[11]) and u[10] == pytest.approx(-2.0)  # from the east

    config = tiny_config(tmp_path, dataset="jena", horizons="1,6", export_dir="")
    _, _, metrics = weather.train(config)
    # wind and gust u, v at 12:00 on day 1
    assert metrics["data"]["values_interpolated_gaps_up_to_3h"] == 4
    assert set(metrics["test_mae"]["linear"]) == {"1", "6"}


def no_download(monkeypatch, tmp_path):
    """An empty Keras cache and no network: get_file fails as Keras' does."""

    def get_file(origin, **kwargs):
        raise Exception(
            f"URL fetch failure on {origin}: None -- [Errno -2] Name or service "
            "not known"
        )

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.utils, "get_file", get_file)


def test_jena_reads_the_tutorials_zip_in_the_keras_cache_offline(tmp_path, monkeypatch):
    """~/.keras/datasets/jena_climate_2009_2016.csv.zip, the file Keras' own
    Jena tutorial downloads, is read as it is: no download, same data as the
    CSV inside it."""
    csv_path = write_jena(tmp_path / "source", days=3)
    no_download(monkeypatch, tmp_path)
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    with zipfile.ZipFile(cache / "jena_climate_2009_2016.csv.zip", "w") as archive:
        archive.write(csv_path, "jena_climate_2009_2016.csv")
    from_zip, from_csv = data.load_jena(), data.load_jena(csv_path)
    np.testing.assert_array_equal(from_zip.hours, from_csv.hours)
    np.testing.assert_array_equal(from_zip.values, from_csv.values)
    assert len(from_csv.hours) == 3 * 24 and from_zip.report == from_csv.report


def test_jena_not_cached_and_offline_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    no_download(monkeypatch, tmp_path)
    runs_dir = ["--runs-dir", str(tmp_path / "runs")]
    _, earlier = common.start_run(
        "weather", common.parse(weather.WeatherConfig, runs_dir)
    )
    with pytest.raises(SystemExit) as exit:
        weather.main(["--dataset", "jena", *runs_dir])
    # The failed run's folder (config.json only) is gone, so --resume latest
    # finds the run before it.
    assert list((tmp_path / "runs" / "weather").iterdir()) == [earlier.path]
    message = str(exit.value.code)
    cache = tmp_path / "keras_home" / "datasets"
    assert message.startswith(
        f"error: Jena climate data is not in Keras' cache {cache} and downloading "
        f"it failed (URL fetch failure on {data.JENA_URL}: None -- [Errno -2] "
    )
    assert "--jena-csv PATH" in message and "\n" not in message


@pytest.mark.parametrize("layout", ["keras2", "keras3"])
def test_jena_csv_unpacked_in_the_keras_cache_is_read_offline(
    tmp_path, monkeypatch, layout
):
    """The CSV that keras.utils.get_file unpacked, its download deleted:
    Keras 2 left datasets/jena_climate_2009_2016.csv, Keras 3 a folder named
    like the zip (without its `_archive`, get_file would download again)."""
    no_download(monkeypatch, tmp_path)
    cache = tmp_path / "keras_home" / "datasets"
    folder = cache if layout == "keras2" else cache / f"{data.JENA_CSV}.zip"
    path = write_jena(folder, days=3)
    np.testing.assert_array_equal(data.load_jena().values, data.load_jena(path).values)


def test_jena_keras3_download_is_read_before_its_unpacked_csv(tmp_path, monkeypatch):
    """Keras 3's get_file keeps its download as `..._archive` beside the
    folder it unpacks into: the complete zip is read, not a CSV that a killed
    unpacking left short (get_file re-unpacked it on every call)."""
    no_download(monkeypatch, tmp_path)
    source = write_jena(tmp_path / "source", days=3)
    cache = tmp_path / "keras_home" / "datasets"
    folder = cache / f"{data.JENA_CSV}.zip"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(cache / f"{data.JENA_CSV}.zip_archive", "w") as archive:
        archive.write(source, data.JENA_CSV)
    lines = source.read_text().splitlines(keepends=True)
    (folder / data.JENA_CSV).write_text("".join(lines[: len(lines) // 2]))
    assert len(data.load_jena().hours) == 3 * 24


def test_load_data_interpolates_within_each_split(tmp_path):
    """The task passes its split bounds to the cleaning: a 2-hour gap in the
    temperature at the last training hour and the first validation hour
    stays missing (it was filled across the boundary)."""
    length = 20 * 24  # hours of the file: 01:00 on day 1 to 00:00 on day 21
    start = data.split_bounds(length, 0.15, 0.15)["validation"][0]
    lines = 7 + 6 * (start - 1), 7 + 6 * start  # line 7 is hour 0 (01:00)
    path = jena_with(
        tmp_path,
        lambda ls: set_field(set_field(ls, lines[0], 2, ""), lines[1], 2, ""),
        days=20,
    )
    argv = ["--dataset", "jena", "--jena-csv", str(path), "--lookback", "24",
            "--horizons", "1", "--validation-fraction", "0.15",
            "--test-fraction", "0.15"]  # fmt: skip
    prepared = weather.load_data(common.parse(weather.WeatherConfig, argv))
    assert prepared.report["validation_from"] == data.format_hour(prepared.hours[start])
    temps = prepared.temps[:, 0]
    assert np.isnan(temps[start - 1 : start + 1]).all()
    assert np.isfinite(temps[start - 2]) and np.isfinite(temps[start + 1])


def test_jena_cached_zip_cut_off_is_named(tmp_path, monkeypatch):
    """An interrupted download in the cache: named, with the fix (it was read
    as CSV text: a UnicodeDecodeError)."""
    no_download(monkeypatch, tmp_path)
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(write_jena(tmp_path / "source", days=3), data.JENA_CSV)
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    cut = whole.read_bytes()
    (cache / f"{data.JENA_CSV}.zip").write_bytes(cut[: len(cut) // 2])
    cut_off = r"csv.zip is not a valid zip archive \(a cut-off download\?\): delete"
    with pytest.raises(DatasetError, match=cut_off + " it and download https://"):
        data.load_jena()


def test_jena_keras3_folder_without_csv_advice_names_the_folder(tmp_path, monkeypatch):
    """Offline with an empty `...csv.zip/` folder left by Keras: the advice to
    download the zip under that name says the folder must go first."""
    no_download(monkeypatch, tmp_path)
    folder = tmp_path / "keras_home" / "datasets" / f"{data.JENA_CSV}.zip"
    folder.mkdir(parents=True)
    with pytest.raises(DatasetError, match=f"in place of the folder {folder}"):
        data.load_jena()


def jena_with(tmp_path, edit, name="bad.csv", encoding="utf-8", days=2):
    """A Jena CSV of `days` days with `edit(lines)` applied."""
    source = write_jena(tmp_path / f"{name}-source", days=days)
    lines = source.read_text().splitlines()
    path = tmp_path / name
    path.write_text("\n".join(edit(lines)) + "\n", encoding=encoding)
    return path


def set_field(lines, line, column, value):
    """`lines` with field `column` (0-based) of 1-based `line` set to `value`."""
    fields = lines[line - 1].split(",")
    fields[column] = value
    return [*lines[: line - 1], ",".join(fields), *lines[line:]]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: set_field(ls, 7, 2, "warm"),
         r"bad.csv, line 7: T \(degC\) = 'warm' is not a number$"),
        (lambda ls: set_field(ls, 7, 2, "-inf"),
         r"bad.csv, line 7: T \(degC\) = '-inf' is not finite$"),
        (lambda ls: set_field(ls, 7, 0, "2009-01-01 01:00"),
         r"bad.csv, line 7: Date Time '2009-01-01 01:00' is not 'DD.MM.YYYY "
         r"HH:MM:SS'$"),
        (lambda ls: [*ls[:6], ls[6].rsplit(",", 3)[0]],  # a download cut short
         r"bad.csv, line 7: fewer fields than the header's 15$"),
        (lambda ls: ls[:1], r"bad.csv: no rows on the hour"),
        (lambda ls: [ls[0], *(line for line in ls[1:] if ":00:00" not in line)],
         r"bad.csv: no rows on the hour"),
    ],
    ids=["text", "inf", "date", "short-line", "header-only", "no-hours"],
)  # fmt: skip
def test_jena_bad_rows_are_named_by_line(tmp_path, edit, message):
    """Line 7 is 01:00 on the first day (rows every 10 minutes from 00:10).
    These were ValueError, TypeError or IndexError tracebacks."""
    with pytest.raises(DatasetError, match=message):
        data.load_jena(jena_with(tmp_path, edit))


def test_a_value_too_large_to_normalise_is_named(tmp_path):
    """One 1e308 made the temperature's std inf: a RuntimeWarning, then every
    temperature input scaled to 0 and a model trained on that."""
    path = jena_with(tmp_path, lambda ls: set_field(ls, 7, 2, "1e308"), days=20)
    config = common.parse(
        weather.WeatherConfig,
        ["--dataset", "jena", "--jena-csv", str(path), "--lookback", "24",
         "--horizons", "1", "--max-gap", "0"],
    )  # fmt: skip
    with pytest.raises(DatasetError, match="cannot normalise jena:temp_c: the "):
        weather.load_data(config)


def test_jena_empty_value_is_missing_and_encodings(tmp_path):
    """An empty value is a missing one (as in the NYC file: the cleaning fills
    or drops it); a byte-order mark is read; Latin-1 text is named."""
    good = data.load_jena(jena_with(tmp_path, lambda ls: ls, "good.csv"))
    holed = data.load_jena(jena_with(tmp_path, lambda ls: set_field(ls, 7, 2, "")))
    temp = data.JENA_FEATURES.index("temp_c")
    assert np.isnan(holed.values[0, 0, temp]) and not np.isnan(good.values[0]).any()
    np.testing.assert_array_equal(holed.values[1:], good.values[1:])
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "good.csv").read_bytes())
    np.testing.assert_array_equal(data.load_jena(bom).values, good.values)
    latin = jena_with(tmp_path, lambda ls: [ls[0] + ",Bemerkung", *(
        line + ",Sü" for line in ls[1:])], "latin.csv", "latin-1")  # fmt: skip
    with pytest.raises(DatasetError, match="latin.csv is not UTF-8 text"):
        data.load_jena(latin)
    with pytest.raises(DatasetError, match="a folder, not a file"):
        data.load_jena(tmp_path)


def test_a_bug_before_training_leaves_no_run_folder(tmp_path, monkeypatch):
    """An unexpected error (a traceback) before the first epoch removes the
    run folder too, as a one-line error does: else `--resume latest` picks it
    and fails again."""
    runs = tmp_path / "runs"

    def broken(config):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(weather, "load_data", broken)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        weather.main(["--runs-dir", str(runs)])
    assert list((runs / "weather").iterdir()) == []


def test_jena_csv_option_reads_a_local_file_or_zip(tmp_path, monkeypatch):
    csv_path = write_jena(tmp_path / "source", days=20)
    with zipfile.ZipFile(tmp_path / "jena.zip", "w") as archive:
        archive.write(csv_path, "some/folder/jena_climate_2009_2016.csv")
    no_download(monkeypatch, tmp_path)
    argv = ["--dataset", "jena", "--jena-csv", str(csv_path), "--lookback", "24"]
    config = common.parse(weather.WeatherConfig, argv)
    assert config.jena_csv == str(csv_path)
    expected = weather.load_data(config)
    assert expected.report["jena_hourly_rows"] == 20 * 24
    zipped = weather.load_data(
        dataclasses.replace(config, jena_csv=str(tmp_path / "jena.zip"))
    )
    np.testing.assert_array_equal(zipped.x, expected.x)

    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text().replace('"wd (deg)"', '"wind dir"'))
    message = r"bad.csv is not a Jena climate CSV: no column wd \(deg\)$"
    with pytest.raises(DatasetError, match=message):
        data.load_jena(bad)


def test_cosine_schedule_spans_every_training_step(tmp_path):
    """--lr-schedule cosine decays over epochs x training batches (the model
    needs their number when it is built)."""
    config = tiny_config(
        tmp_path, lr_schedule="cosine", epochs=2, steps_per_epoch=3, export_dir=""
    )
    model, _, metrics = weather.train(config)
    assert_cosine_over_all_steps(model, metrics, epochs=2, steps=3)


def test_resume_may_point_at_a_moved_jena_csv(tmp_path):
    """--jena-csv says where the data lies, not what is trained: a resumed run
    takes a new path (the saved dataset, jena, applies; checked after the
    merge), and a saved path that is gone stops with its name."""
    old = write_jena(tmp_path / "old", days=20)
    new = write_jena(tmp_path / "new", days=20)
    runs = ["--runs-dir", str(tmp_path / "runs")]
    argv = [*runs, "--dataset", "jena", "--jena-csv", str(old)]
    common.start_run("weather", common.parse(weather.WeatherConfig, argv))
    old.unlink()
    with pytest.raises(ConfigError, match="jena-csv=.*no such file"):
        common.start_run(
            "weather",
            common.parse(weather.WeatherConfig, [*runs, "--resume", "latest"]),
        )
    resume = [*runs, "--resume", "latest", "--jena-csv", str(new)]
    config, _ = common.start_run("weather", common.parse(weather.WeatherConfig, resume))
    assert (config.dataset, config.jena_csv) == ("jena", str(new))
    # A resumed nyc run does not read a --jena-csv: named, not ignored.
    nyc = ["--runs-dir", str(tmp_path / "nyc")]
    common.start_run("weather", common.parse(weather.WeatherConfig, nyc))
    resume = [*nyc, "--resume", "latest", "--jena-csv", str(new)]
    config, _ = common.start_run("weather", common.parse(weather.WeatherConfig, resume))
    with pytest.raises(ConfigError, match="needs --dataset jena .*dataset is nyc"):
        weather.load_data(config)


def test_predict_blames_the_model_folder_not_the_csv(tmp_path):
    def error():
        with pytest.raises(SystemExit) as exit_info:
            weather.predict_main(
                ["--csv", "tasks/weather/example_recent.csv"]
                + ["--model-dir", str(tmp_path)]
            )
        return str(exit_info.value.code)

    assert error().startswith(f"error: --model-dir={tmp_path}: no trained model at")
    # Another task's export: a model.keras but no normalization.json.
    (tmp_path / "model.keras").write_bytes(b"")
    assert error() == (
        f"error: --model-dir={tmp_path}: {tmp_path} is not a weather export: it "
        "has no normalization.json (another task's export?)"
    )
    # An export that says its task (task.json) is named by it.
    (tmp_path / "task.json").write_text('{"task": "sentiment"}')
    assert error() == (
        f"error: --model-dir={tmp_path}: {tmp_path} is a sentiment export, not a "
        "weather one (pass the weather export's folder, by default "
        "saved_models/weather)"
    )


def test_an_export_that_reloads_differently_is_not_installed(tmp_path, monkeypatch):
    from tasks.weather import export

    x = keras.Input((3, 2))
    model = keras.Model(x, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    stats = {"lookback": 3, "inputs": ["a", "b"]}

    def load_other(path, *args, **kwargs):
        other = keras.models.clone_model(model)
        other.set_weights([w + 1.0 for w in model.get_weights()])
        return other

    monkeypatch.setattr(keras.saving, "load_model", load_other)
    with pytest.raises(RuntimeError, match="export check failed: model.keras reloads"):
        export.write(model, stats, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []
