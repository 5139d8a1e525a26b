"""Move trained `torch.nn.LSTM` / `torch.nn.GRU` weights into keras_lstm layers.

PyTorch is an independent implementation of the same equations, so converting its
weights and comparing outputs checks our cells against a second reference. torch is
never imported here: the functions read the module's parameters.

Layouts (H = hidden size):
- LSTM: torch `weight_ih_l{k}` (4H, in) with gate rows i, f, g, o and two biases
  `b_ih`, `b_hh`. Keras: `kernel` (in, 4H) in the same gate order i, f, c, o and
  one bias, so kernel = W_ih^T, recurrent_kernel = W_hh^T, bias = b_ih + b_hh.
- GRU: torch gate rows r, z, n, with `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`,
  which is Keras' `reset_after=True`. Keras orders gates z, r, h and keeps both
  biases: bias = [b_ih, b_hh] (2, 3H), each reordered to z, r, h.
"""

from __future__ import annotations

import numpy as np


def _numpy(tensor) -> np.ndarray:
    # float32 in torch first: numpy has no bfloat16.
    return tensor.detach().cpu().float().numpy()


def _kind(module) -> str:
    # torch.nn.LSTM / GRU or a subclass (torch itself is not imported here).
    kinds = [
        c.__name__
        for c in type(module).__mro__
        if c.__name__ in ("LSTM", "GRU") and c.__module__.startswith("torch.nn")
    ]
    kind = kinds[0] if kinds else None
    if kind is None or not hasattr(module, "weight_ih_l0"):
        raise ValueError(
            "`module` must be a torch.nn.LSTM or torch.nn.GRU. "
            f"Received: module of type {type(module).__name__}"
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            "LSTMs with projections have no Keras equivalent. "
            f"Received: module.proj_size={module.proj_size}"
        )
    return kind


def _gru_gate_order(array: np.ndarray) -> np.ndarray:
    """torch's (r, z, n) blocks along axis 0 -> Keras' (z, r, h)."""
    r, z, n = np.split(array, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def torch_weights(module, layer: int = 0, reverse: bool = False) -> list[np.ndarray]:
    """Returns one layer/direction of a torch LSTM/GRU as `set_weights` arrays.

    Args:
        module: A `torch.nn.LSTM` or `torch.nn.GRU`.
        layer: Which stacked layer (0 = the one that sees the inputs).
        reverse: The backward direction of a bidirectional module.
    """
    kind = _kind(module)
    if not 0 <= layer < module.num_layers:
        raise ValueError(
            f"`layer` must be in [0, {module.num_layers}). Received: layer={layer}"
        )
    if reverse and not module.bidirectional:
        raise ValueError("`reverse=True` needs a bidirectional module.")
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih = _numpy(getattr(module, "weight_ih" + suffix))
    w_hh = _numpy(getattr(module, "weight_hh" + suffix))
    b_ih = _numpy(getattr(module, "bias_ih" + suffix)) if module.bias else None
    b_hh = _numpy(getattr(module, "bias_hh" + suffix)) if module.bias else None
    if kind == "LSTM":
        weights = [w_ih.T, w_hh.T]
        if module.bias:
            weights.append(b_ih + b_hh)
        return weights
    weights = [_gru_gate_order(w_ih).T, _gru_gate_order(w_hh).T]
    if module.bias:
        weights.append(np.stack([_gru_gate_order(b_ih), _gru_gate_order(b_hh)]))
    return weights


def from_torch(module, return_sequences: bool = False, return_state: bool = False):
    """Builds keras_lstm layers equal to a torch LSTM/GRU, weights copied.

    Returns a list with one Keras layer per torch layer (wrapped in
    `keras.layers.Bidirectional`, merge_mode "concat", when the module is
    bidirectional). All layers but the last return sequences; the last one uses
    `return_sequences` and `return_state`. Stack them in a `keras.Sequential`
    (or call them in turn) to get torch's output with `batch_first=True`
    layout. Dropout between torch layers is a training-time option and is not
    carried over.

    Example:

        torch_lstm = torch.nn.LSTM(8, 16, num_layers=2, batch_first=True)
        model = keras.Sequential(from_torch(torch_lstm, return_sequences=True))
    """
    import keras

    from keras_lstm.gru import GRU
    from keras_lstm.lstm import LSTM

    kind = _kind(module)
    layers = []
    features = module.input_size
    for k in range(module.num_layers):
        last = k == module.num_layers - 1
        options = dict(
            units=module.hidden_size,
            use_bias=bool(module.bias),
            return_sequences=return_sequences if last else True,
            return_state=return_state if last else False,
        )
        if kind == "LSTM":
            rnn = LSTM(**options)
        else:
            rnn = GRU(reset_after=True, **options)
        weights = torch_weights(module, k)
        if module.bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat")
            weights += torch_weights(module, k, reverse=True)
        rnn.build((None, None, features))
        rnn.set_weights(weights)
        layers.append(rnn)
        features = module.hidden_size * (2 if module.bidirectional else 1)
    return layers
