"""The attack interface (``mock_evaluator/scoring/attacks.py``): a method's score carries every attack's row, the
reports' columns come from the attacks' declarations, and the likelihood-ratio attack is the first."""

from __future__ import annotations

import numpy as np

from unlearning_mock.mock_evaluator.reports.report import COLUMNS, DIAGNOSTICS, per_example_frame, summary_frame
from unlearning_mock.mock_evaluator.scoring.attacks import ATTACKS, LIRA, attack_scalars, report_columns
from unlearning_mock.mock_evaluator.scoring.lira import LIRA_COLUMNS, ROW_ARRAYS, lira_row
from unlearning_mock.mock_evaluator.scoring.score import score_method


def figures(conf: np.ndarray) -> dict:
    n = len(conf)
    losses = np.abs(conf)
    return {"forget_conf": conf, "retain_acc": np.full(n, 0.9), "test_acc": np.full(n, 0.8),
            "forget_acc": np.full(n, 0.7), "forget_loss": losses, "test_loss": losses + 1.0}


def test_the_likelihood_ratio_attack_is_the_first_and_declares_the_report_columns():
    assert ATTACKS[0] is LIRA and LIRA.name == "lira"
    assert report_columns()[:len(LIRA_COLUMNS) + 2] == [*LIRA_COLUMNS, "spread_ratio", "mean_shift"]
    assert DIAGNOSTICS == ["spread_ratio", "mean_shift"]
    start = COLUMNS.index("attack_accuracy") + 1
    assert COLUMNS[start:start + len(report_columns())] == report_columns()
    assert set(LIRA.arrays) == set(ROW_ARRAYS) and "lira_roc_fpr" in LIRA.extras


def test_a_score_carries_every_attacks_row_and_the_reports_read_it():
    rng = np.random.default_rng(0)
    oracles, far = figures(rng.normal(0, 1, (8, 20))), figures(rng.normal(4, 1, (8, 20)))
    score = score_method("far off", far, oracles, attack_models=2)
    assert set(score.attacks) == {attack.name for attack in ATTACKS}
    expected = lira_row(far["forget_conf"], oracles["forget_conf"])
    assert score.attacks["lira"]["lira_auc"] == expected["lira_auc"] > 0.95
    summary = score.summary()
    assert {k: summary[k] for k in attack_scalars(score.attacks)} == attack_scalars(score.attacks)
    assert not set(ROW_ARRAYS) & set(summary) and "attacks" not in summary
    results = {"methods": {"far off": score}, "original": {"retain_acc": 1.0}}
    assert summary_frame(results).set_index("method").loc["far off", "lira_auc"] == expected["lira_auc"]
    per_example = per_example_frame(results)
    assert np.array_equal(per_example["lira_accuracy"], expected["lira_per_example_accuracy"])


def test_below_its_fewest_models_an_attack_leaves_its_columns_empty():
    rng = np.random.default_rng(1)
    few = figures(rng.normal(0, 1, (LIRA.min_models - 1, 12)))
    score = score_method("few", few, few, attack_models=1)
    assert score.attacks == {"lira": None} and not set(LIRA_COLUMNS) & set(score.summary())
    boot = LIRA.bootstrap({"far": figures(rng.normal(3, 1, (8, 5)))}, figures(rng.normal(0, 1, (8, 5))), 3, 0)
    assert boot["far"].shape == (3, len(LIRA.columns))
