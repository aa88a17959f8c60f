"""What one unlearning call may use: seconds (``--run-timeout``) and memory (``--run-memory``).

The limits travel with each job; the worker that runs the call enforces them (:mod:`.isolation`), so they
hold the same under every engine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MEMORY_FRACTION = 4
"""The default memory limit of a call is the machine's memory divided by this (a quarter)."""


@dataclass(frozen=True)
class Limits:
    seconds: float | None = None      # counted from the moment the submission's module starts loading
    memory: int | None = None         # bytes the call may allocate beyond what its worker already holds


def parse_memory(text: str) -> int:
    """``"2GB"`` -> 2e9 bytes, ``"512MiB"`` -> 512 * 2**20; a ValueError saying how to write it otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if unit not in UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"--run-memory {text!r}: give a positive size with a unit, e.g. 2GB, 512MB or 1.5GiB "
                         "(KB, MB, GB, TB count in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024)")
    return int(float(match.group(1)) * UNITS[unit])


def machine_memory() -> int:
    """Bytes of physical memory on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def default_memory() -> int:
    return machine_memory() // MEMORY_FRACTION


def format_bytes(count: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} B"
