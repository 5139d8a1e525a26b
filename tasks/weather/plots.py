"""Weather plots: forecasts against observations, and MAE by horizon."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tasks.common.plots import save_png  # noqa: E402


def forecast_week(
    path: str | Path,
    target_hours: np.ndarray,
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    horizons: list[int],
    title: str,
) -> Path:
    """One panel per horizon: observed temperature and each model's forecast.

    Args:
        target_hours: (windows, horizons) hour (since the epoch) each forecast is for.
        actual: (windows, horizons) the observed temperature at that hour.
        forecasts: model name -> (windows, horizons) forecasts.
    """
    fig, axes = plt.subplots(len(horizons), 1, figsize=(8, 2.2 * len(horizons)))
    axes = np.atleast_1d(axes)
    for k, (ax, h) in enumerate(zip(axes, horizons)):
        days = (target_hours[:, k] - target_hours[0, 0]) / 24
        ax.plot(days, actual[:, k], color="black", lw=1.5, label="observed")
        for name, values in forecasts.items():
            ax.plot(days, values[:, k], lw=1, label=name)
        ax.set_ylabel(f"+{h} h, °C")
        ax.grid(alpha=0.3)
    axes[0].set_title(title, fontsize=10)
    axes[0].legend(fontsize=8, ncol=len(forecasts) + 1)
    axes[-1].set_xlabel("days into the test week")
    fig.tight_layout()
    return save_png(fig, path, dpi=80)


def mae_by_horizon(
    path: str | Path, horizons: list[int], maes: dict[str, list[float]], title: str
) -> Path:
    """Test MAE (°C) against the forecast horizon, one line per model."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in maes.items():
        ax.plot(horizons, values, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(horizons, [f"{h} h" for h in horizons])
    ax.minorticks_off()
    ax.set_xlabel("forecast horizon")
    ax.set_ylabel("test MAE (°C)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=80)


def write_run_plots(
    folder: str | Path,
    issued_hours: np.ndarray,
    stats: dict,
    forecasts: dict[str, np.ndarray],
    actual: np.ndarray,
    maes: dict[str, list[float]],
    model_name: str,
    dataset: str,
) -> list[Path]:
    """A run's forecast_week.png (first 168 test windows, first station) and
    mae_by_horizon.png (every model).

    Args:
        issued_hours: hour of the last input of each test window.
        forecasts, actual: (windows, horizons, stations) in degC.
    """
    horizons, week = stats["horizons"], slice(0, 7 * 24)
    start = str(np.datetime64(int(issued_hours[0]), "h")).replace("T", " ")
    shown = ("persistence", model_name)
    return [
        forecast_week(
            Path(folder) / "forecast_week.png",
            issued_hours[week, None] + np.array(horizons),
            actual[week, :, 0],
            {name: forecasts[name][week, :, 0] for name in shown},
            horizons,
            f"{stats['stations'][0]}, test week from {start}:00 UTC",
        ),
        mae_by_horizon(
            Path(folder) / "mae_by_horizon.png", horizons, maes, f"{dataset} test"
        ),
    ]
