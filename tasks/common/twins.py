"""A copy of a `--cell keras` model with keras_lstm layers, for export.

`--cell keras` trains `keras.layers.LSTM` / `GRU`. Their while loop converts
to TFLite only with Flex ops (TensorListReserve, ...), which the standalone
LiteRT interpreter does not have, so `keras_lstm.export.export_tflite` refuses
them. Our layers take the same arguments and hold the same weights, and the
layer tests prove they compute the same, so the tasks export the SavedModel
and `.tflite` from a copy in which each built-in is replaced by its
keras_lstm twin (rebuilt from the model's config, weights copied with
`set_weights`) and check that the copy agrees with the trained model.
`model.keras` stays the model as trained.
"""

from __future__ import annotations

from typing import Any

import keras

# Built-in class name -> the twin's module and registered name.
TWINS = {
    "LSTM": ("keras_lstm.lstm", "keras_lstm>LSTM"),
    "GRU": ("keras_lstm.gru", "keras_lstm>GRU"),
}


def builtin_rnns(model: keras.Model) -> list[str]:
    """Paths of the `keras.layers.LSTM` / `GRU` layers inside `model`."""
    return [
        layer.path
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if type(layer) in (keras.layers.LSTM, keras.layers.GRU)
    ]


def with_our_layers(model: keras.Model) -> keras.Model:
    """`model` itself if it has no built-in LSTM / GRU, else a copy of it with
    keras_lstm twins in their place (same config, same weights; not compiled)."""
    if not builtin_rnns(model):
        return model
    import keras_lstm  # noqa: F401  (registers the twins for from_config)

    copy = type(model).from_config(_twin_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _twin_config(config: Any) -> Any:
    """`config` with every built-in LSTM / GRU, at any depth, made our twin."""
    if isinstance(config, dict):
        name = config.get("class_name")
        if config.get("module") == "keras.layers" and name in TWINS:
            module, registered = TWINS[name]
            return {**config, "module": module, "registered_name": registered}
        return {key: _twin_config(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(_twin_config(value) for value in config)
    return config
