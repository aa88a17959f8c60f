"""``roc.png``: the likelihood-ratio attack's log-log ROC curve per method, against exact retraining's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from unlearning_mock.mock_evaluator.scoring.lira import ROC_GRID

LOWEST = 1e-3   # the axes' lower end: TPR at FPR 0.1% is the smallest rate the reports quote


def plot_roc(rows: dict[str, dict], reference: str, path: Path, title: str) -> Path:
    """A panel per entry of ``rows`` (name -> :func:`~mock_evaluator.scoring.lira.lira_row`, rows without
    the view skipped) except ``reference``, whose curve is drawn dashed in every panel; log-log axes from
    :data:`LOWEST` to 1 and the diagonal (an attacker who guesses). Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [name for name, row in rows.items() if row is not None and name != reference]
    floor = rows.get(reference)
    columns = min(4, max(1, len(shown)))
    lines = max(1, math.ceil(len(shown) / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(3.6 * columns, 3.4 * lines), squeeze=False,
                             sharex=True, sharey=True)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, shown):
        row = rows[name]
        ax.plot([LOWEST, 1], [LOWEST, 1], color="gray", linestyle=":", linewidth=1, label="chance (TPR = FPR)")
        if floor is not None:
            ax.plot(ROC_GRID, np.maximum(floor["lira_roc_tpr"], LOWEST / 10), color="tab:green", linestyle="--",
                    linewidth=1.2, label=f"{reference} (AUC {floor['lira_auc']:.3f})")
        ax.plot(ROC_GRID, np.maximum(row["lira_roc_tpr"], LOWEST / 10), color="tab:red", linewidth=1.5,
                label=f"{name} (AUC {row['lira_auc']:.3f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(LOWEST, 1)
        ax.set_ylim(LOWEST, 1)
        ax.set_title(f"{name}\nTPR {row['lira_tpr_at_1pct']:.3f} at 1% FPR, "
                     f"{row['lira_tpr_at_0.1pct']:.3f} at 0.1%", fontsize=8)
        ax.legend(fontsize=6, loc="lower right")
        ax.grid(True, which="major", linewidth=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("false-positive rate")
    for ax in axes[:, 0]:
        ax.set_ylabel("true-positive rate")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (3.4 * lines)))   # room for the title above the first row
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
