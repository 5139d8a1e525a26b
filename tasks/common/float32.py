"""A float32 copy of a model trained with `--mixed-precision`, for export.

TFLite's builtin recurrent ops compute in float32, and `keras_lstm.export`
refuses recurrent layers with another compute dtype. The tasks therefore save
the trained model as it is (`model.keras`, still mixed precision) and export
the SavedModel and `.tflite` from a copy whose layers all compute in float32,
with the same weights (`set_weights`; mixed precision keeps its variables in
float32, so nothing is rounded). `tasks.text_generation` does the same when it
builds its one-step generator (`sampling.state_model`).
"""

from __future__ import annotations

from typing import Any

import keras


def is_float32(model: keras.Model) -> bool:
    """True when every layer of `model` computes in float32 (or in integers)."""
    return not any(
        _is_mixed(layer.dtype_policy.name)
        for layer in model._flatten_layers(include_self=True, recursive=True)
    )


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` itself if it computes in float32, else a float32 copy of it.

    The copy is rebuilt from `model.get_config()` with every mixed dtype
    policy (`mixed_float16`, `mixed_bfloat16`) replaced by `float32`, then
    gets `model`'s weights. It is not compiled: it is for inference and export.
    """
    if is_float32(model):
        return model
    config = _float32_config(model.get_config())
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # for what the config leaves out
    try:
        copy = type(model).from_config(config)
    finally:
        keras.config.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def _is_mixed(policy_name: Any) -> bool:
    return isinstance(policy_name, str) and policy_name.startswith("mixed_")


def _float32_config(config: Any) -> Any:
    """`config` with every mixed dtype policy, at any depth, set to float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and (
            _is_mixed(config.get("config", {}).get("name"))
        ):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {
            key: "float32"
            if key == "dtype" and _is_mixed(value)
            else _float32_config(value)
            for key, value in config.items()
        }
    if isinstance(config, (list, tuple)):
        return type(config)(_float32_config(value) for value in config)
    return config
