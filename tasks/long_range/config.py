"""Long-range dependencies: can a recurrent net remember two numbers for T steps?

    python -m tasks.long_range                              # the grid in the README
    python -m tasks.long_range --lengths 400 --models lstm,simple_rnn
    python -m tasks.long_range gates "A quiet triumph." --out gates.png

The adding problem (Hochreiter & Schmidhuber, 1997): T steps of (value in [0, 1],
marker); the target is the sum of the two marked values (guessing the mean
scores MSE 0.167). SimpleRNN, our LSTM, our GRU and keras.layers.LSTM, with
about the same number of parameters, train on the same batches with the same
optimizer and step budget (SimpleRNN with a lower learning rate, its best). The
run also measures the gradient flow ||dL/dx_t|| of SimpleRNN and our LSTM
before and after training, and draws our LSTM's gates on one sequence.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Sequence

from tasks.common.config import (
    ConfigError,
    TrainConfig,
    option,
    parse_command,
)

MODELS = ("simple_rnn", "lstm", "gru", "keras_lstm", "keras_gru")


@dataclasses.dataclass
class LongRangeConfig(TrainConfig):
    """Adding-problem options; the shared ones come from TrainConfig."""

    hidden_options = ("rnn", "cell", "mixed_precision", "distribute", "cpu_replicas")

    lengths: str = option("50,100,200,400", "comma-separated sequence lengths T")
    models: str = option(
        "simple_rnn,lstm,gru,keras_lstm",
        f"comma-separated models to compare, from {', '.join(MODELS)} "
        "(lstm and gru are keras_lstm's layers)",
    )
    units: int = option(
        32, "LSTM units; the other models get the units that match its parameters"
    )
    init: str = option(
        "chrono",
        "chrono = gate biases drawn for memories up to T steps (Tallec & Ollivier "
        "2018); keras = the layers' default initializers",
        choices=("chrono", "keras"),
    )
    solved_mse: float = option(0.01, "a model has solved T when val MSE < this")
    validation_size: int = option(1000, "validation sequences per T")
    test_size: int = option(2000, "test sequences per T")
    gradient_length: int = option(
        -1,
        "T at which gradient flow is measured (one of --lengths; 0 = skip; "
        "-1 = 200 if in --lengths, else the longest)",
    )
    epochs: int = option(20, "step budget = epochs x steps-per-epoch")
    steps_per_epoch: int = option(100, "batches between two validations")
    batch_size: int = option(128, "fresh sequences per batch")
    learning_rate: float = option(1e-2, "Adam learning rate")
    model_learning_rates: str = option(
        "simple_rnn=1e-3",
        "per-model overrides of --learning-rate, e.g. 'simple_rnn=1e-3,gru=3e-3' "
        "('' = none); SimpleRNN stays at the plateau with 1e-2 even at T=50",
    )
    patience: int = option(
        1000, "early stopping on val_loss; default: never, the step budget decides"
    )

    def validate(self) -> None:
        super().validate()
        if self.rnn != "lstm" or self.cell != "custom":
            raise ConfigError("--rnn/--cell: this task compares layers; use --models")
        if self.mixed_precision or self.distribute != "none":
            # Small float32 models on one device; the options would be ignored.
            raise ConfigError(
                "--mixed-precision/--distribute: not supported by this task "
                "(small float32 models on one device)"
            )
        if self.steps_per_epoch < 1:
            raise ConfigError(f"--steps-per-epoch={self.steps_per_epoch}: must be >= 1")
        lengths, models = self.length_list(), self.model_list()
        if not lengths or min(lengths) < 2:
            raise ConfigError(f"--lengths={self.lengths!r}: integers >= 2, e.g. 50,100")
        if len(set(lengths)) < len(lengths):
            raise ConfigError(f"--lengths={self.lengths!r}: each T once (a T repeats)")
        if not self.solved_mse > 0:
            raise ConfigError(
                f"--solved-mse={self.solved_mse}: must be > 0 (a validation MSE "
                "below it counts as solved)"
            )
        self.check_seed(2, "the test set is drawn with --seed + 2")
        unknown = sorted(set(models) - set(MODELS))
        if not models or unknown:
            raise ConfigError(f"--models={self.models!r}: choose from {MODELS}")
        if len(set(models)) < len(models):
            raise ConfigError(
                f"--models={self.models!r}: each model once (a model repeats)"
            )
        for name in ("units", "validation_size", "test_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be >= 1")
        self.learning_rate_for("lstm")  # checks --model-learning-rates
        if self.gradient_length < -1:
            raise ConfigError(
                f"--gradient-length={self.gradient_length}: a T from --lengths, "
                "or 0 to skip the gradient-flow plot"
            )
        if self.gradient_length == -1:  # the default: whatever the grid allows
            return
        if self.gradient_length and not {"simple_rnn", "lstm"} & set(models):
            raise ConfigError(
                f"--gradient-length={self.gradient_length}: the plot shows "
                "simple_rnn and lstm, and --models has neither; use 0 to skip it"
            )
        if self.gradient_length and self.gradient_length not in lengths:
            raise ConfigError(
                f"--gradient-length={self.gradient_length}: not in --lengths "
                f"({self.lengths}); use 0 to skip the gradient-flow plot"
            )

    def learning_rate_for(self, model: str) -> float:
        """--learning-rate, or the model's entry in --model-learning-rates."""
        try:
            pairs = [
                (k.strip(), float(v))
                for k, v in (
                    p.split("=") for p in self.model_learning_rates.split(",") if p
                )
            ]
        except ValueError:
            raise ConfigError(
                f"--model-learning-rates={self.model_learning_rates!r}: "
                "write model=rate pairs, e.g. simple_rnn=1e-3"
            ) from None
        rates = dict(pairs)
        unknown = sorted(set(rates) - set(MODELS))
        finite = all(0 < r < math.inf for r in rates.values())
        if unknown or not finite or len(rates) < len(pairs):
            raise ConfigError(
                f"--model-learning-rates={self.model_learning_rates!r}: "
                f"models from {MODELS}, each once, finite rates > 0"
            )
        return rates.get(model, self.learning_rate)

    def gradient_flow_length(self) -> int:
        """The T of the gradient-flow plot (0: none): `--gradient-length`, or
        by default 200 if in --lengths, else the longest; none by default
        when --models has neither simple_rnn nor lstm (the plot shows them)."""
        if self.gradient_length >= 0:
            return self.gradient_length
        if not {"simple_rnn", "lstm"} & set(self.model_list()):
            return 0
        lengths = self.length_list()
        return 200 if 200 in lengths else max(lengths)

    def length_list(self) -> list[int]:
        try:
            return [int(v) for v in self.lengths.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--lengths={self.lengths!r}: not integers") from None

    def model_list(self) -> list[str]:
        return [v.strip() for v in self.models.split(",") if v.strip()]


def gates_parser() -> argparse.ArgumentParser:
    """The options of `python -m tasks.long_range gates`."""
    parser = argparse.ArgumentParser(
        prog="python -m tasks.long_range gates",
        description="Heat map of the gates of a trained sentiment model on a review.",
    )
    parser.add_argument("review", help="the review text")
    parser.add_argument(
        "--model-dir",
        default="saved_models/sentiment",
        help="a sentiment export (default: %(default)s)",
    )
    parser.add_argument(
        "--out", default="gates.png", help="PNG to write (default: %(default)s)"
    )
    parser.add_argument(
        "--values",
        default="",
        help="also write the numbers behind the plot to this JSON file",
    )
    return parser


# name -> what parses the rest of the command line
SUBCOMMANDS = {"gates": lambda rest: gates_parser().parse_args(rest)}


def parse_options(argv: Sequence[str]):
    """The training options on `argv` (`--help` shows this module's docstring)
    or the `gates` subcommand's, validated, without importing Keras."""
    return parse_command(argv, LongRangeConfig, __doc__, SUBCOMMANDS)
