"""Models for the export tests: our layers with random weights, and inputs."""

from __future__ import annotations

import keras
import numpy as np

import keras_lstm

VOCAB = 40
STEPS = 8
ATOL = 1e-5  # float32 agreement required by the project (DESIGN.md)


def randomize(model, seed: int = 0, scale: float = 0.5) -> keras.Model:
    """Random weights (not the initializers'), so gates are far from trivial."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            (scale * rng.standard_normal(w.shape)).astype(w.dtype)
            for w in model.get_weights()
        ]
    )
    return model


def text_model(body, steps=None, seed: int = 0) -> keras.Model:
    """ids -> Embedding(mask_zero=True) -> body(x) -> outputs."""
    ids = keras.Input((steps,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCAB, 6, mask_zero=True)(ids)
    return randomize(keras.Model(ids, body(x)), seed)


def bidirectional_stack(x):
    """Bidirectional LSTM -> LSTM -> Bidirectional LSTM (last output) -> Dense."""
    x = keras.layers.Bidirectional(keras_lstm.LSTM(5, return_sequences=True))(x)
    x = keras_lstm.LSTM(4, return_sequences=True)(x)
    x = keras.layers.Bidirectional(keras_lstm.LSTM(3))(x)
    return keras.layers.Dense(2)(x)


def gru_stack(x):
    x = keras.layers.Bidirectional(keras_lstm.GRU(5, return_sequences=True))(x)
    return keras_lstm.GRU(4, go_backwards=True)(x)


def right_padded_ids(rows: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ids, row r zero after lengths[r] (lengths include steps, 1, 0)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (rows, steps)).astype("int32")
    lengths = np.concatenate([[steps, 1, 0], rng.integers(1, steps + 1, rows)])[:rows]
    for r, n in enumerate(lengths):
        ids[r, n:] = 0
    return ids, lengths


def keras_out(model, *inputs) -> list[np.ndarray]:
    out = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(out)]


def litert_outputs(path, rows: dict) -> list[np.ndarray]:
    """Runs the .tflite with LiteRT's own interpreter, one batch per call (no
    reset between calls), and returns the outputs in order output_0, 1, ..."""
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    batch = run.get_input_details()[next(iter(rows))]["shape"][0]
    total = next(iter(rows.values())).shape[0]
    parts = []
    for start in range(0, total, batch):
        out = run(**{k: v[start : start + batch] for k, v in rows.items()})
        parts.append([out[f"output_{i}"] for i in range(len(out))])
    return [np.concatenate(p, axis=0) for p in zip(*parts)]


def max_diff(actual, expected) -> float:
    assert len(actual) == len(expected)
    worst = 0.0
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, (a.shape, e.shape)
        worst = max(worst, float(np.abs(a - e).max()))
    return worst
