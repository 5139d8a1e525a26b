"""GFLOP/s of the matmuls in a char-gen LSTM training step (64 x 100 steps,
256 features, 1024 units), TensorFlow against PyTorch on this CPU (NOTES
section 23).

    python -u benchmarks/matmul_rates.py

Each shape m x k · k x n is timed for both libraries, twice, alternating; the
last row is the weight gradients in the layout `tf_bptt` uses (section 22).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

SHAPES = {
    "h·U, per step": (64, 1024, 4096),
    "[x_t, h]·[W; U], per step": (64, 1280, 4096),
    "dz·Uᵀ, per step backwards": (64, 4096, 1024),
    "projection of all steps": (6400, 256, 4096),
    "weight gradients, [x, h]ᵀ·dz": (1280, 6400, 4096),
}


def rate(fn, flops):
    """GFLOP/s of `fn` over about 20 GFLOP, after one warm-up call."""
    fn()
    calls = max(1, int(2e10 / flops))
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return flops * calls / (time.perf_counter() - start) / 1e9


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    for role, (m, k, n) in SHAPES.items():
        a = rng.random((m, k), np.float32)
        b = rng.random((k, n), np.float32)
        tf_a, tf_b = tf.constant(a), tf.constant(b)
        tf_mm = tf.function(lambda: tf.reduce_sum(tf.matmul(tf_a, tf_b)))
        torch_a, torch_b = torch.from_numpy(a), torch.from_numpy(b)
        rates = {"tensorflow": [], "torch": []}
        for _ in range(2):
            rates["tensorflow"].append(rate(lambda: tf_mm().numpy(), 2 * m * k * n))
            rates["torch"].append(
                rate(lambda: torch.mm(torch_a, torch_b).sum().item(), 2 * m * k * n)
            )
        print(f"{role:32s} {m} x {k} · {k} x {n}", rates_text(rates), flush=True)
    # As tf_bptt computes the weight gradients: (dzᵀ·[x, h_{t-1}])ᵀ.
    d_z = tf.constant(rng.random((6400, 4096), np.float32))
    x_h = tf.constant(rng.random((6400, 1280), np.float32))
    engine = tf.function(lambda: tf.reduce_sum(tf.matmul(d_z, x_h, transpose_a=True)))
    flops = 2 * 6400 * 4096 * 1280
    engine_rates = [rate(lambda: engine().numpy(), flops) for _ in range(2)]
    print(
        f"{'weight gradients, dzᵀ·[x, h]':32s} as tf_bptt",
        rates_text({"tensorflow": engine_rates}),
    )


def rates_text(rates):
    return "; ".join(
        f"{name} {', '.join(f'{r:.0f}' for r in runs)} GFLOP/s"
        for name, runs in rates.items()
    )


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()  # no options; --help prints the docstring instead of running
    main()
