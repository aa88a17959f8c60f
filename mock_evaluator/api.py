"""The Python API, for notebooks and scripts: what ``unlearning-mock`` and ``unlearning-mock leaderboard`` do,
returning the tables instead of printing them.

    from unlearning_mock.mock_evaluator.api import evaluate, leaderboard

    result = evaluate("my_method.py", num_models=64, dataset="digits")
    evaluate("kaggle_entry.ipynb", batches="kaggle", num_models=64)   # a notebook, fed the challenge's dict batches
    result.summary            # pandas DataFrame: a row per method, the oracle reference and the original
    result.per_example        # pandas DataFrame: a row per (method, forget example)
    result.paths              # every file written under ./outputs/<run name>/

    board = leaderboard(["fcs", "ft-kaggle"], num_models=64)
    board.frame               # the leaderboard as a DataFrame, with intervals

    study = tune("my_method.py", trials=30)        # or tune(method="msg"): an Optuna study on tuning seed 1
    study.best_options, study.command              # the options, and the command that scores them at N = 512

Every keyword of :class:`~mock_evaluator.evaluate.EvalConfig` is accepted (``seed``, ``device``, ``cache_dir``,
``workers``, ``executor``, ``baseline``, ``batches``, ``time_budget``, ``progress``, ``output_dir``, ``run_name``
...); an unknown one is a ``TypeError`` that lists them. ``batches`` ("kaggle" or "tuples") is the batch format of
every submission that names none; one names its own as ``(spec, options, batches)``. A method that breaks the contract does not raise: it is named in
``result.failures`` and the others are scored, as on the command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from unlearning_mock.mock_evaluator.evaluate import (DEFAULT_SUBMISSION, EvalConfig, Evaluation, EvaluationOutcome,
                                                     submission_entry)
from unlearning_mock.mock_evaluator.reports.report import per_example_frame, summary_frame, write_outputs

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(EvalConfig)} - {"submissions"}


@dataclass
class EvaluationResult:
    """What one evaluation produced."""

    summary: pd.DataFrame        # summary.csv
    per_example: pd.DataFrame    # per_example.csv
    folder: Path                 # where the report was written
    paths: list[Path]            # every file written
    failures: dict[str, str]     # method name -> what it did wrong (those methods are not in the tables)
    results: dict                # every figure (as results.json holds them, with MethodScore objects)
    outcome: EvaluationOutcome   # the same, typed: the scores and the figures they come from

    def __repr__(self) -> str:
        shown = self.summary.set_index("method")[["final_score", "forget_quality", "retain_acc", "test_acc"]]
        failed = f"\nfailed: {self.failures}" if self.failures else ""
        return f"EvaluationResult({self.folder})\n{shown.to_string(float_format=lambda v: f'{v:.4f}')}{failed}"


@dataclass
class LeaderboardResult:
    """What one leaderboard run produced."""

    frame: pd.DataFrame          # leaderboard.csv
    ranks: dict                  # rank agreement with the challenge's private leaderboard (Kendall, Spearman)
    folder: Path
    paths: list[Path]
    failures: dict[str, str]
    results: dict
    comparison: pd.DataFrame | None = None   # with tuned=: published and tuned rows side by side (tuned.csv)

    def __repr__(self) -> str:
        shown = self.frame.set_index("method")[["final_score", "final_low", "final_high"]]
        return f"LeaderboardResult({self.folder})\n{shown.to_string(float_format=lambda v: f'{v:.4f}')}"


def _config(submissions: tuple, settings: dict) -> EvalConfig:
    unknown = sorted(set(settings) - _CONFIG_FIELDS)
    if unknown:
        raise TypeError(f"unknown setting(s) {unknown}; accepted: {sorted(_CONFIG_FIELDS)}")
    return EvalConfig(submissions=submissions, **settings)


def _submission_specs(submissions) -> tuple:
    """``"file.py"``, ``"entry.ipynb"``, ``"methods.fcs"``, ``"baseline"``, ``(spec, {option: value})`` or
    ``(spec, {option: value}, batches)`` -> ``((spec, options, batches), ...)``."""
    specs = []
    for item in submissions or [DEFAULT_SUBMISSION]:
        spec, options, batches = (item, {}, None) if isinstance(item, (str, Path)) else submission_entry(item)
        if not isinstance(options, dict):
            raise TypeError(f"a submission is a spec, a (spec, options dict) pair or a (spec, options dict, batch "
                            f"format) triple, got {item!r}")
        specs.append((str(spec), dict(options), batches))
    return tuple(specs)


def evaluate(*submissions, log=print, **settings) -> EvaluationResult:
    """Score ``submissions`` (default: SRFL) like the challenge, with the oracle reference and the kit baseline;
    write the report under ``output_dir/run_name`` and return its tables. See the module's doc for the keywords."""
    config = _config(_submission_specs(submissions), settings)
    evaluation = Evaluation(config, log=log)
    outcome = evaluation.run()
    results = outcome.results()
    folder = evaluation.report_folder()
    paths = write_outputs(results, outcome.oracle_confidences, folder) if results["methods"] else []
    return EvaluationResult(summary=summary_frame(results), per_example=per_example_frame(results), folder=folder,
                            paths=paths, failures=dict(outcome.failures), results=results, outcome=outcome)


def leaderboard(methods=None, *, bootstrap: int = 100, tuned=None, log=print, **settings) -> LeaderboardResult:
    """Every registered method (or ``methods``, registry names) side by side with bootstrap intervals, with the
    setting's kit baseline as the row ``baseline`` (``baseline=False``: without it). ``tuned=True`` (the setting's
    tuned-options file in the repository) or a file's path: a tuned row beside each method that has tuned options
    (docs/tuning.md), and ``result.comparison``."""
    from unlearning_mock.mock_evaluator.leaderboard import run_leaderboard

    if isinstance(methods, str):
        methods = [methods]
    config = _config((), settings)
    names = list(methods) if methods else None
    if tuned:
        from unlearning_mock.mock_evaluator.tuned_leaderboard import run_tuned_leaderboard

        outcome = run_tuned_leaderboard(config, names, None if tuned is True else str(tuned), reps=bootstrap, log=log)
    else:
        outcome = run_leaderboard(config, names, reps=bootstrap, log=log)
    return LeaderboardResult(frame=outcome["frame"], ranks=outcome["ranks"], folder=outcome["folder"],
                             paths=outcome["paths"], failures=dict(outcome["failures"]), results=outcome["results"],
                             comparison=outcome.get("comparison"))


def tune(submission=None, *, method: str | None = None, options: dict | None = None, trials: int = 30,
         tuning_seed: int = 1, seed: int = 0, evaluation_models: int = 512, space=(), only=(), batches=None,
         record: str | None = None, log=print, **settings):
    """Tune one method -- a ``submission`` (file, notebook, module) or a registered ``method`` -- with an Optuna
    study of ``trials`` trials at ``num_models`` (default 32) on ``tuning_seed``; ``seed`` is the evaluation seed
    the result's command scores on (never tuned on). ``options`` stay fixed; ``space``: ranges that replace or add
    the derived ones (``"lr=1e-4:1e-1:log"`` or :class:`~mock_evaluator.tune_space.Dimension`), ``only``: the
    options to search. Resumes a study interrupted before. Returns a :class:`~mock_evaluator.tune.TuneResult`
    (docs/tuning.md)."""
    from unlearning_mock.mock_evaluator.tune import TUNING_MODELS, TuneRequest, registry_request, run_tune
    from unlearning_mock.mock_evaluator.tune_space import Dimension, parse_dimension

    if (submission is None) == (method is None):
        raise TypeError("tune one method: give a submission (file, notebook or module) or method='registered name'")
    fields = dict(trials=trials, evaluation_seed=seed, evaluation_models=evaluation_models,
                  overrides=tuple(d if isinstance(d, Dimension) else parse_dimension(d) for d in space),
                  only=tuple(only), record=record)
    request = (registry_request(method, options, **fields) if method is not None else
               TuneRequest(spec=str(submission), options=dict(options or {}), batches=batches, **fields))
    settings = {"num_models": TUNING_MODELS, **settings, "seed": tuning_seed, "baseline": False}
    return run_tune(_config((), settings), request, log=log)
