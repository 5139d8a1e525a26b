"""The real corpora bundled under tasks/data/, checked against SHA256SUMS.

`read_bundled(name)` returns a file's bytes after checking its sha256 against
`tasks/data/SHA256SUMS` (the `sha256sum` format, so `cd tasks/data &&
sha256sum -c SHA256SUMS` checks them by hand too). A missing or corrupt file
raises an error that names the file and how to get it back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class BundledDataError(RuntimeError):
    """A bundled data file is missing or does not match its checksum."""


def expected_sha256(name: str, data_dir: Path = DATA_DIR) -> str:
    """The digest SHA256SUMS gives for `name` (text `digest  name` or binary
    `digest *name` lines, as `sha256sum` writes them)."""
    sums = data_dir / "SHA256SUMS"
    try:
        lines = sums.read_text().splitlines()
    except OSError as error:
        raise BundledDataError(
            f"cannot read {sums} ({error.strerror or error}): restore it with "
            "`git checkout -- tasks/data/SHA256SUMS`"
        ) from None
    for line in lines:
        digest, _, filename = line.strip().partition(" ")
        if filename.strip().removeprefix("*") == name:
            return digest
    raise BundledDataError(f"{name} is not listed in {sums}")


def read_bundled(name: str, data_dir: Path = DATA_DIR) -> bytes:
    """The bytes of `tasks/data/<name>`, verified.

    Raises:
        BundledDataError: the file is missing or its sha256 differs from the
            one in SHA256SUMS; the message names the file and the fix.
    """
    path = data_dir / name
    fix = (
        f"restore it with `git checkout -- tasks/data/{name}` or rebuild it with "
        f"the script named in {data_dir / 'PROVENANCE.md'}"
    )
    if not path.is_file():
        raise BundledDataError(f"bundled data file {path} is missing: {fix}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    expected = expected_sha256(name, data_dir)
    if actual != expected:
        raise BundledDataError(
            f"bundled data file {path} is corrupt (sha256 {actual}, expected "
            f"{expected} from SHA256SUMS): {fix}"
        )
    return data
