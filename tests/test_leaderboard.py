"""The leaderboard: rank agreement, bootstrap intervals, and the command at N = 8 on digits."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.reports.leaderboard_report import markdown_table
from unlearning_mock.mock_evaluator.scoring.lira import draw_within_folds, fold_labels
from unlearning_mock.mock_evaluator.scoring.uncertainty import (bootstrap_lira, bootstrap_scores, interval, rank_agreement,
                                                                separated)

N = 8


REFERENCE4 = {"a": 1, "b": 2, "c": 3, "d": 4}


def test_rank_agreement_on_hand_made_orders():
    reference = REFERENCE4
    same = rank_agreement({"a": 0.9, "b": 0.5, "c": 0.2, "d": 0.1, "extra": 1.0}, reference)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["spearman_rho"] == pytest.approx(1.0)
    assert same["methods"] == ["a", "b", "c", "d"] and same["mock_rank"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    reversed_ = rank_agreement({"a": 0.1, "b": 0.2, "c": 0.5, "d": 0.9}, reference)
    assert reversed_["kendall_tau"] == pytest.approx(-1.0) and reversed_["spearman_rho"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement({"a": 1.0}, reference)


def test_spearmans_p_counts_every_ordering_for_a_few_methods():
    # three methods in the reference's order: 2 of the 6 orderings have |rho| = 1, so p = 1/3 (not scipy's t value, 0)
    three = rank_agreement({"a": 0.3, "b": 0.2, "c": 0.1}, {"a": 1, "b": 2, "c": 3})
    assert three["spearman_rho"] == pytest.approx(1.0) and three["spearman_p"] == pytest.approx(1 / 3)
    # four in order: 2 of 24; one swap of the last two (rho = 0.8): 4 orderings with |rho| >= 0.8 either way
    assert rank_agreement({"a": 4, "b": 3, "c": 2, "d": 1}, REFERENCE4)["spearman_p"] == pytest.approx(2 / 24)
    assert rank_agreement({"a": 4, "b": 3, "c": 1, "d": 2}, REFERENCE4)["spearman_p"] == pytest.approx(8 / 24)


def _figures(conf, acc=1.0):
    n = len(conf)
    return {"forget_conf": conf, "retain_acc": np.full(n, acc), "test_acc": np.full(n, acc)}


def test_bootstrap_intervals_and_separation():
    rng = np.random.default_rng(0)
    n, m = 64, 30
    oracles = _figures(rng.normal(0, 1, (n, m)))
    figures = {"like the oracles": _figures(rng.normal(0, 1, (n, m))),
               "far off": _figures(rng.normal(6, 1, (n, m))),
               "constant": _figures(np.zeros((n, m)))}
    boot = bootstrap_scores(figures, oracles, reps=20, seed=1)
    assert all(b.shape == (20, 2) for b in boot.values())
    low, high = interval(boot["like the oracles"][:, 1], 0.3)
    assert 0 <= low < 0.3 < high and high - 0.3 == pytest.approx(0.3 - low)   # centred on the estimate
    assert interval(np.array([0.0, 0.1, 0.2]), 0.05)[0] == 0.0                   # clipped at 0
    assert np.all(boot["far off"][:, 1] == 0) and np.all(boot["constant"][:, 1] == 0)
    like = float(boot["like the oracles"][:, 0].mean())
    assert separated(boot["like the oracles"][:, 0], boot["far off"][:, 0], like)
    assert not separated(boot["far off"][:, 0], boot["constant"][:, 0], 0.0)
    assert bootstrap_scores(figures, oracles, reps=20, seed=1)["far off"].tolist() == boot["far off"].tolist()
    with pytest.raises(ValueError, match="N = 64"):
        bootstrap_scores({"short": _figures(np.zeros((3, m)))}, oracles, reps=2)


def test_lira_bootstrap_refits_on_draws_within_the_folds():
    rng = np.random.default_rng(0)
    n, m = 64, 30
    oracles = _figures(rng.normal(0, 1, (n, m)))
    figures = {"like the oracles": _figures(rng.normal(0, 1, (n, m))), "far off": _figures(rng.normal(6, 1, (n, m)))}
    boot = bootstrap_lira(figures, oracles, reps=20, seed=1)
    assert all(b.shape == (20, 4) for b in boot.values())
    assert np.all(boot["far off"] > 0.95)                                   # AUC, both TPRs, worst-5% accuracy
    auc = boot["like the oracles"][:, 0]
    assert abs(auc.mean() - 0.5) < 0.05 and auc.std() > 0.005
    labels = fold_labels(n, 2, 0)
    draw = draw_within_folds(labels, rng)
    assert np.array_equal(labels[draw], labels) and len(set(draw)) < n      # with replacement, fold kept
    with pytest.raises(ValueError, match="at least 4 models"):
        bootstrap_lira({"few": _figures(np.zeros((3, m)))}, _figures(np.zeros((3, m))), reps=2)


def test_markdown_table_prints_the_rank_agreement_under_the_table():
    rows = [{"rank": k + 1, "method": name, "final_score": score, "final_low": score - 0.01, "final_high": score + 0.01,
             "forget_quality": score, "f_low": score - 0.01, "f_high": score + 0.01, "retain_acc": 1.0, "forget_acc": 1.0,
             "test_acc": 1.0, "attack_accuracy": 0.5, "lira_auc": 0.9, "lira_auc_low": 0.85, "lira_auc_high": 0.95,
             "lira_tpr_at_1pct": 0.2, "lira_tpr_at_1pct_low": 0.1, "lira_tpr_at_1pct_high": 0.3,
             "lira_tpr_at_0.1pct": 0.05, "lira_worst_5pct_accuracy": 1.0, "spread_ratio": 0.1, "mean_shift": 0.8,
             "time_fraction": 0.05, "over_budget": False, "separated_from_next": True, "private_rank": k + 1}
            for k, (name, score) in enumerate([("a", 0.09), ("b", 0.05), ("c", 0.01)])]
    rows[0]["private_score"] = 0.0885                       # published for one method only
    rows[1]["time_from_calls"] = 8                          # a fused kit baseline: timed by 8 one-model calls
    ranks = rank_agreement({"a": 0.09, "b": 0.05, "c": 0.01}, {"a": 1, "b": 3, "c": 2})
    text = markdown_table(pd.DataFrame(rows), ranks)
    assert "| yes | 1 (0.0885) |" in text and "| yes | 2 |" in text     # private rank (score), the score where known
    assert "| 0.900 [0.850, 0.950] | 0.200 [0.100, 0.300] | 0.050 | 1.000 | 0.10 | 0.80 |" in text
    assert f"Kendall τ = {ranks['kendall_tau']:.3f}" in text and "Spearman ρ = 0.500" in text
    assert "| 0.050* |" in text and "b: its runs trained fused" in text and "mean of 8 timed one-model calls" in text
    assert text.count("0.050* |") == 1
    assert "No rank agreement with the private leaderboard: too few." in markdown_table(pd.DataFrame(rows), {"note": "too few"})


@pytest.mark.slow
@pytest.mark.training
def test_leaderboard_command(tmp_path, cache_dir, capsys):
    common = ["leaderboard", "--dataset", "digits", "--num-models", str(N), "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path),
              "--quiet", "--workers", "1", "--attack-models", "2", "--bootstrap", "10"]
    assert main([*common, "--methods", "ft-kaggle,ga,neggrad+"]) == 0
    folder = tmp_path / f"leaderboard-digits-n{N}-seed0"
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.png", "roc.png", "rank_transfer.csv", "leaderboard.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "rank_transfer.png").exists()          # one ranked method: no rank agreement, no figure
    printed = capsys.readouterr().out
    assert "roc.png" in printed and "rank_transfer.png" not in printed
    frame = pd.read_csv(folder / "leaderboard.csv")
    assert set(frame["method"]) == {"ft-kaggle", "ga", "neggrad+", "baseline", "oracle reference",
                                    "original (not unlearned)"}
    assert frame.set_index("method").loc["baseline", "family"] == "baseline"   # the setting's kit baseline, named
    assert "kaggle-sample fine-tune" in frame.set_index("method").loc["baseline", "description"]
    assert (frame["final_low"] <= frame["final_score"] + 1e-12).all() and (frame["final_score"] <= frame["final_high"] + 1e-12).all()
    assert list(frame["final_score"]) == sorted(frame["final_score"], reverse=True)
    assert frame.set_index("method").loc["ft-kaggle", "private_rank"] == 10
    assert "| 1 |" in (folder / "leaderboard.md").read_text()
    # the likelihood-ratio view: every row, with intervals; exact retraining at the floor, the original caught
    rows = frame.set_index("method")
    for column in ("lira_auc", "lira_tpr_at_1pct", "lira_tpr_at_0.1pct", "lira_worst_5pct_accuracy"):
        assert rows[column].between(0, 1).all(), column
        assert (rows[f"{column}_low"] <= rows[column] + 1e-12).all() and (rows[column] <= rows[f"{column}_high"] + 1e-12).all()
    assert rows.loc["oracle reference", "lira_auc"] == pytest.approx(0.5, abs=0.05)
    assert rows.loc["oracle reference", "lira_tpr_at_1pct"] < 0.05
    assert rows.loc["oracle reference", "spread_ratio"] == pytest.approx(1.0, abs=0.2)
    assert rows.loc["original (not unlearned)", "lira_auc"] > 0.95
    assert rows.loc["original (not unlearned)", "spread_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert rows.loc["ft-kaggle", "lira_auc"] > rows.loc["oracle reference", "lira_auc_high"]
    record = json.loads((folder / "leaderboard.json").read_text())
    assert len(record["lira"]["ga"]["lira_roc_tpr"]) == len(record["lira_roc_fpr"])
    # a second call with one new method trains only that method's runs
    runs = Path(cache_dir) / "runs"
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*.npz")}
    assert main([*common, "--methods", "ft-kaggle,ga,neggrad+,ft-kit"]) == 0
    after = {p: p.stat().st_mtime_ns for p in runs.rglob("*.npz")}
    assert all(after[p] == t for p, t in before.items())
    new = {p.parent.name for p in set(after) - set(before)}
    assert len(new) == 1 and next(iter(new)).startswith("digits-ft-kit-")
    capsys.readouterr()
    assert main([*common, "--methods", "ft-kaggle,no-such-method"]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'no-such-method'" in err and "fcs" in err
