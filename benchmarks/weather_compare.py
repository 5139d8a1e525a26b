"""Weather task, default config: our LSTM/GRU vs the Keras built-ins vs baselines.

    python benchmarks/weather_compare.py [--seeds 1234 1 2] [extra task flags]

Trains `python -m tasks.weather` once per (layer, seed), each in its own
process, and writes benchmarks/results/weather-<backend>-<device>.json and .md
with the test MAE (degC) per horizon of every model, the baselines (the same
test windows in every run) and the training wall time (the `fit` call, from
metrics.json). Also writes docs/images/weather-mae-by-horizon.png and, from the
first run of our LSTM, docs/images/weather-forecast-week.png (`--tag NAME`:
files weather-<backend>-<device>-NAME.*, no images).
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

from tasks.weather import plots  # noqa: E402

LAYERS = [("lstm", "custom"), ("lstm", "keras"), ("gru", "custom"), ("gru", "keras")]
NAMES = {"custom": "keras_lstm", "keras": "keras.layers"}
BASELINES = ("persistence", "seasonal naive", "linear")


def train(
    rnn: str, cell: str, seed: int, runs_dir: str, extra: list[str]
) -> tuple[Path, float]:
    """Runs the task once; returns its run folder and the command's wall time."""
    command = [
        sys.executable, "-m", "tasks.weather", "--rnn", rnn, "--cell", cell,
        "--seed", str(seed), "--runs-dir", runs_dir, "--export-dir=",
        "--verbose", "2", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ})
    seconds = time.perf_counter() - start
    return sorted((Path(runs_dir) / "weather").iterdir())[-1], seconds


def small_png(source: Path, target: Path, colors: int = 32) -> None:
    """Copies a plot as a palette PNG (a few colours suffice for line charts)."""
    from PIL import Image

    with Image.open(source) as image:
        image.convert("RGB").quantize(colors).save(target, optimize=True)


def row(name: str, maes: list[dict], extra: str = "") -> str:
    """A table row: per horizon the mean over seeds, then the per-seed values."""
    cells = []
    for h in maes[0]:
        values = [m[h] for m in maes]
        spread = " / ".join(f"{v:.2f}" for v in values) if len(values) > 1 else ""
        mean = statistics.mean(values)
        cells.append(f"**{mean:.2f}**" + (f" ({spread})" if spread else ""))
    return f"| {name} | " + " | ".join(cells) + f" | {extra} |"


def mean_of(maes: list[dict]) -> dict:
    """Per horizon, the mean of several models' MAEs."""
    return {h: statistics.mean(m[h] for m in maes) for h in maes[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 1, 2])
    parser.add_argument(
        "--layers",
        nargs="+",
        default=[f"{rnn}:{cell}" for rnn, cell in LAYERS],
        help="rnn:cell pairs to train (default: all four)",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the results files; a tagged run leaves docs/images alone",
    )
    args, extra = parser.parse_known_args()
    layers = [tuple(pair.split(":")) for pair in args.layers]
    rows, loads = [], []
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs_dir:
        for seed in args.seeds:
            for rnn, cell in layers:
                loads.append(os.getloadavg()[0])
                folder, wall = train(rnn, cell, seed, runs_dir, extra)
                metrics = json.loads((folder / "metrics.json").read_text())
                metrics["command_wall_seconds"] = round(wall, 1)
                rows.append({"rnn": rnn, "cell": cell, "seed": seed, **metrics})
                if len(rows) == 1 and not args.tag:
                    small_png(
                        folder / "forecast_week.png",
                        images / "weather-forecast-week.png",
                    )
    first = rows[0]
    backend, device = first["backend"], first["device"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/weather_compare.py " + " ".join(sys.argv[1:]),
        "backend": backend,
        "device": device,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_at_each_start": loads,
        "runs": rows,
    }
    tag = f"-{args.tag}" if args.tag else ""
    out = ROOT / "benchmarks" / "results" / f"weather-{backend}-{device}{tag}"
    out.with_name(out.name + ".json").write_text(json.dumps(result, indent=2) + "\n")

    horizons = [str(h) for h in first["horizons"]]
    data = first["data"]
    lines = [
        f"Weather, bundled NYC 2013 observations, test split from "
        f"{data['test_from']} UTC ({data['windows_test']:,} windows x 3 stations), "
        f"default config, {backend} backend, {device} ({result['cpu']}, "
        f"{result['cores']} cores, 1-min load average {min(loads):.1f}-"
        f"{max(loads):.1f} at the starts), {result['date']}, seeds "
        f"{', '.join(map(str, args.seeds))}.",
        "",
        "| model | " + " | ".join(f"+{h} h MAE (°C)" for h in horizons)
        + " | fit / whole command per run (s) |",
        "|---|" + "---|" * len(horizons) + "---|",
    ]  # fmt: skip
    mean_maes = {}
    for name in BASELINES:
        maes = [first["test_mae"][name]]
        lines.append(row(name, maes, "—"))
        mean_maes[name] = [maes[0][h] for h in horizons]
    for rnn, cell in layers:
        runs = [r for r in rows if (r["rnn"], r["cell"]) == (rnn, cell)]
        label = f"{NAMES[cell]}.{rnn.upper()}"
        maes = [r["test_mae"][r["model"]] for r in runs]
        seconds = " / ".join(
            f"{r['train_seconds_this_session']:.0f}/{r['command_wall_seconds']:.0f}"
            for r in runs
        )
        lines.append(row(label, maes, seconds))
        mean_maes[label] = [statistics.mean(m[h] for m in maes) for h in horizons]
        singles = [m["test_mae"] for r in runs for m in r["members"]]
        if len(singles) > len(runs):  # ensembles: also the members on their own
            lines.append(
                row(
                    f"{label}, one member",
                    [mean_of(singles)],
                    f"{len(singles)} members",
                )
            )
    members = len(first["members"])
    lines += [
        "",
        "Bold: mean over seeds (per seed in brackets). Baselines are deterministic. "
        f"Each run is an ensemble of {members} networks (`--members`, seeds "
        f"seed, seed+1000, ..., seed+{1000 * (members - 1)}); "
        "'one member' is the mean MAE of those members scored on their own.",
        f"Command: `{result['command']}`",
    ]
    out.with_name(out.name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.tag:
        return
    with tempfile.TemporaryDirectory() as tmp:
        chart = plots.mae_by_horizon(
            Path(tmp) / "mae.png",
            [int(h) for h in horizons],
            mean_maes,
            "NYC 2013 test split, mean over seeds",
        )
        small_png(chart, images / "weather-mae-by-horizon.png")


if __name__ == "__main__":
    main()
