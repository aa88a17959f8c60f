"""The likelihood-ratio attack on synthetic confidences with known answers, and the spread/shift diagnostics."""

from statistics import NormalDist

import numpy as np
import pytest

from unlearning_mock.mock_evaluator.scoring.lira import fold_labels, lira_attack, roc_curve, spread_and_shift, tpr_at

PHI, Z = NormalDist().cdf, NormalDist().inv_cdf
N, M = 1000, 200


def populations(d: float, seed: int, spread_ratio: float = 1.0):
    """Per example its own mean and scale; unlearned shifted by ``d`` retrained sds and scaled by ``spread_ratio``."""
    rng = np.random.default_rng(seed)
    mu, sd = rng.uniform(-5, 15, M), rng.uniform(0.5, 3, M)
    return rng.normal(mu + d * sd, spread_ratio * sd, (N, M)), rng.normal(mu, sd, (N, M))


def test_identical_populations_are_at_the_floor():
    attack = lira_attack(*populations(0.0, seed=1))
    assert attack["auc"] == pytest.approx(0.5, abs=0.03)
    assert attack["tpr_at_fpr"][0.01] == pytest.approx(0.01, abs=0.003)      # 12 seeds: within 0.0006
    assert attack["tpr_at_fpr"][0.001] == pytest.approx(0.001, abs=0.001)
    assert attack["balanced_accuracy"] == pytest.approx(0.5, abs=0.02)
    assert attack["per_example_accuracy"].shape == (M,)
    assert np.median(attack["per_example_accuracy"]) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("d", [0.5, 1.0, 2.0])
def test_equal_variance_mean_shift_matches_the_binormal_roc(d):
    """Equal variances, means d sds apart: the ratio is linear in x, so AUC = Φ(d/√2) and
    TPR at FPR α = Φ(d − z_α). (12 seeds: AUC within 0.003, TPRs within 0.013 of these.)"""
    attack = lira_attack(*populations(d, seed=2))
    assert attack["auc"] == pytest.approx(PHI(d / 2 ** 0.5), abs=0.01)
    for alpha in (0.01, 0.001):
        assert attack["tpr_at_fpr"][alpha] == pytest.approx(PHI(d - Z(1 - alpha)), abs=0.02)
    assert attack["balanced_accuracy"] == pytest.approx(PHI(d / 2), abs=0.01)   # the best threshold: the midpoint


def test_a_narrow_population_inside_a_wide_one_is_detected():
    """Our digits situation: the unlearned copies agree with each other ten times more than the oracles
    do, with the same mean. No single threshold separates them; the likelihood ratio does."""
    unlearned, retrained = populations(0.0, seed=3, spread_ratio=0.1)
    attack = lira_attack(unlearned, retrained)
    assert attack["auc"] > 0.9
    assert attack["tpr_at_fpr"][0.01] > 0.05
    spread, shift = spread_and_shift(unlearned, retrained)
    assert spread == pytest.approx(0.1, abs=0.01) and shift < 0.1


def test_identical_copies_are_caught_and_separable_examples_are_perfect():
    rng = np.random.default_rng(4)
    retrained = rng.normal(0, 1, (64, 20))
    original = np.repeat(rng.normal(0, 1, (1, 20)), 64, axis=0)      # the untouched original, N times
    attack = lira_attack(original, retrained)
    assert attack["auc"] > 0.99 and attack["tpr_at_fpr"][0.01] > 0.9
    assert spread_and_shift(original, retrained)[0] == pytest.approx(0.0, abs=1e-9)
    far = rng.normal(10, 1, (64, 20))
    attack = lira_attack(far, retrained, folds=4, seed=7)
    assert attack["auc"] == 1.0 and np.all(attack["per_example_accuracy"] == 1.0)
    assert attack["tpr_at_fpr"] == {0.01: 1.0, 0.001: 1.0}


def test_model_counts_may_differ_and_the_seed_only_moves_the_folds():
    unlearned, retrained = populations(1.0, seed=5)
    attack = lira_attack(unlearned[:300], retrained, fprs=(0.05,))
    assert set(attack["tpr_at_fpr"]) == {0.05}
    assert attack["auc"] == pytest.approx(PHI(1 / 2 ** 0.5), abs=0.015)
    assert lira_attack(unlearned[:300], retrained, fprs=(0.05,))["auc"] == attack["auc"]
    assert lira_attack(unlearned[:300], retrained, fprs=(0.05,), seed=1)["auc"] == pytest.approx(attack["auc"], abs=0.01)
    labels = fold_labels(10, 3, seed=0)
    assert sorted(np.bincount(labels)) == [3, 3, 4]


def test_roc_counts_ties_as_one_half():
    fpr, tpr = roc_curve(np.array([1.0, 1.0, 2.0]), np.array([0.0, 1.0]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == pytest.approx([0.0, 1 / 3, 1.0, 1.0])
    assert tpr_at(fpr, tpr, [0.0, 0.49, 0.5, 1.0]).tolist() == pytest.approx([1 / 3, 1 / 3, 1.0, 1.0])
    # AUC = P(positive > negative) + P(tie) / 2 = (4 + 2 / 2) / 6
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)
    assert auc == pytest.approx(5 / 6)


@pytest.mark.parametrize("unlearned, retrained, kwargs, message", [
    (np.zeros((8, 5)), np.zeros((8, 4)), {}, "5 examples .* retrained has 4"),
    (np.zeros((3, 5)), np.zeros((8, 5)), {}, "unlearned has 3 models.*at least 4"),
    (np.zeros((8, 5)), np.zeros((5, 5)), {"folds": 3}, "retrained has 5 models.*at least 6"),
    (np.zeros(8), np.zeros((8, 5)), {}, "2-D array"),
    (np.full((8, 5), np.nan), np.zeros((8, 5)), {}, "unlearned confidences contain NaN"),
    (np.zeros((8, 5)), np.full((8, 5), np.inf), {}, "retrained confidences contain NaN or inf"),
    (np.zeros((8, 5)), np.zeros((8, 5)), {"folds": 1}, "folds must be an integer >= 2"),
    (np.zeros((8, 5)), np.zeros((8, 5)), {"fprs": (0.0,)}, "fprs must be"),
    (np.zeros((8, 0)), np.zeros((8, 0)), {}, "no forget example"),
])
def test_bad_input_says_what_is_wrong(unlearned, retrained, kwargs, message):
    with pytest.raises(ValueError, match=message):
        lira_attack(unlearned, retrained, **kwargs)
