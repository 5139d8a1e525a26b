"""TFLite export of our LSTM vs keras.layers.LSTM's own export, in LiteRT.

For each sequence length, one model `Input((T, 128), batch 1) -> LSTM(64) ->
Dense(1)` with the same random weights in three exports:

* `keras.layers.LSTM` + `model.export(format="litert")` (Keras' own exporter),
* `keras_lstm.LSTM` + `keras_lstm.export.export_tflite` (fused LSTM op),
* `keras_lstm.LSTM` + `export_tflite(fuse_lstm=False)` (builtin ops unrolled).

Each `.tflite` is loaded in the standalone LiteRT interpreter (`ai-edge-litert`,
no Flex delegate), run on 16 random sequences and compared with the Keras model;
latency is the median of single-sequence invocations after a warm-up, one
interpreter thread, the three exports timed in alternation.

    python benchmarks/export_compare.py --steps 50 200

Writes benchmarks/results/export-compare.json and export-compare.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm import export  # noqa: E402

FEATURES, UNITS = 128, 64  # the IMDB-like shape of DESIGN.md, batch 1
RESULTS = pathlib.Path(__file__).parent / "results"


def build(layer_cls, steps: int, weights=None) -> keras.Model:
    x = keras.Input((steps, FEATURES), batch_size=1, name="inputs")
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


def load(path: pathlib.Path):
    """A LiteRT signature runner, or the error that prevented running."""
    try:
        interpreter = litert.Interpreter(model_path=str(path), num_threads=1)
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


def cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rows = []
    folder = pathlib.Path(tempfile.mkdtemp(prefix="export_compare_"))
    for steps in args.steps:
        ours = build(keras_lstm.LSTM, steps)
        builtin = build(keras.layers.LSTM, steps, ours.get_weights())
        variants = {}
        path = folder / f"keras-{steps}.tflite"
        start = time.perf_counter()
        try:
            builtin.export(str(path), format="litert", verbose=False)
            variants["keras.layers.LSTM + model.export(format='litert')"] = (
                builtin,
                path,
                None,
                time.perf_counter() - start,
            )
        except Exception as error:  # noqa: BLE001
            variants["keras.layers.LSTM + model.export(format='litert')"] = (
                builtin,
                None,
                first_line(error),
                time.perf_counter() - start,
            )
        for name, fuse in [("fused", True), ("unrolled builtins", False)]:
            path = folder / f"ours-{name.split()[0]}-{steps}.tflite"
            start = time.perf_counter()
            export.export_tflite(ours, path, fuse_lstm=fuse, overwrite=True)
            variants[f"keras_lstm.LSTM + export_tflite ({name})"] = (
                ours,
                path,
                None,
                time.perf_counter() - start,
            )

        rng = np.random.default_rng(1)
        samples = rng.standard_normal((16, 1, steps, FEATURES)).astype("float32")
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
                )
                run, error = load(path)
                result["runs_in_tf_lite_interpreter"] = tf_lite_runs(path)
            result["runs_in_litert"] = error is None
            result["error"] = error
            if error is None:
                diff = 0.0
                for x in samples:
                    got = next(iter(run(inputs=x).values()))
                    want = keras.ops.convert_to_numpy(model(x, training=False))
                    diff = max(diff, float(np.abs(got - want).max()))
                result["max_abs_diff"] = diff
                runners[name] = run
                result["times_ms"] = []
            results[name] = result
        x = samples[0]
        for run in runners.values():  # warm-up
            for _ in range(20):
                run(inputs=x)
        for _ in range(args.repeats):  # alternate, so all see the same load
            for name, run in runners.items():
                start = time.perf_counter()
                run(inputs=x)
                results[name]["times_ms"].append(1000 * (time.perf_counter() - start))
        for name in runners:
            results[name]["median_ms"] = round(
                statistics.median(results[name]["times_ms"]), 4
            )
        for name, result in results.items():
            rows.append({"steps": steps, "export": name, **result})

    meta = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": getattr(litert, "__version__", None) or _litert_version(),
        "shape": f"batch 1, (T, {FEATURES}) -> LSTM({UNITS}) -> Dense(1)",
        "repeats": args.repeats,
        "command": "python benchmarks/export_compare.py --steps "
        + " ".join(map(str, args.steps)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export-compare.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    table = markdown(meta, rows)
    (RESULTS / "export-compare.md").write_text(table)
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
        f"{meta['date']} · {meta['cpu']} ({meta['cores']} cores) · TensorFlow "
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
        f"LiteRT interpreter, 1 thread, median of {meta['repeats']} single-sequence "
        "invocations after 20 warm-up calls, the exports timed in alternation; "
        "max abs diff over 16 random sequences.",
        f"Command: `{meta['command']}`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
