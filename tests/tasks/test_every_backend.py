"""Task code whose behaviour depends on the backend.

The README's test command runs this file on JAX and torch as well as
TensorFlow (the other task tests run on TensorFlow only, to keep the suite
short).
"""

import keras
import numpy as np

import keras_lstm
from tasks.common.training import ReseedEachEpoch, seed_everything

RATE = 0.3


def build():
    seed_everything(3)  # as every run, and so every resumed run, starts
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.Dropout(RATE),
            keras_lstm.LSTM(4, dropout=RATE, recurrent_dropout=RATE),
            keras.layers.Dropout(RATE),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


class KeepFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.weights = [w.copy() for w in self.model.get_weights()]


def test_a_resumed_epoch_draws_the_uninterrupted_runs_dropout_masks():
    """`--resume` restarts from the weights after the last completed epoch in
    a new process, whose random state has not drawn that epoch's masks. With
    ReseedEachEpoch (as every task's `fit` has) the resumed epoch draws the
    same dropout masks as the uninterrupted run, so ends with the same
    weights; without it they differ (so the check can fail). On torch the
    masks came from torch's global generator, which the callback did not
    seed: a resumed sentiment run's losses differed from the uninterrupted
    run's by 4e-3."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 3)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    fit = dict(batch_size=4, epochs=2, shuffle=False, verbose=0)

    whole, first = build(), KeepFirstEpoch()
    whole.fit(x, y, callbacks=[ReseedEachEpoch(), first], **fit)
    expected = whole.get_weights()

    def resumed_weights(callbacks):
        keras.utils.clear_session(free_memory=False)
        resumed = build()
        resumed.set_weights(first.weights)  # SGD without momentum: no other state
        resumed.fit(x, y, initial_epoch=1, callbacks=callbacks, **fit)
        return resumed.get_weights()

    def largest_difference(weights):
        return max(np.abs(a - b).max() for a, b in zip(expected, weights))

    assert largest_difference(resumed_weights([ReseedEachEpoch()])) == 0.0
    assert largest_difference(resumed_weights([])) > 1e-4
