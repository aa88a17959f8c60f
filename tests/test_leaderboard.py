"""The leaderboard: rank agreement, bootstrap intervals, and the command at N = 8 on digits."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.leaderboard import rank_agreement_line
from unlearning_mock.mock_evaluator.scoring.uncertainty import bootstrap_scores, interval, rank_agreement, separated

N = 8


def test_rank_agreement_on_hand_made_orders():
    reference = {"a": 1, "b": 2, "c": 3, "d": 4}
    same = rank_agreement({"a": 0.9, "b": 0.5, "c": 0.2, "d": 0.1, "extra": 1.0}, reference)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["spearman_rho"] == pytest.approx(1.0)
    assert same["methods"] == ["a", "b", "c", "d"] and same["mock_rank"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    reversed_ = rank_agreement({"a": 0.1, "b": 0.2, "c": 0.5, "d": 0.9}, reference)
    assert reversed_["kendall_tau"] == pytest.approx(-1.0) and reversed_["spearman_rho"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        rank_agreement({"a": 1.0}, reference)
    line = rank_agreement_line(reversed_)
    assert "over 4 methods" in line and "Kendall τ = -1.000" in line and "Spearman ρ = -1.000" in line


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


def test_leaderboard_command(tmp_path, cache_dir, capsys):
    common = ["leaderboard", "--num-models", str(N), "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path),
              "--quiet", "--workers", "1", "--attack-models", "2", "--bootstrap", "10"]
    assert main([*common, "--methods", "ft-kaggle,ga,neggrad+"]) == 0
    folder = tmp_path / f"leaderboard-digits-n{N}-seed0"
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.png", "rank_transfer.csv", "leaderboard.json"):
        assert (folder / name).is_file(), name
    frame = pd.read_csv(folder / "leaderboard.csv")
    assert set(frame["method"]) == {"ft-kaggle", "ga", "neggrad+", "oracle reference", "original (not unlearned)"}
    assert (frame["final_low"] <= frame["final_score"] + 1e-12).all() and (frame["final_score"] <= frame["final_high"] + 1e-12).all()
    assert list(frame["final_score"]) == sorted(frame["final_score"], reverse=True)
    assert frame.set_index("method").loc["ft-kaggle", "private_rank"] == 10
    assert "| 1 |" in (folder / "leaderboard.md").read_text()
    # one ranked method (ft-kaggle): no rank agreement, so no rank_transfer.png, and none announced
    assert "Rank agreement with the private leaderboard: not computed" in (folder / "leaderboard.md").read_text()
    out = capsys.readouterr().out
    assert not (folder / "rank_transfer.png").exists() and "rank_transfer.png" not in out and "leaderboard.md" in out
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
