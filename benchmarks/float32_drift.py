"""How far float32 rounding carries our layers and the built-ins from the
exact (float64) result, on a well-conditioned and an ill-conditioned network.

    KERAS_BACKEND=tensorflow python benchmarks/float32_drift.py

Same random weights (N(0, scale²)) in `keras_lstm.LSTM` / `GRU` and
`keras.layers.LSTM` / `GRU` (float32), and in a float64 built-in: the
reference. With scale 0.1 the recurrence contracts and every difference
stays at rounding level; with scale 0.5 (64 units) the GRU's recurrence
amplifies a difference in the last bit over 100 steps, so two float32
computations of the same equations part by far more than 1e-5, and neither
is the exact one. A third column moves one input by one float32 step in
the built-in alone: how sensitive the network is. On JAX the float64
columns are left out: Keras computes `ops.tanh` of float64 in float32 there
(a 4e-4 error in the reference at scale 0.5). Writes
`benchmarks/results/float32-drift-<backend>.json` and `.md`.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"
CASES = [("LSTM", 0.1), ("GRU", 0.1), ("LSTM", 0.5), ("GRU", 0.5)]
UNITS, STEPS, FEATURES, BATCH = 64, 100, 8, 4


def numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def drift(values: np.ndarray, reference: np.ndarray | None) -> float | None:
    return None if reference is None else float(np.abs(values - reference).max())


def cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def measure(kind: str, scale: float) -> dict:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    builtin = getattr(keras.layers, kind)(UNITS, return_sequences=True)
    ours = getattr(keras_lstm, kind)(UNITS, return_sequences=True)
    for layer in (builtin, ours):
        layer.build(x.shape)
    weights = [
        (scale * rng.standard_normal(w.shape)).astype("float32")
        for w in builtin.get_weights()
    ]
    builtin.set_weights(weights)
    ours.set_weights(weights)
    theirs, mine = numpy(builtin(x)), numpy(ours(x))
    reference = None
    if keras.backend.backend() != "jax":
        exact = getattr(keras.layers, kind)(
            UNITS, return_sequences=True, dtype="float64"
        )
        exact.build(x.shape)
        exact.set_weights([w.astype("float64") for w in weights])
        reference = numpy(exact(x.astype("float64")))
    nudged = x.copy()
    nudged[0, 0, 0] = np.nextafter(nudged[0, 0, 0], np.float32(np.inf))
    return {
        "layer": kind,
        "weight_scale": scale,
        "ours_vs_builtin": float(np.abs(mine - theirs).max()),
        "ours_vs_float64": drift(mine, reference),
        "builtin_vs_float64": drift(theirs, reference),
        "builtin_one_ulp_input_change": float(
            np.abs(numpy(builtin(nudged)) - theirs).max()
        ),
    }


def main() -> None:
    backend = keras.backend.backend()
    rows = [measure(kind, scale) for kind, scale in CASES]
    lines = [
        f"backend {backend}; {UNITS} units, {STEPS} steps, batch {BATCH}, "
        f"{FEATURES} features; max abs difference over every output",
        "",
        "| layer | weight scale | ours vs built-in | ours vs float64 | "
        "built-in vs float64 | built-in, one input 1 ulp off |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layer']} | {r['weight_scale']} | {cell(r['ours_vs_builtin'])} | "
            f"{cell(r['ours_vs_float64'])} | {cell(r['builtin_vs_float64'])} | "
            f"{cell(r['builtin_one_ulp_input_change'])} |"
        )
    lines.append("")
    lines.append(
        f"Command: `KERAS_BACKEND={backend} python benchmarks/float32_drift.py`"
    )
    table = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"float32-drift-{backend}"
    stem.with_suffix(".json").write_text(
        json.dumps(
            {"backend": backend, "keras": keras.__version__, "rows": rows}, indent=1
        )
        + "\n"
    )
    stem.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
