"""Shared pieces of every task: config -> flags, run folders, training, plots."""

from tasks.common.config import (
    ConfigError,
    TrainConfig,
    add_options,
    option,
    parse,
)
from tasks.common.data import ArrayBatches
from tasks.common.plots import plot_history, read_history
from tasks.common.runs import (
    INTERRUPTED,
    RunFolder,
    atomic_dir,
    atomic_path,
    discard_unstarted_run,
    read_json,
    write_json,
)
from tasks.common.training import (
    accelerator,
    device_name,
    evaluate,
    fit,
    optimizer,
    recurrent_layer,
    replica_weight_spread,
    save_metrics,
    seed_everything,
    set_precision,
    start_run,
    strategy_for,
)

__all__ = [
    "INTERRUPTED",
    "ConfigError",
    "ArrayBatches",
    "RunFolder",
    "TrainConfig",
    "accelerator",
    "add_options",
    "atomic_dir",
    "atomic_path",
    "device_name",
    "discard_unstarted_run",
    "evaluate",
    "fit",
    "option",
    "optimizer",
    "parse",
    "plot_history",
    "read_history",
    "read_json",
    "recurrent_layer",
    "replica_weight_spread",
    "save_metrics",
    "seed_everything",
    "set_precision",
    "start_run",
    "strategy_for",
    "write_json",
]
