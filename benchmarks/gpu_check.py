"""How far apart, on this device, are our layer's fast path, our reference cell
(use_cudnn=False) and the Keras built-in? Prints one JSON line per layer.

Used by benchmarks/gpu_bench.sh on a GPU machine, where no test runner may be
installed. On GPUs the three may differ by more than the CPU tests' 1e-5: cuDNN
and XLA use TF32 matmuls for float32 by default on Ampere and later, so expect
about 1e-3 there; this script reports, it does not assert.

    KERAS_BACKEND=torch python benchmarks/gpu_check.py
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lstm  # noqa: E402
from keras_lstm import fused  # noqa: E402

PAIRS = {
    "lstm": (keras_lstm.LSTM, keras.layers.LSTM),
    "gru": (keras_lstm.GRU, keras.layers.GRU),
}


def max_diff(a, b) -> float:
    return max(
        float(
            np.max(
                np.abs(keras.ops.convert_to_numpy(x) - keras.ops.convert_to_numpy(y))
            )
        )
        for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b))
    )


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 50, 16)).astype("float32")
    for kind, (ours_cls, builtin_cls) in PAIRS.items():
        kwargs = {"return_sequences": True, "return_state": True}
        fast = ours_cls(32, **kwargs)
        reference = ours_cls(32, use_cudnn=False, **kwargs)
        # The plain cell in Keras' loop: on a jax GPU "auto" would hoist the
        # input projection in both, and compare that path with itself.
        reference.hoist_input_projection = False
        builtin = builtin_cls(32, **kwargs)
        for layer in (fast, reference, builtin):
            layer.build(x.shape)
        weights = [
            0.3 * rng.standard_normal(w.shape).astype("float32")
            for w in fast.get_weights()
        ]
        for layer in (fast, reference, builtin):
            layer.set_weights(weights)
        engaged = (
            fused.select(fast, keras.ops.convert_to_tensor(x), None, False) is not None
        )
        out = {layer: layer(x) for layer in (fast, reference, builtin)}
        print(
            json.dumps(
                {
                    "check": kind,
                    "backend": keras.backend.backend(),
                    "fast_path_engaged": engaged,
                    "fast_vs_reference": max_diff(out[fast], out[reference]),
                    "fast_vs_builtin": max_diff(out[fast], out[builtin]),
                    "reference_vs_builtin": max_diff(out[reference], out[builtin]),
                }
            ),
            flush=True,
        )


def check_pallas() -> None:
    """jax only: the opt-in Pallas kernels (compiled with Triton on a GPU) vs our
    reference cell, outputs and the gradients of a loss in every argument."""
    import jax
    import jax.numpy as jnp

    from keras_lstm.fused import jax_pallas

    rng = np.random.default_rng(1)
    layer = keras_lstm.LSTM(
        64, return_sequences=True, return_state=True, use_cudnn=False
    )
    x = rng.standard_normal((32, 50, 16)).astype("float32")
    h0, c0 = 0.5 * rng.standard_normal((2, 32, 64)).astype("float32")
    layer.build(x.shape)
    weights = [0.3 * rng.standard_normal(w.shape).astype("float32")
               for w in layer.get_weights()]  # fmt: skip
    constants = [v.value for v in layer.non_trainable_variables]

    def reference(x, h0, c0, *trainable):
        out, _ = layer.stateless_call(
            list(trainable), constants, x, initial_state=[h0, c0]
        )
        return tuple(out)

    def loss(fn):
        return lambda *a: sum(jnp.sum(jnp.sin(t)) for t in fn(*a))

    args = (x, h0, c0, *weights)
    report = {"check": "pallas_lstm", "backend": "jax", "device": jax.default_backend()}
    try:
        grads = [
            jax.jit(jax.grad(loss(fn), argnums=tuple(range(6))))(*args)
            for fn in (jax_pallas.lstm_sequence, reference)
        ]
        report["outputs_vs_reference"] = max_diff(
            jax_pallas.lstm_sequence(*args), reference(*args)
        )
        report["gradients_vs_reference"] = max_diff(*grads)
        report["largest_reference_gradient"] = max(
            float(jnp.max(jnp.abs(g))) for g in grads[1]
        )
    except Exception as error:  # noqa: BLE001 - report, let the benchmark go on
        report["error"] = f"{type(error).__name__}: {str(error)[:2000]}"
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
    if keras.backend.backend() == "jax":
        check_pallas()
