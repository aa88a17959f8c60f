"""The logit-scaled confidence every model's figures hold (mock_evaluator.engine.figures): its values, its
precision at extreme logits, and the errors on bad input."""

import numpy as np
import pytest

from unlearning_mock.mock_evaluator.engine.figures import logit_scaled_confidence


def test_logit_scaled_confidence_values():
    rng = np.random.default_rng(8)
    logits = rng.normal(0.0, 3.0, (50, 10))
    targets = rng.integers(0, 10, 50)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = probs[np.arange(50), targets]
    expected = np.log(p) - np.log(1 - p)
    got = logit_scaled_confidence(logits, targets)
    assert got.dtype == np.float64 and got.shape == (50,)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    np.testing.assert_allclose(logit_scaled_confidence(logits.astype(np.float32), targets),
                               expected, rtol=1e-5)


def test_logit_scaled_confidence_is_stable_for_extreme_logits():
    logits = np.array([[1000.0, 0.0, 0.0], [0.0, 1000.0, 0.0], [40.0, 0.0, -5.0], [1.0, 1.0, 1.0]])
    got = logit_scaled_confidence(logits, np.array([0, 0, 0, 2]))
    assert np.isfinite(got).all()
    assert got[0] == pytest.approx(np.log(1.0) - np.log(2 * np.exp(-1000.0) + 1e-45))
    assert got[1] == pytest.approx(np.log(1e-45) - np.log(1.0))
    # p ~ 1 - 4e-18: 1 - p would round to 0, the sum of the others does not
    assert got[2] == pytest.approx(40.0 - np.log(1.0 + np.exp(-5.0)), rel=1e-12)
    assert got[3] == pytest.approx(np.log(1 / 3) - np.log(2 / 3))


@pytest.mark.parametrize("logits, targets, match", [
    (np.zeros(3), np.array([0]), "2-D"),
    (np.zeros((2, 3)), np.array([[0, 1]]), "1-D"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), "integers"),
    (np.zeros((2, 3)), np.array([0, 1, 2]), "targets has 3"),
    (np.zeros((2, 3)), np.array([0, 3]), r"\[0, 3\)"),
    (np.zeros((2, 3)), np.array([-1, 0]), r"\[0, 3\)"),
    (np.array([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]]), np.array([0, 1]), "NaN or inf"),
])
def test_logit_scaled_confidence_rejects_bad_input(logits, targets, match):
    with pytest.raises(ValueError, match=match):
        logit_scaled_confidence(logits, targets)
