"""Ctrl-C during a task's run: stop between batches, not inside TensorFlow.

Python raises KeyboardInterrupt wherever the signal lands. Inside a
tf.function trace that surfaced as an unrelated TypeError with a traceback;
inside a garbage-collection or weak-reference callback Python only printed
"Exception ignored ... KeyboardInterrupt" and the run went on (3 of 5 tries
on a tiny sentiment run). So while a task runs (`interruptible`), the first
Ctrl-C only takes note, and the run stops at the next safe point: before the
next batch of `fit`, `evaluate` or `predict` (`StopOnInterrupt`, a Keras
callback that `common.fit` and `common.evaluate` add), or when the task's
work returns. A second Ctrl-C ends the process at once, as a kill would:
every file a run writes is written atomically, so `--resume` continues it
either way.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

import keras

from tasks.common.runs import INTERRUPTED

NOTICE = "\nCtrl-C: stopping before the next batch (press it again to stop at once)"

_pending = threading.Event()
_exit_now = os._exit  # no cleanup, as a kill (a test replaces it)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within this block the first Ctrl-C raises KeyboardInterrupt only at the
    next `stop_if_interrupted` (at the latest when the block ends); a second
    one prints `INTERRUPTED` and ends the process. Outside the main thread,
    where Python cannot handle signals, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def take_note(signum, frame):
        if _pending.is_set():
            print(INTERRUPTED, file=sys.stderr, flush=True)
            sys.stdout.flush()
            _exit_now(1)
        _pending.set()
        print(NOTICE, file=sys.stderr, flush=True)

    _pending.clear()
    previous = signal.signal(signal.SIGINT, take_note)
    try:
        yield
        stop_if_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()


def stop_if_interrupted() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed since the block began."""
    if _pending.is_set():
        raise KeyboardInterrupt


def interruptible(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` within `deferred_interrupts`; on Ctrl-C the process exits
    with the one line `INTERRUPTED` (status 1), no traceback."""
    try:
        with deferred_interrupts():
            return work(*args)
    except KeyboardInterrupt:
        pass
    # Out of the except block, whose traceback kept fit's data iterators
    # alive: finalized at exit, TensorFlow logged an error for each.
    gc.collect()
    sys.exit(INTERRUPTED)


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises a noted Ctrl-C before the next batch. Batch-begin hooks: a
    callback with a batch-end hook makes Keras convert every batch's logs to
    Python numbers and call the callbacks in step (no asynchronous dispatch)."""

    def on_train_batch_begin(self, batch, logs=None):
        stop_if_interrupted()

    def on_test_batch_begin(self, batch, logs=None):
        stop_if_interrupted()

    def on_predict_batch_begin(self, batch, logs=None):
        stop_if_interrupted()
