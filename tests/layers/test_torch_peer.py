"""PyTorch's nn.LSTM / nn.GRU as an independent reference: converted weights give
the same outputs (float32, atol 1e-5)."""

import keras
import numpy as np
import pytest
import torch

import keras_lstm
from tests.layers.helpers import assert_all_close

BATCH, STEPS, FEATURES, HIDDEN = 3, 7, 5, 4
TORCH_CLASSES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_module(kind, **kwargs):
    torch.manual_seed(0)
    module = TORCH_CLASSES[kind](FEATURES, HIDDEN, batch_first=True, **kwargs)
    with torch.no_grad():  # larger than torch's init, so every weight matters
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module.eval()


def inputs():
    return (
        np.random.default_rng(0)
        .standard_normal((BATCH, STEPS, FEATURES))
        .astype("float32")
    )


OPTIONS = [
    {},
    {"bias": False},
    {"num_layers": 2},
    {"bidirectional": True},
    {"num_layers": 3, "bidirectional": True},
]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: "-".join(map(str, o.items())) or "default"
)
def test_sequence_output_equals_torch(kind, options):
    module = torch_module(kind, **options)
    x = inputs()
    with torch.no_grad():
        expected, _ = module(torch.from_numpy(x))
    model = keras.Sequential(keras_lstm.from_torch(module, return_sequences=True))
    assert_all_close(model(x), expected.numpy())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_final_states_equal_torch(kind):
    module = torch_module(kind)
    x = inputs()
    with torch.no_grad():
        _, states = module(torch.from_numpy(x))
    (layer,) = keras_lstm.from_torch(module, return_state=True)
    outputs = layer(x)
    if kind == "lstm":
        last, h, c = outputs
        assert_all_close([h, c], [states[0][0].numpy(), states[1][0].numpy()])
    else:
        last, h = outputs
        assert_all_close(h, states[0].numpy())
    assert_all_close(last, h, atol=0)


def test_weight_layout_by_hand():
    """Gate order and bias sum, checked on hand-placed values (no forward pass)."""
    module = torch_module("lstm")
    with torch.no_grad():
        for gate, value in enumerate([1.0, 2.0, 3.0, 4.0]):  # torch rows: i, f, g, o
            module.weight_ih_l0[gate * HIDDEN : (gate + 1) * HIDDEN] = value
            module.bias_ih_l0[gate * HIDDEN : (gate + 1) * HIDDEN] = value
            module.bias_hh_l0[gate * HIDDEN : (gate + 1) * HIDDEN] = 10 * value
    kernel, _, bias = keras_lstm.torch_weights(module)
    assert kernel.shape == (FEATURES, 4 * HIDDEN)
    np.testing.assert_array_equal(kernel[0, ::HIDDEN], [1, 2, 3, 4])
    np.testing.assert_array_equal(bias[::HIDDEN], [11, 22, 33, 44])

    gru = torch_module("gru")
    with torch.no_grad():
        for gate, value in enumerate([1.0, 2.0, 3.0]):  # torch rows: r, z, n
            gru.bias_ih_l0[gate * HIDDEN : (gate + 1) * HIDDEN] = value
            gru.bias_hh_l0[gate * HIDDEN : (gate + 1) * HIDDEN] = 10 * value
    _, _, gru_bias = keras_lstm.torch_weights(gru)
    np.testing.assert_array_equal(gru_bias[:, ::HIDDEN], [[2, 1, 3], [20, 10, 30]])


def test_subclasses_of_torch_modules_are_accepted():
    class Tagged(torch.nn.LSTM):
        pass

    torch.manual_seed(0)
    module = Tagged(FEATURES, HIDDEN, batch_first=True).eval()
    x = inputs()
    with torch.no_grad():
        expected, _ = module(torch.from_numpy(x))
    model = keras.Sequential(keras_lstm.from_torch(module, return_sequences=True))
    assert_all_close(model(x), expected.numpy())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_modules_of_other_float_dtypes_convert_to_float32(dtype):
    """Weights become float32 (numpy has no bfloat16, which once raised
    "unsupported ScalarType"); the result equals torch's float32 copy."""
    module = torch_module("lstm").to(dtype)
    weights = keras_lstm.torch_weights(module)
    for w, p in zip(weights, [module.weight_ih_l0, module.weight_hh_l0]):
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, p.detach().float().numpy().T)
    model = keras.Sequential(keras_lstm.from_torch(module, return_sequences=True))
    x = inputs()
    with torch.no_grad():
        expected, _ = module.float()(torch.from_numpy(x))
    assert_all_close(model(x), expected.numpy())


def test_rejects_what_keras_cannot_represent():
    with pytest.raises(ValueError, match="proj_size"):
        keras_lstm.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="torch.nn.LSTM or torch.nn.GRU"):
        keras_lstm.from_torch(torch.nn.RNN(3, 4))
    with pytest.raises(ValueError, match="layer"):
        keras_lstm.torch_weights(torch.nn.LSTM(3, 4), layer=1)
