"""The CPU's model name, for benchmark reports (standard library only)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The first `model name` in /proc/cpuinfo, else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
