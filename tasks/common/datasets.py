"""Canonical datasets that download (IMDB, Tiny Shakespeare, Jena climate).

The bundled corpora are the defaults because many machines (this project's
build machines among them) cannot reach the canonical sources. `tfds_load`
reads a tfds dataset from the TFDS data directory and downloads it only when
it is missing there and its download host answers, so an offline machine stops
at once with one line that names the dataset, the folder and how to fill it,
instead of retrying for minutes and ending in a ConnectionError traceback.
"""

from __future__ import annotations

import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Sequence


class DatasetError(RuntimeError):
    """A canonical dataset is neither cached nor downloadable, or a given file
    is not in its format; the message names the dataset, where it was looked
    for and how to get it there."""


def unreachable(urls: Sequence[str], timeout: float = 5.0) -> str | None:
    """Why the first unreachable host among `urls` cannot be reached, or None.

    With a proxy configured (`*_proxy` variables) the download may work where a
    direct connection does not, so nothing is tested then.
    """
    if urllib.request.getproxies():
        return None
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
        except OSError as error:
            return f"cannot connect to {parts.hostname}:{port}: {error}"
    return None


def _damage_errors() -> tuple[type[Exception], ...]:
    """What tfds.load raises for a prepared dataset folder whose files are
    damaged or missing: a garbled JSON (protobuf's ParseError, or a
    JSONDecodeError, a ValueError), no data files (KeyError: its splits are
    empty), unreadable files (OSError; TensorFlow's OpError such as
    DataLossError). Not a TypeError or MemoryError, which are not the data's."""
    import tensorflow as tf
    from google.protobuf import json_format

    return (json_format.Error, ValueError, KeyError, OSError, tf.errors.OpError)


def tfds_load(
    name: str, splits: Sequence[str], data_dir: str | None = None, **kwargs: Any
) -> list:
    """`tfds.load(name, split=s, **kwargs)` for each split, offline-safe.

    Reads the prepared dataset from `data_dir` (default: tfds' own,
    `TFDS_DATA_DIR` or ~/tensorflow_datasets). When it is not there, downloads
    and prepares it, unless its download host cannot be reached.

    Raises:
        DatasetError: not in `data_dir` and the download is impossible or
            fails; the message says how to put the dataset there.
    """
    import tensorflow_datasets as tfds

    def load() -> list:
        return [
            tfds.load(name, split=s, data_dir=data_dir, download=False, **kwargs)
            for s in splits
        ]

    try:
        return load()
    except AssertionError:  # tfds: "could not find data in <data_dir>"
        builder = tfds.builder(name, data_dir=data_dir)
        if builder.is_prepared():
            raise
    except _damage_errors() as error:  # there, but damaged or incomplete
        folder = data_dir or tfds.core.constants.DATA_DIR
        if not (Path(folder) / name).exists():
            raise
        first_line = (str(error).splitlines() or [""])[0][:200]
        raise DatasetError(
            f"tfds dataset '{name}' in the TFDS data dir {folder} cannot be read "
            f"({type(error).__name__}: {first_line}): delete {folder}/{name} "
            "and download or copy it again"
        ) from error
    folder = builder.data_dir_root
    fix = (
        'on a machine with internet access run `python -c "import '
        f"tensorflow_datasets as tfds; tfds.builder('{name}').download_and_prepare()"
        f'"` and copy ~/tensorflow_datasets/{name} into {folder} (or point '
        "TFDS_DATA_DIR at a folder that holds it)"
    )
    why = unreachable(list(builder.url_infos or {}))
    if why:
        raise DatasetError(
            f"tfds dataset '{name}' is not in the TFDS data dir {folder} and cannot "
            f"be downloaded ({why}): {fix}"
        )
    try:
        builder.download_and_prepare()
    except OSError as error:  # requests' ConnectionError is an OSError too
        first_line = (str(error).splitlines() or [""])[0][:200]
        raise DatasetError(
            f"tfds dataset '{name}' is not in the TFDS data dir {folder} and its "
            f"download failed ({type(error).__name__}: {first_line}): {fix}"
        ) from error
    return load()
