"""What an evaluation leaves behind: results.json, summary.csv, per-example CSV, PNG plots, a table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from unlearning_mock.mock_evaluator.reports.json_record import jsonable
from unlearning_mock.mock_evaluator.reports.roc import plot_roc
from unlearning_mock.mock_evaluator.scoring.attacks import ATTACKS, LIRA, report_columns
from unlearning_mock.mock_evaluator.scoring.metric import num_buckets

ORACLE = "oracle reference"
ORIGINAL = "original (not unlearned)"
DIAGNOSTICS = [column for attack in ATTACKS for column in attack.diagnostics]
COLUMNS = ["method", "final_score", "forget_quality", "retain_acc", "forget_acc", "test_acc",
           "retain_ratio", "test_ratio", "attack_accuracy", *report_columns(), "time_fraction", "over_budget"]


def summary_frame(results: dict) -> pd.DataFrame:
    """One row per method (plus the original model's accuracies, unscored)."""
    rows = [{"method": name, **{k: v for k, v in score.summary().items() if k != "name"}}
            for name, score in results["methods"].items()]
    rows.append({"method": ORIGINAL, **results["original"]})
    frame = pd.DataFrame(rows)
    return frame[[c for c in COLUMNS if c in frame] + [c for c in frame if c not in COLUMNS]]


def per_example_frame(results: dict) -> pd.DataFrame:
    """A row per (method, forget example): ε, points, the winning rule's family and rates, each attack's
    per-example figure."""
    frames = []
    for name, score in results["methods"].items():
        columns = {
            "method": name, "example": np.arange(len(score.epsilons)), "epsilon": score.epsilons,
            "points": score.points, "rule_family": score.details["family"],
            "rule_fpr": score.details["fpr"], "rule_fnr": score.details["fnr"],
            "mean_confidence": score.confidences.mean(0),
        }
        for attack in ATTACKS:
            if attack.per_example:
                column, array = attack.per_example
                row = score.attacks.get(attack.name)
                columns[column] = row[array] if row else np.nan
        frames.append(pd.DataFrame(columns))
    return pd.concat(frames, ignore_index=True)


def write_outputs(results: dict, oracle_confidences: np.ndarray, folder: Path) -> list[Path]:
    """Write every file of the report into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    summary = summary_frame(results)
    summary.to_csv(folder / "summary.csv", index=False)
    per_example_frame(results).to_csv(folder / "per_example.csv", index=False)
    record = jsonable({k: v for k, v in results.items() if k != "methods"})
    record["methods"] = {name: {**jsonable(s.summary()),
                                "epsilons": jsonable(s.epsilons), "points": jsonable(s.points),
                                "time_fractions": jsonable(s.time_fractions),
                                **{k: jsonable(s.attacks[a.name][k]) for a in ATTACKS if s.attacks.get(a.name)
                                   for k in a.arrays}}
                         for name, s in results["methods"].items()}
    for attack in ATTACKS:
        record.update(jsonable(attack.extras))
    (folder / "results.json").write_text(json.dumps(record, indent=2))
    written += [folder / "summary.csv", folder / "per_example.csv", folder / "results.json"]
    written += _plots(results, oracle_confidences, folder)
    return written


def _plots(results: dict, oracle_confidences: np.ndarray, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results["methods"]
    paths = []
    # 1. ε histogram per method, with the bucket edges of this N
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (name, score) in zip(axes, methods.items()):
        eps = np.minimum(score.epsilons, 10.0)
        ax.hist(eps, bins=np.arange(0, 10.5, 0.5), color="tab:blue", edgecolor="white")
        top = num_buckets(score.num_models) / 2
        ax.axvline(top, color="tab:red", linestyle="--", linewidth=1)
        ax.text(top, ax.get_ylim()[1] * 0.95, " 0 points beyond", color="tab:red", fontsize=8, va="top")
        ax.set_title(f"{name}\nF = {score.forget_quality:.4f}")
        ax.set_xlabel("ε per forget example (50 shown at 10)")
    axes[0].set_ylabel("forget examples")
    fig.tight_layout()
    paths.append(folder / "epsilon_histogram.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 2. retrained vs unlearned confidences for the examples with the largest ε (the first submission)
    asked = [m["name"] for m in results.get("methods_asked", []) if m["kind"] != "baseline" and m["name"] in methods]
    score = methods[asked[0] if asked else next(iter(methods))]
    worst = np.argsort(-score.epsilons, kind="stable")[:6]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, example in zip(axes.flat, worst):
        u, r = score.confidences[:, example], oracle_confidences[:, example]
        bins = np.linspace(min(u.min(), r.min()), max(u.max(), r.max()) + 1e-9, 30)
        ax.hist(r, bins=bins, alpha=0.6, label="retrained (oracle)", color="tab:green")
        ax.hist(u, bins=bins, alpha=0.6, label=f"unlearned ({score.name})", color="tab:red")
        ax.set_title(f"forget example {example}: ε = {score.epsilons[example]:.2f}")
        ax.set_xlabel("logit-scaled confidence")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Confidence distributions of the forget examples {score.name} forgets worst")
    fig.tight_layout()
    paths.append(folder / "worst_examples_confidence.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 3. accuracies per method
    frame = summary_frame(results).set_index("method")[["retain_acc", "forget_acc", "test_acc"]]
    ax = frame.plot.bar(figsize=(8, 4), rot=0, ylim=(0, 1.05))
    ax.set_ylabel("mean accuracy over the models")
    ax.set_title("Accuracies per method")
    ax.figure.tight_layout()
    paths.append(folder / "accuracies.png")
    ax.figure.savefig(paths[-1], dpi=110)
    plt.close(ax.figure)
    # 4. the likelihood-ratio attack's ROC per method (and the original's), exact retraining's in every panel
    rows = {name: score.attacks.get(LIRA.name) for name, score in methods.items()}
    rows[ORIGINAL] = results.get(f"original_{LIRA.name}")
    if any(row is not None for name, row in rows.items() if name != ORACLE):
        paths.append(plot_roc(rows, ORACLE, folder / "roc.png",
                              "Likelihood-ratio attack (unlearned = positive), log-log"))
    return paths


def format_table(results: dict, time_budget: float) -> str:
    frame = summary_frame(results)
    shown = frame[["method", "final_score", "forget_quality", "retain_acc", "forget_acc", "test_acc",
                   "attack_accuracy", "time_fraction"]].copy()
    for column in ("lira_auc", "lira_tpr_at_1pct", *DIAGNOSTICS):   # empty below lira.MIN_MODELS models
        shown.insert(len(shown.columns) - 1, column, frame[column] if column in frame else np.nan)
    sampled = {name: score for name, score in results["methods"].items()
               if score.timed_calls is not None and score.timed_calls < score.num_models}
    shown["time_fraction"] = [
        "" if pd.isna(v) else f"{v:.3f}" + ("*" if name in sampled else "")
        + (" OVER BUDGET" if v > time_budget else "") for name, v in zip(shown["method"], shown["time_fraction"])]
    table = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")
    notes = [f"* {name}: its {score.num_models} runs trained fused (as the oracles); its time_fraction is the mean of "
             f"{score.timed_calls} timed one-model calls" for name, score in sampled.items()]
    return "\n".join([table, *notes])
