"""Checks a task runs before training, so a run cannot fail after its first epoch."""

from __future__ import annotations

import importlib.util

from tasks.common.config import ConfigError


def check_tensorboard(config) -> None:
    """Raises ConfigError when `--tensorboard` is on but cannot write logs.

    Keras' TensorBoard callback writes through `tf.summary`, which needs both
    TensorFlow (on any Keras backend) and the `tensorboard` package; TensorFlow
    2.21 no longer installs the latter. Without this check a run trains a whole
    epoch and then stops with TensorFlow's TBNotInstalledError.
    """
    if not getattr(config, "tensorboard", False):
        return
    missing = [
        name
        for name in ("tensorflow", "tensorboard")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ConfigError(
            f"--tensorboard: needs the {' and '.join(missing)} package, not "
            f"installed here: `pip install {' '.join(missing)}`, or run without "
            "--tensorboard"
        )
