"""``{method}_accuracy.png``: the per-step forget / retain batch accuracy curves of
:mod:`mock_evaluator.studies.curve`, a panel per setting."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_curves(curve: pd.DataFrame, path: Path, method: str) -> None:
    """A panel per setting: racc (green) and facc (red) against the step, a line style per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(curve["setting"]))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        part = curve[curve["setting"] == setting]
        for style, variant in zip(styles, dict.fromkeys(part["variant"])):
            run = part[part["variant"] == variant]
            ax.plot(run["step"], run["racc"], style, color="tab:green", lw=1.2, label=f"retain acc ({variant})")
            ax.plot(run["step"], run["facc"], style, color="tab:red", lw=1.2, label=f"forget acc ({variant})")
        ax.set_title(f"{method.upper()} on {setting}")
        ax.set_xlabel("step")
        ax.set_ylabel("batch accuracy (train mode)")
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
