"""torch backend: PyTorch's fused LSTM/GRU kernels (`torch._VF.lstm` / `gru`).

These are the kernels behind `torch.nn.LSTM` / `nn.GRU`: on a CPU a C++ loop
that projects all timesteps' inputs in one matmul, on CUDA cuDNN. Keras' generic
loop instead runs one Python iteration per timestep. Gradients flow to our
variables through torch's autograd, as for the built-in's cuDNN path.

Engaged for: no mask, not unrolled, tanh/sigmoid, float32/float64 (variables and
computation in the same dtype), no recurrent dropout (input dropout is applied to
the sequence first, with the cell's own mask, unless `implementation == 1`), GRU
with `reset_after=True` (PyTorch's convention), not while torch.compile /
torch.jit trace, and not under `torch.func` transforms or forward-mode AD
(`transformed`).
"""

from __future__ import annotations

import torch
from keras import ops

from keras_lstm.fused import default_activations
from keras_lstm.recurrent import drops

_DTYPES = ("float32", "float64")


def select(layer, sequences, mask, training):
    cell = layer.cell
    if mask is not None or not default_activations(cell):
        return None
    if cell.compute_dtype not in _DTYPES or cell.variable_dtype != cell.compute_dtype:
        return None
    if training and drops(cell.recurrent_dropout):
        return None
    if training and drops(cell.dropout) and cell.implementation == 1:
        return None
    if getattr(cell, "reset_after", True) is False:
        return None
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return None
    kind = "gru" if hasattr(cell, "reset_after") else "lstm"

    def run(sequences, initial_state, mask):
        variables = [cell.kernel, cell.recurrent_kernel]
        variables += [cell.bias] if cell.use_bias else []
        weights = [ops.convert_to_tensor(v) for v in variables]
        if transformed([sequences, *initial_state, *weights]):
            return layer.reference_loop(sequences, initial_state, mask, training)
        if layer.stateful:
            # As the reference loop does: the state variables are assigned in
            # place after the call, which autograd must not see.
            initial_state = [ops.copy(s) for s in initial_state]
        if training and drops(cell.dropout):
            dp_mask = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(dp_mask, 1)
        if layer.go_backwards:
            sequences = torch.flip(sequences, dims=[1])
        fused = _lstm if kind == "lstm" else _gru
        return fused(cell, weights, sequences, initial_state, layer.return_sequences)

    return run


def transformed(tensors) -> bool:
    """Whether a `torch.func` transform (vmap, grad, jvp, jacfwd) or forward-mode
    AD wraps any of `tensors`: the fused kernels have no batching rule and, on a
    CPU (mkldnn), no forward derivative, so the reference loop runs instead."""
    for tensor in tensors:
        if not isinstance(tensor, torch.Tensor):
            continue
        if torch._C._functorch.is_functorch_wrapped_tensor(tensor):
            return True
        if torch.autograd.forward_ad.unpack_dual(tensor).tangent is not None:
            return True
    return False


def _finish(outputs, states, return_sequences):
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, states


def _lstm(cell, weights, sequences, initial_state, return_sequences):
    """`weights`: the cell's `kernel`, `recurrent_kernel` (and `bias`) as tensors."""
    kernel, recurrent_kernel = weights[:2]
    # Keras' gate order i, f, c, o is PyTorch's i, f, g, o: only transpose.
    params = [kernel.T.contiguous(), recurrent_kernel.T.contiguous()]
    if cell.use_bias:
        bias = weights[2]
        params += [bias, torch.zeros_like(bias)]
    h0, c0 = (ops.convert_to_tensor(s).unsqueeze(0) for s in initial_state)
    outputs, h_n, c_n = torch._VF.lstm(
        sequences,
        (h0, c0),
        params,
        cell.use_bias,  # has_biases
        1,  # num_layers
        0.0,  # dropout between layers
        torch.is_grad_enabled(),  # train (cuDNN keeps what backward needs)
        False,  # bidirectional
        True,  # batch_first
    )
    return _finish(outputs, [h_n[0], c_n[0]], return_sequences)


def _to_rzn(weight, dim):
    """Keras' GRU gate blocks z, r, h to PyTorch's r, z, n."""
    z, r, h = torch.chunk(weight, 3, dim=dim)
    return torch.cat([r, z, h], dim=dim)


def _gru(cell, weights, sequences, initial_state, return_sequences):
    kernel, recurrent_kernel = weights[:2]
    params = [
        _to_rzn(kernel, 1).T.contiguous(),
        _to_rzn(recurrent_kernel, 1).T.contiguous(),
    ]
    if cell.use_bias:
        bias = weights[2]  # (2, 3·units): input, recurrent
        params += [_to_rzn(bias[0], 0), _to_rzn(bias[1], 0)]
    h0 = ops.convert_to_tensor(initial_state[0]).unsqueeze(0)
    outputs, h_n = torch._VF.gru(
        sequences,
        h0,
        params,
        cell.use_bias,
        1,
        0.0,
        torch.is_grad_enabled(),
        False,
        True,
    )
    return _finish(outputs, [h_n[0]], return_sequences)
