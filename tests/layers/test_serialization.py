"""get_config / from_config round trips, and `.keras` files that load with
safe_mode=True in a fresh process and give identical outputs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lstm
from tests.layers.helpers import BUILTIN, OURS, numpy, randomize

LAYER_KWARGS = dict(
    return_sequences=True,
    go_backwards=True,
    dropout=0.25,
    recurrent_dropout=0.1,
    seed=5,
    kernel_regularizer="l2",
    recurrent_constraint="non_neg",
    activation="relu",
    zero_output_for_mask=True,
)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_config_round_trip(kind):
    extra = {"unit_forget_bias": False} if kind == "lstm" else {"reset_after": False}
    layer = OURS[kind](7, **LAYER_KWARGS, **extra)
    config = layer.get_config()
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    cell_config = layer.cell.get_config()
    assert type(layer.cell).from_config(cell_config).get_config() == cell_config


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_config_has_the_builtin_keys_and_values(kind):
    ours, builtin = OURS[kind](7, **LAYER_KWARGS), BUILTIN[kind](7, **LAYER_KWARGS)
    ours_config, builtin_config = ours.get_config(), builtin.get_config()
    # use_cudnn is kept by ours (the built-in forgets it when saved).
    assert set(ours_config) == set(builtin_config) | {"use_cudnn"}
    for key, value in builtin_config.items():
        if key != "name":
            assert ours_config[key] == value, key


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("use_cudnn", ["auto", False, True])
def test_use_cudnn_true_is_not_saved_as_the_builtin_does(kind, use_cudnn):
    """True demands a fused kernel, which the machine that loads the file may
    lack: like the built-in's, the saved layer comes back as "auto". "auto"
    and False (the reference loop) run anywhere and are kept."""
    config = OURS[kind](7, use_cudnn=use_cudnn).get_config()
    builtin = BUILTIN[kind](7, use_cudnn=use_cudnn).get_config()
    assert ("use_cudnn" in config) == (use_cudnn is not True)
    assert "use_cudnn" not in builtin  # the reference: it forgets even False
    loaded = OURS[kind].from_config(json.loads(json.dumps(config)))
    assert loaded.use_cudnn == ("auto" if use_cudnn is True else use_cudnn)


def test_registered_names():
    for cls in (
        keras_lstm.LSTM,
        keras_lstm.GRU,
        keras_lstm.LSTMCell,
        keras_lstm.GRUCell,
    ):
        assert keras.saving.get_registered_name(cls) == f"keras_lstm>{cls.__name__}"


def model_with_every_layer():
    inp = keras.Input((9,), dtype="int32")
    x = keras.layers.Embedding(30, 6, mask_zero=True)(inp)
    x = keras.layers.Bidirectional(keras_lstm.LSTM(5, return_sequences=True))(x)
    x = keras.layers.RNN(keras_lstm.GRUCell(4), return_sequences=True)(x)
    x = keras.layers.RNN(keras_lstm.LSTMCell(4), return_sequences=True)(x)
    x = keras_lstm.GRU(3, reset_after=False)(x)
    return keras.Model(inp, keras.layers.Dense(2)(x))


LOAD_SCRIPT = """
import os, sys
if os.environ["KERAS_BACKEND"] != "tensorflow":  # loads without it (and faster)
    sys.modules["tensorflow"] = None
import keras, numpy as np
import keras_lstm  # registers the layers; nothing else from this process is reused
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]))))
"""


@pytest.mark.slow
def test_keras_file_loads_in_fresh_process(tmp_path):
    model = model_with_every_layer()
    randomize(model)
    ids = np.random.default_rng(0).integers(0, 30, size=(4, 9)).astype("int32")
    ids[1, 5:] = 0  # padding
    expected = numpy(model(ids))[0]
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "ids.npy", ids)
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_SCRIPT,
            str(path),
            str(tmp_path / "ids.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
