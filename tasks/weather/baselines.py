"""Baselines on the very windows the networks are tested on (all in degC).

- persistence: every horizon gets the last observed temperature;
- seasonal naive: the temperature at the same hour of the last day before the
  forecast time (t + h - 24 for h <= 24), which the input window holds;
- linear: ridge regression from the whole flattened input window to the
  changes from the last temperature, the ridge strength picked on validation.
"""

from __future__ import annotations

import math

import numpy as np

from tasks.weather.data import Windows

DAY = 24
RIDGE_STRENGTHS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def persistence(temps: np.ndarray, anchors: np.ndarray, horizons: list[int]):
    """(windows, horizons, stations): the temperature at t for every horizon."""
    return np.stack([temps[anchors] for _ in horizons], axis=1)


def seasonal_lag(horizon: int, period: int = DAY) -> int:
    """How far back from t the seasonal naive forecast for t+horizon looks."""
    return period * math.ceil(horizon / period) - horizon


def seasonal_naive(
    temps: np.ndarray, anchors: np.ndarray, horizons: list[int], period: int = DAY
) -> np.ndarray:
    """(windows, horizons, stations): the temperature one period before t+h."""
    return np.stack([temps[anchors - seasonal_lag(h, period)] for h in horizons], 1)


def mae_by_horizon(forecast: np.ndarray, actual: np.ndarray) -> list[float]:
    """Mean absolute error per horizon, over windows and stations."""
    return [float(v) for v in np.mean(np.abs(forecast - actual), axis=(0, 2))]


class Ridge:
    """Closed-form ridge regression on flattened windows (inputs + intercept)."""

    def __init__(self, weights: np.ndarray, strength: float):
        self.weights, self.strength = weights, strength

    def predict(self, windows: Windows, chunk: int = 2048) -> np.ndarray:
        parts = [
            _design(windows[r]) @ self.weights for r in _chunks(len(windows), chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.weights.shape[1]))


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


def _design(batch: np.ndarray) -> np.ndarray:
    flat = batch.reshape(len(batch), -1).astype("float64")
    return np.concatenate([flat, np.ones((len(batch), 1))], axis=1)


def normal_equations(windows: Windows, targets: np.ndarray, chunk: int = 2048):
    """A^T A and A^T y over all windows, accumulated chunk by chunk."""
    size = windows.x.shape[1] * len(windows.offsets) + 1
    gram, moment = np.zeros((size, size)), np.zeros((size, targets.shape[1]))
    for rows in _chunks(len(windows), chunk):
        a = _design(windows[rows])
        gram += a.T @ a
        moment += a.T @ targets[rows]
    return gram, moment


def fit_linear(
    train: tuple[Windows, np.ndarray], validation: tuple[Windows, np.ndarray]
) -> tuple[Ridge, dict[float, float]]:
    """The ridge model with the lowest validation MAE, and each strength's MAE."""
    gram, moment = normal_equations(*train)
    penalty = np.eye(len(gram))
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    scores, best = {}, None
    for strength in RIDGE_STRENGTHS:
        model = Ridge(np.linalg.solve(gram + strength * penalty, moment), strength)
        error = model.predict(validation[0]) - validation[1]
        scores[strength] = float(np.mean(np.abs(error)))
        if best is None or scores[strength] < scores[best.strength]:
            best = model
    return best, scores
