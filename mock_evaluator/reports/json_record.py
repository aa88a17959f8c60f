"""Values as the reports' JSON files hold them (``results.json``, ``leaderboard.json``)."""

from __future__ import annotations

import numpy as np


def jsonable(value):
    """``value`` in plain JSON types: arrays as lists, numpy scalars as Python ones, a score as its ``summary()``,
    an infinite or NaN float as None; dicts and sequences converted through."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "summary") and callable(value.summary):
        return jsonable(value.summary())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
