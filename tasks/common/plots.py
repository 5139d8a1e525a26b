"""Training-curve plots from a run's history.csv (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tasks.common.runs import atomic_path  # noqa: E402


def save_png(fig, path: str | Path, dpi: int) -> Path:
    """Writes `fig` to `path` as PNG through a temporary sibling renamed into
    place (a failed or killed write keeps the previous file), and closes it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def read_history(path: str | Path) -> dict[str, list[float]]:
    """Columns of a Keras CSVLogger file, as float lists keyed by metric name."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


def plot_history(history_csv: str | Path, out_dir: str | Path) -> list[Path]:
    """One PNG per metric (training and validation curves): loss.png, accuracy.png..."""
    history = read_history(history_csv)
    epochs = [int(e) + 1 for e in history.pop("epoch", [])]
    written = []
    for name in sorted(k for k in history if not k.startswith("val_")):
        if name in ("learning_rate", "epoch_seconds"):
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        written.append(save_png(fig, Path(out_dir) / f"{name}.png", dpi=100))
    return written
