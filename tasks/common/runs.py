"""Run folders: `runs/<task>/<timestamp>/` with config, history, metrics, plots.

Everything a run writes goes through `write_json` / `atomic_path`: the file is
written next to its final name and renamed into place, so a run killed while
writing never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from tasks.common.config import ConfigError


class RunFolder:
    """Paths of one training run.

    Args:
        path: the folder (created if missing).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    config = property(lambda self: self.path / "config.json")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / "metrics.json")
    checkpoint = property(lambda self: self.path / "best.keras")
    backup = property(lambda self: self.path / "backup")
    done = property(lambda self: self.path / "training_done.json")  # fit ended
    logs = property(lambda self: self.path / "logs")

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


# What a run writes before its first epoch; a folder holding only these did
# not start training.
BEFORE_TRAINING = {"config.json", "vocabulary.json"}
_last_made: Path | None = None  # the folder `new_run` made last in this process


def new_run(runs_dir: str | os.PathLike, task: str) -> RunFolder:
    """A fresh `runs_dir/task/<YYYYmmdd-HHMMSS>` folder (suffixed if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = Path(runs_dir) / task
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"--runs-dir={str(runs_dir)!r}: cannot create {parent} "
            f"({error.strerror or error})"
        ) from None
    global _last_made
    path, n = parent / stamp, 1
    while True:  # mkdir, not exists(): two runs starting in one second
        try:
            path.mkdir()
            break
        except FileExistsError:
            n += 1
            path = parent / f"{stamp}-{n}"
        except OSError as error:  # say, a read-only runs folder
            raise ConfigError(
                f"--runs-dir={str(runs_dir)!r}: cannot create {path} "
                f"({error.strerror or error})"
            ) from None
    _last_made = path
    return RunFolder(path)


def forget_new_run() -> None:
    """Forgets the folder `new_run` made last (`start_run` calls this first), so
    that `discard_unstarted_run` never removes one an earlier call made."""
    global _last_made
    _last_made = None


def discard_unstarted_run() -> Path | None:
    """Removes the run folder `new_run` made last in this process if it never
    started training (it holds only `BEFORE_TRAINING` files); returns it. A
    task calls this when it stops with an error, e.g. a `--lookback` its data
    cannot serve, so that `--resume latest` finds the run before it, not the
    failed one."""
    global _last_made
    path, _last_made = _last_made, None
    if path is None or not path.is_dir():
        return None
    if {p.name for p in path.iterdir()} <= BEFORE_TRAINING:
        shutil.rmtree(path, ignore_errors=True)
        return path
    return None


_RUN_NAME = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?")  # new_run's names


def _run_order(path: Path) -> tuple[str, int]:
    """`new_run`'s names in the order they were made: by time stamp, then
    suffix as a number (`...-10` after `...-2`)."""
    match = _RUN_NAME.fullmatch(path.name)
    return match[1], int(match[2] or 1)


def find_run(runs_dir: str | os.PathLike, task: str, resume: str) -> RunFolder:
    """The folder named by `--resume`: a path, or 'latest' for the newest run."""
    if resume == "latest":
        candidates = sorted(  # a folder named by hand is passed by its path
            (
                p
                for p in (Path(runs_dir) / task).glob("*")
                if p.is_dir() and _RUN_NAME.fullmatch(p.name)
            ),
            key=_run_order,
        )
        if not candidates:
            raise ConfigError(
                f"--resume=latest: no run of {task!r} under {Path(runs_dir) / task}"
            )
        return RunFolder(candidates[-1])
    path = Path(resume)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"--resume={resume!r}: not a run folder (no config.json there); "
            "pass a folder under runs/<task>/ or 'latest'"
        )
    return RunFolder(path)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary sibling path; renames it to `final` if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as indented, strict JSON, atomically: NaN and infinities
    (a diverged model's losses) become `null`, which every JSON parser reads;
    `read_json` reads a `null` in a list back as NaN."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_strict(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A file `write_json` wrote, with each `null` in a list read as NaN (lists
    there hold numbers: losses, metrics by epoch, gradient norms)."""
    return _nan_for_null(json.loads(Path(path).read_text()))


def _strict(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if hasattr(value, "tolist"):  # numpy / backend arrays and scalars
        return _strict(value.tolist())
    return str(value)


def _nan_for_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _nan_for_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [math.nan if item is None else _nan_for_null(item) for item in value]
    return value


# What the tasks' exports hold; `model.keras` marks a folder as one.
EXPORT_NAMES = {
    "model.keras", "vocabulary.json", "normalization.json", "export_report.json",
    "saved_model", "saved_model.json", "model.tflite", "model.tflite.json",
    "generator", "generator.json", "generator.tflite", "generator.tflite.json",
    "task.json",
}  # fmt: skip

# {"task": <name>}, written into every task export by `atomic_dir`.
TASK_FILE = "task.json"


def export_task(folder: str | os.PathLike) -> str | None:
    """The task whose export `folder` holds: its `task.json`, else (exports
    written before there was one) a file that only one task writes; None when
    that cannot tell (no export, or sentiment's and text generation's
    `model.keras` + `vocabulary.json` alone, as on jax or torch)."""
    folder = Path(folder)
    try:
        task = json.loads((folder / TASK_FILE).read_text()).get("task")
        return task if isinstance(task, str) else None
    except (OSError, ValueError, AttributeError):
        pass
    if (folder / "normalization.json").exists():
        return "weather"
    if (folder / "generator").exists() or (folder / "generator.tflite").exists():
        return "text_generation"
    if (folder / "saved_model").exists() and (folder / "vocabulary.json").exists():
        return "sentiment"
    return None


def read_export_json(
    path: str | os.PathLike, holds: str, valid: Callable[[Any], bool]
) -> Any:
    """The JSON in `path`, a file of a task's export, if `valid(content)`;
    otherwise ValueError naming the file and what it should hold (`holds`)."""
    try:
        content = json.loads(Path(path).read_bytes())
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError too
        raise ValueError(
            f"{path} is not valid JSON ({error}): a damaged or half-copied "
            "export? Export it again"
        ) from None
    if not valid(content):
        raise ValueError(
            f"{path} does not hold {holds}: a damaged export, or another task's?"
        )
    return content


def load_export_model(path: str | os.PathLike):
    """`keras.saving.load_model(path)`, the model file of a task's export; a
    ValueError naming the file when it is not a readable `.keras` archive
    (Keras itself reports a truncated one as "File not found")."""
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a .keras file (not a zip archive): a damaged or "
            "half-copied export? Export it again"
        )
    try:
        return keras.saving.load_model(path)
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError) as error:
        raise ValueError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}): a "
            "damaged export? Export it again"
        ) from None


def check_vocabulary_fits(model, vocabulary: list, folder) -> None:
    """ValueError if `model`'s first Embedding takes fewer ids than the
    export's vocabulary.json has entries (files of two different exports)."""
    import keras

    rows = next(
        (
            layer.input_dim
            for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Embedding)
        ),
        None,
    )
    if rows is not None and len(vocabulary) > rows:
        raise ValueError(
            f"{Path(folder) / 'vocabulary.json'} has {len(vocabulary)} entries, but "
            f"the model's Embedding takes {rows} ids: model.keras and "
            "vocabulary.json come from different exports"
        )


def check_export_of(folder: str | os.PathLike, task: str) -> None:
    """Raises ValueError if `folder` holds another task's export (`export_task`):
    for the commands that load an export, before they read its files."""
    owner = export_task(folder)
    if owner not in (None, task):
        raise ValueError(
            f"{folder} is a {owner} export, not a {task} one (pass the {task} "
            f"export's folder, by default saved_models/{task})"
        )


def check_export_dir(path: str | os.PathLike, task: str | None = None) -> Path:
    """`path` resolved, if a task may write its export folder there: a new or
    empty folder, or an earlier export (`model.keras` and only `EXPORT_NAMES`)
    of the same `task` (`export_task`; any task's if None or unknown).
    Anything else (a file; a folder of other things, such as `saved_models/`
    itself or the working directory; another task's export) raises
    ConfigError naming it: the export replaces the whole folder."""
    final = Path(path).resolve()
    if final.is_file() or final.is_symlink():
        raise ConfigError(f"--export-dir={str(path)!r}: {final} is a file")
    parent = next(p for p in final.parents if p.exists())
    if not parent.is_dir():
        raise ConfigError(f"--export-dir={str(path)!r}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--export-dir={str(path)!r}: {parent} is not writable")
    names = {p.name for p in final.iterdir()} if final.is_dir() else set()
    if names and ("model.keras" not in names or names - EXPORT_NAMES):
        other = ", ".join(sorted(names - EXPORT_NAMES)[:3] or sorted(names)[:3])
        what = (
            f"an earlier export plus other files ({other})"
            if "model.keras" in names
            else f"not an earlier export (it holds {other})"
        )
        raise ConfigError(
            f"--export-dir={str(path)!r}: {final} is {what}, and the export "
            "replaces the whole folder; give a new one, e.g. saved_models/<task>"
        )
    owner = export_task(final) if names and task else None
    if owner not in (None, task):
        raise ConfigError(
            f"--export-dir={str(path)!r}: {final} holds a {owner} export, which "
            f"this {task} export would replace; give another folder, e.g. "
            f"saved_models/{task}"
        )
    return final


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, task: str | None = None) -> Iterator[Path]:
    """Yields an empty temporary sibling folder; swaps it in for `final` on success.

    An existing `final` is replaced only once the new folder is complete, so
    readers see the old export or the new one, never a half-written mix; and
    only if it is an earlier export of `task` (`check_export_dir`, checked
    again before the swap; else ConfigError and the old folder is left
    untouched). With a `task`, the folder gets its `task.json`.
    """
    given, final = final, Path(final).resolve()
    aside = f".{final.name}.old-"  # + time in ns: the newest sorts last
    if not final.exists():  # killed between the two renames below last time:
        kept = sorted(final.parent.glob(aside + "*"), key=_aside_time)
        if kept:  # the export set aside last (older ones may be half deleted)
            os.replace(kept[-1], final)
    final = check_export_dir(given, task)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f"{aside}{time.time_ns()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if task:
            (tmp / TASK_FILE).write_text(json.dumps({"task": task}) + "\n")
        check_export_dir(final, task)
        if final.exists():
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:  # the earlier export back, not deleted below
            if old.exists() and not final.exists():
                os.replace(old, final)
            raise
        for stale in final.parent.glob(aside + "*"):  # older leftovers too
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _aside_time(path: Path) -> int:
    """When `atomic_dir` set this export aside (ns; 0 for other names)."""
    stamp = path.name.rsplit("-", 1)[-1]
    return int(stamp) if stamp.isdigit() and len(stamp) > 12 else 0


INTERRUPTED = (
    "interrupted: the run folder keeps every finished epoch; continue with the "
    "same command plus --resume latest"
)
