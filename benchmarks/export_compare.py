"""TFLite export of our LSTM / GRU vs Keras' own export, run in LiteRT.

For each sequence length T, one model `Input((T, 128), batch) -> LSTM(64) ->
Dense(1)` with the same random weights, exported four ways:

* `keras.layers.LSTM` + `model.export(format="litert")` (Keras' own exporter),
* `keras_lstm.LSTM` + `keras_lstm.export.export_tflite` (fused LSTM op),
* `keras_lstm.LSTM` + `export_tflite(fuse_lstm=False)` (builtin WHILE loop),
* `keras_lstm.LSTM` + `export_tflite(fuse_lstm=False, fallback="unroll")`,

and the same for GRU (`--rnn gru`: Keras' export, ours with the WHILE loop, the
default for GRU since TFLite has no fused GRU op, and unrolled).

Each `.tflite` is loaded in the standalone LiteRT interpreter (`ai-edge-litert`,
no Flex delegate; XNNPACK applied by default as in apps, `--delegate none` for
the builtin kernels alone), one thread, and compared with the Keras model on 16
random sequences (at least two batches). Latency: median per sequence over
`--repeats` invocations after 20 warm-up calls, the exports timed in
alternation so that all see the same machine load.

    python benchmarks/export_compare.py --steps 50 200 --rnn lstm gru
    python benchmarks/export_compare.py --steps 200 --batch 8
    python benchmarks/export_compare.py --steps 200 --delegate none

Writes benchmarks/results/export-compare[-batch<B>-<delegate>].json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402
from machine import cpu_name  # noqa: E402  (benchmarks/ is on the path)

import keras_lstm  # noqa: E402
from keras_lstm import export  # noqa: E402

FEATURES, UNITS = 128, 64  # the IMDB-like shape of DESIGN.md
RESULTS = pathlib.Path(__file__).parent / "results"


LAYERS = {
    "lstm": (keras_lstm.LSTM, keras.layers.LSTM),
    "gru": (keras_lstm.GRU, keras.layers.GRU),
}
OURS = {  # variant name: export_tflite arguments
    "lstm": {
        "fused": {},
        "WHILE loop": {"fuse_lstm": False},
        "unrolled": {"fuse_lstm": False, "fallback": "unroll"},
    },
    "gru": {"WHILE loop": {}, "unrolled": {"fallback": "unroll"}},
}


def build(layer_cls, steps: int, batch: int, weights=None) -> keras.Model:
    """`Input((steps, 128), batch) -> layer(64) -> Dense(1)`, random weights."""
    x = keras.Input((steps, FEATURES), batch_size=batch, name="inputs")
    model = keras.Model(x, keras.layers.Dense(1)(layer_cls(UNITS)(x)))
    if weights is None:
        rng = np.random.default_rng(0)
        weights = [
            (0.3 * rng.standard_normal(w.shape)).astype("float32")
            for w in model.get_weights()
        ]
    model.set_weights(weights)
    return model


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    flex = [line for line in lines if "Flex" in line or "Select TensorFlow" in line]
    return (flex or lines or [type(error).__name__])[0][:160]


def load(path: pathlib.Path, delegate: str):
    """A LiteRT signature runner, or the error that prevented running."""
    kwargs = {}
    if delegate == "none":  # LiteRT applies XNNPACK by default
        kwargs["experimental_op_resolver_type"] = (
            litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    try:
        interpreter = litert.Interpreter(model_path=str(path), num_threads=1, **kwargs)
        interpreter.allocate_tensors()
        run = interpreter.get_signature_runner()
        run(
            **{
                k: np.zeros(v["shape"], v["dtype"])
                for k, v in run.get_input_details().items()
            }
        )
        return run, None
    except Exception as error:  # noqa: BLE001 - reported in the table
        return None, first_line(error)


def tf_lite_runs(path: pathlib.Path) -> bool:
    """Whether TensorFlow's own tf.lite.Interpreter runs it (it links Flex)."""
    try:
        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        interpreter.invoke()
        return True
    except Exception:  # noqa: BLE001 - reported in the JSON
        return False


def measure(rnn: str, steps: int, folder: pathlib.Path, args) -> list[dict]:
    """All exports of one layer type and length: conversion, run, diff, latency."""
    ours_cls, keras_cls = LAYERS[rnn]
    ours = build(ours_cls, steps, args.batch)
    builtin = build(keras_cls, steps, args.batch, ours.get_weights())
    variants = {}  # name: (model, path or None, error or None, seconds)
    name = f"keras.layers.{keras_cls.__name__} + model.export(format='litert')"
    path = folder / f"keras-{rnn}-{steps}.tflite"
    start = time.perf_counter()
    try:
        builtin.export(str(path), format="litert", verbose=False)
        variants[name] = (builtin, path, None, time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 - reported in the table
        variants[name] = (builtin, None, first_line(error), time.perf_counter() - start)
    for variant, kwargs in OURS[rnn].items():
        path = folder / f"ours-{rnn}-{variant.split()[0]}-{steps}.tflite"
        start = time.perf_counter()
        export.export_tflite(ours, path, overwrite=True, **kwargs)
        name = f"keras_lstm.{ours_cls.__name__} + export_tflite ({variant})"
        variants[name] = (ours, path, None, time.perf_counter() - start)

    rng = np.random.default_rng(1)
    groups = max(2, 16 // args.batch)
    samples = rng.standard_normal((groups, args.batch, steps, FEATURES))
    samples = samples.astype("float32")
    runners, results = {}, {}
    for name, (model, path, error, seconds) in variants.items():
        result = {"converts": error is None, "convert_s": round(seconds, 1)}
        if path is not None:
            ops = export.tflite_op_names(path)
            result.update(
                size_bytes=path.stat().st_size,
                ops=len(ops),
                fused_lstm_ops=ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM"),
                flex_ops=sorted({op for op in ops if op.startswith("Flex")}),
                runs_in_tf_lite_interpreter=tf_lite_runs(path),
            )
            run, error = load(path, args.delegate)
        result["runs_in_litert"] = error is None
        result["error"] = error
        if error is None:
            diff = 0.0
            for x in samples:
                got = next(iter(run(inputs=x).values()))
                want = keras.ops.convert_to_numpy(model(x, training=False))
                diff = max(diff, float(np.abs(got - want).max()))
            result["max_abs_diff"] = diff
            result["times_ms"] = []
            runners[name] = run
        results[name] = result
    x = samples[0]
    for run in runners.values():  # warm-up
        for _ in range(20):
            run(inputs=x)
    for _ in range(args.repeats):  # alternate: all see the same machine load
        for name, run in runners.items():
            start = time.perf_counter()
            run(inputs=x)
            elapsed = 1000 * (time.perf_counter() - start) / args.batch
            results[name]["times_ms"].append(elapsed)
    for name in runners:
        results[name]["median_ms"] = round(
            statistics.median(results[name]["times_ms"]), 4
        )
    return [
        {"rnn": rnn, "steps": steps, "export": name, **result}
        for name, result in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rnn", nargs="+", choices=list(LAYERS), default=["lstm"])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--delegate",
        choices=["xnnpack", "none"],
        default="xnnpack",
        help="LiteRT's default XNNPACK delegate, or builtin kernels only",
    )
    args = parser.parse_args()
    rows = []
    # The SavedModels and .tflite files are only needed while they are timed.
    with tempfile.TemporaryDirectory(prefix="export_compare_") as tmp:
        folder = pathlib.Path(tmp)
        for rnn in args.rnn:
            for steps in args.steps:
                rows += measure(rnn, steps, folder, args)
    meta = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": _litert_version(),
        "shape": f"batch {args.batch}, (T, {FEATURES}) -> RNN({UNITS}) -> Dense(1)",
        "batch": args.batch,
        "delegate": args.delegate,
        "repeats": args.repeats,
        "command": "python benchmarks/export_compare.py --steps "
        + " ".join(map(str, args.steps))
        + " --rnn "
        + " ".join(args.rnn)
        + (f" --batch {args.batch}" if args.batch != 1 else "")
        + (f" --delegate {args.delegate}" if args.delegate != "xnnpack" else ""),
    }
    suffix = ""
    if args.batch != 1 or args.delegate != "xnnpack":
        suffix = f"-batch{args.batch}-{args.delegate}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"export-compare{suffix}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    table = markdown(meta, rows)
    (RESULTS / f"export-compare{suffix}.md").write_text(table)
    print(table)


def _litert_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        return None


def markdown(meta: dict, rows: list[dict]) -> str:
    def cell(row, key, fmt):
        return fmt.format(row[key]) if row.get(key) is not None else "—"

    lines = [
        f"{meta['date']} · {meta['cpu']}, {meta['cores']} cores · TensorFlow "
        f"{meta['tensorflow']} · Keras {meta['keras']} · ai-edge-litert "
        f"{meta['ai_edge_litert']} · {meta['shape']}",
        "",
        "| T | export | converts? | runs in LiteRT? | fused LSTM ops / all ops | "
        ".tflite size | median ms / sequence | max abs diff vs Keras |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["runs_in_litert"]:
            runs = "yes"
        elif row.get("flex_ops"):
            runs = "no: needs Flex ops " + ", ".join(row["flex_ops"])
        else:
            runs = f"no: {row['error']}"
        ops = (
            f"{row['fused_lstm_ops']} / {row['ops']}"
            if row.get("ops") is not None
            else "—"
        )
        size = f"{row['size_bytes'] / 1024:.0f} KiB" if row.get("size_bytes") else "—"
        converts = "yes" if row["converts"] else "no"
        lines.append(
            f"| {row['steps']} | {row['export']} | {converts} "
            f"| {runs} | {ops} | {size} | {cell(row, 'median_ms', '{:.3f}')} "
            f"| {cell(row, 'max_abs_diff', '{:.1e}')} |"
        )
    lines += [
        "",
        f"LiteRT interpreter, 1 thread, delegate: {meta['delegate']}; latency per "
        f"sequence, median of {meta['repeats']} invocations of batch "
        f"{meta['batch']} after 20 warm-up calls, the exports timed in "
        "alternation; max abs diff vs the Keras model over 16+ random sequences.",
        f"Command: `{meta['command']}`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
