"""Gate heat map of a trained sentiment model on one review, a token per column.

    python -m tasks.sentiment --epochs 3            # writes saved_models/sentiment
    python -m tasks.long_range gates "A quiet triumph, never dull." --out gates.png

The review goes through the model's own Embedding; `keras_lstm.record_gates`
then replays the first recurrent layer (the forward direction of a
Bidirectional) on the embedded tokens. The model is only read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import numpy as np

import keras_lstm
from tasks.long_range.config import gates_parser


def first_lstm(model: keras.Model):
    """The first keras_lstm.LSTM of `model` (a Bidirectional's forward layer)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            layer = layer.forward_layer
        if isinstance(layer, keras.layers.RNN):
            if not isinstance(layer.cell, keras_lstm.LSTMCell):
                raise ValueError(
                    f"`model`'s first recurrent layer {layer.name!r} is a "
                    f"{type(layer).__name__}; gates are recorded for keras_lstm.LSTM "
                    "(train with --rnn lstm --cell custom)"
                )
            return layer
    raise ValueError(f"`model` {model.name!r} has no recurrent layer")


def review_gates(model: keras.Model, ids: np.ndarray) -> dict:
    """Gates of the first LSTM for token ids `(1, length)`, padding cut off."""
    embedding = next(
        (layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)),
        None,
    )
    if embedding is None:
        raise ValueError(f"`model` {model.name!r} has no Embedding layer")
    valid = int(np.count_nonzero(ids[0]))
    if valid == 0:
        raise ValueError("`review` has no tokens")
    vectors = keras.ops.convert_to_numpy(embedding(ids[:, :valid]))
    record = keras_lstm.record_gates(first_lstm(model), vectors)
    return record


def plot_review(
    model: keras.Model,
    vocabulary: Sequence[str],
    length: int,
    review: str,
    path: str,
    values: str | Path = "",
) -> str:
    """Writes the heat map of `review` to `path` and returns `path`; with
    `values`, also the numbers behind it as JSON (`review_values`)."""
    from tasks.sentiment import text

    if values and Path(values).resolve() == Path(path).resolve():
        raise ValueError(f"--values={str(values)!r} is the PNG's own path")
    if not text.tokenize(review):
        raise ValueError(f"review {review!r} has no words to show")
    ids = text.encode([review], vocabulary, length)
    record = review_gates(model, ids)
    tokens = text.tokenize(review)[: record["h"].shape[1]]
    known = set(vocabulary)
    labels = [t if t in known else f"{t} (unk)" for t in tokens]
    probability = float(np.asarray(model.predict(ids, verbose=0)).reshape(-1)[0])
    title = f"{review!r}: P(positive) = {probability:.2f}"
    path = keras_lstm.plot_gates(record, path, token_labels=labels, title=title)
    if values:
        from tasks import common

        common.write_json(values, review_values(record, labels, probability, review))
    return path


def output_problem(value: str) -> str | None:
    """Why a file cannot be written at `value` (None if it can); makes its
    folder."""
    path = Path(value)
    if not value.strip():
        return "give a file name"
    if path.is_dir():
        return "a folder; give a file name"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file where a folder should be, say
        return f"cannot make its folder {path.parent} ({error.strerror or error})"
    return None


def review_values(record: dict, labels: list, probability: float, review: str):
    """Per token, over the units: the mean of each gate and state, the mean
    magnitude of the candidate values and the mean |ΔC| (the cell state's
    change at that token); plus every value (`gates`: name -> steps x units)."""
    steps = {name: np.asarray(values)[0] for name, values in record.items()}
    change = np.abs(np.diff(steps["c"], axis=0, prepend=0.0))  # C_0 = 0
    return {
        "review": review,
        "tokens": labels,
        "p_positive": probability,
        "mean": {name: v.mean(axis=1) for name, v in steps.items()},
        "mean_abs_c_tilde": np.abs(steps["c_tilde"]).mean(axis=1),
        "mean_abs_c_change": change.mean(axis=1),
        "gates": steps,
    }


def main(argv: Sequence[str]) -> None:
    import sys

    args = gates_parser().parse_args(argv)
    for flag, value in (("--out", args.out), ("--values", args.values)):
        problem = (flag == "--out" or value) and output_problem(value)
        if problem:  # before the model loads and before either file is written
            sys.exit(f"error: {flag}={value!r}: {problem}")
    from tasks.sentiment.task import load_exported

    try:
        model, vocabulary, length = load_exported(args.model_dir)
    except (OSError, ValueError) as error:  # missing, damaged, another task's
        sys.exit(f"error: --model-dir={args.model_dir}: {error}")
    try:
        path = plot_review(
            model, vocabulary, length, args.review, args.out, args.values
        )
    except (OSError, ValueError) as error:  # an --out that cannot be written too
        sys.exit(f"error: {error}")
    print(f"wrote {Path(path).resolve()}")
    if args.values:
        print(f"wrote {Path(args.values).resolve()}")
