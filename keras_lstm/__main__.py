"""`python -m keras_lstm`: check, on this machine, that our layers equal Keras'.

Builds each of our layers next to the Keras built-in, copies random weights
across, runs both on random padded sequences (with a mask) and prints the largest
difference of outputs and states. Exits non-zero if any exceeds 1e-5. The
backend is KERAS_BACKEND's (tensorflow by default).
"""

from __future__ import annotations

import argparse
import os
import sys

CASES = [
    ("LSTM", "LSTM", {}),
    ("LSTM go_backwards", "LSTM", {"go_backwards": True}),
    ("GRU reset_after=True", "GRU", {}),
    ("GRU reset_after=False", "GRU", {"reset_after": False}),
]


def max_difference(name: str, options: dict, x, mask) -> float:
    import keras
    import numpy as np

    import keras_lstm

    kwargs = dict(return_sequences=True, return_state=True, **options)
    ours = getattr(keras_lstm, name)(16, **kwargs)
    builtin = getattr(keras.layers, name)(16, **kwargs)
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


def main(argv: list[str] | None = None) -> int:
    # Options first, so that --help answers before TensorFlow's import.
    argparse.ArgumentParser(
        prog="python -m keras_lstm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    import keras_lstm

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
    for name, layer, options in CASES:
        diff = max_difference(layer, options, x, mask)
        worst = max(worst, diff)
        print(f"{name:<24}{diff:>20.2e}")
    ok = worst <= 1e-5
    print("OK: equal within 1e-5" if ok else "MISMATCH: above 1e-5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
