"""The sentiment task: data, model, training, export, predict.

Its options and usage: tasks/sentiment/config.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from tasks import common
from tasks.common import ArrayBatches
from tasks.sentiment import data, text
from tasks.sentiment.config import SentimentConfig, parse_options, predict_parser

TASK = "sentiment"


# Data -------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    vocabulary: list[str]
    length: int
    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]


def load_data(config: SentimentConfig) -> Prepared:
    """Loads the splits; vocabulary and length cap come from the training split."""
    splits = data.load(config.dataset, config.seed)
    train_texts = splits["train"][0]
    vocabulary = text.build_vocabulary(train_texts, config.max_tokens, config.min_count)
    if len(vocabulary) <= 2:  # padding and [UNK] only: every review reads alike
        raise common.ConfigError(
            f"--min-count={config.min_count}: keeps no word of the "
            f"{len(train_texts)} training reviews (lower --min-count)"
        )
    length = text.length_cap(train_texts, config.length_percentile)
    return Prepared(
        vocabulary=vocabulary,
        length=length,
        ids={k: text.encode(t, vocabulary, length) for k, (t, _) in splits.items()},
        labels={k: y for k, (_, y) in splits.items()},
    )


# Model ------------------------------------------------------------------------


def build_model(
    config: SentimentConfig,
    vocabulary_size: int,
    length: int,
    steps_per_epoch: int | None = None,
):
    """Embedding(mask_zero) -> [Bidirectional] LSTM/GRU x layers -> Dense.

    With `--pooling mean` the last recurrent layer returns every step and a
    masked average (padding excluded) feeds the classifier. `steps_per_epoch`
    (training batches per epoch) is what `--lr-schedule cosine` needs.
    """
    inputs = keras.Input((length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocabulary_size, config.embedding_dim, mask_zero=True)(
        inputs
    )
    x = keras.layers.Dropout(config.dropout)(x)
    for depth in range(config.layers):
        last = depth == config.layers - 1
        layer = common.recurrent_layer(
            config,
            config.units,
            return_sequences=not last or config.pooling == "mean",
        )
        x = keras.layers.Bidirectional(layer)(x) if config.bidirectional else layer(x)
    if config.pooling == "mean":
        x = keras.layers.GlobalAveragePooling1D()(x)  # uses the mask
    x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="sentiment")
    model.compile(
        optimizer=common.optimizer(config, steps_per_epoch),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


# Train and evaluate -----------------------------------------------------------


def train(config: SentimentConfig, extra_callbacks: Sequence = ()):
    """Trains, evaluates and exports; returns (model, run folder, metrics)."""
    config, run = common.start_run(TASK, config)  # a resumed run's saved config
    strategy = common.strategy_for(config)  # before any other TensorFlow work
    common.seed_everything(config.seed)
    policy = common.set_precision(config.mixed_precision)
    prepared = load_data(config)
    batches = {
        split: ArrayBatches(
            prepared.ids[split],
            prepared.labels[split],
            config.batch_size,
            shuffle=split == "train",
            seed=config.seed,
            steps=config.steps_per_epoch if split == "train" else 0,
        )
        for split in data.SPLITS
    }
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = build_model(
            config, len(prepared.vocabulary), prepared.length, len(batches["train"])
        )
    common.write_json(run.path / "vocabulary.json", prepared.vocabulary)
    model.summary(print_fn=lambda line, **_: print(line))

    start = time.perf_counter()
    history = common.fit(
        model,
        batches["train"],
        batches["validation"],
        config,
        run,
        extra_callbacks=extra_callbacks,
    )
    seconds = time.perf_counter() - start

    test = common.evaluate(model, batches["test"])
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "majority_class_accuracy": _majority(prepared.labels["test"]),
        "best_val_loss": min(history["val_loss"]),
        "epochs_run": len(history["val_loss"]),
        "train_seconds_this_session": round(seconds, 1),
        "rows": {k: len(v) for k, v in prepared.labels.items()},
        "vocabulary_size": len(prepared.vocabulary),
        "length_cap": prepared.length,
        "parameters": model.count_params(),
        "backend": keras.backend.backend(),
        "device": common.accelerator(),
        "device_name": common.device_name(),
        "dtype_policy": policy,
        "replicas": strategy.num_replicas_in_sync if strategy else 1,
    }
    if strategy:
        metrics["replica_weight_max_diff"] = common.replica_weight_spread(model)
    common.save_metrics(run, metrics)
    if config.export_dir:
        common.export_run(
            run,
            metrics,
            lambda: export(
                model, prepared.vocabulary, prepared.length, config.export_dir
            ),
        )
    return model, run, metrics


def _majority(labels: np.ndarray) -> float:
    share = float(np.mean(labels))
    return max(share, 1 - share)


# Export -----------------------------------------------------------------------


def export(model, vocabulary: list[str], length: int, out_dir: str) -> dict:
    """Writes model.keras + vocabulary.json (and, on TensorFlow, a SavedModel
    that takes raw strings) into `out_dir`, replacing it atomically."""
    from tasks.sentiment import export as exporter

    return exporter.write(model, vocabulary, length, Path(out_dir))


# Predict ----------------------------------------------------------------------


def load_exported(model_dir: str | Path):
    """(model, vocabulary, length) from an export folder."""
    import keras_lstm  # noqa: F401  (registers our layers for loading)

    model_dir = Path(model_dir)
    model_path = model_dir / "model.keras"
    if not model_path.is_file():
        raise FileNotFoundError(
            f"no trained model at {model_path}: train one with "
            "`python -m tasks.sentiment` (or pass --model-dir)"
        )
    common.check_export_of(model_dir, "sentiment")
    if not (model_dir / "vocabulary.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} is not a sentiment export: it has no vocabulary.json "
            "(another task's export?)"
        )
    vocabulary = common.read_export_json(
        model_dir / "vocabulary.json",
        f"a vocabulary (a list of words, starting {[text.PAD, text.UNKNOWN]})",
        lambda v: (
            isinstance(v, list)
            and v[:2] == [text.PAD, text.UNKNOWN]
            and all(isinstance(word, str) for word in v)
        ),
    )
    model = common.load_export_model(model_path)
    shape = model.inputs[0].shape
    if len(model.inputs) != 1 or len(shape) != 2 or shape[1] is None:
        raise ValueError(
            f"{model_dir} is not a sentiment export: its model takes "
            f"{[tuple(t.shape) for t in model.inputs]}, not (batch, review length) "
            "token ids (another task's export?)"
        )
    common.check_vocabulary_fits(model, vocabulary, model_dir)
    return model, vocabulary, int(shape[1])


def predict(texts: Sequence[str], model_dir: str | Path) -> np.ndarray:
    """Probability that each review is positive."""
    model, vocabulary, length = load_exported(model_dir)
    ids = text.encode(list(texts), vocabulary, length)
    return np.asarray(model.predict(ids, verbose=0)).reshape(-1)


# Command line -----------------------------------------------------------------


def predict_main(argv: Sequence[str]) -> None:
    import sys

    args = predict_parser().parse_args(argv)
    try:
        probabilities = predict(args.texts, args.model_dir)
    except (ValueError, OSError) as error:  # missing, damaged, another task's
        sys.exit(f"error: --model-dir={args.model_dir}: {error}")
    for review, p in zip(args.texts, probabilities):
        label = "positive" if p >= 0.5 else "negative"
        shown = review if len(review) <= 60 else review[:57] + "..."
        print(f"{p:.3f}  {label:8}  {shown!r}")


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        return predict_main(argv[1:])
    config = parse_options(argv)
    _, run, metrics = common.run_training(train, config)
    print(f"\nrun folder: {run.path}")
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} (majority class "
        f"{metrics['majority_class_accuracy']:.4f}), "
        f"{metrics['epochs_run']} epochs, "
        f"{metrics['train_seconds_this_session']} s training this session"
    )
