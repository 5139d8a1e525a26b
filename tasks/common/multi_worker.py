"""Two work-arounds that make Keras 3.15 `fit` run under MultiWorkerMirroredStrategy.

With several workers (one device each), Keras' TensorFlow trainer fails twice:

1. before training it averages the first distributed batch with one
   `strategy.reduce` call on a tuple of PerReplica values, which TensorFlow's
   collective strategy cannot take ("Attempt to convert a value (PerReplica");
   see keras-team/keras#20329;
2. every step it reduces the scalar metric logs with `axis=0`, which scalars do
   not have ("Invalid reduction dimension 0 for input with 0 dimensions");
   see tensorflow/tensorflow#72388.

Both are applied only for `--distribute multi_worker`; a test trains two worker
processes on localhost and checks that they end with identical weights.
"""

from __future__ import annotations

from typing import Any

import keras


def patch_keras() -> None:
    """Reduces scalar logs across workers without an axis (problem 2)."""
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "patched_by_keras_lstm", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in (
            "auto",
            "mean",
        ) and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=0 if v.shape.rank else None),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica.patched_by_keras_lstm = True
    trainer.reduce_per_replica = reduce_per_replica


def patch_model(model: keras.Model, batch: Any) -> None:
    """Builds metrics from a host batch instead of a reduced one (problem 1).

    The build only needs shapes, so one batch straight from the data will do.
    """
    import tensorflow as tf

    host_batch = tf.nest.map_structure(tf.convert_to_tensor, batch)

    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=host_batch)

    model._maybe_symbolic_build = build
