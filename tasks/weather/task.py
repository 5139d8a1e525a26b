"""The weather task: data, model ensemble, baselines, training, export, predict.

Its options and usage: tasks/weather/config.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from tasks import common
from tasks.common import ArrayBatches, ConfigError
from tasks.common.datasets import DatasetError
from tasks.weather import baselines, data, plots
from tasks.weather.config import (
    WeatherConfig,
    member_seed,
    parse_options,
    predict_parser,
)

TASK = "weather"

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
    if config.jena_csv and config.dataset != "jena":  # a resumed nyc run, say
        raise ConfigError(
            f"--jena-csv={config.jena_csv!r}: needs --dataset jena (this run's "
            f"dataset is {config.dataset})"
        )
    if config.dataset == "nyc":
        raw = data.load_nyc()
    else:
        raw = data.load_jena(config.jena_csv or None)
    bounds = data.split_bounds(
        len(raw.hours), config.validation_fraction, config.test_fraction
    )
    obs = data.clean(raw, config.max_gap, bounds.values())
    x, names = data.feature_matrix(obs)
    temps = obs.values[:, :, obs.features.index(data.TARGET)]
    horizons = config.hours_ahead()
    trained = list(range(1, horizons[-1] + 1)) if config.every_hour else horizons
    anchors, report = {}, dict(obs.report)
    for split, span in bounds.items():
        anchors[split], dropped = data.window_anchors(
            x, temps, span, config.lookback, trained
        )
        report[f"windows_{split}"] = len(anchors[split])
        report[f"windows_{split}_dropped_for_gaps"] = dropped
        report[f"{split}_from"] = data.format_hour(obs.hours[span[0]])
    empty = [split for split, a in anchors.items() if not len(a)]
    if empty:
        raise ConfigError(
            f"no complete window in the {', '.join(empty)} split(s): lower "
            "--lookback or the horizons, raise --max-gap (more gaps filled), or "
            "give the split more hours"
        )
    train = x[slice(*bounds["train"])]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # named below instead
        mean, std = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    unusable = [n for n, m, d in zip(names, mean, std) if not np.isfinite(m + d)]
    if unusable:
        raise DatasetError(
            f"cannot normalise {', '.join(unusable[:3])}: the training hours "
            "hold no value or values too large to average (say 1e308); check "
            "the data"
        )
    std[std == 0] = 1.0
    change = (
        data.future(temps, anchors["train"], trained) - temps[anchors["train"]][:, None]
    )
    stats = {
        "dataset": config.dataset,
        "stations": obs.stations,
        "features": obs.features,
        "inputs": names,
        "mean": mean.tolist(),
        "std": std.tolist(),
        # degC per output unit, per trained horizon: all weigh alike in the loss
        "target_scale": np.std(change, axis=(0, 2)).tolist(),
        "lookback": config.lookback,
        "horizons": horizons,  # reported
        "trained_horizons": trained,  # the network's outputs (a superset)
    }
    x = (x - mean) / std
    return Prepared(obs.hours, x, temps, anchors, stats, report)


def split_arrays(prepared: Prepared, split: str, horizons: list[int] | None = None):
    """(windows, scaled changes of temperature) for one split, at `horizons`
    (default: the network's trained horizons)."""
    horizons = horizons or trained_horizons(prepared.stats)
    anchors = prepared.anchors[split]
    windows = data.Windows(prepared.x, anchors, prepared.stats["lookback"])
    actual = data.future(prepared.temps, anchors, horizons)
    change = actual - prepared.temps[anchors][:, None, :]
    scaled = change / target_scale(prepared.stats, horizons)
    return windows, scaled.reshape(len(anchors), -1).astype("float32")


def trained_horizons(stats: dict) -> list[int]:
    return stats.get("trained_horizons", stats["horizons"])


def target_scale(stats: dict, horizons: list[int]) -> np.ndarray:
    """(horizons, 1): degC per scaled output unit."""
    trained = trained_horizons(stats)
    return np.array([stats["target_scale"][trained.index(h)] for h in horizons])[
        :, None
    ]


# Model ------------------------------------------------------------------------


def build_model(
    config: WeatherConfig,
    inputs: int,
    outputs: int,
    name: str = "weather",
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """Window -> LSTM/GRU -> Dense: each station's change at each horizon.
    `steps_per_epoch` (training batches per epoch) is what `--lr-schedule
    cosine` needs."""
    window = keras.Input((config.lookback, inputs), name="window")
    x = common.recurrent_layer(
        config, config.units, recurrent_dropout=config.recurrent_dropout
    )(window)
    x = keras.layers.Dropout(config.dropout)(x)
    change = keras.layers.Dense(outputs, dtype="float32", name="change")(x)
    model = keras.Model(window, change, name=name)
    model.compile(optimizer=common.optimizer(config, steps_per_epoch), loss="mae")
    return model


def ensemble(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the trained members' outputs."""
    if len(members) == 1:
        return members[0]
    window = keras.Input(members[0].input_shape[1:], name="window")
    mean = keras.layers.Average(name="ensemble_mean")([m(window) for m in members])
    return keras.Model(window, mean, name="weather")


def forecast(model: keras.Model, windows, last: np.ndarray, stats: dict) -> np.ndarray:
    """Temperatures (windows, horizons, stations) in degC at the reported
    horizons, from the network's scaled changes at its trained horizons."""
    batches = ArrayBatches(windows, None, 1024)
    change = np.asarray(model.predict(batches, verbose=0), dtype="float64")
    trained = trained_horizons(stats)
    change = change.reshape(len(last), len(trained), len(stats["stations"]))
    picked = [trained.index(h) for h in stats["horizons"]]
    scale = target_scale(stats, stats["horizons"])
    return last[:, None, :] + scale * change[:, picked]


# Train and evaluate -----------------------------------------------------------


def train(config: WeatherConfig, extra_callbacks: Sequence = ()):
    """Trains, evaluates against the baselines, plots and exports."""
    config, run = common.start_run(TASK, config)  # a resumed run's saved config
    strategy = common.strategy_for(config)  # before any other TensorFlow work
    common.seed_everything(config.seed)
    policy = common.set_precision(config.mixed_precision)
    prepared = load_data(config)
    splits = {split: split_arrays(prepared, split) for split in data.SPLITS}
    print(f"data ({config.dataset}):")
    for key, value in prepared.report.items():
        print(f"  {key}: {value}")
    validation = ArrayBatches(*splits["validation"], 1024)
    # Each member is a new model with its own traced train and predict
    # functions, and TensorFlow warns of "retracing" after five of them.
    with common.expected_retracing():
        start = time.perf_counter()
        members, histories = [], []
        for k in range(config.members):
            model, history = train_member(
                config, k, run, splits, validation, strategy, extra_callbacks
            )
            members.append(model)
            histories.append(history)
        seconds = time.perf_counter() - start
        model = ensemble(members)

        forecasts, actual = evaluate(model, prepared, splits)
        horizons = prepared.stats["horizons"]
        name = f"{'keras_lstm' if config.cell == 'custom' else 'keras'}.{config.rnn}"
        forecasts[name] = forecasts.pop("network")
        maes = {n: baselines.mae_by_horizon(f, actual) for n, f in forecasts.items()}
        windows, last = splits["test"][0], prepared.temps[prepared.anchors["test"]]
        member_maes = [
            baselines.mae_by_horizon(forecast(m, windows, last, prepared.stats), actual)
            for m in members
        ]
    metrics = {
        "model": name,
        "horizons": horizons,
        "test_mae": {n: dict(zip(map(str, horizons), m)) for n, m in maes.items()},
        # The ensemble's: the members' epochs together (each member's below).
        "epochs_run": sum(len(h["val_loss"]) for h in histories),
        "members": [
            {
                "seed": member_seed(config.seed, k),
                "best_val_loss": min(h["val_loss"]),
                "epochs_run": len(h["val_loss"]),
                "test_mae": dict(zip(map(str, horizons), member_maes[k])),
            }
            for k, h in enumerate(histories)
        ],
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
        common.export_run(
            run, metrics, lambda: export(model, prepared.stats, config.export_dir)
        )
    return model, run, metrics


def train_member(config, k, run, splits, validation, strategy, extra_callbacks):
    """Trains ensemble member k (seed `member_seed`) in its own run folder, or
    loads it when a resumed run finished it before; returns (model, history)."""
    member = dataclasses.replace(config, seed=member_seed(config.seed, k))
    alone = config.members == 1
    folder = run if alone else common.RunFolder(run.path / f"member-{k + 1}")
    common.seed_everything(member.seed)
    inputs, outputs = splits["train"][0].x.shape[1], splits["train"][1].shape[1]
    batches = ArrayBatches(
        *splits["train"],
        member.batch_size,
        shuffle=True,
        seed=member.seed,
        steps=member.steps_per_epoch,
    )
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(member, inputs, outputs, f"member_{k + 1}", len(batches))
    if k == 0:
        model.summary(print_fn=lambda line, **_: print(line))
    done = folder.path / "member_done.json"
    if done.exists():
        common.load_checkpoint(model, folder.checkpoint)
        return model, common.read_json(done)
    print(f"member {k + 1}/{config.members}, seed {member.seed}")
    history = common.fit(
        model, batches, validation, member, folder, extra_callbacks=extra_callbacks
    )
    if not alone:
        common.write_json(done, history)
    return model, history


def evaluate(model, prepared: Prepared, splits: dict):
    """Test forecasts of the network and every baseline, and the observations."""
    anchors, temps = prepared.anchors["test"], prepared.temps
    horizons = prepared.stats["horizons"]
    # the linear baseline is fitted to the reported horizons only
    linear, _ = baselines.fit_linear(
        *(split_arrays(prepared, split, horizons) for split in ("train", "validation"))
    )
    windows = splits["test"][0]
    scale = target_scale(prepared.stats, horizons)
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
    """Forecasts from the last `lookback` hours of a CSV in the bundled format
    (gzip-compressed if its name ends with .gz, as the bundled file is).

    Returns {"from": last hour, "forecasts": {station: {horizon: degC}}}.
    Raises ValueError naming what is wrong with the CSV.
    """
    from tasks.weather.export import load_exported

    return predict_with(csv_path, *load_exported(model_dir))


def predict_with(csv_path: str | Path, model: keras.Model, stats: dict) -> dict:
    """`predict` with the model and stats already loaded (`load_exported`)."""
    # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark,
    # which would otherwise become part of the first column's name.
    opener = gzip.open if str(csv_path).lower().endswith(".gz") else open
    try:
        with opener(csv_path, "rt", newline="", encoding="utf-8-sig") as f:
            series = data.read_long_csv(f, stats["features"], allow_missing=True)
    except EOFError:  # gzip's error for a file cut short
        raise ValueError("the gzip file is cut short (incomplete)") from None
    except zlib.error as error:  # its compressed data damaged
        raise ValueError(f"the gzip file is damaged ({error})") from None
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
    args = predict_parser().parse_args(argv)
    if not Path(args.csv).is_file():  # before loading the model (seconds)
        sys.exit(f"error: --csv={args.csv}: no such file")
    from tasks.weather.export import load_exported

    try:
        model, stats = load_exported(args.model_dir)
    except (ValueError, OSError) as error:
        sys.exit(f"error: --model-dir={args.model_dir}: {error}")
    try:
        result = predict_with(args.csv, model, stats)
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
    config = parse_options(argv)
    _, run, metrics = common.run_training(train, config)
    print(f"\nrun folder: {run.path}")
    epochs = [m["epochs_run"] for m in metrics["members"]]
    each = f" ({' + '.join(map(str, epochs))})" if len(epochs) > 1 else ""
    print(
        f"test MAE (°C), {metrics['epochs_run']} epochs{each}, "
        f"{metrics['train_seconds_this_session']} s training this session"
    )
    for name, by_horizon in metrics["test_mae"].items():
        cells = "  ".join(f"+{h} h {v:5.2f}" for h, v in by_horizon.items())
        print(f"  {name:15} {cells}")
