"""Speed of keras_lstm layers vs the Keras built-ins, per backend and device.

Trains with `fit` and infers with `predict` over many batches, after a warm-up
call that pays for tracing/compilation, and reports the median time per batch over
repeats. Our layer and the built-in are timed alternately in the same process, so
their ratio is taken under the same machine load.

    KERAS_BACKEND=tensorflow python benchmarks/bench_layers.py
    KERAS_BACKEND=jax python benchmarks/bench_layers.py --shapes imdb --rnn lstm gru

Writes benchmarks/results/<backend>-<device>-<rnn>.json and .md (a markdown table).
Runs wherever Keras runs: TensorFlow is not needed on the jax/torch backends.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

# name: (batch, timesteps, features, units, batches per timing) from DESIGN.md
SHAPES = {
    "imdb": (64, 200, 128, 64, 16),
    "chargen": (64, 100, 256, 1024, 4),
    "weather": (256, 120, 14, 32, 16),
}
LAYERS = {
    "lstm": (keras_lstm.LSTM, keras.layers.LSTM),
    "gru": (keras_lstm.GRU, keras.layers.GRU),
}
RESULTS = pathlib.Path(__file__).parent / "results"


def device_name() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", "GPU"
            )
    return cpu_name()


def cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'} ({os.cpu_count()} cores)"


def make_model(layer_cls, timesteps, features, units):
    model = keras.Sequential(
        [
            keras.Input((timesteps, features)),
            layer_cls(units),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def time_per_batch(fn, batches: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / batches * 1000.0


def paired_ratio(times: dict, kind: str) -> float:
    pairs = zip(times[("ours", kind)], times[("keras", kind)])
    return round(statistics.median(a / b for a, b in pairs), 3)


def bench_shape(rnn: str, shape: str, repeats: int) -> dict:
    batch, timesteps, features, units, batches = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * batches, timesteps, features)).astype("float32")
    y = rng.standard_normal((batch * batches, 1)).astype("float32")
    ours_cls, builtin_cls = LAYERS[rnn]
    models = {
        "ours": make_model(ours_cls, timesteps, features, units),
        "keras": make_model(builtin_cls, timesteps, features, units),
    }
    models["keras"].set_weights(models["ours"].get_weights())

    def train(model):
        return lambda: model.fit(
            x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0
        )

    def infer(model):
        return lambda: model.predict(x, batch_size=batch, verbose=0)

    times = {(name, kind): [] for name in models for kind in ("train", "infer")}
    for model in models.values():  # warm-up: tracing / compilation
        train(model)()
        infer(model)()
    for repeat in range(repeats):
        # Back to back, alternating who goes first, so pairs share machine state.
        order = list(models.items())[:: 1 if repeat % 2 == 0 else -1]
        for kind, run in (("train", train), ("infer", infer)):
            for name, model in order:
                times[(name, kind)].append(time_per_batch(run(model), batches))
    median = {key: statistics.median(v) for key, v in times.items()}
    best = {key: min(v) for key, v in times.items()}
    return {
        "rnn": rnn,
        "shape": shape,
        "batch": batch,
        "timesteps": timesteps,
        "features": features,
        "units": units,
        "batches_per_timing": batches,
        "repeats": repeats,
        "ms_per_batch": {f"{n}_{k}": round(v, 2) for (n, k), v in median.items()},
        "sequences_per_s": {
            f"{n}_{k}": round(batch / v * 1000.0, 1) for (n, k), v in median.items()
        },
        "ratio_train": round(median[("ours", "train")] / median[("keras", "train")], 3),
        "ratio_infer": round(median[("ours", "infer")] / median[("keras", "infer")], 3),
        # Median of ours/keras over back-to-back pairs: a slow spell of the
        # machine hits both members of a pair, so it cancels out.
        "ratio_train_paired": paired_ratio(times, "train"),
        "ratio_infer_paired": paired_ratio(times, "infer"),
        # Best-of ratios: less sensitive to machine noise than medians.
        "ratio_train_best": round(
            best[("ours", "train")] / best[("keras", "train")], 3
        ),
        "ratio_infer_best": round(
            best[("ours", "infer")] / best[("keras", "infer")], 3
        ),
        "all_ms": {f"{n}_{k}": [round(t, 2) for t in v] for (n, k), v in times.items()},
    }


def markdown(report: dict) -> str:
    lines = [
        f"{report['date']} · backend `{report['backend']}` · {report['device']} · "
        f"Keras {report['keras']}",
        "",
        "| layer | shape (batch, steps, features→units) | ours train ms | keras "
        "train ms | train ratio | ours infer ms | keras infer ms "
        "| infer ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        ms = r["ms_per_batch"]
        lines.append(
            f"| {r['rnn'].upper()} | {r['shape']} ({r['batch']}, {r['timesteps']}, "
            f"{r['features']}→{r['units']}) | {ms['ours_train']} | "
            f"{ms['keras_train']} | **{r['ratio_train_paired']}** "
            f"({r['ratio_train']}, {r['ratio_train_best']}) | "
            f"{ms['ours_infer']} | {ms['keras_infer']} | **{r['ratio_infer_paired']}** "
            f"({r['ratio_infer']}, {r['ratio_infer_best']}) |"
        )
    lines += [
        "",
        "Milliseconds per batch, median over repeats. Ratio = ours / keras "
        "(< 1: ours faster), in bold the median over back-to-back pairs; in "
        "brackets the ratio of medians and the ratio of the best repeats.",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--rnn", nargs="+", choices=LAYERS, default=["lstm"])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    parser.add_argument(
        "--hoist",
        choices=["auto", "on", "off"],
        default="auto",
        help="set RecurrentLayer.hoist_input_projection (see benchmarks/NOTES.md)",
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    if args.hoist != "auto":
        from keras_lstm.recurrent import RecurrentLayer

        RecurrentLayer.hoist_input_projection = args.hoist == "on"
    keras.utils.set_random_seed(0)
    results = []
    for rnn in args.rnn:
        for shape in args.shapes:
            result = bench_shape(rnn, shape, args.repeats)
            print(json.dumps(result), flush=True)
            results.append(result)
    report = {
        "date": datetime.date.today().isoformat(),
        "backend": keras.backend.backend(),
        "device": device_name(),
        "keras": keras.__version__,
        "command": "KERAS_BACKEND={} python benchmarks/bench_layers.py {}".format(
            keras.backend.backend(),
            " ".join(
                [
                    "--shapes",
                    *args.shapes,
                    "--rnn",
                    *args.rnn,
                    "--repeats",
                    str(args.repeats),
                ]
                + ([] if args.hoist == "auto" else ["--hoist", args.hoist])
            ),
        ),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if "cores" in report["device"] else "gpu"
    stem = f"{report['backend']}-{device}-{'-'.join(args.rnn)}"
    if args.hoist != "auto":
        stem += f"-hoist-{args.hoist}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
