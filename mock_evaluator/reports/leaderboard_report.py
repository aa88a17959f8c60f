"""The leaderboard's files (``unlearning-mock leaderboard``): ``leaderboard.csv``, ``leaderboard.md``,
``leaderboard.png``, ``roc.png``, ``rank_transfer.csv``, ``rank_transfer.png`` (when at least three ranked methods
were scored) and ``leaderboard.json``; and its table as the command line prints it. The rows come from
:func:`mock_evaluator.leaderboard.run_leaderboard`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from unlearning_mock.mock_evaluator.reports.json_record import jsonable
from unlearning_mock.mock_evaluator.reports.report import DIAGNOSTICS, ORACLE
from unlearning_mock.mock_evaluator.reports.roc import plot_roc
from unlearning_mock.mock_evaluator.scoring.attacks import ATTACKS, LIRA


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


def with_interval(value, low, high, digits: int = 3) -> str:
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
            with_interval(row["final_score"], row["final_low"], row["final_high"], 4),
            with_interval(row["forget_quality"], row["f_low"], row["f_high"], 4),
            _fmt(row["retain_acc"], 3), _fmt(row["forget_acc"], 3), _fmt(row["test_acc"], 3),
            _fmt(row["attack_accuracy"], 3),
            *[with_interval(row[c], row[f"{c}_low"], row[f"{c}_high"]) for c in ("lira_auc", "lira_tpr_at_1pct")],
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
                      attack_rows: dict[str, dict]) -> list[Path]:
    """Every file of the leaderboard; ``attack_rows``: each row's attacks (``MethodScore.attacks``)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "leaderboard.csv", index=False)
    (folder / "leaderboard.md").write_text(markdown_table(frame, ranks))
    transfer = pd.DataFrame([{"method": m, "mock_rank": ranks["mock_rank"][m], "private_rank": ranks["reference_rank"][m]}
                             for m in ranks.get("methods", [])])
    transfer.to_csv(folder / "rank_transfer.csv", index=False)
    record = {"ranks": ranks, "bootstrap_replicates": reps, "failures": results["failures"],
              "retrain_seconds": results["retrain_seconds"], "config": jsonable(results["config"]),
              "timings_seconds": results["timings_seconds"], "versions": results["versions"],
              "rows": json.loads(frame.to_json(orient="records")),
              **{key: jsonable(value) for attack in ATTACKS for key, value in attack.extras.items()},
              **{attack.name: {name: {k: jsonable(rows[attack.name][k]) for k in attack.arrays}
                               for name, rows in attack_rows.items() if rows.get(attack.name)} for attack in ATTACKS}}
    (folder / "leaderboard.json").write_text(json.dumps(record, indent=2))
    paths = [folder / name for name in ("leaderboard.csv", "leaderboard.md", "rank_transfer.csv", "leaderboard.json")]
    paths += _plots(frame, transfer, ranks, folder)
    curves = {name: rows.get(LIRA.name) for name, rows in attack_rows.items()}
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
