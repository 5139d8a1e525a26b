"""Shared pieces of every task: config -> flags, run folders, training, plots.

Names load on first use (PEP 562 `__getattr__`), so that a task can read its
command line through `tasks.common.config` before anything imports Keras,
which takes TensorFlow's seconds: `--help` and a bad value answer at once.
"""

import importlib

# name -> the module of tasks.common that defines it
_HOMES = {
    "ConfigError": "config",
    "TrainConfig": "config",
    "add_options": "config",
    "option": "config",
    "parse": "config",
    "ArrayBatches": "data",
    "plot_history": "plots",
    "read_history": "plots",
    "StopOnInterrupt": "interrupt",
    "deferred_interrupts": "interrupt",
    "interruptible": "interrupt",
    "stop_if_interrupted": "interrupt",
    "INTERRUPTED": "runs",
    "RunFolder": "runs",
    "atomic_dir": "runs",
    "atomic_path": "runs",
    "check_export_of": "runs",
    "check_vocabulary_fits": "runs",
    "discard_unstarted_run": "runs",
    "load_export_model": "runs",
    "read_export_json": "runs",
    "read_json": "runs",
    "write_json": "runs",
    "accelerator": "training",
    "device_name": "training",
    "evaluate": "training",
    "ExportFailed": "training",
    "RUN_ERRORS": "training",
    "export_run": "training",
    "expected_retracing": "training",
    "fit": "training",
    "load_checkpoint": "training",
    "optimizer": "training",
    "recurrent_layer": "training",
    "replica_weight_spread": "training",
    "run_training": "training",
    "save_metrics": "training",
    "seed_everything": "training",
    "set_precision": "training",
    "start_run": "training",
    "strategy_for": "training",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
