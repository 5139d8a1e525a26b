"""Ctrl-C during a task's run: stop between batches, not inside TensorFlow.

Python raises KeyboardInterrupt wherever the signal lands. Inside a
tf.function trace that surfaced as an unrelated TypeError with a traceback;
inside a garbage-collection or weak-reference callback Python only printed
"Exception ignored ... KeyboardInterrupt" and the run went on (3 of 5 tries
on a tiny sentiment run). So while a task runs (`interruptible`), the first
Ctrl-C only takes note, and the run stops at the next safe point: before the
next batch of `fit` or `evaluate` (`StopOnInterrupt`, a Keras callback that
`common.fit` and `common.evaluate` add; it works in `predict` too), or when
the task's work returns. A second Ctrl-C ends the process at once (SIGINT's
default action), as a kill would: every file a run writes is written
atomically, so `--resume` continues it either way.
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

NOTICE = (
    "\nCtrl-C: stopping before the next batch (press it again to stop at once; "
    "either way, continue with --resume latest)"
)

_pending = threading.Event()


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within this block the first Ctrl-C raises KeyboardInterrupt only at the
    next `stop_if_interrupted` (at the latest when the block ends), and gives
    SIGINT back its default action, so that a second one ends the process at
    once, even inside a long TensorFlow step where no Python handler runs.
    Changes nothing outside the main thread (where Python cannot handle
    signals) or where SIGINT is ignored (a background job)."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return

    def take_note(signum, frame):
        _pending.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.write(2, (NOTICE + "\n").encode())  # no print: stdout may be mid-write

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
            try:
                return work(*args)
            except BrokenPipeError:
                # `... | tee log`: Ctrl-C ended tee as well, and the progress
                # bar's next write hit the closed pipe before the next batch.
                if not _pending.is_set():
                    raise
                _silence_stdout()  # else Python's last flush at exit fails too
                raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        pass
    # Out of the except block, whose traceback kept fit's data iterators
    # alive: finalized at exit, TensorFlow logged an error for each.
    gc.collect()
    sys.exit(INTERRUPTED)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a replaced sys.stdout)
        pass
    finally:
        os.close(devnull)


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
