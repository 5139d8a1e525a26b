"""Shared helpers of the layer tests: pairs of layers, weights, gradients."""

from __future__ import annotations

import contextlib

import keras
import numpy as np

import keras_lstm

BACKEND = keras.backend.backend()
OURS = {"lstm": keras_lstm.LSTM, "gru": keras_lstm.GRU}
BUILTIN = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
ATOL = 1e-5  # float32 agreement required by the project (DESIGN.md)


def pair(kind: str, units: int = 4, **kwargs):
    """Our layer and the Keras built-in with the same arguments."""
    return OURS[kind](units, **kwargs), BUILTIN[kind](units, **kwargs)


def randomize(layer, seed: int = 0, scale: float = 0.5) -> list[np.ndarray]:
    """Gives a built layer random weights (not the initializers') and returns them."""
    rng = np.random.default_rng(seed)
    weights = [
        (scale * rng.standard_normal(w.shape)).astype(w.dtype)
        for w in layer.get_weights()
    ]
    layer.set_weights(weights)
    return weights


def copy_weights(src, dst) -> None:
    dst.set_weights(src.get_weights())


def share_random_weights(ours, builtin, input_shape) -> None:
    """Builds both layers, gives ours random weights and copies them across."""
    ours.build(input_shape)
    builtin.build(input_shape)
    randomize(ours)
    copy_weights(ours, builtin)


def numpy(x):
    """Nested outputs as a flat list of numpy arrays."""
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(x)]


def assert_all_close(actual, expected, atol: float = ATOL) -> None:
    actual, expected = numpy(actual), numpy(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=0, atol=atol)


def value_and_grad(fn, arrays):
    """Returns fn(*arrays) and d fn / d arrays, with the backend's own autodiff.

    `fn` maps backend tensors to a scalar tensor; `arrays` are numpy arrays.
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
    elif BACKEND == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))))(
            *arrays
        )
    elif BACKEND == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors)
        value = value.detach()
    else:
        raise NotImplementedError(BACKEND)
    return float(keras.ops.convert_to_numpy(value)), [
        keras.ops.convert_to_numpy(g) for g in grads
    ]


def float64_enabled():
    """A context in which float64 computes in float64 (JAX needs x64 switched on)."""
    if BACKEND == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def compiled(fn):
    """fn compiled once where the backend allows it (fast repeated evaluation)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn
