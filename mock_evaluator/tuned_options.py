"""The tuned options of a setting: one JSON file per setting, kept in the repository, written by
``unlearning-mock tune --record FILE`` and read by ``unlearning-mock leaderboard --tuned``.

The file (``methods/tuned/<setting>.json`` by default, :func:`default_tuned_file`) holds, per registered method,
the options its study found best and how they were found -- the tune command, its trial budget, the tuning seed
and N, the time budget, the best score at the tuning seed and the defaults' score (its first trial), which trial was
best, how many trials were scored, infeasible or failed, and the study's time -- so that every tuned row of a
leaderboard can be reproduced and every method can be seen to have had the same budget::

    {"setting": "mnist-groups",
     "methods": {"msg": {"options": {"lr_high": 0.0031, ...}, "trials": 20, "tuning_seed": 1, "num_models": 32,
                         "time_budget": 0.2, "tuning_score": 0.061, "defaults_score": 0.034, "best_trial": 19,
                         "trial_states": {"scored": 18, "infeasible (over the time budget)": 2}, "study_seconds": 1700.0,
                         "command": "unlearning-mock tune --method msg --trials 20 ..."}}}
"""

from __future__ import annotations

import json
from pathlib import Path

from unlearning_mock.mock_evaluator.sources import PROJECT_ROOT

TUNED_FOLDER = PROJECT_ROOT / "methods" / "tuned"
REQUIRED = ("options", "trials", "tuning_seed", "num_models", "command")


def value_text(value) -> str:
    """An option's value as written on a command line or in a table: a string as it is, anything else its repr."""
    return value if isinstance(value, str) else repr(value)


def options_text(options: dict) -> str:
    """``options`` as one line, ``name=value`` with floats at 4 significant digits (progress lines, tables)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={value_text(v)}" for k, v in options.items())


def default_tuned_file(setting: str) -> Path:
    """Where the repository keeps ``setting``'s tuned options."""
    return TUNED_FOLDER / f"{setting}.json"


def read_tuned(path: Path, setting: str) -> dict[str, dict]:
    """Registry name -> its entry (see the module doc) from the tuned-options file ``path`` of ``setting``; a missing
    file, another setting's file or an entry without its options and provenance is a ``ValueError`` saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no tuned options for the {setting} setting at {path}: tune the methods first "
                         f"(make tune-all DATASET={setting}, or unlearning-mock tune --method NAME --record {path})")
    content = json.loads(path.read_text())
    if content.get("setting") != setting:
        raise ValueError(f"{path} holds the tuned options of the {content.get('setting')!r} setting, not {setting!r}")
    methods = content.get("methods", {})
    for name, entry in methods.items():
        missing = [key for key in REQUIRED if key not in entry]
        if missing:
            raise ValueError(f"{path}: the entry of {name} lacks {missing}; tune it again with --record")
    return methods


def record_tuned(path: Path, setting: str, name: str, entry: dict) -> Path:
    """Write ``entry`` (with every key of :data:`REQUIRED`) as ``name``'s tuned options in ``path`` (made if missing,
    other methods' entries kept)."""
    path = Path(path)
    content = {"setting": setting, "methods": read_tuned(path, setting) if path.is_file() else {}}
    content["methods"][name] = entry
    content["methods"] = dict(sorted(content["methods"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path
