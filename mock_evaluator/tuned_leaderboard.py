"""``unlearning-mock leaderboard --tuned``: the leaderboard with each method's tuned options beside its published ones.

Every asked-for method that has tuned options for the setting (:mod:`mock_evaluator.tuned_options`, by default the
repository's ``methods/tuned/<setting>.json``) gets a second row, ``NAME (tuned)``, scored against the same oracles
with the same seeds as every other row (:func:`~mock_evaluator.leaderboard.run_leaderboard`); where no trial beat the
published options, the tuned row is the published row's runs (an evaluation runs a method's code and options once,
whatever it is named). Beside the leaderboard:
a side-by-side table (written by :mod:`mock_evaluator.reports.tuned_report`), a row per method with both (published and tuned final score with their intervals, the change,
the tuned options), the trial budget the tuned options came from (every method's, said once when it is the same for
all), and Kendall's τ against the private leaderboard with each method at its tuned options. Written next to the
leaderboard's files as ``tuned.csv`` and ``tuned.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unlearning_mock.mock_evaluator.evaluate import EvalConfig
from unlearning_mock.mock_evaluator.leaderboard import run_leaderboard
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.mock_evaluator.reports.tuned_report import write_comparison
from unlearning_mock.mock_evaluator.scoring.uncertainty import rank_agreement
from unlearning_mock.mock_evaluator.tune_space import entry_points
from unlearning_mock.mock_evaluator.tuned_options import default_tuned_file, options_text, read_tuned
from unlearning_mock.starter_kit.settings import load_setting

TUNED = " (tuned)"


def tuned_name(name: str) -> str:
    return name + TUNED


def run_tuned_leaderboard(config: EvalConfig, names: list[str] | None = None, tuned_file: str | None = None,
                          reps: int = 100, log=print) -> dict:
    """The leaderboard of ``names`` (default: every registered method) with a tuned row for each that has tuned
    options in ``tuned_file`` (default: the setting's file in the repository). Returns
    :func:`~mock_evaluator.leaderboard.run_leaderboard`'s dict with ``"comparison"`` (the side-by-side frame),
    ``"budget"`` (the sentence on the trial budget) and ``"tuned_ranks"`` (rank agreement at the tuned options)."""
    from unlearning_mock.methods.registry import METHODS, get_entry

    path = Path(tuned_file) if tuned_file else default_tuned_file(config.dataset)
    tuned = read_tuned(path, config.dataset)
    asked = names or list(METHODS)
    unknown = sorted(set(tuned) - set(METHODS))
    if unknown:
        raise ValueError(f"{path} holds tuned options of {unknown}, which are not registered methods")
    chosen = {name: tuned[name] for name in asked if name in tuned}
    if not chosen:
        raise ValueError(f"none of the methods asked for ({', '.join(asked)}) has tuned options in {path}; it has "
                         f"{', '.join(tuned) or 'none'}")
    tuned_on = sorted(name for name, entry in chosen.items() if entry["tuning_seed"] == config.seed)
    if tuned_on:
        raise ValueError(f"seed {config.seed} is the tuning seed of the tuned options of {', '.join(tuned_on)} in "
                         f"{path}: scored on the seed they were chosen on, they would look better than they are; "
                         f"score them on another --seed (the evaluation seed is 0)")
    extra = []
    published = published_options(list(chosen), config)
    for name, entry in chosen.items():
        registered = get_entry(name)
        same = all(key in published[name] and published[name][key] == value for key, value in entry["options"].items())
        options = registered.options if same else {**registered.options, **entry["options"]}   # same: the same runs
        method = method_from_spec(registered.module, options, name=tuned_name(name))
        extra.append((method, registered.family, f"{registered.description}; tuned ({entry['trials']} trials)"))
    outcome = run_leaderboard(config, names, reps, log, extra=tuple(extra))
    comparison = side_by_side(outcome["frame"], chosen)
    budget = budget_sentence(chosen, path, config)
    final = dict(zip(outcome["frame"]["method"], outcome["frame"]["final_score"]))
    at_tuned = {name: final.get(tuned_name(name), score) for name, score in final.items()}
    ranked = {name: entry.private_rank for name, entry in METHODS.items() if entry.private_rank is not None}
    try:
        tuned_ranks = rank_agreement(at_tuned, ranked)
    except ValueError as error:
        tuned_ranks = {"note": str(error)}
    return {**outcome, "paths": outcome["paths"] + write_comparison(comparison, budget, tuned_ranks, outcome["folder"]),
            "comparison": comparison, "budget": budget, "tuned_ranks": tuned_ranks}


def published_options(names: list[str], config: EvalConfig) -> dict[str, dict]:
    """Each registered method's options as published for the setting: its entry point's defaults (read in a child
    process) with the registry's options over them."""
    from unlearning_mock.methods.registry import get_entry

    profile = load_setting(config.dataset, config.data_dir, **config.setting_options).profile
    entries = [get_entry(name) for name in names]
    read = entry_points([method_from_spec(e.module, e.options, name=e.name) for e in entries], profile)
    return {e.name: {**point.defaults, **e.options} for e, point in zip(entries, read)}


def side_by_side(frame: pd.DataFrame, tuned: dict[str, dict]) -> pd.DataFrame:
    """A row per method scored both ways: its published and tuned final score (with intervals), F, the change."""
    rows = frame.set_index("method")
    out = []
    for name, entry in tuned.items():
        if name not in rows.index or tuned_name(name) not in rows.index:   # one of the two failed
            continue
        published, mine = rows.loc[name], rows.loc[tuned_name(name)]
        out.append({"method": name, "published": published["final_score"], "published_low": published["final_low"],
                    "published_high": published["final_high"], "tuned": mine["final_score"],
                    "tuned_low": mine["final_low"], "tuned_high": mine["final_high"],
                    "change": mine["final_score"] - published["final_score"],
                    "published_f": published["forget_quality"], "tuned_f": mine["forget_quality"],
                    "tuned_time_fraction": mine["time_fraction"], "tuned_over_budget": mine["over_budget"],
                    "trials": entry["trials"], "tuning_seed": entry["tuning_seed"], "tuning_n": entry["num_models"],
                    "options": options_text(entry["options"])})
    columns = ["method", "published", "published_low", "published_high", "tuned", "tuned_low", "tuned_high", "change",
               "published_f", "tuned_f", "tuned_time_fraction", "tuned_over_budget", "trials", "tuning_seed",
               "tuning_n", "options"]
    return pd.DataFrame(out, columns=columns).sort_values("tuned", ascending=False, kind="stable").reset_index(drop=True)


def budget_sentence(tuned: dict[str, dict], path: Path, config: EvalConfig) -> str:
    """The trial budget behind the tuned rows, once when every method had the same, and where both rows were scored."""
    budgets = {(e["trials"], e["num_models"], e["tuning_seed"], e.get("time_budget")) for e in tuned.values()}
    said = [f"{trials} trials at N = {n} on tuning seed {seed}" + (f", time budget {b}" if b is not None else "")
            for trials, n, seed, b in sorted(budgets, key=str)]
    scored = f"Published and tuned rows scored at N = {config.num_models} on seed {config.seed}."
    if len(said) == 1:
        return f"Every tuned row: the best of {said[0]} ({path.name}). {scored}"
    return f"The tuned rows had DIFFERENT budgets ({'; '.join(said)}; {path.name}): compare them with care. {scored}"
