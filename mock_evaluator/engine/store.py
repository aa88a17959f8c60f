"""Finished work on disk: small ``.npz`` files written atomically and verified when read.

Every file carries a SHA-256 of its arrays; a file that is truncated, corrupt or fails the check is
reported as missing (and deleted), so the work is redone rather than trusted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

CHECKSUM_KEY = "__sha256__"


def _checksum(arrays: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save_arrays(path: Path, arrays: dict) -> None:
    """Write ``arrays`` (name -> array) to ``path`` atomically, with a checksum."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        np.savez(handle, **arrays, **{CHECKSUM_KEY: np.array(_checksum(arrays))})
        temp = handle.name
    os.replace(temp, path)


def load_arrays(path: Path) -> dict | None:
    """The arrays saved at ``path``, or None when it is missing or fails its check (then it is removed)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        expected = str(arrays.pop(CHECKSUM_KEY))
        if _checksum(arrays) != expected:
            raise ValueError("checksum mismatch")
        return arrays
    except Exception:
        path.unlink(missing_ok=True)
        return None
