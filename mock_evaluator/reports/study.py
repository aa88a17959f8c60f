"""What a tuning study leaves behind (``unlearning-mock tune``): ``trials.csv`` (a row per trial: its options, state,
score and the figures behind it), ``best.json`` (the best options, the commands, the budget, which options mattered)
and ``tune.png`` (the score of each trial with the best so far, and the options' importances)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from unlearning_mock.mock_evaluator.reports.json_record import jsonable

MIN_SCORED = 3   # scored trials before the importances say anything
STATES = {"COMPLETE": "scored", "PRUNED": "infeasible (over the time budget)", "FAIL": "failed"}


def trials_frame(study) -> pd.DataFrame:
    """A row per finished or interrupted trial: number (from 1), state, score, the options searched, user figures."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name not in STATES:
            continue
        interrupted = trial.state.name == "FAIL" and "error" not in trial.user_attrs
        rows.append({"trial": trial.number + 1, "state": "interrupted" if interrupted else STATES[trial.state.name],
                     "score": trial.value,
                     "seconds": trial.duration.total_seconds() if trial.duration is not None else None,
                     **{f"option {k}": v for k, v in trial.params.items()},
                     **{k: v for k, v in trial.user_attrs.items() if k not in ("infeasible", "start", "resumes")}})
    return pd.DataFrame(rows)


def importances(study) -> dict[str, float]:
    """How much each option mattered to the score (Optuna's default importance evaluator over the scored trials);
    empty when too few trials were scored to tell."""
    import optuna

    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < MIN_SCORED:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "too few trials": the result says so by being even
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (ValueError, RuntimeError):   # one point of the space only
            return {}


def write_study_outputs(study, summary: dict, folder: Path) -> tuple[pd.DataFrame, list[Path]]:
    """``trials.csv``, ``best.json`` (``summary`` and the importances) and ``tune.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study)
    frame.to_csv(folder / "trials.csv", index=False)
    mattered = importances(study)
    (folder / "best.json").write_text(json.dumps(jsonable({**summary, "importances": mattered}), indent=2) + "\n")
    plot = plot_study(frame, mattered, summary, folder / "tune.png")
    return frame, [folder / "trials.csv", folder / "best.json", plot]


def plot_study(frame: pd.DataFrame, mattered: dict[str, float], summary: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    scored = frame[frame["state"] == "scored"] if len(frame) else frame
    if len(scored):
        left.scatter(scored["trial"], scored["score"], color="tab:blue", label="scored trial")
        best = np.maximum.accumulate(scored["score"].to_numpy())
        left.step(scored["trial"], best, where="post", color="tab:green", label="best so far")
    others = frame[frame["state"] != "scored"] if len(frame) else frame
    floor = float(scored["score"].min()) if len(scored) else 0.0
    for state, marker in (("infeasible (over the time budget)", "x"), ("failed", "v"), ("interrupted", ".")):
        rows = others[others["state"] == state] if len(others) else others
        if len(rows):
            left.scatter(rows["trial"], [floor] * len(rows), marker=marker, color="tab:red", label=state)
    left.set_xlabel("trial")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("final score")
    left.set_title(f"{summary['method']}: N = {summary['num_models']}, tuning seed {summary['tuning_seed']}",
                   fontsize=10)
    left.legend(fontsize=8)
    if mattered:
        names = list(mattered)[::-1]
        right.barh(names, [mattered[n] for n in names], color="tab:purple")
        right.set_xlabel("importance: share of the score's variation\n(Optuna's importance evaluator)")
    else:
        right.text(0.5, 0.5, "too few scored trials\nto tell which options mattered", ha="center", va="center")
        right.set_axis_off()
    right.set_title("the options that mattered", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
