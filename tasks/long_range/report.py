"""The adding-problem report: results table, learning curves, gradient flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import keras_lstm
from tasks.common.plots import save_png

CONSTANT_GUESS_MSE = 2 / 12
LABELS = {
    "simple_rnn": "SimpleRNN",
    "lstm": "our LSTM",
    "gru": "our GRU",
    "keras_lstm": "keras LSTM",
    "keras_gru": "keras GRU",
}


def _solved(result: dict) -> str:
    """Steps to solve, or the steps run (fewer than the budget where early
    stopping or a NaN loss ended the run)."""
    if result["steps_to_solve"] is not None:
        return f"{result['steps_to_solve']} steps"
    return f"not solved in {result['steps_run']}"


def summary_line(result: dict, threshold: float) -> str:
    """One line per finished run, printed as the grid goes."""
    return (
        f"T={result['length']} {result['model']}: test MSE "
        f"{result['test_mse']:.4f}, {_solved(result)} (val MSE < {threshold}), "
        f"{result['train_seconds_this_session']} s"
    )


def results_table(results: list[dict], config) -> str:
    """Markdown: one row per model, one column per T; each cell holds the test
    MSE and the training steps until the validation MSE fell below
    `config.solved_mse`."""
    budget = config.epochs * config.steps_per_epoch
    lengths = sorted({r["length"] for r in results})
    models = list(dict.fromkeys(r["model"] for r in results))
    cells = {(r["model"], r["length"]): r for r in results}
    header = ["model (units, parameters)"] + [f"T={t}" for t in lengths]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(lengths) + "|"]
    for name in models:
        first = next(r for r in results if r["model"] == name)
        row = [f"{LABELS[name]} ({first['units']}, {first['parameters']})"]
        for length in lengths:
            r = cells.get((name, length))
            row.append("" if r is None else f"{r['test_mse']:.4f} · {_solved(r)}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append(
        f"\nTest MSE ({config.test_size} unseen sequences; guessing the mean "
        f"scores {CONSTANT_GUESS_MSE:.3f}) · training steps (batches of "
        f"{config.batch_size}) until the validation MSE < {config.solved_mse}, "
        f"checked every {config.steps_per_epoch} steps; budget {budget} steps."
    )
    return "\n".join(lines)


def plot_curves(results: list[dict], config, path: Path) -> Path:
    """Validation MSE against training steps, one panel per T."""
    lengths = sorted({r["length"] for r in results})
    fig = Figure(figsize=(3.6 * len(lengths), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(lengths), sharey=True))
    for ax, length in zip(axes, lengths):
        for r in (r for r in results if r["length"] == length):
            steps = config.steps_per_epoch * np.arange(1, len(r["val_mse"]) + 1)
            builtin = r["model"].startswith("keras_")  # drawn over ours, dashed
            ax.semilogy(
                steps,
                r["val_mse"],
                "x--" if builtin else ".-",
                label=LABELS[r["model"]],
            )
        ax.axhline(CONSTANT_GUESS_MSE, color="gray", ls="--", lw=1)
        ax.axhline(config.solved_mse, color="gray", ls=":", lw=1)
        ax.set_title(f"T = {length}")
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation MSE")
    axes[-1].legend(fontsize="small")
    return save_png(fig, path, dpi=90)


def plot_gradient_flow(results: list[dict], length: int, out_dir: Path) -> Path | None:
    """||dL/dx_t|| of SimpleRNN and our LSTM at `length`, before and after training."""
    curves = {}
    for r in results:
        if r["length"] == length and r["model"] in ("simple_rnn", "lstm"):
            label = LABELS[r["model"]]
            init = "chrono " if r.get("init") == "chrono" else ""
            curves[f"{label}, {init}initialisation"] = r["gradient_norms_init"]
            curves[f"{label}, trained"] = r["gradient_norms_trained"]
            if "gradient_norms_keras_init" in r:
                keras_init = r["gradient_norms_keras_init"]
                curves[f"{label}, Keras default initialisation"] = keras_init
    if not curves:
        return None
    path = Path(out_dir) / f"gradient_flow_T{length}.png"
    keras_lstm.plot_gradient_norms(
        curves, str(path), title=f"Gradient reaching each input step, T = {length}"
    )
    return path
