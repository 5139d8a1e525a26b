"""Weather: temperature 1, 6 and 24 hours ahead from the past 72 hours, our LSTM.

    python -m tasks.weather                        # bundled NYC 2013 observations
    python -m tasks.weather --dataset jena         # Jena climate 2009-2016 (downloads)
    python -m tasks.weather predict --csv recent.csv

One sample per hour t: the input is every feature of every station (EWR, JFK,
LGA: temperature, dew point, humidity, wind vector, precipitation, pressure,
visibility) plus time of day and of year, for hours t-71..t; the output is each
station's temperature at every horizon. All three stations share one window
because weather moves between airports ~20 km apart within the hour. The model
predicts the change from the last observed temperature (a residual), for every
hour up to the longest horizon (`--every-hour`; the extra hours are auxiliary
targets, only `--horizons` are reported), and is an ensemble: the mean of
`--members` LSTMs trained alike from seeds seed, seed+1000, seed+2000...
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Sequence

from tasks.common.config import (
    MAX_SEED,
    ConfigError,
    TrainConfig,
    option,
    parse_command,
)
from tasks.weather import data


@dataclasses.dataclass
class WeatherConfig(TrainConfig):
    """Weather options; the shared ones come from TrainConfig."""

    dataset: str = option("nyc", "training data", choices=data.DATASETS)
    jena_csv: str = option(
        "",
        "with --dataset jena: a local jena_climate_2009_2016.csv (or its .zip) "
        "instead of Keras' cache or a download",
    )
    lookback: int = option(72, "hours of history the model reads (>= 24)")
    horizons: str = option("1,6,24", "comma-separated hours ahead to forecast")
    max_gap: int = option(
        3, "interpolate gaps up to this many hours (0 = none); longer: drop"
    )
    validation_fraction: float = option(0.15, "share of hours for validation")
    test_fraction: float = option(0.15, "share of hours (the last ones) for test")
    units: int = option(32, "recurrent units")
    dropout: float = option(0.2, "dropout on the recurrent layer's output")
    recurrent_dropout: float = option(
        0.2, "dropout on the recurrent state h_{t-1} inside the cell (training only)"
    )
    export_dir: str = option("saved_models/weather", "export folder; '' = skip")
    epochs: int = option(30, "maximum number of epochs")
    batch_size: int = option(128, "windows per batch")
    learning_rate: float = option(2e-3, "Adam learning rate")
    patience: int = option(5, "early stopping: epochs without a better val_loss")
    every_hour: bool = option(
        True, "train on every hour up to the longest horizon, report --horizons"
    )
    members: int = option(
        10, "ensemble size: the forecast is the mean of this many trained LSTMs"
    )

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
        for name in ("units", "members"):
            value = getattr(self, name)
            if value < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag}={value}: must be positive")
        if self.max_gap < 0:
            raise ConfigError(f"--max-gap={self.max_gap}: must be >= 0")
        most = MAX_SEED // member_seed(0, 1) + 1
        if self.members > most:  # else the message below blames --seed
            raise ConfigError(
                f"--members={self.members}: at most {most} (member k trains "
                "with --seed + 1000 (k - 1), and seeds end at 2**32 - 1)"
            )
        last = self.members - 1
        self.check_seed(
            member_seed(0, last),
            f"member {last + 1} trains with --seed + {1000 * last}",
        )
        v, t = self.validation_fraction, self.test_fraction
        if not (0 < v < 1 and 0 < t < 1 and v + t < 0.9):
            raise ConfigError(
                f"--validation-fraction={v}, --test-fraction={t}: each must be in "
                "(0, 1) and together below 0.9"
            )
        self.require_rate("dropout", "recurrent_dropout")
        # With --resume the saved dataset applies: checked after the merge.
        if self.jena_csv and self.dataset != "jena" and not self.resume:
            raise ConfigError(f"--jena-csv={self.jena_csv!r}: needs --dataset jena")
        if self.jena_csv and not Path(self.jena_csv).is_file():
            raise ConfigError(f"--jena-csv={self.jena_csv!r}: no such file")


def member_seed(seed: int, k: int) -> int:
    """Member k's seed: far apart, so runs with nearby --seed share no member."""
    return seed + 1000 * k


def predict_parser() -> argparse.ArgumentParser:
    """The options of `python -m tasks.weather predict`."""
    parser = argparse.ArgumentParser(
        prog="python -m tasks.weather predict",
        description="Temperature forecasts from the last hours in a CSV.",
    )
    parser.add_argument(
        "--csv", required=True, help="observations, bundled format (.csv or .csv.gz)"
    )
    parser.add_argument(
        "--model-dir",
        default="saved_models/weather",
        help="a weather export (default: %(default)s)",
    )
    return parser


# name -> what parses the rest of the command line
SUBCOMMANDS = {"predict": lambda rest: predict_parser().parse_args(rest)}


def parse_options(argv: Sequence[str]):
    """The training options on `argv` (`--help` shows this module's docstring)
    or the `predict` subcommand's, validated, without importing Keras."""
    return parse_command(argv, WeatherConfig, __doc__, SUBCOMMANDS)
