"""Sentiment task, default config: our LSTM/GRU vs the Keras built-ins.

    python benchmarks/sentiment_compare.py [--seeds 1234 1 2] [extra task flags]

Trains `python -m tasks.sentiment` once per (layer, seed), each in its own
process, and writes benchmarks/results/sentiment-<backend>-<device>.json and .md with
test accuracy, training wall time (the `fit` call, from metrics.json) and time
to accuracy: the training seconds (epochs summed, validation included, from the
`epoch_seconds` column of history.csv) until validation accuracy first reaches
`--target` (default 0.77), with the ratio of our layer to the built-in on the
same seed. `--rnns lstm` skips the GRU pair; `--tag T` names the files
sentiment-<backend>-<device>-T.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.common.plots import read_history  # noqa: E402

LAYERS = [("lstm", "custom"), ("lstm", "keras"), ("gru", "custom"), ("gru", "keras")]
NAMES = {"custom": "keras_lstm", "keras": "keras.layers"}


def train(rnn: str, cell: str, seed: int, runs_dir: str, extra: list[str]) -> dict:
    command = [
        sys.executable, "-m", "tasks.sentiment", "--rnn", rnn, "--cell", cell,
        "--seed", str(seed), "--runs-dir", runs_dir, "--export-dir=",
        "--verbose", "2", *extra,
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ})
    (folder,) = sorted((Path(runs_dir) / "sentiment").iterdir())[-1:]
    history = read_history(folder / "history.csv")  # metric -> one value per epoch
    return {**json.loads((folder / "metrics.json").read_text()), "history": history}


def seconds_to_accuracy(history: dict, target: float) -> float | None:
    """Training seconds until validation accuracy first reaches `target`."""
    spent = 0.0
    for seconds, accuracy in zip(history["epoch_seconds"], history["val_accuracy"]):
        spent += seconds
        if accuracy >= target:
            return spent
    return None


def twins(rows: list[dict], runs: list[dict]) -> list[dict]:
    """The built-in layer's run with the same rnn and seed as each of `runs`."""
    return [
        next(
            r
            for r in rows
            if (r["rnn"], r["cell"], r["seed"]) == (o["rnn"], "keras", o["seed"])
        )
        for o in runs
    ]


def ratio_text(ours: dict, builtin: dict) -> str:
    a, b = ours["seconds_to_target"], builtin["seconds_to_target"]
    return "—" if a is None or b is None else f"{a / b:.2f}"


def cell_text(value: float | None, fmt: str) -> str:
    return "not reached" if value is None else format(value, fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 1, 2])
    parser.add_argument("--rnns", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--target", type=float, default=0.77)
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args, extra = parser.parse_known_args()
    layers = [(rnn, cell) for rnn, cell in LAYERS if rnn in args.rnns]
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in args.seeds:
            for rnn, cell in layers:
                metrics = train(rnn, cell, seed, runs_dir, extra)
                metrics["seconds_to_target"] = seconds_to_accuracy(
                    metrics["history"], args.target
                )
                rows.append({"rnn": rnn, "cell": cell, "seed": seed, **metrics})
    backend = rows[0]["backend"]
    device = rows[0]["device"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/sentiment_compare.py " + " ".join(sys.argv[1:]),
        "backend": backend,
        "device": device,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "target_val_accuracy": args.target,
        "runs": rows,
    }
    tag = f"-{args.tag}" if args.tag else ""
    out = ROOT / "benchmarks" / "results" / f"sentiment-{backend}-{device}{tag}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Sentiment, bundled Rotten Tomatoes test split (1,276 reviews; majority "
        f"class {rows[0]['majority_class_accuracy']:.1%}), default config, "
        f"{backend} backend, {device} ({result['cpu']}, {result['cores']} cores), "
        f"{result['date']}, seeds {', '.join(map(str, args.seeds))}.",
        "",
        "| layer | test accuracy per seed | mean | epochs | train time per run (s) "
        f"| seconds to val. accuracy >= {args.target:.0%} | ratio ours / built-in |",
        "|---|---|---|---|---|---|---|",
    ]
    for rnn, cell in layers:
        runs = [r for r in rows if (r["rnn"], r["cell"]) == (rnn, cell)]
        accuracies = [r["test_accuracy"] for r in runs]
        lines.append(
            f"| {NAMES[cell]}.{rnn.upper()} | "
            + " / ".join(f"{a:.1%}" for a in accuracies)
            + f" | **{statistics.mean(accuracies):.1%}** | "
            + " / ".join(str(r["epochs_run"]) for r in runs)
            + " | "
            + " / ".join(f"{r['train_seconds_this_session']:.0f}" for r in runs)
            + " | "
            + " / ".join(cell_text(r["seconds_to_target"], ".0f") for r in runs)
            + " | "
            + (
                " / ".join(map(ratio_text, runs, twins(rows, runs)))
                if cell == "custom"
                else "—"
            )
            + " |"
        )
    lines += ["", f"Command: `{result['command']}`"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
