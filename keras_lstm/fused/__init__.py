"""Fast paths for `use_cudnn="auto"`: the same LSTM/GRU, run by a faster engine.

The keras.ops cells (`keras_lstm.LSTMCell`, `keras_lstm.GRUCell`) are the
reference. When a layer's configuration allows it, `RecurrentLayer.inner_loop`
hands the whole sequence to one of these engines instead of Keras' generic loop;
the tests (`tests/layers/test_fast_paths.py` and every equivalence test) check
that the results equal the reference and the built-ins within 1e-5.

- torch backend (CPU and CUDA): PyTorch's own fused recurrent kernels,
  `torch._VF.lstm` / `torch._VF.gru` (what `torch.nn.LSTM` / `nn.GRU` run:
  a C++ loop on CPU, cuDNN on CUDA), for unmasked sequences.
- tensorflow backend, CPU, inference, up to 256 units: the reference loop
  compiled with XLA (`tf.function(jit_compile=True)`), masks allowed
  (`tf_xla`); training, LSTM, no mask or dropout, a fixed batch of at most
  4096 batch x units or, from 256 units, any batch of at most 512 rows:
  hand-written BPTT in two XLA loops (plain graph loops from 1024 units;
  `tf_bptt`).
- jax backend, GPU, LSTM, opt-in with `KERAS_LSTM_PALLAS=1` until measured on a
  GPU: persistent Pallas (Triton) kernels for the forward and backward loops
  (`jax_pallas`).

Engines that need a backend's own API live in the modules of this subpackage
and are imported only when that backend is active, so `import keras_lstm` still
imports no backend (see benchmarks/NOTES.md for the trade-off).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib

import keras
from keras import ops

__all__ = ["disabled", "select"]

_disabled = contextvars.ContextVar("keras_lstm_fused_disabled", default=False)

_ENGINES = {
    "torch": "keras_lstm.fused.torch_vf",
    "tensorflow": "keras_lstm.fused.tf_xla",
    "jax": "keras_lstm.fused.jax_pallas",
}


def default_activations(cell) -> bool:
    """tanh and sigmoid, the only activations the fused kernels implement."""
    return cell.activation in (
        keras.activations.tanh,
        ops.tanh,
    ) and cell.recurrent_activation in (keras.activations.sigmoid, ops.sigmoid)


@contextlib.contextmanager
def disabled():
    """While active, `use_cudnn="auto"` layers trace and run the reference loop.

    For graphs that leave this process: the TensorFlow inference engine is an
    XLA-compiled function, which a SavedModel keeps as such, and TF Serving
    runs XLA:CPU only behind an experimental flag (`--xla_cpu_compilation_enabled`).
    `keras_lstm.export` uses this; wrap Keras' own `model.export` in it too:

    ```python
    with keras_lstm.fused.disabled():
        model.export("serving")  # the same graph as keras.layers.LSTM's
    ```

    It applies to this thread (and context) only, so not to the replica
    threads of a `tf.distribute` strategy's `run`, and to what is traced or
    run inside the block: a `tf.function` traced before it (e.g. a model's
    `predict_function`) keeps its engines, and one traced inside keeps the
    reference loop afterwards.
    """
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def select(layer, sequences, mask, training):
    """A function `(sequences, initial_state, mask) -> (last, outputs, states)`
    for this call, or None when the reference loop must run."""
    if _disabled.get() or layer.use_cudnn != "auto" or layer.unroll:
        return None
    module = _ENGINES.get(keras.backend.backend())
    if module is None:
        return None
    return importlib.import_module(module).select(layer, sequences, mask, training)
