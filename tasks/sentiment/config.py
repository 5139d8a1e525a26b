"""Sentiment: is a review positive? Embedding(mask_zero) -> our LSTM -> Dense.

    python -m tasks.sentiment                      # bundled Rotten Tomatoes data
    python -m tasks.sentiment --dataset imdb       # tfds imdb_reviews (downloads)
    python -m tasks.sentiment predict "A quiet triumph." "Dull and overlong."

Reviews keep their own lengths, up to a cap at a high percentile of the
training lengths; shorter ones are padded with 0 and masked, so the padding
never reaches the LSTM's state.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Sequence

from tasks.common.config import (
    ConfigError,
    TrainConfig,
    option,
    parse_command,
)
from tasks.sentiment import data


@dataclasses.dataclass
class SentimentConfig(TrainConfig):
    """Sentiment options; the shared ones come from TrainConfig."""

    dataset: str = option("rotten_tomatoes", "training data", choices=data.DATASETS)
    max_tokens: int = option(20000, "vocabulary size, padding and [UNK] included")
    min_count: int = option(2, "leave out training words seen fewer times")
    length_percentile: float = option(
        99.0, "cap reviews at this percentile of training lengths (95-100)"
    )
    embedding_dim: int = option(128, "size of the word vectors")
    units: int = option(64, "recurrent units per direction")
    layers: int = option(1, "stacked recurrent layers")
    bidirectional: bool = option(True, "read each review in both directions")
    pooling: str = option(
        "mean",
        "review vector: the last state, or the mean of the outputs over the "
        "review's own (unmasked) steps",
        choices=("last", "mean"),
    )
    dropout: float = option(0.5, "dropout on word vectors and on the review vector")
    export_dir: str = option(
        "saved_models/sentiment", "where the trained model is exported; '' = skip"
    )
    epochs: int = option(8, "maximum number of epochs")
    patience: int = option(2, "early stopping: epochs without a better val_loss")

    def validate(self) -> None:
        super().validate()
        self.require_positive(
            "max_tokens", "min_count", "embedding_dim", "units", "layers"
        )
        if self.max_tokens < 3:
            raise ConfigError(f"--max-tokens={self.max_tokens}: must be at least 3")
        if not 95 <= self.length_percentile <= 100:
            raise ConfigError(
                f"--length-percentile={self.length_percentile}: must be in [95, 100]"
                " (reviews are kept whole, not truncated short)"
            )
        self.require_rate("dropout")


def predict_parser() -> argparse.ArgumentParser:
    """The options of `python -m tasks.sentiment predict`."""
    parser = argparse.ArgumentParser(
        prog="python -m tasks.sentiment predict",
        description="Probability that each review is positive.",
    )
    parser.add_argument("texts", nargs="+", help="reviews, one per argument")
    parser.add_argument(
        "--model-dir",
        default="saved_models/sentiment",
        help="a sentiment export (default: %(default)s)",
    )
    return parser


# name -> what parses the rest of the command line
SUBCOMMANDS = {"predict": lambda rest: predict_parser().parse_args(rest)}


def parse_options(argv: Sequence[str]):
    """The training options on `argv` (`--help` shows this module's docstring)
    or the `predict` subcommand's, validated, without importing Keras."""
    return parse_command(argv, SentimentConfig, __doc__, SUBCOMMANDS)
