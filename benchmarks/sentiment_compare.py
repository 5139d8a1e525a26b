"""Sentiment task, default config: our LSTM/GRU vs the Keras built-ins.

    python benchmarks/sentiment_compare.py [--seeds 1234 1 2] [extra task flags]

Trains `python -m tasks.sentiment` once per (layer, seed), each in its own
process, and writes benchmarks/results/sentiment-<backend>.json and .md with
test accuracy and training wall time (the `fit` call, from metrics.json).
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
    return json.loads((folder / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 1, 2])
    args, extra = parser.parse_known_args()
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in args.seeds:
            for rnn, cell in LAYERS:
                metrics = train(rnn, cell, seed, runs_dir, extra)
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
        "runs": rows,
    }
    out = ROOT / "benchmarks" / "results" / f"sentiment-{backend}-{device}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Sentiment, bundled Rotten Tomatoes test split (1,276 reviews; majority "
        f"class {rows[0]['majority_class_accuracy']:.1%}), default config, "
        f"{backend} backend, {device} ({result['cpu']}, {result['cores']} cores), "
        f"{result['date']}, seeds {', '.join(map(str, args.seeds))}.",
        "",
        "| layer | test accuracy per seed | mean | epochs | train time per run (s) |",
        "|---|---|---|---|---|",
    ]
    for rnn, cell in LAYERS:
        runs = [r for r in rows if (r["rnn"], r["cell"]) == (rnn, cell)]
        accuracies = [r["test_accuracy"] for r in runs]
        lines.append(
            f"| {NAMES[cell]}.{rnn.upper()} | "
            + " / ".join(f"{a:.1%}" for a in accuracies)
            + f" | **{statistics.mean(accuracies):.1%}** | "
            + " / ".join(str(r["epochs_run"]) for r in runs)
            + " | "
            + " / ".join(f"{r['train_seconds_this_session']:.0f}" for r in runs)
            + " |"
        )
    lines += ["", f"Command: `{result['command']}`"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
