"""Tests of mock_evaluator.scoring.metric against the literal reference and the specification."""

import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from literal_metric import (  # noqa: E402
    interval_rates,
    literal_bucket_points,
    literal_forget_quality,
    literal_per_example_epsilons,
    rule_epsilon,
    single_threshold_rates,
)
from unlearning_mock.mock_evaluator.scoring import metric  # noqa: E402
from unlearning_mock.mock_evaluator.scoring.metric import (  # noqa: E402
    FAMILIES,
    bucket_edges,
    bucket_points,
    final_score,
    forget_quality,
    num_buckets,
    per_example_epsilons,
)


# ------------------------------------------------------------------ generators


def normal_pair(rng, n, m, shift=0.5, spread=1.3):
    """(unlearned, retrained) ``[n, m]``: continuous, overlapping."""
    retrained = rng.normal(0.0, 1.0, (n, m))
    unlearned = rng.normal(shift, spread, (n, m))
    return unlearned, retrained


def realistic_pair(rng, n, m):
    """Like logit-scaled confidences: per-example location and scale."""
    mu = rng.uniform(-5.0, 15.0, m)
    s = rng.uniform(0.5, 3.0, m)
    retrained = rng.normal(mu, s, (n, m))
    unlearned = rng.normal(mu + rng.normal(0.0, 0.3, m), s * rng.uniform(0.8, 1.25, m), (n, m))
    return unlearned, retrained


def interval_grid(unlearned, retrained):
    """(interval-negative side, right ends, w) of one example as the definition builds them."""
    if np.median(retrained) > np.median(unlearned):
        pos, neg = retrained, unlearned
    else:
        pos, neg = unlearned, retrained
    if np.ptp(pos) >= np.ptp(neg):
        pos, neg = neg, pos
    w = np.ptp(pos)
    lo, hi = pos.min() + w - 2.0, pos.max() + 2.0
    return neg, np.linspace(lo, hi, math.ceil((hi - lo) * 100)), w


def on_grid_example(rng, n, scale=1.0):
    """One example with values exactly on, and one ulp either side of, interval
    left and right ends (same sides, ranges and grid as before the edit)."""
    while True:
        retrained = rng.normal(0.0, scale, n)
        unlearned = rng.normal(0.2 * scale, 1.5 * scale, n)
        neg, right, w = interval_grid(unlearned, retrained)
        free = [i for i in range(n) if i not in (np.argmin(neg), np.argmax(neg))]
        targets = []
        for j in rng.integers(0, right.size, size=min(n, 40)):
            left = np.linspace(right[j] - w - 2.0, right[j] - w + 2.0, 400)[rng.integers(0, 400)]
            for value in (left, np.nextafter(left, -np.inf), np.nextafter(left, np.inf), right[j]):
                if neg.min() < value < neg.max():
                    targets.append(value)
        picks = rng.permutation(targets)[: len(free) // 2 + 1]
        before = np.median(retrained) > np.median(unlearned)
        neg[free[: len(picks)]] = picks
        if len(picks) and (np.median(retrained) > np.median(unlearned)) == before:
            return unlearned, retrained


def on_grid_pairs(rng, n, m, scale=1.0):
    columns = [on_grid_example(rng, n, scale) for _ in range(m)]
    return (np.stack([c[0] for c in columns], axis=1), np.stack([c[1] for c in columns], axis=1))


def assert_matches_literal(unlearned, retrained, delta=1e-5):
    fast, fast_details = per_example_epsilons(unlearned, retrained, delta, return_details=True)
    literal, literal_details = literal_per_example_epsilons(unlearned, retrained, delta,
                                                            return_details=True)
    np.testing.assert_allclose(fast, literal, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(fast_details["family"], literal_details["family"])
    for key in ("fpr", "fnr"):
        np.testing.assert_array_equal(fast_details[key], literal_details[key])


# ----------------------------------------------------- agreement with literal


CASES = {
    "continuous_n4": lambda rng: normal_pair(rng, 4, 10),
    "continuous_n9": lambda rng: normal_pair(rng, 9, 8),
    "continuous_n23": lambda rng: normal_pair(rng, 23, 6),
    "continuous_n40": lambda rng: normal_pair(rng, 40, 5),
    "realistic_n16": lambda rng: realistic_pair(rng, 16, 8),
    "close_n12": lambda rng: normal_pair(rng, 12, 8, shift=0.05, spread=1.0),
    "wide_and_narrow_n10": lambda rng: normal_pair(rng, 10, 8, shift=1.0, spread=0.08),
    "separated_n8": lambda rng: normal_pair(rng, 8, 6, shift=8.0, spread=1.0),
    "identical_distribution_n20": lambda rng: tuple(rng.normal(3.0, 2.0, (2, 20, 6))),
    "identical_samples_n10": lambda rng: (lambda a: (a, a.copy()))(rng.normal(0.0, 1.0, (10, 5))),
    "half_steps_n8": lambda rng: tuple(rng.integers(-3, 4, (2, 8, 10)) * 0.5),
    "few_levels_n16": lambda rng: tuple(rng.integers(0, 3, (2, 16, 8)).astype(float)),
    "hundredths_n12": lambda rng: tuple(np.round(rng.normal(0.0, 0.3, (2, 12, 8)), 2)),
    "saturated_n10": lambda rng: tuple(np.where(rng.random((2, 10, 8)) < 0.6, -103.61632918473207,
                                                rng.normal(-3.0, 2.0, (2, 10, 8)))),
    "on_grid_n12": lambda rng: on_grid_pairs(rng, 12, 6),
    "on_grid_large_scale_n10": lambda rng: on_grid_pairs(rng, 10, 3, scale=30.0),
    "huge_offset_n6": lambda rng: tuple(1e12 + rng.normal(0.0, 1.0, (2, 6, 3))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_literal(case):
    rng = np.random.default_rng(sorted(CASES).index(case))
    unlearned, retrained = CASES[case](rng)
    assert_matches_literal(unlearned, retrained)


def test_constant_and_peaky_columns_match_literal():
    rng = np.random.default_rng(7)
    base = rng.normal(0.0, 1.0, 8)
    columns = [
        (np.full(8, 2.0), np.full(8, 2.0)),           # both constant, equal
        (np.full(8, 2.0), np.full(8, 3.0)),           # both constant, different
        (np.full(8, 1.0), base),                      # one constant
        (base * 0.005, base),                         # ratio 0.005 < 0.01
        (base * 0.0101, base),                        # ratio just above the guard
        (base, base + 1.0),                           # equal ranges, shifted
    ]
    unlearned = np.stack([c[0] for c in columns], axis=1)
    retrained = np.stack([c[1] for c in columns], axis=1)
    assert_matches_literal(unlearned, retrained)
    families = per_example_epsilons(unlearned, retrained, return_details=True)[1]["family"]
    assert list(families[:4]) == ["constant", "constant", "peaky", "peaky"]
    assert families[4] in ("single", "interval")


@pytest.mark.parametrize("delta", [0.0, 0.2])
def test_matches_literal_for_other_deltas(delta):
    unlearned, retrained = normal_pair(np.random.default_rng(11), 10, 5)
    assert_matches_literal(unlearned, retrained, delta)


@pytest.mark.parametrize("n", [2, 3, 7, 16])
@pytest.mark.parametrize("delta", [0.0, 1e-5, 0.3])
def test_rule_value_table_matches_literal_rule(n, delta):
    table = metric._rule_value_table(n, delta)
    for fp in range(n + 1):
        for fn in range(n + 1):
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = rule_epsilon(fp / n, fn / n, delta)
            assert table[fp, fn] == (-np.inf if expected is None else expected)


def test_forget_quality_matches_literal():
    unlearned, retrained = normal_pair(np.random.default_rng(5), 6, 8, shift=0.8)
    assert forget_quality(unlearned, retrained) == pytest.approx(
        literal_forget_quality(unlearned, retrained), abs=1e-12)


def median_sides(unlearned, retrained):
    if np.median(retrained) > np.median(unlearned):
        return retrained, unlearned
    return unlearned, retrained


def fast_rule_rates(pos, neg, exact=False):
    """Per-rule (FPR, FNR) of both families, decoded from the fast weighted counts."""
    n = pos.size
    below, inside = metric._example_rule_weights(pos, neg, np.ptp(pos) >= np.ptp(neg), exact)
    inside = np.maximum(inside, 0).ravel()  # negative: left end above right end, nothing inside
    single = ((n - below % (n + 1)) / n, (below // (n + 1)) / n)
    interval = ((inside % (n + 1)) / n, (n - inside // (n + 1)) / n)
    return single, interval


@pytest.mark.parametrize("case", ["on_grid_n12", "on_grid_large_scale_n10", "half_steps_n8",
                                  "saturated_n10", "continuous_n9", "huge_offset_n6"])
def test_every_rule_matches_literal_rates(case):
    """Rule by rule: the fast counts give the literal (FPR, FNR) of all ~160,000 rules."""
    rng = np.random.default_rng(sorted(CASES).index(case))
    unlearned, retrained = CASES[case](rng)
    checked = 0
    for i in range(unlearned.shape[1]):
        pos, neg = median_sides(unlearned[:, i], retrained[:, i])
        if min(np.ptp(pos), np.ptp(neg)) < 0.01 * max(np.ptp(pos), np.ptp(neg)):
            continue  # constant side or peaky guard: no rules
        single, interval = fast_rule_rates(pos, neg)
        for got, want in zip(single + interval, single_threshold_rates(pos, neg) + interval_rates(pos, neg)):
            np.testing.assert_array_equal(got, want)
        checked += 1
    assert checked >= 3


# ------------------------------------------- fast lattice vs direct counting


@pytest.mark.parametrize("kind", ["realistic", "quarter_steps", "on_grid"])
def test_lattice_counts_equal_direct_counts_at_512(kind):
    rng = np.random.default_rng(["realistic", "quarter_steps", "on_grid"].index(kind) + 100)
    if kind == "on_grid":
        unlearned, retrained = on_grid_pairs(rng, 512, 10)
    else:
        unlearned, retrained = realistic_pair(rng, 512, 30)
        if kind == "quarter_steps":
            unlearned, retrained = np.round(unlearned * 4) / 4, np.round(retrained * 4) / 4
    for i in range(unlearned.shape[1]):
        pos, neg = median_sides(unlearned[:, i], retrained[:, i])
        swap = np.ptp(pos) >= np.ptp(neg)
        lattice = metric._example_rule_weights(pos, neg, swap)[1]
        direct = metric._example_rule_weights(pos, neg, swap, exact_intervals=True)[1]
        np.testing.assert_array_equal(np.maximum(lattice, 0), np.maximum(direct, 0))
    fast = metric._epsilons(unlearned, retrained, 1e-5, True)
    direct = metric._epsilons(unlearned, retrained, 1e-5, True, exact_intervals=True)
    np.testing.assert_array_equal(fast[0], direct[0])
    for key in ("family", "fpr", "fnr"):
        np.testing.assert_array_equal(fast[1][key], direct[1][key])


def test_left_ends_lie_on_the_lattice_far_within_tolerance():
    unlearned, retrained = realistic_pair(np.random.default_rng(3), 512, 30)
    seen = set()
    for i in range(30):
        neg, right, w = interval_grid(unlearned[:, i], retrained[:, i])
        lattice = metric._lattice(right.size)
        seen.add(right.size)
        left = np.array([np.linspace(r - w - 2.0, r - w + 2.0, 400) for r in right])
        points = lattice.a * np.arange(right.size)[:, None] + lattice.b * np.arange(400)[None, :]
        error = np.abs(left - (left[0, 0] + points * lattice.unit)).max()
        magnitude = 3 * np.abs(np.r_[unlearned[:, i], retrained[:, i]]).max() + 8
        assert error < 10 * np.finfo(float).eps * magnitude
    assert seen == {400, 401}


def test_linspace_at_is_bit_identical_to_numpy():
    rng = np.random.default_rng(0)
    starts = np.r_[rng.normal(0, 10, 30), 0.0, 1.0, 0.0]
    stops = np.r_[starts[:30] + rng.exponential(4, 30), 0.0, 1.0, 5e-324]
    for num in (1, 2, 3, 400, 401, 1234):
        k = np.arange(num)
        got = metric._linspace_at(starts[:, None], stops[:, None], num, k[None, :])
        want = np.array([np.linspace(a, b, num) for a, b in zip(starts, stops)])
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


# ------------------------------------------------------------- properties


def test_identical_samples_give_zero():
    confs = np.random.default_rng(1).normal(2.0, 3.0, (64, 20))
    np.testing.assert_array_equal(per_example_epsilons(confs, confs.copy()), 0.0)


def test_identical_distributions_give_small_epsilons():
    unlearned, retrained = np.random.default_rng(2).normal(0.0, 1.0, (2, 128, 30))
    eps = per_example_epsilons(unlearned, retrained)
    assert eps.max() < 3.5
    assert np.median(eps) < 2.0
    assert forget_quality(unlearned, retrained) > 0.1


def test_fully_separated_distributions_give_cap_and_zero_points():
    rng = np.random.default_rng(3)
    retrained = rng.uniform(0.0, 1.0, (64, 10))
    unlearned = rng.uniform(5.0, 6.0, (64, 10))
    eps, details = per_example_epsilons(unlearned, retrained, return_details=True)
    np.testing.assert_array_equal(eps, 50.0)
    np.testing.assert_array_equal(details["fpr"], 0.0)
    np.testing.assert_array_equal(details["fnr"], 0.0)
    np.testing.assert_array_equal(bucket_points(eps, 64), 0.0)
    assert forget_quality(unlearned, retrained) == 0.0


def test_peaky_guard():
    rng = np.random.default_rng(4)
    wide = rng.normal(0.0, 1.0, (32, 5))
    narrow = wide.mean(axis=0) + 0.009 * (wide - wide.mean(axis=0))
    eps, details = per_example_epsilons(narrow, wide, return_details=True)
    np.testing.assert_array_equal(eps, 50.0)
    assert set(details["family"]) == {"peaky"}
    assert np.isnan(details["fpr"]).all() and np.isnan(details["fnr"]).all()
    # one constant side and one that is not
    eps, details = per_example_epsilons(np.full((32, 5), 0.5), wide, return_details=True)
    np.testing.assert_array_equal(eps, 50.0)
    assert set(details["family"]) == {"peaky"}


def test_both_sides_constant():
    unlearned = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    retrained = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    eps, details = per_example_epsilons(unlearned, retrained, return_details=True)
    np.testing.assert_array_equal(eps, [0.0, 50.0])
    assert list(details["family"]) == ["constant", "constant"]


def test_details_layout():
    unlearned, retrained = normal_pair(np.random.default_rng(6), 16, 12)
    eps, details = per_example_epsilons(unlearned, retrained, return_details=True)
    assert set(details) == {"family", "fpr", "fnr"}
    assert set(details["family"]) <= set(FAMILIES)
    for key in ("fpr", "fnr"):
        assert details[key].shape == eps.shape and details[key].dtype == np.float64
    kept = np.isin(details["family"], ["single", "interval"])
    assert np.all((details["fpr"][kept] >= 0) & (details["fpr"][kept] <= 1))
    np.testing.assert_array_equal(per_example_epsilons(unlearned, retrained), eps)


def test_no_example():
    assert per_example_epsilons(np.zeros((4, 0)), np.zeros((4, 0))).shape == (0,)
    with pytest.raises(ValueError, match="M = 0"):
        forget_quality(np.zeros((4, 0)), np.zeros((4, 0)))


# ---------------------------------------------------------------- buckets


@pytest.mark.parametrize("n, count", [(512, 14), (64, 10), (100, 10), (128, 10), (256, 12), (2, 0), (3, 2)])
def test_bucket_counts(n, count):
    assert num_buckets(n) == count
    np.testing.assert_array_equal(bucket_edges(n), np.arange(count + 1) * 0.5)


def test_bucket_points_at_512():
    eps = np.array([0.0, 0.49, 0.5, 1.0, 6.49, 6.5, 6.999, 7.0, 50.0, np.inf])
    expected = [1.0, 1.0, 0.5, 0.25, 2.0 ** -12, 2.0 ** -13, 2.0 ** -13, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(bucket_points(eps, 512), expected)


@pytest.mark.parametrize("n", [3, 10, 64, 100, 256, 512])
def test_bucket_points_match_literal(n):
    eps = np.r_[np.random.default_rng(n).uniform(0.0, 8.0, 200), np.arange(0, 8.5, 0.5), 50.0]
    np.testing.assert_array_equal(bucket_points(eps, n), literal_bucket_points(eps, n))


def test_bucket_points_reject_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        bucket_points([-0.1], 64)
    with pytest.raises(ValueError, match="non-negative"):
        bucket_points([np.nan], 64)
    with pytest.raises(ValueError, match="num_models"):
        num_buckets(1)


# ------------------------------------------------------------- final score


def test_final_score_formula():
    assert final_score(0.5, 0.9, 0.95, 0.8, 0.85) == pytest.approx(0.5 * (0.9 / 0.95) * (0.8 / 0.85))
    # ratios above 1 are not capped
    assert final_score(0.5, 1.0, 0.5, 1.0, 0.5) == pytest.approx(2.0)
    # per-model accuracies are averaged
    assert final_score(1.0, [0.8, 1.0], [0.9], 0.5, [0.4, 0.6]) == pytest.approx(0.9 / 0.9 * 0.5 / 0.5)


@pytest.mark.parametrize("args, match", [
    ((0.5, 0.9, 0.0, 0.8, 0.85), "retrained_retain_acc"),
    ((0.5, 0.9, 0.9, 0.8, -0.1), "retrained_test_acc"),
    ((np.nan, 0.9, 0.9, 0.8, 0.8), "forget_quality"),
])
def test_final_score_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        final_score(*args)


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("unlearned, retrained, match", [
    (np.full((4, 3), np.nan), np.zeros((4, 3)), "unlearned_confs contains NaN or inf"),
    (np.zeros((4, 3)), np.full((4, 3), np.inf), "retrained_confs contains NaN or inf"),
    (np.zeros((4, 3)), np.zeros((5, 3)), "same shape"),
    (np.zeros((1, 3)), np.zeros((1, 3)), "N >= 2"),
    (np.zeros(4), np.zeros(4), "2-D"),
    (np.zeros((4, 3, 2)), np.zeros((4, 3, 2)), "2-D"),
    (np.zeros((4, 3), dtype=complex), np.zeros((4, 3)), "real numbers"),
])
def test_epsilons_reject_bad_input(unlearned, retrained, match):
    with pytest.raises(ValueError, match=match):
        per_example_epsilons(unlearned, retrained)
    with pytest.raises(ValueError, match=match):
        forget_quality(unlearned, retrained)


@pytest.mark.parametrize("delta", [-0.1, 1.0, np.nan])
def test_epsilons_reject_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        per_example_epsilons(np.zeros((4, 2)), np.ones((4, 2)), delta)
