"""`python -m keras_lstm`: check, on this machine, that our layers equal Keras'.

Builds each of our layers next to the Keras built-in, copies random weights
across, runs both on random padded sequences (with a mask) and prints the largest
difference of outputs and states. Exits non-zero if any exceeds 1e-5.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402

CASES = [
    ("LSTM", keras_lstm.LSTM, keras.layers.LSTM, {}),
    ("LSTM go_backwards", keras_lstm.LSTM, keras.layers.LSTM, {"go_backwards": True}),
    ("GRU reset_after=True", keras_lstm.GRU, keras.layers.GRU, {}),
    ("GRU reset_after=False", keras_lstm.GRU, keras.layers.GRU, {"reset_after": False}),
]


def max_difference(ours_cls, builtin_cls, options, x, mask) -> float:
    kwargs = dict(return_sequences=True, return_state=True, **options)
    ours, builtin = ours_cls(16, **kwargs), builtin_cls(16, **kwargs)
    ours.build(x.shape)
    builtin.build(x.shape)
    rng = np.random.default_rng(0)
    ours.set_weights([0.5 * rng.standard_normal(w.shape) for w in ours.get_weights()])
    builtin.set_weights(ours.get_weights())
    pairs = zip(ours(x, mask=mask), builtin(x, mask=mask))
    return max(
        float(
            np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()
        )
        for a, b in pairs
    )


def main() -> int:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 30, 12)).astype("float32")
    lengths = rng.integers(1, 31, size=8)
    mask = np.arange(30)[None, :] < lengths[:, None]  # right-padded rows
    print(
        f"keras_lstm {keras_lstm.__version__} · Keras {keras.__version__} · "
        f"backend {keras.backend.backend()}"
    )
    print(f"{'layer':<24}{'max |ours - keras|':>20}")
    worst = 0.0
    for name, ours_cls, builtin_cls, options in CASES:
        diff = max_difference(ours_cls, builtin_cls, options, x, mask)
        worst = max(worst, diff)
        print(f"{name:<24}{diff:>20.2e}")
    ok = worst <= 1e-5
    print("OK: equal within 1e-5" if ok else "MISMATCH: above 1e-5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
