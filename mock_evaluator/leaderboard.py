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

Outputs in ``OUTPUT_DIR/leaderboard-<dataset>-n<N>-seed<S>/``: ``leaderboard.csv``, ``leaderboard.md``,
``leaderboard.png``, ``roc.png``, ``rank_transfer.csv``, ``rank_transfer.png`` (when at least three ranked
methods were scored) and ``leaderboard.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation
from unlearning_mock.mock_evaluator.scoring.figures import stack_figures
from unlearning_mock.mock_evaluator.method import BASELINE, Method, method_from_spec
from unlearning_mock.mock_evaluator.reports.report import DIAGNOSTICS, ORACLE, ORIGINAL, _jsonable
from unlearning_mock.mock_evaluator.reports.roc import plot_roc
from unlearning_mock.mock_evaluator.scoring.lira import LIRA_COLUMNS, MIN_MODELS, ROC_GRID, ROW_ARRAYS
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.mock_evaluator.scoring.uncertainty import (bootstrap_lira, bootstrap_scores, interval, rank_agreement,
                                                                separated)

LIRA_INTERVALS = [f"{column}_{end}" for column in LIRA_COLUMNS for end in ("low", "high")]
COLUMNS = ["rank", "method", "family", "final_score", "final_low", "final_high", "forget_quality", "f_low", "f_high",
           "retain_acc", "forget_acc", "test_acc", "attack_accuracy", *LIRA_COLUMNS, *LIRA_INTERVALS, *DIAGNOSTICS,
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
    evaluation = Evaluation(config, methods=methods, log=log)
    results = evaluation.run()
    n = config.num_models
    figures = {name: evaluation.run_figures[name] for name in results["methods"] if name in evaluation.run_figures}
    figures[ORACLE] = evaluation.oracle_b
    figures[ORIGINAL] = stack_figures([evaluation.original_figures] * n)
    scores = dict(results["methods"])
    scores[ORIGINAL] = score_method(ORIGINAL, figures[ORIGINAL], evaluation.oracle_a, config.attack_models)
    log(f"bootstrapping {reps} replicates of {len(figures)} rows ...")
    boot = bootstrap_scores(figures, evaluation.oracle_a, reps, seed=config.seed)
    lira_boot = bootstrap_lira(figures, evaluation.oracle_a, reps, seed=config.seed) if n >= MIN_MODELS else {}
    rows = []
    for name, score in scores.items():
        entry = METHODS.get(name)
        final_low, final_high = interval(boot[name][:, 0], score.final_score)
        f_low, f_high = interval(boot[name][:, 1], score.forget_quality)
        lira = {}
        if score.lira is not None:
            for k, column in enumerate(LIRA_COLUMNS):
                estimate = score.lira[column]
                low, high = interval(lira_boot[name][:, k], estimate, upper=1.0)
                lira.update({column: estimate, f"{column}_low": low, f"{column}_high": high})
            lira.update({column: score.lira[column] for column in DIAGNOSTICS})
        family, description = ((entry.family, entry.description) if entry else described.get(name) or _REFERENCE_ROWS.get(
            name, ("baseline", f"the setting's kit baseline: {evaluation.setting.baseline_name}")))
        rows.append({
            "method": name, "family": family,
            "final_score": score.final_score, "final_low": final_low, "final_high": final_high,
            "forget_quality": score.forget_quality, "f_low": f_low, "f_high": f_high,
            "retain_acc": score.retain_acc, "forget_acc": score.forget_acc, "test_acc": score.test_acc,
            "attack_accuracy": score.attack_accuracy, **lira, "time_fraction": score.time_fraction,
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
    frame = frame.reindex(columns=COLUMNS)    # the LiRA columns stay empty below lira.MIN_MODELS models
    ranked = {name: METHODS[name].private_rank for name in METHODS if METHODS[name].private_rank is not None}
    try:
        ranks = rank_agreement(final, ranked)
    except ValueError as error:  # fewer than three ranked methods were asked for
        ranks = {"note": str(error)}
    folder = leaderboard_folder(config)
    curves = {name: scores[name].lira for name in frame["method"]}     # roc.png's panels in the table's order
    paths = write_leaderboard(frame, ranks, results, folder, reps, curves)
    return {"frame": frame, "ranks": ranks, "folder": folder, "paths": paths, "failures": results["failures"],
            "results": results}


# ------------------------------------------------------------------------------------------------
# Outputs
# ------------------------------------------------------------------------------------------------

def _fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _private(row) -> str:
    """``rank (score)``, ``rank`` or nothing: where the method stood on the private leaderboard."""
    rank, score = row["private_rank"], row.get("private_score")
    if pd.isna(rank):
        return ""
    return f"{int(rank)}" + ("" if score is None or pd.isna(score) else f" ({score:.4f})")


def _with_interval(value, low, high, digits: int = 3) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def rank_sentence(ranks: dict) -> str:
    """One line on the rank agreement (:func:`~mock_evaluator.scoring.uncertainty.rank_agreement`), or why none."""
    if "kendall_tau" not in ranks:
        return f"No rank agreement with the private leaderboard: {ranks.get('note', 'too few ranked methods')}."
    return (f"Rank agreement with the private leaderboard over {len(ranks['methods'])} methods "
            f"({', '.join(ranks['methods'])}): Kendall τ = {ranks['kendall_tau']:.3f} (p = {ranks['kendall_p']:.3f}), "
            f"Spearman ρ = {ranks['spearman_rho']:.3f} (p = {ranks['spearman_p']:.3f}).")


def markdown_table(frame: pd.DataFrame, ranks: dict | None = None) -> str:
    """The leaderboard as a Markdown table, ready to paste, with the rank agreement (``ranks``) under it."""
    header = ["#", "method", "final score [95% CI]", "F [95% CI]", "retain", "forget", "test", "attack",
              "LiRA AUC [95% CI]", "TPR @ 1% FPR [95% CI]", "TPR @ 0.1% FPR", "worst-5% acc.", "spread", "shift",
              "time frac.", "> next?", "private rank (score)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.to_dict("records"):
        time = (_fmt(row["time_fraction"], 3) + ("*" if not pd.isna(row.get("time_from_calls")) else "")
                + (" **OVER**" if row["over_budget"] else ""))
        lines.append("| " + " | ".join([
            str(row["rank"]), row["method"],
            _with_interval(row["final_score"], row["final_low"], row["final_high"], 4),
            _with_interval(row["forget_quality"], row["f_low"], row["f_high"], 4),
            _fmt(row["retain_acc"], 3), _fmt(row["forget_acc"], 3), _fmt(row["test_acc"], 3),
            _fmt(row["attack_accuracy"], 3),
            *[_with_interval(row[c], row[f"{c}_low"], row[f"{c}_high"]) for c in ("lira_auc", "lira_tpr_at_1pct")],
            _fmt(row["lira_tpr_at_0.1pct"], 3), _fmt(row["lira_worst_5pct_accuracy"], 3),
            _fmt(row["spread_ratio"], 2), _fmt(row["mean_shift"], 2),
            time, _fmt(row["separated_from_next"]), _private(row)]) + " |")
    for row in frame.to_dict("records"):
        if not pd.isna(row.get("time_from_calls")):
            lines.append(f"\n\\* {row['method']}: its runs trained fused (as the oracles); its time fraction is the "
                         f"mean of {int(row['time_from_calls'])} timed one-model calls.")
    if ranks:
        lines.append("\n" + rank_sentence(ranks))
    lines.append("\nspread = median over the forget examples of sd(the method's N confidences) / sd(the oracles'); "
                 "shift = median |mean difference| in oracle standard deviations; private rank (score): the method's "
                 "place on the challenge's private leaderboard and its score on the hidden data, where published "
                 "(exact retraining scores about 0.19 there).")
    return "\n".join(lines) + "\n"


def write_leaderboard(frame: pd.DataFrame, ranks: dict, results: dict, folder: Path, reps: int,
                      curves: dict[str, dict | None]) -> list[Path]:
    """Every file of the leaderboard; ``curves``: each row's :func:`~mock_evaluator.scoring.lira.lira_row`."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "leaderboard.csv", index=False)
    (folder / "leaderboard.md").write_text(markdown_table(frame, ranks))
    transfer = pd.DataFrame([{"method": m, "mock_rank": ranks["mock_rank"][m], "private_rank": ranks["reference_rank"][m]}
                             for m in ranks.get("methods", [])])
    transfer.to_csv(folder / "rank_transfer.csv", index=False)
    record = {"ranks": ranks, "bootstrap_replicates": reps, "failures": results["failures"],
              "retrain_seconds": results["retrain_seconds"], "config": _jsonable(results["config"]),
              "timings_seconds": results["timings_seconds"], "versions": results["versions"],
              "rows": json.loads(frame.to_json(orient="records")),
              "lira_roc_fpr": _jsonable(ROC_GRID),
              "lira": {name: {k: _jsonable(row[k]) for k in ROW_ARRAYS} for name, row in curves.items() if row}}
    (folder / "leaderboard.json").write_text(json.dumps(record, indent=2))
    paths = [folder / name for name in ("leaderboard.csv", "leaderboard.md", "rank_transfer.csv", "leaderboard.json")]
    paths += _plots(frame, transfer, ranks, folder)
    if any(row is not None for name, row in curves.items() if name != ORACLE):
        paths.append(plot_roc(curves, ORACLE, folder / "roc.png",
                              "Likelihood-ratio attack per method (unlearned = positive), log-log"))
    return paths


def _plots(frame: pd.DataFrame, transfer: pd.DataFrame, ranks: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"kaggle": "tab:blue", "classic": "tab:gray", "ours": "tab:purple", "baseline": "tab:orange",
               "reference": "tab:green", "original": "black"}
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(frame) + 1.5))
    y = np.arange(len(frame))[::-1]
    errors = np.vstack([frame["final_score"] - frame["final_low"], frame["final_high"] - frame["final_score"]]).clip(0)
    ax.barh(y, frame["final_score"], xerr=errors, color=[colours.get(f, "tab:gray") for f in frame["family"]],
            capsize=3, alpha=0.85)
    labels = [f"{m}  (OVER BUDGET)" if o is True else m for m, o in zip(frame["method"], frame["over_budget"])]
    ax.set_yticks(y, labels, fontsize=8)
    for tick, over in zip(ax.get_yticklabels(), frame["over_budget"]):
        if over is True:
            tick.set_color("tab:red")
    oracle = frame.loc[frame["method"] == ORACLE, "final_score"]
    if len(oracle):
        ax.axvline(float(oracle.iloc[0]), color="tab:green", linestyle="--", linewidth=1, label="oracle reference")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("final score (bars: ± 1.96 bootstrap standard deviations)")
    ax.set_title("Leaderboard: the challenge's metric on this setting")
    fig.tight_layout()
    paths = [folder / "leaderboard.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    if len(transfer):
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.scatter(transfer["private_rank"], transfer["mock_rank"])
        for row in transfer.itertuples():
            ax.annotate(row.method, (row.private_rank, row.mock_rank), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("private leaderboard rank (challenge)")
        ax.set_ylabel("rank here (among these methods)")
        ax.set_title(f"Kendall τ = {ranks['kendall_tau']:.2f} (p = {ranks['kendall_p']:.2f}), "
                     f"Spearman ρ = {ranks['spearman_rho']:.2f}", fontsize=9)
        fig.tight_layout()
        paths.append(folder / "rank_transfer.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def format_leaderboard(frame: pd.DataFrame) -> str:
    shown = frame[["rank", "method", "final_score", "final_low", "final_high", "forget_quality", "retain_acc",
                   "forget_acc", "test_acc", "lira_auc", "lira_tpr_at_1pct", *DIAGNOSTICS, "time_fraction",
                   "separated_from_next"]].copy()
    shown["time_fraction"] = ["" if pd.isna(v) else f"{v:.3f}" + (" OVER" if o is True else "")
                              for v, o in zip(frame["time_fraction"], frame["over_budget"])]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")
