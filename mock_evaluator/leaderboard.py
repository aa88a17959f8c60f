"""``python -m mock_evaluator leaderboard``: every registered method scored side by side, with uncertainty.

Every method of :mod:`methods.registry` (or ``--methods a,b,c``) runs N times against the same cached
oracle set A with the same seeds (run *i* of every method shares its seed), next to the oracle reference
(exact retraining, oracle set B) and the untouched original. Runs are cached and resumable exactly as in
``make evaluate``: a second call with one new method trains only that method's runs. Each final score and
F carries a paired-bootstrap interval (:mod:`mock_evaluator.scoring.uncertainty`); neighbouring rows say whether
their difference is larger than that uncertainty; Kendall's τ and Spearman's ρ compare the order of the
Kaggle methods (plus the Kaggle sample fine-tune) with the challenge's private leaderboard. Beside the
challenge's score, every row has the per-example likelihood-ratio attack (:mod:`mock_evaluator.scoring.lira`:
AUC, TPR at 1% and 0.1% FPR, worst-5% accuracy, each with its paired-bootstrap interval) and the spread
ratio and mean shift that say why a method scores what it scores.

The rows are built here from the evaluation's outcome (:class:`~mock_evaluator.evaluate.EvaluationOutcome`);
:mod:`mock_evaluator.reports.leaderboard_report` writes them to ``OUTPUT_DIR/leaderboard-<dataset>-n<N>-seed<S>/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation
from unlearning_mock.mock_evaluator.engine.figures import stack_figures
from unlearning_mock.mock_evaluator.method import BASELINE, Method, method_from_spec
from unlearning_mock.mock_evaluator.reports.leaderboard_report import write_leaderboard
from unlearning_mock.mock_evaluator.reports.report import ORACLE, ORIGINAL
from unlearning_mock.mock_evaluator.scoring.attacks import ATTACKS
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.mock_evaluator.scoring.uncertainty import bootstrap_scores, interval, rank_agreement, separated

ATTACK_COLUMNS = [column for attack in ATTACKS for column in (
    *attack.columns, *[f"{column}_{end}" for column in attack.columns for end in ("low", "high")], *attack.diagnostics)]
"""Every attack's columns, their intervals and its diagnostics (the likelihood-ratio attack's first)."""
COLUMNS = ["rank", "method", "family", "final_score", "final_low", "final_high", "forget_quality", "f_low", "f_high",
           "retain_acc", "forget_acc", "test_acc", "attack_accuracy", *ATTACK_COLUMNS,
           "time_fraction", "time_from_calls", "over_budget", "separated_from_next", "private_rank", "private_score",
           "description"]


_REFERENCE_ROWS = {ORACLE: ("reference", "exact retraining (oracle set B) scored like a method"),
                   ORIGINAL: ("original", "the model before unlearning")}
"""family and description of the rows that are not registered methods (the kit baseline's come from the setting)."""


def registered_methods(names: list[str] | None = None) -> list[Method]:
    """The registry's methods (all, or ``names`` in that order); an unknown name lists the known ones."""
    from unlearning_mock.methods.registry import METHODS, get_entry

    entries = [get_entry(name) for name in (names or list(METHODS))]
    return [method_from_spec(entry.module, entry.options, name=entry.name) for entry in entries]


def leaderboard_folder(config: EvalConfig) -> Path:
    return Path(config.output_dir) / (config.run_name or f"leaderboard-{config.dataset}-n{config.num_models}-seed{config.seed}")


def run_leaderboard(config: EvalConfig, names: list[str] | None = None, reps: int = 100, log=print,
                    extra: tuple = ()) -> dict:
    """Score the methods, bootstrap the intervals, write every output; return ``{"frame", "ranks", "folder",
    "paths", "failures", "results"}`` (``paths``: the files written). ``extra``: more rows, each ``(method, family,
    description)`` (the tuned rows of :mod:`mock_evaluator.tuned_leaderboard`)."""
    from unlearning_mock.methods.registry import METHODS

    methods = registered_methods(names) + [method for method, _, _ in extra]
    described = {method.name: (family, description) for method, family, description in extra}
    if config.baseline:   # the setting's kit baseline, as `evaluate` scores it (mnist-groups: the calibrated fine-tune)
        methods.append(method_from_spec(BASELINE, name=BASELINE))
    outcome = Evaluation(config, methods=methods, log=log).run()
    results = outcome.results()
    n = config.num_models
    figures = {name: outcome.run_figures[name] for name in outcome.methods}
    figures[ORACLE] = outcome.oracle_b
    figures[ORIGINAL] = stack_figures([outcome.original_figures] * n)
    scores = outcome.scores
    scores[ORIGINAL] = score_method(ORIGINAL, figures[ORIGINAL], outcome.oracle_a, config.attack_models)
    log(f"bootstrapping {reps} replicates of {len(figures)} rows ...")
    boot = bootstrap_scores(figures, outcome.oracle_a, reps, seed=config.seed)
    attack_boot = {attack.name: attack.bootstrap(figures, outcome.oracle_a, reps, config.seed)
                   for attack in ATTACKS if n >= attack.min_models}
    rows = []
    for name, score in scores.items():
        entry = METHODS.get(name)
        final_low, final_high = interval(boot[name][:, 0], score.final_score)
        f_low, f_high = interval(boot[name][:, 1], score.forget_quality)
        attacks = {}
        for attack in ATTACKS:
            row = score.attacks.get(attack.name)
            if row is None:
                continue
            for k, column in enumerate(attack.columns):
                low, high = interval(attack_boot[attack.name][name][:, k], row[column], upper=attack.upper)
                attacks.update({column: row[column], f"{column}_low": low, f"{column}_high": high})
            attacks.update({column: row[column] for column in attack.diagnostics})
        family, description = ((entry.family, entry.description) if entry else described.get(name) or _REFERENCE_ROWS.get(
            name, ("baseline", f"the setting's kit baseline: {outcome.setting['baseline']}")))
        rows.append({
            "method": name, "family": family,
            "final_score": score.final_score, "final_low": final_low, "final_high": final_high,
            "forget_quality": score.forget_quality, "f_low": f_low, "f_high": f_high,
            "retain_acc": score.retain_acc, "forget_acc": score.forget_acc, "test_acc": score.test_acc,
            "attack_accuracy": score.attack_accuracy, **attacks, "time_fraction": score.time_fraction,
            # a fused kit baseline's time comes from a few timed one-model calls: how many (else empty)
            "time_from_calls": score.timed_calls if (score.timed_calls or n) < n else None,
            "over_budget": score.over_budget, "private_rank": entry.private_rank if entry else None,
            "private_score": entry.private_score if entry else None,
            "description": description,
        })
    frame = pd.DataFrame(rows).sort_values("final_score", ascending=False, kind="stable").reset_index(drop=True)
    final = dict(zip(frame["method"], frame["final_score"]))
    frame["rank"] = np.arange(1, len(frame) + 1)
    following = list(frame["method"][1:]) + [None]
    frame["separated_from_next"] = [
        separated(boot[a][:, 0], boot[b][:, 0], final[a] - final[b]) if b is not None else None
        for a, b in zip(frame["method"], following)]
    frame = frame.reindex(columns=COLUMNS)    # an attack's columns stay empty below its min_models models
    ranked = {name: METHODS[name].private_rank for name in METHODS if METHODS[name].private_rank is not None}
    try:
        ranks = rank_agreement(final, ranked)
    except ValueError as error:  # fewer than three ranked methods were asked for
        ranks = {"note": str(error)}
    folder = leaderboard_folder(config)
    attack_rows = {name: scores[name].attacks for name in frame["method"]}   # in the table's order (roc.png)
    paths = write_leaderboard(frame, ranks, results, folder, reps, attack_rows)
    return {"frame": frame, "ranks": ranks, "folder": folder, "paths": paths, "failures": outcome.failures,
            "results": results}
