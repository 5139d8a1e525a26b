"""The text generation task: data, model, training, export, generate.

Its options and usage: tasks/text_generation/config.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from tasks import common
from tasks.text_generation import data, sampling
from tasks.text_generation.config import (
    TextGenerationConfig,
    parse_names,
    parse_options,
)

TASK = "text_generation"


# Data -------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    vocabulary: list[str]
    ids: dict[str, np.ndarray]
    works: dict[str, list[str]]


def load_data(config: TextGenerationConfig) -> Prepared:
    """The splits as character ids; the vocabulary comes from training only."""
    if config.dataset == "tiny_shakespeare":
        texts = data.load_tiny_shakespeare()
        works = {split: [f"tiny_shakespeare/{split}"] for split in data.SPLITS}
    else:
        texts, works = data.split_works(
            data.load_works(),
            parse_names(config.validation_works),
            parse_names(config.test_works),
        )
    vocabulary = data.build_vocabulary(texts["train"], config.min_count)
    if len(vocabulary) < 3:
        raise common.ConfigError(
            f"--min-count={config.min_count}: keeps {len(vocabulary) - 1} "
            "character(s) of the training text; a model needs at least 2 "
            "besides the unknown one (lower --min-count)"
        )
    ids = {split: data.encode(text, vocabulary) for split, text in texts.items()}
    return Prepared(vocabulary, ids, works)


# Model ------------------------------------------------------------------------


def build_model(config: TextGenerationConfig, vocabulary_size: int) -> keras.Model:
    """Embedding -> (LSTM/GRU -> Dropout) x layers -> Dense logits, any length."""
    inputs = keras.Input((None,), dtype="int32", name="char")
    x = keras.layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")(
        inputs
    )
    for _ in range(config.layers):
        x = common.recurrent_layer(config, config.units, return_sequences=True)(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, seed=config.seed)(x)
    logits = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")(x)
    model = keras.Model(inputs, logits, name="char_lm")
    model.compile(
        optimizer=common.optimizer(config, config.steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


# Train ------------------------------------------------------------------------


class TimeBudget(keras.callbacks.Callback):
    """Stops after an epoch when one more (at the mean pace) would pass the budget.

    The time counted is each epoch's `epoch_seconds` (its wall time with
    validation, which `common.fit` adds to the logs before this callback runs
    and history.csv keeps), over all sessions of a run: `common.fit` hands a
    resumed run's kept epochs to `stopped_before`, so `--resume` neither gets
    a fresh budget nor decides differently from the uninterrupted run.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.stopped = 60 * minutes, False
        self.spent, self.epochs = 0.0, 0

    def stopped_before(self, past_rows) -> bool:
        """Counts the past epochs' time; whether they had used up the budget
        (the uninterrupted run stopped there)."""
        self.spent = sum(float(row.get("epoch_seconds") or 0) for row in past_rows)
        self.epochs = len(past_rows)
        self.stopped = self._over()
        return self.stopped

    def _over(self) -> bool:
        pace = self.spent / self.epochs if self.epochs else 0.0
        return bool(self.seconds) and self.spent + pace > self.seconds

    def on_epoch_end(self, epoch, logs=None):
        self.spent += float(logs["epoch_seconds"])
        self.epochs += 1
        if self._over():
            self.model.stop_training = self.stopped = True


def train(config: TextGenerationConfig, extra_callbacks: Sequence = ()):
    """Trains, evaluates and exports; returns (model, run folder, metrics)."""
    config, run = common.start_run(TASK, config)  # a resumed run's saved config
    strategy = common.strategy_for(config)  # before any other TensorFlow work
    common.seed_everything(config.seed)
    policy = common.set_precision(config.mixed_precision)
    prepared = load_data(config)
    batches = data.RandomWindows(
        prepared.ids["train"],
        config.seq_length,
        config.batch_size,
        config.steps_per_epoch,
        config.seed,
    )
    val_x, val_y = data.held_out_windows(
        prepared.ids["validation"], config.seq_length, config.eval_windows
    )
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = build_model(config, len(prepared.vocabulary))
    common.write_json(run.path / "vocabulary.json", prepared.vocabulary)
    model.summary(print_fn=lambda line, **_: print(line))

    budget = TimeBudget(config.max_minutes)
    previous_stop = run.metrics.exists() and json.loads(run.metrics.read_text()).get(
        "stopped_by_time_budget", False
    )
    start = time.perf_counter()
    history = common.fit(
        model,
        batches,
        common.ArrayBatches(val_x, val_y, config.batch_size),
        config,
        run,
        extra_callbacks=[budget, *extra_callbacks],
    )
    seconds = time.perf_counter() - start

    metrics = {
        **evaluate(model, config, prepared),
        "best_val_loss_subset": min(history["val_loss"]),
        "epochs_run": len(history["val_loss"]),
        "steps_run": len(history["val_loss"]) * config.steps_per_epoch,
        # A finished run resumed trains nothing: its first session's answer.
        "stopped_by_time_budget": budget.stopped or previous_stop,
        "train_seconds_this_session": round(seconds, 1),
        "characters": {k: len(v) for k, v in prepared.ids.items()},
        "works": prepared.works,
        "vocabulary_size": len(prepared.vocabulary),
        "unknown_share": {k: float(np.mean(v == 0)) for k, v in prepared.ids.items()},
        "parameters": model.count_params(),
        "backend": keras.backend.backend(),
        "device": common.accelerator(),
        "device_name": common.device_name(),
        "dtype_policy": policy,
        "replicas": strategy.num_replicas_in_sync if strategy else 1,
    }
    metrics["sample"] = sample_text(model, prepared.vocabulary, "ROMEO:", 300, 0.8)
    common.save_metrics(run, metrics)
    if config.export_dir:
        common.export_run(
            run, metrics, lambda: export(model, prepared.vocabulary, config.export_dir)
        )
    return model, run, metrics


# Evaluate ---------------------------------------------------------------------


def evaluate(model, config: TextGenerationConfig, prepared: Prepared) -> dict:
    """Cross-entropy of the whole held-out text, two ways, nats and bits.

    `streamed`: the text read start to end with the state carried along (full
    context, as in generation). `windowed`: non-overlapping windows of
    `seq_length` from a zero state, as in training.
    """
    stream_model = sampling.state_model(model, steps=None)
    scores = {}
    for split in ("validation", "test"):
        ids = prepared.ids[split]
        nats, count = sampling.streamed_cross_entropy(stream_model, ids)
        x, y = data.held_out_windows(ids, config.seq_length, 0)
        windowed = common.evaluate(model, common.ArrayBatches(x, y, config.batch_size))[
            "loss"
        ]
        scores[f"{split}_nats_per_char"] = nats
        scores[f"{split}_bits_per_char"] = nats / math.log(2)
        scores[f"{split}_windowed_nats_per_char"] = windowed
        scores[f"{split}_windowed_bits_per_char"] = windowed / math.log(2)
        scores[f"{split}_characters_scored"] = count
    return scores


def sample_text(model, vocabulary, prompt, length, temperature, top_k=None, seed=1):
    """A sample from the trained model (Keras one-step model)."""
    step_model = sampling.state_model(model, steps=1)
    ids = sampling.generate(
        sampling.keras_step(step_model),
        sampling.zero_states(step_model),
        data.encode(prompt, vocabulary, "replace"),
        length,
        temperature,
        top_k,
        seed,
        start_id=data.start_id(vocabulary),
    )
    return prompt + data.decode(ids, vocabulary)


# Export -----------------------------------------------------------------------


def export(model, vocabulary: list[str], out_dir: str) -> dict:
    """Writes model.keras + vocabulary.json (and, on TensorFlow, the one-step
    generator as SavedModel and .tflite) into `out_dir`, replaced atomically."""
    from tasks.text_generation import export as exporter

    return exporter.write(model, vocabulary, Path(out_dir))


# Generate ---------------------------------------------------------------------


def generate_main(argv: Sequence[str]) -> None:
    import sys

    from tasks.text_generation import export as exporter

    config = parse_options(["generate", *argv])
    try:
        text = exporter.generate(**dataclasses.asdict(config))
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(text)


# Command line -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        return generate_main(argv[1:])
    config = parse_options(argv)
    _, run, metrics = common.run_training(train, config)
    print(f"\nrun folder: {run.path}")
    for split in ("validation", "test"):
        print(
            f"{split}: {metrics[f'{split}_nats_per_char']:.4f} nats/char, "
            f"{metrics[f'{split}_bits_per_char']:.4f} bits/char "
            f"({metrics[f'{split}_characters_scored']:,} characters of "
            f"{', '.join(metrics['works'][split])})"
        )
    print(
        f"{metrics['steps_run']} steps in {metrics['epochs_run']} epochs, "
        f"{metrics['train_seconds_this_session']} s training this session"
        f"\n\n{metrics['sample']}"
    )
