"""Bad input gives clear errors and leaves existing exports untouched; writes
are atomic (no half-written artifact, no temporary leftovers)."""

import json

import keras
import numpy as np
import pytest

import keras_lstm
from keras_lstm import export
from keras_lstm.export import _verify
from tests.export import helpers as h


def lstm_model():
    return h.text_model(lambda x: keras_lstm.LSTM(4)(x))


def snapshot(folder):
    """Every file under `folder` with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_unbuilt_model(fn, tmp_path):
    model = keras.Sequential([keras_lstm.LSTM(4)])
    with pytest.raises(ValueError, match="is not built"):
        fn(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "layer", [keras.layers.LSTM(4), keras.layers.Bidirectional(keras.layers.GRU(4))]
)
def test_builtin_keras_rnn_is_unsupported_for_tflite(layer, tmp_path):
    model = h.text_model(layer)
    with pytest.raises(ValueError, match=r"unsupported layer.*Flex ops.*keras_lstm"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    assert list(tmp_path.iterdir()) == []


def test_stateful_layer_is_unsupported_for_tflite(tmp_path):
    x = keras.Input((3, 2), batch_size=1)
    model = keras.Model(x, keras_lstm.LSTM(4, stateful=True)(x))
    with pytest.raises(ValueError, match="stateful=True"):
        export.export_tflite(model, tmp_path / "m.tflite")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "variable time axis.*max_length"),
        ({"max_length": 0}, "max_length must be a positive int"),
        ({"max_length": 4, "batch_size": 0}, "batch_size must be a positive int"),
        ({"max_length": 4, "padding": "left"}, "padding must be 'right' or 'any'"),
        ({"max_length": 4, "atol": 0}, "atol must be a positive number"),
        ({"max_length": 4, "fallback": "scan"}, "fallback must be 'while' or 'unroll'"),
    ],
)
def test_bad_tflite_arguments(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        export.export_tflite(lstm_model(), tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_existing_exports_need_overwrite_and_stay_untouched(tmp_path):
    model = lstm_model()
    export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    export.export_saved_model(model, tmp_path / "serving")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_tflite(model, tmp_path / "m.tflite", max_length=4)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_saved_model(model, tmp_path / "serving")
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_whole_export_without_leftovers(tmp_path):
    first, second = lstm_model(), h.randomize(lstm_model(), seed=1)
    path = tmp_path / "m.tflite"
    export.export_tflite(first, path, max_length=4)
    export.export_saved_model(first, tmp_path / "serving")
    old = path.read_bytes()
    report = export.export_tflite(second, path, max_length=4, overwrite=True)
    export.export_saved_model(second, tmp_path / "serving", overwrite=True)
    assert path.read_bytes() != old and report["passed"]
    assert json.loads((tmp_path / "m.tflite.json").read_text()) == report
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.tflite",
        "m.tflite.json",
        "serving",
        "serving.json",
    ]
    ids, _ = h.right_padded_ids(3, 4, seed=0)
    got = h.litert_outputs(path, {"ids": ids})
    assert h.max_diff(got, h.keras_out(second, ids)) <= h.ATOL


@pytest.mark.parametrize("fn", [export.export_saved_model, export.export_tflite])
def test_failed_verification_keeps_the_old_export(fn, tmp_path, monkeypatch):
    model = lstm_model()
    path = tmp_path / "out"
    fn(model, path, **({"max_length": 4} if fn is export.export_tflite else {}))
    before = snapshot(tmp_path)
    monkeypatch.setattr(_verify, "max_abs_diff", lambda a, e: 1.0)
    with pytest.raises(export.ExportVerificationError, match="Nothing was written"):
        fn(
            h.randomize(lstm_model(), seed=3),
            path,
            overwrite=True,
            **({"max_length": 4} if fn is export.export_tflite else {}),
        )
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.json"]


def test_verify_inputs_must_match_the_signature(tmp_path):
    with pytest.raises(ValueError, match="verify_inputs has 2 arrays"):
        export.export_saved_model(
            lstm_model(), tmp_path / "s", verify_inputs=[np.ones((1, 3)), np.ones(1)]
        )
