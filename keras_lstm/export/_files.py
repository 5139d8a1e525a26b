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


def check_target(path, overwrite: bool) -> pathlib.Path:
    """The target as a Path; raises if it exists and `overwrite` is False."""
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"'{path}' already exists; pass overwrite=True to replace it "
            "(it is left untouched)."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def temp_sibling(path: pathlib.Path, tag: str = "tmp") -> pathlib.Path:
    """A fresh hidden name in the same folder (same filesystem: rename is atomic)."""
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}")


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


def write_json(path: pathlib.Path, data: dict) -> None:
    """Writes `data` as JSON to a sibling temporary file, then renames it."""
    tmp = temp_sibling(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
    finally:
        remove(tmp)
