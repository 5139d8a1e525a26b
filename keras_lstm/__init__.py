"""keras_lstm: LSTM and GRU reimplemented with keras.ops, equal to the built-ins.

`keras_lstm.LSTM` and `keras_lstm.GRU` are drop-ins for `keras.layers.LSTM` and
`keras.layers.GRU`: `keras_lstm.LSTM(64, return_sequences=True)`.
"""

from keras_lstm.diagnostics import (
    gradient_norms,
    input_gradients,
    plot_gates,
    plot_gradient_norms,
    record_gates,
)
from keras_lstm.gru import GRU, GRUCell
from keras_lstm.lstm import LSTM, LSTMCell
from keras_lstm.torch_weights import from_torch, torch_weights
from keras_lstm.twins import replace_builtins

__version__ = "0.1.0"
__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "from_torch",
    "gradient_norms",
    "input_gradients",
    "plot_gates",
    "plot_gradient_norms",
    "record_gates",
    "replace_builtins",
    "torch_weights",
]
