"""Text generation: a character-level LSTM on Shakespeare, held-out works.

    python -m tasks.text_generation                           # bundled works
    python -m tasks.text_generation --dataset tiny_shakespeare   # tfds
    python -m tasks.text_generation generate --prompt "ROMEO:" --seed 1

The model reads random windows of the training works and learns to predict
each next character: Embedding -> LSTM x layers -> Dense(logits). The
validation and test sets are whole works that training never sees (named in
the config). Scores are cross-entropies in nats per character (the loss) and
bits per character (nats / ln 2).

Generation uses a one-step model built from the trained weights: (character,
h, c) in, (logits, h, c) out, so each new character costs one LSTM step.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from tasks.common.config import (
    ConfigError,
    TrainConfig,
    new_default,
    option,
    parse,
    parse_command,
)

DATASETS = ("shakespeare", "tiny_shakespeare")
# The bundled works (keys of the corpus file; a test checks they match).
WORKS = (
    "alls_well_that_ends_well", "antony_and_cleopatra", "as_you_like_it",
    "comedy_of_errors", "coriolanus", "cymbeline", "hamlet", "henry_iv_part_1",
    "henry_iv_part_2", "henry_v", "henry_vi_part_1", "henry_vi_part_2",
    "henry_vi_part_3", "henry_viii", "john", "julius_caesar", "lear",
    "lovers_complaint", "loves_labours_lost", "macbeth", "measure_for_measure",
    "merchant_of_venice", "merry_wives_of_windsor", "midsummer_nights_dream",
    "much_ado_about_nothing", "othello", "passionate_pilgrim", "pericles",
    "phoenix_and_the_turtle", "rape_of_lucrece", "richard_ii", "richard_iii",
    "romeo_and_juliet", "sonnets", "taming_of_the_shrew", "tempest",
    "timon_of_athens", "tragedy_of_titus_andronicus", "troilus_and_cressida",
    "twelfth_night", "two_gentlemen_of_verona", "winters_tale",
)  # fmt: skip


def parse_names(value: str) -> list[str]:
    """'hamlet, macbeth' -> ['hamlet', 'macbeth']."""
    return [name.strip() for name in value.split(",") if name.strip()]


def check_names(names: tuple[str, ...], validation: list[str], test: list[str]):
    """Raises ConfigError for an unknown work, a work named twice, or no work."""
    for flag, chosen in (("validation-works", validation), ("test-works", test)):
        if not chosen:
            raise ConfigError(f"--{flag}: name at least one work")
        unknown = [name for name in chosen if name not in names]
        if unknown:
            raise ConfigError(
                f"--{flag}: unknown work(s) {', '.join(unknown)}; "
                f"choose from {', '.join(names)}"
            )
    both = sorted(set(validation) & set(test))
    twice = sorted(
        {n for chosen in (validation, test) for n in chosen if chosen.count(n) > 1}
    )
    if both or twice:
        raise ConfigError(
            "--validation-works / --test-works: a work is named twice: "
            + ", ".join(both + twice)
        )


@dataclasses.dataclass
class TextGenerationConfig(TrainConfig):
    """Text generation options; the shared ones come from TrainConfig."""

    dataset: str = option("shakespeare", "training text", choices=DATASETS)
    validation_works: str = option(
        "twelfth_night,julius_caesar", "held-out works for validation (comma list)"
    )
    test_works: str = option(
        "romeo_and_juliet,macbeth", "held-out works for the test (comma list)"
    )
    min_count: int = option(
        100, "characters seen fewer times in training become the unknown id"
    )
    seq_length: int = option(100, "characters per training window")
    embedding_dim: int = option(64, "size of the character vectors")
    units: int = option(512, "units per recurrent layer")
    layers: int = option(1, "stacked recurrent layers")
    dropout: float = option(0.0, "dropout after each recurrent layer")
    eval_windows: int = option(
        128,
        "held-out windows scored after each epoch (0 = all); the final "
        "scores always use the whole held-out text",
    )
    max_minutes: float = option(
        30.0,
        "stop after the epoch that would overrun this training time (over all "
        "sessions of a resumed run); 0 = off",
    )
    export_dir: str = option(
        "saved_models/text_generation", "where the model is exported; '' = skip"
    )
    epochs: int = option(11, "maximum number of epochs")
    steps_per_epoch: int = option(100, "batches of random windows per epoch")
    batch_size: int = option(256, "windows per batch")
    learning_rate: float = option(3e-3, "Adam learning rate (the peak, with cosine)")
    lr_schedule: str = new_default(TrainConfig, "lr_schedule", "cosine")
    patience: int = option(3, "early stopping: epochs without a better val_loss")

    def validate(self) -> None:
        super().validate()
        self.require_positive(
            "min_count", "seq_length", "embedding_dim", "units", "layers"
        )
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"--steps-per-epoch={self.steps_per_epoch}: must be >= 1 here "
                "(windows are drawn at random; there is no 'whole split')"
            )
        if self.eval_windows < 0:
            raise ConfigError(f"--eval-windows={self.eval_windows}: must be >= 0")
        self.require_rate("dropout")
        if self.dataset == "shakespeare":
            check_names(
                WORKS,
                parse_names(self.validation_works),
                parse_names(self.test_works),
            )
        if self.max_minutes < 0:
            raise ConfigError(f"--max-minutes={self.max_minutes}: must be >= 0")


def check_sampling(length: int, temperature: float, top_k: int | None) -> None:
    """Raises ValueError naming the first bad sampling option."""
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"--length={length!r}: must be a positive integer")
    if not temperature > 0:
        raise ValueError(
            f"--temperature={temperature!r}: must be > 0 (small = nearly greedy)"
        )
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(
            f"--top-k={top_k!r}: must be an integer >= 1 (leave it out to sample "
            "from every character)"
        )


@dataclasses.dataclass
class GenerateConfig:
    """Options of `python -m tasks.text_generation generate`."""

    prompt: str = option("ROMEO:", "text to start from ('' = after a newline)")
    length: int = option(500, "characters to generate")
    temperature: float = option(0.8, "sampling temperature, > 0 (lower = safer)")
    top_k: int = option(None, "sample among the k most likely characters; unset = all")
    seed: int = option(1, "seeds the sampler: the same seed gives the same text")
    unknown: str = option(
        "error",
        "prompt characters outside the vocabulary: stop, or read them as unknown",
        choices=("error", "replace"),
    )
    runtime: str = option(
        "keras",
        "run the one-step model in Keras or in LiteRT (generator.tflite)",
        choices=("keras", "tflite"),
    )
    model_dir: str = option("saved_models/text_generation", "the export folder")

    def validate(self) -> None:
        check_sampling(self.length, self.temperature, self.top_k)
        if self.seed < 0:
            raise ConfigError(f"--seed={self.seed}: must be >= 0")


def parse_generate(argv: Sequence[str]) -> GenerateConfig:
    return parse(GenerateConfig, argv, description="Sample text.", command="generate")


# name -> what parses the rest of the command line
SUBCOMMANDS = {"generate": parse_generate}


def parse_options(argv: Sequence[str]):
    """The training options on `argv` (`--help` shows this module's docstring)
    or the `generate` subcommand's, validated, without importing Keras."""
    return parse_command(argv, TextGenerationConfig, __doc__, SUBCOMMANDS)
