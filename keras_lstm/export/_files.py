"""Atomic writes: build next to the target, verify, then rename into place."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import uuid


def report_path(path: pathlib.Path) -> pathlib.Path:
    """Where the JSON report of the artifact at `path` goes: `<path>.json`."""
    return path.with_name(path.name + ".json")


def check_target(path, overwrite: bool, kind: str) -> pathlib.Path:
    """The target as a Path, checked before anything is written.

    `kind` is what the export writes: `"folder"` (a SavedModel) or `"file"`.
    Without `overwrite` an existing target or report (`<path>.json`) raises
    `FileExistsError`. With it, only an export of the same kind is replaced: a
    file by a file, and a folder only if it is empty or a SavedModel (holds
    `saved_model.pb`), never a folder of other things (e.g. a task's
    `saved_models/<task>/`).
    """
    path = pathlib.Path(path)
    if not path.name or path.name in (".", ".."):
        raise ValueError(
            f"path {str(path)!r} names no file or folder; give the export's own "
            "path, e.g. 'saved_models/demo/serving' or 'saved_models/demo/m.tflite'."
        )
    blocking = next((p for p in path.parents if p.is_file()), None)
    if blocking is not None:
        raise NotADirectoryError(
            f"Cannot write '{path}': '{blocking}' is a file, not a folder."
        )
    report = report_path(path)
    existing = [p for p in (path, report) if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise FileExistsError(
            f"'{existing[0]}' already exists; pass overwrite=True to replace it "
            "(it is left untouched)."
        )
    if path.is_dir() and not path.is_symlink():
        if kind == "file":
            raise IsADirectoryError(
                f"'{path}' is a folder; the export writes a file there. Give "
                "the file's path (e.g. '<folder>/model.tflite'); the folder is "
                "left untouched."
            )
        if any(path.iterdir()) and not (path / "saved_model.pb").is_file():
            raise FileExistsError(
                f"'{path}' is a folder that is not a SavedModel (no "
                "saved_model.pb); overwrite=True replaces only a SavedModel. "
                "Give a new or a SavedModel folder; this one is left untouched."
            )
    elif kind == "folder" and (path.exists() or path.is_symlink()):
        what = "a symbolic link" if path.is_symlink() else "a file"
        raise FileExistsError(
            f"'{path}' is {what}; a SavedModel is a folder. Give another path; "
            f"the {what.split()[-1]} is left untouched."
        )
    if report.is_dir():
        raise IsADirectoryError(
            f"'{report}' (where the export's report goes) is a folder; left untouched."
        )
    return path


def temp_sibling(path: pathlib.Path, tag: str = "tmp") -> pathlib.Path:
    """A fresh hidden name in the same folder (same filesystem: rename is
    atomic). Creates the folder if needed: only now, so that an export
    rejected earlier leaves no folders behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def staged(path: pathlib.Path):
    """Yields a temporary sibling of `path` to write the export into. If the
    block raises, the sibling is removed, and so are the folders created for
    it (those that were missing and are still empty): a failed export leaves
    nothing behind."""
    missing = [p for p in path.parents if not p.exists()]  # deepest first
    tmp = temp_sibling(path)
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        for folder in missing:
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else wrote there) or gone
                break
        raise


def remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def install(tmp: pathlib.Path, path: pathlib.Path) -> None:
    """Moves the finished `tmp` to `path`.

    A file replaces a file in one `os.replace`. A folder (SavedModel) cannot
    atomically replace a non-empty folder, so the old one is first renamed aside
    and deleted only after the new one is in place (restored if that fails).
    """
    if not path.exists() or (path.is_file() and tmp.is_file()):
        os.replace(tmp, path)
        return
    backup = temp_sibling(path, "old")
    os.rename(path, backup)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(backup, path)
        raise
    remove(backup)


def install_with_report(tmp: pathlib.Path, path: pathlib.Path, text: str) -> None:
    """`install`s `tmp` at `path` and writes `text` to its report. The report
    is written to a temporary sibling first: a full disk fails there, leaving
    the earlier export and its report as they were (not the new export
    beside the old report)."""
    report = report_path(path)
    staged_report = temp_sibling(report)
    try:
        staged_report.write_text(text)
        install(tmp, path)
        os.replace(staged_report, report)
    finally:
        remove(staged_report)


def json_text(data: dict) -> str:
    """`data` as indented JSON; numpy scalars and arrays as numbers / lists."""

    def plain(value):
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(data, indent=2, sort_keys=False, default=plain) + "\n"
