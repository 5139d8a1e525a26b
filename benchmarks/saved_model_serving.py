"""SavedModel serving time: plain loops (the default) vs `xla=True` vs the built-in.

    KERAS_BACKEND=tensorflow python benchmarks/saved_model_serving.py [--repeats 30]

Exports one IMDB-like model (Embedding(20000, 128, mask_zero) -> LSTM(64) ->
Dense(1)) three ways: `keras_lstm.export.export_saved_model` as is (plain
TensorFlow loops, what TF Serving runs), with `xla=True` (our XLA-compiled
inference loop kept in the graph), and the same weights in `keras.layers.LSTM`
through Keras' `model.export`. Each is loaded with `tf.saved_model.load` and
called on a batch of 64 x 200 ids, in alternation, after 5 warm-up calls.
Writes benchmarks/results/saved-model-serving.{json,md}: median ms per batch,
and the largest difference of each from the built-in's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm import export  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from machine import cpu_name  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH, STEPS, VOCAB = 64, 200, 20_000


def build(lstm) -> keras.Model:
    ids = keras.Input((STEPS,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCAB, 128, mask_zero=True)(ids)
    return keras.Model(ids, keras.layers.Dense(1)(lstm(64)(x)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    ours, builtin = build(keras_lstm.LSTM), build(keras.layers.LSTM)
    builtin.set_weights(ours.get_weights())
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, (BATCH, STEPS)).astype("int32")
    ids[::2, 150:] = 0  # half the rows padded: the masks are served too
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        export.export_saved_model(ours, folder / "plain")
        export.export_saved_model(ours, folder / "xla", xla=True)
        builtin.export(str(folder / "builtin"), verbose=False)
        loaded = {
            name: tf.saved_model.load(str(folder / name))
            for name in ("plain", "xla", "builtin")
        }
        serve = {name: m.signatures["serving_default"] for name, m in loaded.items()}

        def call(name):
            outputs = serve[name](tf.constant(ids))
            return next(iter(outputs.values())).numpy()

        want = call("builtin")
        for name in serve:
            for _ in range(5):
                call(name)
        times = {name: [] for name in serve}
        for _ in range(args.repeats):
            for name in serve:
                start = time.perf_counter()
                call(name)
                times[name].append(1000 * (time.perf_counter() - start))
        diffs = {name: float(np.abs(call(name) - want).max()) for name in serve}
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "KERAS_BACKEND=tensorflow python benchmarks/saved_model_serving.py "
        + " ".join(sys.argv[1:]),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "shape": {"batch": BATCH, "steps": STEPS, "units": 64, "embedding": 128},
        "repeats": args.repeats,
        "ms_per_batch": times,
        "median_ms": medians,
        "max_abs_diff_vs_builtin": diffs,
    }
    out = ROOT / "benchmarks" / "results" / "saved-model-serving"
    out.with_name(out.name + ".json").write_text(json.dumps(result, indent=2) + "\n")
    labels = {
        "plain": "ours, `export_saved_model` (default: plain loops)",
        "xla": "ours, `export_saved_model(..., xla=True)`",
        "builtin": "`keras.layers.LSTM`, `model.export`",
    }
    lines = [
        f"{result['date']} · {result['cpu']}, {result['cores']} cores · "
        f"tensorflow {tf.__version__} · batch {BATCH} x {STEPS} ids, LSTM(64)",
        "",
        "| SavedModel | median ms per batch | vs built-in | max abs diff vs built-in |",
        "|---|---:|---:|---:|",
    ]
    for name, label in labels.items():
        ratio = medians[name] / medians["builtin"]
        lines.append(
            f"| {label} | {medians[name]:.2f} | {ratio:.2f} | {diffs[name]:.1e} |"
        )
    lines += ["", f"Command: `{result['command'].strip()}`"]
    out.with_name(out.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
