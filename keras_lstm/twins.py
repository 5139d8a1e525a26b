"""A model's `keras.layers.LSTM` / `GRU` layers replaced by keras_lstm's.

Our layers take the same arguments, hold the same weights in the same order
and compute the same (the layer tests prove it), so a model built with the
built-ins can be rebuilt from its config with ours in their place and given
its weights. The main use: `keras_lstm.export.export_tflite`, which needs our
layers (the built-ins' while loop converts to TFLite only with Flex ops).
"""

from __future__ import annotations

from typing import Any

import keras

# Built-in class name -> our twin's module and registered name.
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


def replace_builtins(model: keras.Model) -> keras.Model:
    """`model` itself if it has no `keras.layers.LSTM` / `GRU`, else a copy with
    `keras_lstm.LSTM` / `GRU` in their place: the same config (also inside
    `Bidirectional` and nested models), the same weights, and the current
    states of stateful layers. The copy is not compiled. Subclasses of the
    built-ins and `keras.layers.RNN` around a built-in cell are kept as they
    are.

    Args:
        model: A built `keras.Sequential` or functional `keras.Model` (one that
            `get_config` / `from_config` can rebuild).

    Returns:
        A `keras.Model` of the same class as `model`.

    Raises:
        ValueError: `model` is not a built Keras model that its config can
            rebuild (e.g. a subclassed model without `get_config`).

    Example:

    ```python
    ours = keras_lstm.replace_builtins(model)  # model: keras.layers.LSTM inside
    export.export_tflite(ours, "model.tflite", max_length=200)
    ```
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"`model` must be a keras.Model. Received: {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built: call it once first.")
    if not builtin_rnns(model):
        return model
    try:
        config = model.get_config()
        copy = type(model).from_config(_twin_config(config))
    except (NotImplementedError, TypeError, ValueError) as error:
        raise ValueError(
            f"Model '{model.name}' ({type(model).__name__}) cannot be rebuilt from "
            f"its config ({error}); build it with keras_lstm.LSTM / keras_lstm.GRU "
            "instead and copy the weights with set_weights."
        ) from error
    copy.set_weights(model.get_weights())
    _copy_states(model, copy)
    return copy


def _copy_states(model: keras.Model, copy: keras.Model) -> None:
    """The current states of `model`'s stateful recurrent layers, into the
    same layers of `copy`: they are variables but not weights, so
    `set_weights` leaves the copy's at zero."""
    layers = zip(
        model._flatten_layers(include_self=False, recursive=True),
        copy._flatten_layers(include_self=False, recursive=True),
    )
    for old, new in layers:
        if isinstance(old, keras.layers.RNN) and old.stateful:
            old_states = keras.tree.flatten(old.states or [])
            new_states = keras.tree.flatten(new.states or [])
            for source, target in zip(old_states, new_states):
                target.assign(source)


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
