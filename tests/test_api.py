"""The Python API (mock_evaluator/api.py): the same evaluation as the command, returned as tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.api import evaluate, leaderboard

N = 8   # shares the session cache's oracles with tests/test_evaluator.py


@pytest.mark.slow
def test_evaluate_returns_the_tables_it_writes(tmp_path, cache_dir, one_step_source):
    path = tmp_path / "one_step.py"
    path.write_text(one_step_source)
    result = evaluate(str(path), (str(path), {"lr": 0.0}), dataset="digits", num_models=N, cache_dir=str(cache_dir),
                      output_dir=str(tmp_path / "out"), progress=False, workers=1, attack_models=4, log=lambda *_: None)
    assert result.failures == {}
    assert result.folder == tmp_path / "out" / "digits-one_step+1-n8-seed0"
    assert all(p.is_file() for p in result.paths) and result.folder / "summary.csv" in result.paths
    written = pd.read_csv(result.folder / "summary.csv")
    numbers = ["final_score", "forget_quality", "retain_acc", "forget_acc", "test_acc", "lira_auc"]
    assert list(written["method"]) == list(result.summary["method"])
    pd.testing.assert_frame_equal(result.summary[numbers].astype(float), written[numbers], check_dtype=False)
    rows = result.summary.set_index("method")
    assert {"one_step", "one_step[lr=0.0]", "baseline", "oracle reference", "original (not unlearned)"} <= set(rows.index)
    # lr = 0 returns the original's weights: its accuracies are the original's
    assert rows.loc["one_step[lr=0.0]", "forget_acc"] == pytest.approx(rows.loc["original (not unlearned)", "forget_acc"])
    forget_examples = result.per_example["example"].nunique()
    assert len(result.per_example) == forget_examples * result.per_example["method"].nunique()
    assert "one_step" in repr(result)
    # the typed outcome behind the tables: every method's figures, the oracles', and the results dict made from it
    outcome = result.outcome
    assert list(outcome.methods) == ["one_step", "one_step[lr=0.0]", "baseline"]
    assert result.results["methods"] == outcome.scores and outcome.scores["oracle reference"] is outcome.oracle_reference
    assert outcome.run_figures["one_step"]["forget_conf"].shape == outcome.oracle_confidences.shape == (N, forget_examples)
    assert outcome.run_figures["baseline"]["retain_acc"].shape == (N,)
    record = json.loads((result.folder / "results.json").read_text())
    assert record["retrain_seconds"] == outcome.retrain_seconds and record["failures"] == outcome.failures == {}
    assert record["oracle"]["retain_acc"] == pytest.approx(outcome.oracle_a["retain_acc"].mean())
    assert record["methods"]["oracle reference"]["final_score"] == pytest.approx(outcome.oracle_reference.final_score)


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    with pytest.raises(TypeError, match="unknown setting.*num_model"):
        evaluate(num_model=4)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate(str(tmp_path / "missing.py"), dataset="digits", num_models=4, cache_dir=str(tmp_path), log=lambda *_: None)


@pytest.mark.slow
def test_leaderboard_returns_its_frame(tmp_path, cache_dir):
    board = leaderboard(["ft-kaggle"], dataset="digits", num_models=N, cache_dir=str(cache_dir), output_dir=str(tmp_path),
                        progress=False, workers=1, attack_models=4, bootstrap=5, log=lambda *_: None)
    assert list(board.frame["method"]).count("ft-kaggle") == 1
    assert {"oracle reference"} <= set(board.frame["method"])
    assert all(p.is_file() for p in board.paths)
    assert (board.frame["final_low"] <= board.frame["final_score"]).all()
