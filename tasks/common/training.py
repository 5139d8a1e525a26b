"""Seeding, devices, distribution, optimizer, callbacks and the `fit` call.

Every task trains through `fit()`, so checkpoints, early stopping, resuming,
NaN guards, CSV history and plots behave the same way everywhere.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

import keras_lstm
from tasks.common import multi_worker
from tasks.common.bundled import BundledDataError
from tasks.common.checks import check_tensorboard
from tasks.common.config import ConfigError, TrainConfig
from tasks.common.data import ArrayBatches, EpochOrder, for_tensorflow_fit
from tasks.common.datasets import DatasetError
from tasks.common.interrupt import StopOnInterrupt, interruptible
from tasks.common.plots import plot_history, read_history
from tasks.common.runs import (
    RunFolder,
    atomic_path,
    check_export_dir,
    discard_unstarted_run,
    find_run,
    forget_new_run,
    new_run,
    write_json,
)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and the backend; deterministic TensorFlow kernels."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def accelerator() -> str:
    """'gpu' when the active backend sees a GPU, else 'cpu'."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


def device_name() -> str:
    """The accelerator's model name (e.g. 'NVIDIA H100 80GB HBM3'), or the CPU's."""
    backend = keras.backend.backend()
    try:
        if accelerator() == "gpu":
            if backend == "jax":
                import jax

                return jax.devices()[0].device_kind
            if backend == "torch":
                import torch

                return torch.cuda.get_device_name(0)
            if backend == "tensorflow":
                import tensorflow as tf

                gpu = tf.config.list_physical_devices("GPU")[0]
                return tf.config.experimental.get_device_details(gpu)["device_name"]
    except Exception:  # a name is only a label; never fail a run over it
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def set_precision(mixed: bool) -> str:
    """Sets the global dtype policy and returns its name."""
    if not mixed:
        name = "float32"
    else:
        name = "mixed_float16" if accelerator() == "gpu" else "mixed_bfloat16"
    keras.config.set_dtype_policy(name)
    return name


def strategy_for(config: TrainConfig) -> Any:
    """A `tf.distribute` strategy for `--distribute`, or None.

    Call it before any other TensorFlow work: logical CPU devices and
    multi-worker collectives can only be set up before the runtime starts.
    """
    if config.distribute == "none":
        return None
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"--distribute={config.distribute} uses tf.distribute and needs "
            f"KERAS_BACKEND=tensorflow (current backend: {keras.backend.backend()})"
        )
    import tensorflow as tf

    if config.distribute == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "--distribute=multi_worker needs the TF_CONFIG environment "
                "variable naming the cluster and this worker's index"
            )
        multi_worker.patch_keras()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if config.cpu_replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * config.cpu_replicas
            )
        except RuntimeError as error:
            raise ConfigError(
                "--cpu-replicas must be set before TensorFlow starts; "
                f"build the strategy first ({error})"
            ) from None
        devices = [f"/cpu:{i}" for i in range(config.cpu_replicas)]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MirroredStrategy()


def recurrent_layer(config: TrainConfig, units: int, **kwargs) -> keras.layers.Layer:
    """The layer `--rnn` and `--cell` choose: ours or the Keras built-in."""
    library = keras_lstm if config.cell == "custom" else keras.layers
    return getattr(library, config.rnn.upper())(units, **kwargs)


def optimizer(
    config: TrainConfig, steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """Adam with `--learning-rate`, `--lr-schedule` and `--clipnorm` (0 = off).

    The cosine schedule runs over `epochs * steps_per_epoch` optimizer steps
    (it counts the optimizer's iterations, so a resumed run continues it).
    """
    rate = config.learning_rate
    if config.lr_schedule == "cosine":
        if not steps_per_epoch:
            raise ValueError("the cosine schedule needs the number of steps per epoch")
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=config.epochs * steps_per_epoch, alpha=COSINE_FLOOR
        )
    return keras.optimizers.Adam(learning_rate=rate, clipnorm=config.clipnorm or None)


COSINE_FLOOR = 0.05  # the cosine schedule ends at this fraction of the peak rate


# Options a resumed run may change: where and how it reports and where its data
# lies (a moved file), not what it trains.
SESSION_OPTIONS = (
    "resume", "runs_dir", "verbose", "export_dir", "tensorboard", "jena_csv",
)  # fmt: skip


def start_run(task: str, config: TrainConfig) -> tuple[TrainConfig, RunFolder]:
    """A new run folder with config.json, or the run `--resume` names.

    A resumed run reuses its saved config (the same hyperparameters), so it
    continues the same experiment: an option given now (typed on the command
    line: `config.given_options`; else one that differs from its default)
    that differs from the saved one raises ConfigError, except the
    `SESSION_OPTIONS` (an export folder, say), which then apply. A new run's
    config is validated (one built in Python has not been). The config
    that will run is then checked before any training: its `export_dir`
    (`check_export_dir`) and `--tensorboard` (`check_tensorboard`).
    """
    forget_new_run()
    if config.resume:
        run = find_run(config.runs_dir, task, config.resume)
        config = _resumed_config(config, run)
    else:
        run = None
        config.validate()  # a config built in Python, not by `parse`
    check_tensorboard(config)
    export_dir = getattr(config, "export_dir", "")
    if export_dir:
        final = check_export_dir(export_dir, task)
        runs = Path(config.runs_dir).resolve() / task  # where this task's runs go
        if runs == final or final in runs.parents or runs in final.parents:
            raise ConfigError(
                f"--export-dir={export_dir!r} and this task's run folders "
                f"({runs}) overlap; the export replaces its whole folder, so keep "
                "them apart"
            )
    if run is None:
        run = new_run(config.runs_dir, task)
        write_json(run.config, dataclasses.asdict(config))
    return config, run


def _resumed_config(config: TrainConfig, run: RunFolder) -> TrainConfig:
    where = f"--resume={config.resume!r}: {run.config}"
    try:
        saved = json.loads(run.config.read_text())
    except (OSError, ValueError) as error:  # missing, unreadable, not JSON
        raise ConfigError(f"{where} cannot be read ({error})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{where} is not a run's config (a JSON object)")
    fields = {f.name: f for f in dataclasses.fields(config)}
    foreign = sorted(set(saved) - set(fields))
    if foreign:
        raise ConfigError(
            f"--resume={config.resume!r}: {run.path} is not a run of this task "
            f"(its config has {', '.join(foreign[:3])}, which this task lacks)"
        )
    typed = getattr(config, "given_options", None)
    if typed is None:  # built in Python: the options that differ from defaults
        typed = {n for n, f in fields.items() if getattr(config, n) != f.default}
    given = {name: getattr(config, name) for name in typed}
    for name, value in given.items():
        # An option its config.json lacks (saved by an older version) ran
        # with the default.
        before = saved[name] if name in saved else fields[name].default
        if name not in SESSION_OPTIONS and value != before:
            source = "" if name in saved else ", the default: not in its config.json"
            raise ConfigError(
                f"--{name.replace('_', '-')}={value!r}: --resume continues "
                f"{run.path} with its saved options ({name} = {before!r}{source}); "
                "start a new run to change it"
            )
    try:
        resumed = type(config)(**{**saved, **given, "resume": config.resume})
        resumed.validate()
    except TypeError as error:  # a value of the wrong type, edited by hand
        raise ConfigError(f"{where}: {error}") from None
    return resumed


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that remembers the epochs a resumed run already did."""

    def __init__(self, past: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.past = list(past)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.monitor_op is None:
            self._set_monitor_op()
        self._last_improved = False
        for epoch, value in enumerate(self.past):
            self.wait += 1
            self._last_improved = self._is_improvement(value, self.best)
            if self._last_improved:
                self.best, self.best_epoch, self.wait = value, epoch, 0

    def stopped_before(self, past_rows) -> bool:
        """Whether the past epochs had already stopped training, as
        `on_epoch_end` decides at the last of them: never on an improvement
        (it returns first, whatever the patience) nor at epoch 0."""
        self.on_train_begin()
        return (
            len(self.past) > 1
            and not self._last_improved
            and self.wait >= self.patience
        )


class ResumableTerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN whose stop a resumed run replays from its history."""

    def stopped_before(self, past_rows) -> bool:
        return not np.isfinite(float(past_rows[-1]["loss"]))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backup is never half-written.

    Keras overwrites `latest.weights.h5` and then `training_metadata.json` in
    place: a run killed while writing the weights could not be resumed
    (corrupt HDF5), and one killed between the two files would resume with
    the next epoch's weights. Here each epoch's weights go to a new file and
    the metadata, written to a temporary sibling and renamed, names it: the
    rename commits the epoch; older weight files are deleted afterwards.
    When training ends, `done` (a file) records it before the backup goes.
    """

    def __init__(self, backup_dir: str, done: Path, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.done = done

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
        }
        with atomic_path(Path(self._training_metadata_path)) as tmp:
            tmp.write_text(json.dumps(metadata))
        for old in Path(self.backup_dir).glob("*.weights.h5"):
            if old.name != name:
                old.unlink()

    def _load_model(self):
        if not self.model.built:
            raise ValueError(
                "BackupAndRestore needs a built model; build it before fit()."
            )
        metadata = read_backup_metadata(Path(self.backup_dir))
        if metadata is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        # Keras' own layout (a run killed before this class existed) has no
        # "weights" and keeps them in latest.weights.h5.
        weights = metadata.get("weights", os.path.basename(self._weights_path))
        try:
            self.model.load_weights(os.path.join(self.backup_dir, weights))
        except OSError as error:  # lost or cut short (a ValueError is a model
            # that does not match the backup: not the backup's fault)
            raise _damaged_backup(Path(self.backup_dir), error) from None
        self.model._initial_epoch = int(metadata["epoch"])

    def on_train_end(self, logs=None):
        """Records that training ended, then deletes the backup."""
        write_json(self.done, {"finished": True})
        if self.delete_checkpoint:
            _delete_backup(Path(self.backup_dir))


def _delete_backup(backup: Path) -> None:
    """Deletes a backup by first renaming it aside in one step, so a kill
    while deleting never leaves half a backup."""
    if backup.exists():
        gone = backup.with_name(f".{backup.name}.deleted-{os.getpid()}")
        os.replace(backup, gone)
        shutil.rmtree(gone)


class EpochSeconds(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to the
    epoch's logs, so history.csv can tell time to accuracy."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


class ReseedEachEpoch(keras.callbacks.Callback):
    """Puts every dropout seed generator at a state fixed by its seed and the epoch.

    Weight backups do not hold seed-generator states, so without this a resumed
    run would draw other dropout masks than the uninterrupted run.

    On torch, Keras draws the masks of a layer built without a seed (Dropout,
    our cells and the built-ins' alike) from torch's global generator instead
    (the unseeded branch of keras/src/backend/torch/random.py `dropout`), so
    that generator is seeded from the model's seeds and the epoch too.
    """

    STEPS_PER_EPOCH = 2**20  # room for this many random draws per epoch

    def on_epoch_begin(self, epoch, logs=None):
        seeds = []
        for variable in self.model.variables:
            if variable.path.endswith("seed_generator_state"):
                seed = int(keras.ops.convert_to_numpy(variable.value)[0])
                seeds.append(seed % 2**32)
                variable.assign(
                    np.array([seed, epoch * self.STEPS_PER_EPOCH], dtype=variable.dtype)
                )
        if seeds and keras.backend.backend() == "torch":
            import torch

            state = np.random.SeedSequence([*seeds, epoch]).generate_state(1)
            torch.manual_seed(int(state[0]))


def _completed_epochs(run: RunFolder) -> int:
    """Epochs the backup holds (0 without a backup)."""
    metadata = read_backup_metadata(run.backup)
    return 0 if metadata is None else int(metadata["epoch"])


def read_backup_metadata(backup: Path) -> dict | None:
    """The backup's training_metadata.json (None if there is none).

    Raises:
        ConfigError: it is not what `AtomicBackupAndRestore` writes; the
            message says how to go on.
    """
    path = backup / "training_metadata.json"
    if not path.exists():
        return None
    try:
        metadata = json.loads(path.read_text())
        int(metadata["epoch"])  # TypeError unless a JSON object
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _damaged_backup(backup, error) from None
    return metadata


def _damaged_backup(backup: Path, error: Exception) -> ConfigError:
    first_line = (str(error).splitlines() or [""])[0][:200]
    return ConfigError(
        f"the backup {backup} of the interrupted run cannot be read "
        f"({type(error).__name__}: {first_line}): delete "
        f"{backup / 'training_metadata.json'} to train the run again from its "
        "first epoch, or start a new run"
    )


def _history_rows(run: RunFolder) -> list[dict[str, str]]:
    if not run.history.exists():
        return []
    with open(run.history, newline="") as f:
        return list(csv.DictReader(f))


def _past_history(run: RunFolder, epochs: int) -> list[dict[str, str]]:
    """history.csv cut to its first `epochs` rows (those the backup holds: a
    killed run may be ahead; 0 to train again), rewritten atomically."""
    rows = _history_rows(run)
    kept = [row for row in rows if int(row["epoch"]) < epochs]
    if len(kept) != len(rows):
        with atomic_path(run.history) as tmp, open(tmp, "w", newline="") as f:
            if kept:
                writer = csv.DictWriter(f, fieldnames=list(kept[0]))
                writer.writeheader()
                writer.writerows(kept)
    return kept


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes a temporary sibling and renames it into
    place: a save that fails (disk full, killed) leaves the previous best."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        head, name = os.path.split(final)
        tmp = os.path.join(head, f".{name}.tmp-{os.getpid()}.keras")
        self.filepath = tmp
        try:
            super()._save_model(epoch, batch, logs)
            if os.path.exists(tmp):
                os.replace(tmp, final)
        finally:
            self.filepath = final
            if os.path.exists(tmp):
                os.remove(tmp)


def load_checkpoint(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a checkpoint written during training (weights and optimizer
    state) into a freshly built, compiled `model`. Its optimizer is built
    first, as `keras.saving.load_model` does: an unbuilt one would skip the
    saved state with a UserWarning per optimizer, and a model saved after
    that would hold no optimizer state for the next load to find."""
    if model.optimizer is not None:
        # Inside the model's distribution strategy, as Keras builds it: Adam's
        # slots of a MirroredStrategy model cannot be made outside its scope.
        strategy = getattr(model, "distribute_strategy", None)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.optimizer.build(model.trainable_variables)
    model.load_weights(str(path))


def fit(
    model: keras.Model,
    train: ArrayBatches,
    validation: Any,
    config: TrainConfig,
    run: RunFolder,
    monitor: str = "val_loss",
    mode: str = "min",
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Trains `model` with the shared callbacks; returns the full history.

    Writes history.csv and one PNG per metric into the run folder, keeps the best
    epoch (by `monitor`) in best.keras and loads it back into `model` at the end.
    The epoch-level backup in `run.backup` lets `--resume` continue a run that
    was killed, mid-epoch included, from its last completed epoch; a run whose
    training had finished is not trained again (best.keras is loaded).
    """
    for stale in run.path.glob(".*.tmp-*"):  # a killed run's half-written files
        if stale.is_file():
            stale.unlink()
    for stale in run.path.glob(f".{run.backup.name}.deleted-*"):  # and backups
        shutil.rmtree(stale, ignore_errors=True)
    if run.done.exists():  # training ended (killed, at most, deleting the backup)
        _delete_backup(run.backup)
        return _finished_run(model, run)
    has_backup = run.backup.exists()
    # The epochs done: those the backup holds, or without one (training
    # ended, or it never wrote one) all of history.csv.
    past = (
        _past_history(run, _completed_epochs(run)) if has_backup else _history_rows(run)
    )
    past_values = [float(row[monitor]) for row in past]
    finite = [v for v in past_values if np.isfinite(v)]  # as ModelCheckpoint saw
    best = None
    if finite:
        best = min(finite) if mode == "min" else max(finite)
    early_stopping = ResumableEarlyStopping(
        past_values, monitor=monitor, mode=mode, patience=config.patience
    )
    stoppers = [ResumableTerminateOnNaN(), early_stopping, *extra_callbacks]
    # Every stopper replays the past (not `any` over a generator, which stops
    # at the first): the uninterrupted run called each one's on_epoch_end.
    replays = [
        c.stopped_before(past)
        for c in stoppers
        if past and hasattr(c, "stopped_before")
    ]
    stopped = bool(past) and (any(replays) or len(past) >= config.epochs)
    if stopped and (has_backup or run.checkpoint.exists()):
        # Killed after its last epoch's backup, before `fit` returned (the
        # uninterrupted run stopped there too); or, without a backup, a run
        # older than training_done.json that had ended.
        write_json(run.done, {"finished": True})
        _delete_backup(run.backup)
        return _finished_run(model, run)
    if past and not has_backup:
        # Unfinished without a backup: it was deleted, or the run was killed
        # in its first epoch before writing one (and before best.keras, if
        # that was its last). Training is seeded, so the run trained again
        # from its first epoch is the same run.
        print(
            f"{run.path}: no backup of its {len(past)} epoch(s) in history.csv "
            f"(expected in {run.backup}); training it again from the first epoch"
        )
        _past_history(run, 0)
        for callback in extra_callbacks:  # forget the discarded epochs
            if hasattr(callback, "stopped_before"):
                callback.stopped_before([])
        return fit(
            model, train, validation, config, run, monitor, mode, extra_callbacks
        )
    callbacks = [
        StopOnInterrupt(),  # a Ctrl-C stops the run between batches
        EpochOrder(train),
        ReseedEachEpoch(),
        EpochSeconds(),  # before CSVLogger, which writes the logs it adds to
        keras.callbacks.CSVLogger(str(run.history), append=True),
        AtomicModelCheckpoint(
            str(run.checkpoint),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=best,
        ),
        *stoppers,
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run.logs)))
    # Last: an epoch's backup is written only once its history row, best
    # checkpoint and stop decisions are, so a run killed in between redoes
    # that epoch (the same numbers) instead of skipping its checkpoint.
    callbacks.append(AtomicBackupAndRestore(str(run.backup), run.done))
    if config.distribute == "multi_worker":
        multi_worker.patch_model(model, train[0])
    verbose = config.verbose if config.verbose == "auto" else int(config.verbose)
    train_data, validation_data = train, validation
    if keras.backend.backend() == "tensorflow" and config.distribute == "none":
        train_data = for_tensorflow_fit(train)
        if isinstance(validation, tuple) and len(validation) == 2:
            # (x, y) arrays: batched by 32, as Keras' array adapter would.
            validation = ArrayBatches(*validation, batch_size=32)
        if isinstance(validation, keras.utils.PyDataset):
            validation_data = for_tensorflow_fit(validation)
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # ArrayBatches shuffles by (seed, epoch); Keras would
        # reorder batches with Python's global RNG, which a resumed run lacks.
    )
    if run.checkpoint.exists():
        model.load_weights(str(run.checkpoint))
    plot_history(run.history, run.path)
    return _check_finite(model, read_history(run.history), run)


def _finished_run(model: keras.Model, run: RunFolder) -> dict[str, list[float]]:
    """Loads the best.keras of a run whose training had ended; its history."""
    if not run.checkpoint.exists():  # else the untrained model is reported
        raise ConfigError(
            f"{run.path}: training finished earlier, but its "
            f"{run.checkpoint.name} is missing; start a new run"
        )
    print(f"{run.path}: training finished earlier; using its best.keras")
    load_checkpoint(model, run.checkpoint)
    plot_history(run.history, run.path)  # in case it died before the plots
    return _check_finite(model, read_history(run.history), run)


class _NotRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def expected_retracing():
    """Leaves out TensorFlow's warning "N out of the last M calls to <function>
    triggered tf.function retracing" inside the block, for code that traces
    many functions by design: an ensemble, whose members are new models with
    their own train and predict functions. Every other message still shows."""
    logger = logging.getLogger("tensorflow")  # tf.get_logger()
    quiet = _NotRetracing()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class TrainingDiverged(ConfigError):
    """The loss became NaN or infinite and no finite epoch was kept."""


def _check_finite(model, history: dict, run: RunFolder) -> dict:
    """`history`, or TrainingDiverged when the model to evaluate and export
    holds non-finite weights (every epoch diverged: nothing worth saving)."""
    ops = keras.ops  # not NumPy: no array copy (and no NumPy 2 warning) per weight
    if all(bool(ops.all(ops.isfinite(w.value))) for w in model.weights):
        return history
    losses = history.get("loss", [])
    epoch = next((i + 1 for i, v in enumerate(losses) if not np.isfinite(v)), None)
    where = f" in epoch {epoch} (loss {losses[epoch - 1]})" if epoch else ""
    raise TrainingDiverged(
        f"training diverged{where}: the weights are not finite, so nothing is "
        f"evaluated or exported (run folder {run.path}). Lower --learning-rate "
        "or set --clipnorm."
    )


def replica_weight_spread(model: keras.Model) -> float:
    """Largest difference between two replicas' copies of any weight (0 = in sync).

    Under `tf.distribute.MirroredStrategy` each weight has one copy per replica;
    synchronous training keeps them identical.
    """
    spread = 0.0
    for weight in model.weights:
        copies = getattr(weight.value, "values", None) or (weight.value,)
        first = np.asarray(copies[0])
        for copy in copies[1:]:
            spread = max(spread, float(np.max(np.abs(np.asarray(copy) - first))))
    return spread


def evaluate(model: keras.Model, batches: Any) -> dict[str, float]:
    """`model.evaluate` as a plain dict of floats."""
    values = model.evaluate(
        batches, verbose=0, return_dict=True, callbacks=[StopOnInterrupt()]
    )
    return {name: float(value) for name, value in values.items()}


def save_metrics(run: RunFolder, metrics: dict[str, Any]) -> Path:
    """Writes metrics.json atomically and returns its path."""
    write_json(run.metrics, metrics)
    return run.metrics


class ExportFailed(Exception):
    """A task's export did not pass its check; nothing was exported."""


def export_run(run: RunFolder, metrics: dict[str, Any], write: Callable[[], dict]):
    """`metrics["export"] = write()` (the task's export), saved with the
    metrics. A failed check (`keras_lstm.export.ExportVerificationError`)
    raises ExportFailed naming the run folder, which keeps what training
    wrote; the tasks print it as one line."""
    try:
        metrics["export"] = write()
    except Exception as error:
        # keras_lstm.export imports TensorFlow: only an export that loaded it
        # can have raised its error (on jax or torch the tasks never do).
        exporter = sys.modules.get("keras_lstm.export")
        if exporter is None or not isinstance(error, exporter.ExportVerificationError):
            raise
        raise ExportFailed(
            f"{error} The run folder {run.path} keeps the trained model "
            f"({run.checkpoint.name}) and its metrics."
        ) from error
    save_metrics(run, metrics)


# What a task's `main` prints as one `error:` line (the rest are bugs: a
# traceback): bad options or data, missing bundled or canonical data, and an
# export that failed its check.
RUN_ERRORS = (ConfigError, BundledDataError, DatasetError, ExportFailed)


def run_training(train: Callable[[TrainConfig], Any], config: TrainConfig) -> Any:
    """`train(config)` for a task's command line; returns what it returns.

    Ctrl-C ends the process with one line (`interruptible`), a `RUN_ERRORS`
    error or a MemoryError (a size option too large for this machine) with
    one `error:` line. On that and on any other error (a bug, shown with its
    traceback), a run folder that never started training is removed, so
    that `--resume latest` finds the run before it.
    """
    try:
        return interruptible(train, config)
    except RUN_ERRORS as error:
        discard_unstarted_run()
        sys.exit(f"error: {error}")
    except MemoryError as error:  # NumPy's says how much it could not allocate
        discard_unstarted_run()
        sys.exit(
            f"error: out of memory ({str(error) or 'MemoryError'}); smaller sizes "
            "(batch, data or model options) may fit"
        )
    except Exception:
        discard_unstarted_run()
        raise
