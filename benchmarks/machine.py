"""The CPU's model name, for benchmark reports (standard library only)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The first `model name` in /proc/cpuinfo with its family, model and
    whether it has AVX-512 (a name such as "AMD EPYC" covers several
    generations: family 25 model 17 is Zen 4, family 26 Zen 5), else what
    platform reports."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block only
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    details = [
        f"{label} {fields[key]}"
        for key, label in (("cpu family", "family"), ("model", "model"))
        if key in fields
    ]
    if "avx512f" in fields.get("flags", "").split():
        details.append("AVX-512")
    return f"{name} ({', '.join(details)})" if details else name
