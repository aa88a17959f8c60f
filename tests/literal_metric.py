"""Slow, literal reference for the forgetting-quality metric (tests and benchmark only).

Written straight from the text of the specification, one forget example at a
time: every decision rule is built from its ``np.linspace`` thresholds, its
predictions are taken on the raw confidences, and its rates are means of those
predictions.  It is deliberately naive; ``mock_evaluator.scoring.metric`` is the fast one.

Two shortcuts only: the predictions of the 400 left ends of one right end are one
``[400, N]`` comparison, and the value of a rule is computed once per distinct
(FPR, FNR) pair (rules with equal rates have equal values).
"""

from __future__ import annotations

import math

import numpy as np

DELTA = 1e-5


def rule_epsilon(fpr: float, fnr: float, delta: float) -> float:
    """Value of one rule, or None when the rule is discarded."""
    if fpr == 0 and fnr == 0:
        return math.inf
    if fpr == 0 or fnr == 0:
        return None
    term1 = np.log(1.0 - delta - fpr) - np.log(fnr)
    term2 = np.log(1.0 - delta - fnr) - np.log(fpr)
    terms = [t for t in (term1, term2) if not np.isnan(t)]
    if not terms:
        return None
    return float(max([0.0] + terms))


def single_threshold_rates(pos, neg):
    """(FPR, FNR) of every single-threshold rule, predicting positive iff conf >= t."""
    pooled = np.concatenate([pos, neg])
    lo, hi = pooled.min(), pooled.max()
    thresholds = np.linspace(lo, hi, int(np.ceil((hi - lo) * 100)))
    fpr = np.mean(neg[None, :] >= thresholds[:, None], axis=1)
    fnr = np.mean(~(pos[None, :] >= thresholds[:, None]), axis=1)
    return fpr, fnr


def interval_rates(pos, neg):
    """(FPR, FNR) of every interval rule, predicting positive iff l <= conf <= r."""
    if pos.max() - pos.min() >= neg.max() - neg.min():
        pos, neg = neg, pos
    w = pos.max() - pos.min()
    lo = pos.min() + w - 2.0
    hi = pos.max() + 2.0
    fprs, fnrs = [], []
    for r in np.linspace(lo, hi, int(np.ceil((hi - lo) * 100))):
        lefts = np.linspace(r - w - 2.0, r - w + 2.0, 400)
        pred_neg = (neg[None, :] >= lefts[:, None]) & (neg[None, :] <= r)
        pred_pos = (pos[None, :] >= lefts[:, None]) & (pos[None, :] <= r)
        fprs.append(np.mean(pred_neg, axis=1))
        fnrs.append(np.mean(~pred_pos, axis=1))
    return np.concatenate(fprs), np.concatenate(fnrs)


def best_rule(fpr, fnr, delta):
    """(value, fpr, fnr) of the best kept rule of one family, or None if none is kept.
    Ties: smallest FPR, then smallest FNR."""
    best = None
    with np.errstate(divide="ignore", invalid="ignore"):  # log(x < 0) is NaN, log(0) -inf
        order = np.lexsort((fnr, fpr))  # by FPR, then FNR
        fpr, fnr = fpr[order], fnr[order]
        distinct = np.r_[True, (np.diff(fpr) != 0) | (np.diff(fnr) != 0)]
        for a, b in zip(fpr[distinct], fnr[distinct]):
            value = rule_epsilon(a, b, delta)
            if value is not None and (best is None or value > best[0]):
                best = (value, a, b)
    return best


def literal_example(unlearned, retrained, delta=DELTA):
    """(epsilon, family, fpr, fnr) for one forget example (two 1-D arrays of N)."""
    R, U = np.asarray(retrained, float), np.asarray(unlearned, float)
    if np.median(R) > np.median(U):
        pos, neg = R, U
    else:
        pos, neg = U, R
    range_pos = pos.max() - pos.min()
    range_neg = neg.max() - neg.min()
    if range_pos == 0 and range_neg == 0:
        return (0.0 if pos[0] == neg[0] else 50.0), "constant", math.nan, math.nan
    if min(range_pos, range_neg) / max(range_pos, range_neg) < 0.01:
        return 50.0, "peaky", math.nan, math.nan
    best = None
    for family, rates in (("single", single_threshold_rates(pos, neg)),
                          ("interval", interval_rates(pos, neg))):
        candidate = best_rule(*rates, delta)
        if candidate is not None and (best is None or candidate[0] > best[0]):
            best = candidate + (family,)
    if best is None:
        return 0.0, "none", math.nan, math.nan
    value, fpr, fnr, family = best
    return float(min(max(value, 0.0), 50.0)), family, float(fpr), float(fnr)


def literal_per_example_epsilons(unlearned_confs, retrained_confs, delta=DELTA,
                                 return_details=False):
    """Literal epsilons of all M examples of ``[N, M]`` confidences."""
    u = np.asarray(unlearned_confs, float)
    r = np.asarray(retrained_confs, float)
    results = [literal_example(u[:, i], r[:, i], delta) for i in range(u.shape[1])]
    eps = np.array([res[0] for res in results], dtype=float)
    if not return_details:
        return eps
    details = {"family": np.array([res[1] for res in results]),
               "fpr": np.array([res[2] for res in results], dtype=float),
               "fnr": np.array([res[3] for res in results], dtype=float)}
    return eps, details


def literal_bucket_points(epsilons, num_models):
    """Points of each epsilon, buckets built one by one."""
    max_eps = math.ceil(math.log(num_models - 1))
    buckets = []
    start, worth = 0.0, 1.0
    while start + 0.5 <= max_eps:
        buckets.append((start, start + 0.5, worth))
        start, worth = start + 0.5, worth / 2
    points = []
    for eps in np.asarray(epsilons, float):
        points.append(next((v for lo, hi, v in buckets if lo <= eps < hi), 0.0))
    return np.array(points)


def literal_forget_quality(unlearned_confs, retrained_confs, delta=DELTA):
    eps = literal_per_example_epsilons(unlearned_confs, retrained_confs, delta)
    return float(np.mean(literal_bucket_points(eps, np.shape(unlearned_confs)[0])))
