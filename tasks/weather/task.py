"""Weather: temperature 1, 6 and 24 hours ahead from the past 72 hours, our LSTM.

    python -m tasks.weather                        # bundled NYC 2013 observations
    python -m tasks.weather --dataset jena         # Jena climate 2009-2016 (downloads)
    python -m tasks.weather predict --csv recent.csv

One sample per hour t: the input is every feature of every station (EWR, JFK,
LGA: temperature, dew point, humidity, wind vector, precipitation, pressure,
visibility) plus time of day and of year, for hours t-71..t; the output is each
station's temperature at every horizon. All three stations share one window
because weather moves between airports ~20 km apart within the hour. The model
predicts the change from the last observed temperature (a residual).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from tasks import common
from tasks.common import ArrayBatches, ConfigError, TrainConfig, option
from tasks.common.bundled import BundledDataError
from tasks.weather import baselines, data, plots

TASK = "weather"

# Setup ------------------------------------------------------------------------


@dataclasses.dataclass
class WeatherConfig(TrainConfig):
    """Weather options; the shared ones come from TrainConfig."""

    dataset: str = option("nyc", "training data", choices=data.DATASETS)
    lookback: int = option(72, "hours of history the model reads (>= 24)")
    horizons: str = option("1,6,24", "comma-separated hours ahead to forecast")
    max_gap: int = option(3, "interpolate gaps up to this many hours; longer: drop")
    validation_fraction: float = option(0.15, "share of hours for validation")
    test_fraction: float = option(0.15, "share of hours (the last ones) for test")
    units: int = option(32, "recurrent units")
    dropout: float = option(0.2, "dropout on the recurrent layer's output")
    export_dir: str = option("saved_models/weather", "export folder; '' = skip")
    epochs: int = option(30, "maximum number of epochs")
    batch_size: int = option(128, "windows per batch")
    learning_rate: float = option(2e-3, "Adam learning rate")
    patience: int = option(5, "early stopping: epochs without a better val_loss")

    def hours_ahead(self) -> list[int]:
        try:
            hours = [int(h) for h in self.horizons.split(",")]
        except ValueError:
            raise ConfigError(
                f"--horizons={self.horizons!r}: give whole hours, e.g. 1,6,24"
            ) from None
        if not hours or min(hours) < 1 or sorted(set(hours)) != hours:
            raise ConfigError(
                f"--horizons={self.horizons!r}: must be increasing positive hours"
            )
        return hours

    def validate(self) -> None:
        super().validate()
        self.hours_ahead()
        if self.lookback < 24:
            raise ConfigError(
                f"--lookback={self.lookback}: must be >= 24 (the seasonal naive "
                "baseline reads the same hour of the previous day)"
            )
        for name in ("units", "max_gap"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be positive")
        v, t = self.validation_fraction, self.test_fraction
        if not (0 < v < 1 and 0 < t < 1 and v + t < 0.9):
            raise ConfigError(
                f"--validation-fraction={v}, --test-fraction={t}: each must be in "
                "(0, 1) and together below 0.9"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout={self.dropout}: must be in [0, 1)")


# Data -------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """The cleaned, normalised series and the windows of each split."""

    hours: np.ndarray  # (time,) hours since the epoch
    x: np.ndarray  # (time, inputs), normalised with training statistics
    temps: np.ndarray  # (time, stations) observed temperature, degC
    anchors: dict[str, np.ndarray]  # split -> last input hour of each window
    stats: dict  # everything `predict` needs to prepare inputs the same way
    report: dict  # cleaning and window counts


def load_data(config: WeatherConfig) -> Prepared:
    """Loads, cleans and splits; normalisation statistics from train only."""
    raw = data.load_nyc() if config.dataset == "nyc" else data.load_jena()
    obs = data.clean(raw, config.max_gap)
    x, names = data.feature_matrix(obs)
    temps = obs.values[:, :, obs.features.index(data.TARGET)]
    horizons = config.hours_ahead()
    bounds = data.split_bounds(
        len(obs.hours), config.validation_fraction, config.test_fraction
    )
    anchors, report = {}, dict(obs.report)
    for split, span in bounds.items():
        anchors[split], dropped = data.window_anchors(
            x, temps, span, config.lookback, horizons
        )
        report[f"windows_{split}"] = len(anchors[split])
        report[f"windows_{split}_dropped_for_gaps"] = dropped
        report[f"{split}_from"] = data.format_hour(obs.hours[span[0]])
    empty = [split for split, a in anchors.items() if not len(a)]
    if empty:
        raise ConfigError(
            f"no complete window in the {', '.join(empty)} split(s): lower "
            "--lookback, the horizons or --max-gap, or give the split more hours"
        )
    train = x[slice(*bounds["train"])]
    mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    std[std == 0] = 1.0
    change = (
        data.future(temps, anchors["train"], horizons)
        - temps[anchors["train"]][:, None]
    )
    stats = {
        "dataset": config.dataset,
        "stations": obs.stations,
        "features": obs.features,
        "inputs": names,
        "mean": mean.tolist(),
        "std": std.tolist(),
        # degC per output unit, per horizon: every horizon weighs alike in the loss
        "target_scale": np.std(change, axis=(0, 2)).tolist(),
        "lookback": config.lookback,
        "horizons": horizons,
    }
    x = (x - mean) / std
    return Prepared(obs.hours, x, temps, anchors, stats, report)


def split_arrays(prepared: Prepared, split: str):
    """(windows, scaled changes of temperature) for one split."""
    anchors = prepared.anchors[split]
    windows = data.Windows(prepared.x, anchors, prepared.stats["lookback"])
    actual = data.future(prepared.temps, anchors, prepared.stats["horizons"])
    change = actual - prepared.temps[anchors][:, None, :]
    scaled = change / np.array(prepared.stats["target_scale"])[:, None]
    return windows, scaled.reshape(len(anchors), -1).astype("float32")


# Model ------------------------------------------------------------------------


def build_model(config: WeatherConfig, inputs: int, outputs: int) -> keras.Model:
    """Window -> LSTM/GRU -> Dense: each station's change at each horizon."""
    window = keras.Input((config.lookback, inputs), name="window")
    x = common.recurrent_layer(config, config.units)(window)
    x = keras.layers.Dropout(config.dropout)(x)
    change = keras.layers.Dense(outputs, dtype="float32", name="change")(x)
    model = keras.Model(window, change, name="weather")
    model.compile(optimizer=common.optimizer(config), loss="mae")
    return model


def forecast(model: keras.Model, windows, last: np.ndarray, stats: dict) -> np.ndarray:
    """Temperatures (windows, horizons, stations) in degC from scaled changes."""
    batches = ArrayBatches(windows, None, 1024)
    change = np.asarray(model.predict(batches, verbose=0), dtype="float64")
    shape = (len(last), len(stats["horizons"]), len(stats["stations"]))
    scale = np.array(stats["target_scale"])[:, None]
    return last[:, None, :] + scale * change.reshape(shape)


# Train and evaluate -----------------------------------------------------------


def train(config: WeatherConfig, extra_callbacks: Sequence = ()):
    """Trains, evaluates against the baselines, plots and exports."""
    strategy = common.strategy_for(config)  # before any other TensorFlow work
    config, run = common.start_run(TASK, config)
    common.seed_everything(config.seed)
    policy = common.set_precision(config.mixed_precision)
    prepared = load_data(config)
    splits = {split: split_arrays(prepared, split) for split in data.SPLITS}
    for key, value in prepared.report.items():
        print(f"  {key}: {value}")
    train_windows, train_targets = splits["train"]
    batches = ArrayBatches(
        train_windows,
        train_targets,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        steps=config.steps_per_epoch,
    )
    validation = ArrayBatches(*splits["validation"], 1024)
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = build_model(config, prepared.x.shape[1], train_targets.shape[1])
    model.summary(print_fn=lambda line, **_: print(line))

    start = time.perf_counter()
    history = common.fit(
        model, batches, validation, config, run, extra_callbacks=extra_callbacks
    )
    seconds = time.perf_counter() - start

    forecasts, actual = evaluate(model, prepared, splits)
    horizons = prepared.stats["horizons"]
    name = f"{'keras_lstm' if config.cell == 'custom' else 'keras'}.{config.rnn}"
    forecasts[name] = forecasts.pop("network")
    maes = {n: baselines.mae_by_horizon(f, actual) for n, f in forecasts.items()}
    metrics = {
        "model": name,
        "horizons": horizons,
        "test_mae": {n: dict(zip(map(str, horizons), m)) for n, m in maes.items()},
        "best_val_loss": min(history["val_loss"]),
        "epochs_run": len(history["val_loss"]),
        "train_seconds_this_session": round(seconds, 1),
        "data": prepared.report,
        "parameters": model.count_params(),
        "backend": keras.backend.backend(),
        "device": common.accelerator(),
        "dtype_policy": policy,
    }
    common.save_metrics(run, metrics)
    plots.write_run_plots(
        run.path,
        prepared.hours[prepared.anchors["test"]],
        prepared.stats,
        forecasts,
        actual,
        maes,
        name,
        config.dataset,
    )
    if config.export_dir:
        metrics["export"] = export(model, prepared.stats, config.export_dir)
        common.save_metrics(run, metrics)
    return model, run, metrics


def evaluate(model, prepared: Prepared, splits: dict):
    """Test forecasts of the network and every baseline, and the observations."""
    anchors, temps = prepared.anchors["test"], prepared.temps
    horizons = prepared.stats["horizons"]
    linear, _ = baselines.fit_linear(splits["train"], splits["validation"])
    windows = splits["test"][0]
    scale = np.array(prepared.stats["target_scale"])[:, None]
    last = temps[anchors]
    change = linear.predict(windows).reshape(len(anchors), len(horizons), -1)
    forecasts = {
        "persistence": baselines.persistence(temps, anchors, horizons),
        "seasonal naive": baselines.seasonal_naive(temps, anchors, horizons),
        "linear": last[:, None, :] + scale * change,
        "network": forecast(model, windows, last, prepared.stats),
    }
    return forecasts, data.future(temps, anchors, horizons)


# Export -----------------------------------------------------------------------


def export(model: keras.Model, stats: dict, out_dir: str) -> dict:
    """Writes model.keras + normalization.json into `out_dir` atomically and
    checks the reloaded model; returns the check."""
    from tasks.weather import export as exporter

    return exporter.write(model, stats, Path(out_dir))


def predict(csv_path: str | Path, model_dir: str | Path) -> dict:
    """Forecasts from the last `lookback` hours of a CSV in the bundled format.

    Returns {"from": last hour, "forecasts": {station: {horizon: degC}}}.
    Raises ValueError naming what is wrong with the CSV.
    """
    from tasks.weather.export import load_exported

    model, stats = load_exported(model_dir)
    with open(csv_path, newline="") as f:
        series = data.read_long_csv(f, stats["features"], allow_missing=True)
    hours, values = data.latest_window(
        series, stats["stations"], stats["features"], stats["lookback"]
    )
    x = np.concatenate([values.reshape(len(hours), -1), data.time_features(hours)], 1)
    x = (x - np.array(stats["mean"])) / np.array(stats["std"])
    last = values[-1:, :, stats["features"].index(data.TARGET)]
    temps = forecast(model, x[None].astype("float32"), last, stats)[0]
    return {
        "from": data.format_hour(hours[-1]),
        "forecasts": {
            station: {h: float(temps[k, s]) for k, h in enumerate(stats["horizons"])}
            for s, station in enumerate(stats["stations"])
        },
    }


# Command line -----------------------------------------------------------------


def predict_main(argv: Sequence[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tasks.weather predict",
        description="Temperature forecasts from the last hours in a CSV.",
    )
    parser.add_argument("--csv", required=True, help="observations, bundled format")
    parser.add_argument("--model-dir", default="saved_models/weather")
    args = parser.parse_args(argv)
    try:
        result = predict(args.csv, args.model_dir)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {args.csv}: {error}")
    print(f"forecast from {result['from']} UTC")
    for station, by_horizon in result["forecasts"].items():
        cells = "  ".join(f"+{h} h: {t:6.1f} °C" for h, t in by_horizon.items())
        print(f"{station:6} {cells}")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    config = common.parse(WeatherConfig, argv, description=__doc__)
    try:
        _, run, metrics = train(config)
    except (ConfigError, BundledDataError) as error:
        sys.exit(f"error: {error}")
    print(f"\nrun folder: {run.path}")
    print(
        f"test MAE (°C), {metrics['epochs_run']} epochs, "
        f"{metrics['train_seconds_this_session']} s training"
    )
    for name, by_horizon in metrics["test_mae"].items():
        cells = "  ".join(f"+{h} h {v:5.2f}" for h, v in by_horizon.items())
        print(f"  {name:15} {cells}")
