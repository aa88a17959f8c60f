"""The tuned leaderboard's side-by-side table (``unlearning-mock leaderboard --tuned``): ``tuned.csv`` and ``tuned.md``
next to the leaderboard's files, and the table as the command line prints it. The rows come from
:func:`mock_evaluator.tuned_leaderboard.side_by_side`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unlearning_mock.mock_evaluator.reports.leaderboard_report import rank_sentence, with_interval


def write_comparison(comparison: pd.DataFrame, budget: str, tuned_ranks: dict, folder: Path) -> list[Path]:
    """``tuned.csv`` and ``tuned.md`` in ``folder``; returns their paths."""
    comparison.to_csv(folder / "tuned.csv", index=False)
    (folder / "tuned.md").write_text(comparison_markdown(comparison, budget, tuned_ranks))
    return [folder / "tuned.csv", folder / "tuned.md"]


def comparison_markdown(comparison: pd.DataFrame, budget: str, tuned_ranks: dict) -> str:
    lines = ["| method | published [95% CI] | tuned [95% CI] | change | F published → tuned | tuned time frac. | "
             "tuned options |", "|---|---|---|---|---|---|---|"]
    for row in comparison.to_dict("records"):
        time = f"{row['tuned_time_fraction']:.3f}" + (" **OVER**" if row["tuned_over_budget"] is True else "")
        lines.append(f"| {row['method']} | {with_interval(row['published'], row['published_low'], row['published_high'], 4)} "
                     f"| {with_interval(row['tuned'], row['tuned_low'], row['tuned_high'], 4)} | {row['change']:+.4f} "
                     f"| {row['published_f']:.4f} → {row['tuned_f']:.4f} | {time} | {row['options']} |")
    lines += ["", budget, "", "With each method at its tuned options: " + rank_sentence(tuned_ranks)]
    return "\n".join(lines) + "\n"


def format_comparison(comparison: pd.DataFrame) -> str:
    shown = comparison[["method", "published", "tuned", "change", "published_f", "tuned_f", "options"]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
