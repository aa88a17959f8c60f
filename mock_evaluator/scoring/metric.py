"""Forgetting quality of the NeurIPS 2023 Machine Unlearning Challenge, exact and fast.

The challenge scored an unlearning algorithm by running it N times (N "unlearned"
models) and comparing those models with N models retrained from scratch without
the forget set.  For every forget example each model yields one *logit-scaled
confidence* (:func:`mock_evaluator.engine.figures.logit_scaled_confidence`, measured
with the model's other figures); an example is well forgotten when no simple
decision rule applied to that single number can tell the two groups of models
apart.

Per forget example (:func:`per_example_epsilons`):

1. ``R`` = the N retrained confidences, ``U`` = the N unlearned ones.  The
   *positive* side is ``R`` if ``median(R) > median(U)`` strictly, else ``U``.
2. Peaky guard: if (smaller range) / (larger range) < 0.01, with range = max - min
   of a side, then epsilon = 50.  Both sides constant (ranges both 0, a case the
   organisers' scorer cannot handle): epsilon = 0 if the two constants are equal
   and 50 otherwise.  One constant side and one that is not gives the ratio 0 and
   therefore falls under the peaky guard (epsilon = 50).
3. Two families of decision rules, every rate being a plain fraction over the N
   models of one side:

   * single threshold: ``T = ceil((max - min) * 100)`` thresholds
     ``np.linspace(min, max, T)`` over the pooled 2N values; predict positive iff
     ``conf >= t``.  ``T >= 1`` always holds here because the pooled values are
     not all equal (that case was settled in step 2), and ``np.linspace(a, b, 1)``
     is ``[a]``; no other special case exists.
   * interval: the positive side becomes the side with the smaller range (swap if
     the positive side's range is >= the negative side's); ``w`` = that range.
     Right ends ``np.linspace(pos.min + w - 2, pos.max + 2, ceil((hi - lo) * 100))``
     and, for each right end ``r``, 400 left ends
     ``np.linspace(r - w - 2, r - w + 2, 400)``; predict positive iff
     ``l <= conf <= r``.  A left end above its right end predicts nothing positive.

4. Per rule, FPR = share of negatives predicted positive, FNR = share of positives
   predicted negative.  FPR = FNR = 0 gives +inf; exactly one of them 0 discards
   the rule; otherwise ``max(0, log(1 - delta - FPR) - log(FNR),
   log(1 - delta - FNR) - log(FPR))`` where a NaN term is ignored and a rule with
   two NaN terms is discarded.
5. epsilon = the largest kept rule value, 0 when no rule is kept, clipped to
   [0, 50].

Buckets (:func:`bucket_points`): ``max_eps = ceil(ln(N - 1))``; buckets
``[0, 0.5), [0.5, 1), ...`` ending at most at ``max_eps`` are worth
``1, 1/2, 1/4, ...``; an epsilon past the last bucket scores 0.  The forgetting
quality (:func:`forget_quality`) is the mean of the points over the examples and
:func:`final_score` multiplies it by the two utility ratios.

How the fast path works.  Every rate is ``count / N``, so the value of a rule only
depends on its (false-positive count, false-negative count) pair; that value is
tabulated once per ``(N, delta)`` (:func:`_rule_value_table`).  A rule's pair is
read off one *weighted count*: with the pooled values sorted and every positive
value weighing ``N + 1`` and every negative value weighing 1, the weight of the
values below a threshold is ``(N + 1) * (#positives below) + (#negatives below)``,
a single integer that indexes the table directly; an interval's weight is the
difference of two such counts.  Counts at thresholds come from ``np.searchsorted``
on the sorted values.  The interval family has about 160,000 rules per example;
their left ends all lie (up to rounding) on one fine arithmetic lattice, so the
left-end counts are a cumulative count over that lattice, read through a strided
view; the few data values that sit on a lattice point within rounding distance
are compared with the exact left ends, so the result equals the per-rule
evaluation exactly.  Threshold values are the very ``np.linspace`` values of the
definition (see :func:`_linspace_at`).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "DEFAULT_DELTA",
    "EPSILON_CAP",
    "FAMILIES",
    "bucket_edges",
    "bucket_points",
    "final_score",
    "forget_quality",
    "num_buckets",
    "per_example_epsilons",
]

DEFAULT_DELTA = 1e-5
EPSILON_CAP = 50.0  # epsilons are clipped to [0, EPSILON_CAP]
PEAKY_RATIO = 0.01  # range ratio under which an example gets EPSILON_CAP
GRID_DENSITY = 100  # thresholds per unit of confidence
INTERVAL_BUFFER = 2.0
NUM_LEFT_ENDS = 400
BUCKET_WIDTH = 0.5

#: Values of the ``family`` detail returned by :func:`per_example_epsilons`:
#: ``peaky`` - the peaky guard fired (epsilon 50); ``constant`` - both sides are
#: constant (epsilon 0 or 50); ``single`` / ``interval`` - the family of the rule
#: that achieved the maximum; ``none`` - no rule was kept (epsilon 0).
FAMILIES = ("peaky", "constant", "single", "interval", "none")


# --------------------------------------------------------------------------- API


def per_example_epsilons(unlearned_confs, retrained_confs, delta: float = DEFAULT_DELTA,
                         return_details: bool = False):
    """Privacy degree epsilon of every forget example (smaller is better).

    ``unlearned_confs`` and ``retrained_confs`` are ``[N, M]``: N models (N >= 2)
    x M forget examples, finite real numbers.  Returns a float64 ``[M]`` array in
    ``[0, 50]`` (see the module docstring for the definition).

    With ``return_details=True`` returns ``(epsilons, details)`` where ``details``
    holds ``[M]`` arrays: ``family`` (strings from :data:`FAMILIES`) and ``fpr``,
    ``fnr`` - the rates of the rule that achieved the maximum (NaN for the
    ``peaky``, ``constant`` and ``none`` families).  When several rules tie for the
    maximum, the single-threshold family wins over the interval family and,
    within a family, the rule with the smallest FPR, then the smallest FNR.

    Raises ``ValueError`` for non-2-D arrays, mismatched shapes, N < 2, NaN/inf
    confidences or a delta outside [0, 1).
    """
    unlearned, retrained = _validated_confidences(unlearned_confs, retrained_confs)
    delta = _validated_delta(delta)
    return _epsilons(unlearned, retrained, delta, return_details)


def num_buckets(num_models: int) -> int:
    """Number of score buckets for ``num_models`` models per side.

    ``max_eps = ceil(ln(N - 1))`` and buckets of width 0.5 starting at 0 are
    created while their end is <= ``max_eps``, i.e. ``2 * max_eps`` buckets
    (N = 2 has none, so every example then scores 0).
    """
    n = _validated_num_models(num_models)
    max_eps = math.ceil(math.log(n - 1))
    return int(max_eps / BUCKET_WIDTH)


def bucket_edges(num_models: int) -> np.ndarray:
    """Edges ``[0, 0.5, ..., max_eps]`` of the buckets; bucket i is ``[e_i, e_{i+1})``
    and is worth ``2 ** -i``."""
    return np.arange(num_buckets(num_models) + 1) * BUCKET_WIDTH


def bucket_points(epsilons, num_models: int) -> np.ndarray:
    """Points of each epsilon: ``2 ** -i`` in bucket ``[0.5 i, 0.5 (i + 1))``, 0 past
    the last bucket (see :func:`num_buckets`).  Same shape as ``epsilons``;
    epsilons must be >= 0 and not NaN (+inf scores 0)."""
    eps = np.asarray(epsilons, dtype=np.float64)
    if np.isnan(eps).any() or (eps < 0).any():
        raise ValueError("epsilons must be non-negative numbers (no NaN)")
    index = np.floor(eps / BUCKET_WIDTH)
    inside = index < num_buckets(num_models)
    return np.where(inside, np.exp2(-np.where(inside, index, 0.0)), 0.0)


def forget_quality(unlearned_confs, retrained_confs, delta: float = DEFAULT_DELTA) -> float:
    """Forgetting quality F: the mean bucket points over the M forget examples.

    Inputs as for :func:`per_example_epsilons`; M must be >= 1.
    """
    epsilons = per_example_epsilons(unlearned_confs, retrained_confs, delta)
    if epsilons.size == 0:
        raise ValueError("confidences hold no forget example (M = 0)")
    num_models = np.shape(unlearned_confs)[0]
    return float(bucket_points(epsilons, num_models).mean())


def final_score(forget_quality, unlearned_retain_acc, retrained_retain_acc,
                unlearned_test_acc, retrained_test_acc) -> float:
    """``F * (RA_U / RA_R) * (TA_U / TA_R)``; the ratios are not capped.

    Each accuracy is a number or an array of per-model accuracies (its mean is
    used).  Raises ``ValueError`` for non-finite inputs or a non-positive retrained
    accuracy.
    """
    values = {name: float(np.mean(np.asarray(value, dtype=np.float64)))
              for name, value in (("forget_quality", forget_quality),
                                  ("unlearned_retain_acc", unlearned_retain_acc),
                                  ("retrained_retain_acc", retrained_retain_acc),
                                  ("unlearned_test_acc", unlearned_test_acc),
                                  ("retrained_test_acc", retrained_test_acc))}
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite; got {value}")
    for name in ("retrained_retain_acc", "retrained_test_acc"):
        if values[name] <= 0:
            raise ValueError(f"{name} must be positive; got {values[name]}")
    return (values["forget_quality"]
            * (values["unlearned_retain_acc"] / values["retrained_retain_acc"])
            * (values["unlearned_test_acc"] / values["retrained_test_acc"]))


# -------------------------------------------------------------------- validation


def _validated_confidences(unlearned_confs, retrained_confs):
    arrays = []
    for name, value in (("unlearned_confs", unlearned_confs), ("retrained_confs", retrained_confs)):
        arr = np.asarray(value)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array [models, examples]; got shape {arr.shape}")
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
        arrays.append(arr)
    unlearned, retrained = arrays
    if unlearned.shape != retrained.shape:
        raise ValueError(f"unlearned_confs {unlearned.shape} and retrained_confs {retrained.shape} "
                         "must have the same shape [models, examples]")
    if unlearned.shape[0] < 2:
        raise ValueError(f"need at least 2 models per side (N >= 2); got N = {unlearned.shape[0]}")
    arrays = [arr.astype(np.float64, copy=False) for arr in arrays]
    for name, arr in zip(("unlearned_confs", "retrained_confs"), arrays):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
    return arrays


def _validated_delta(delta) -> float:
    delta = float(delta)
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must lie in [0, 1); got {delta}")
    return delta


def _validated_num_models(num_models) -> int:
    n = int(num_models)
    if n != num_models or n < 2:
        raise ValueError(f"num_models must be an integer >= 2; got {num_models}")
    return n


# ------------------------------------------------------------ exact grid values


def _linspace_at(start, stop, num: int, k):
    """``np.linspace(start, stop, num)[k]`` for arrays of starts, stops and indices.

    Replays numpy's own arithmetic (``k * step + start``, the exact ``stop`` as
    the last point, ``k / div * delta`` when the step underflows to 0) so that
    every value is bit-identical to the scalar ``np.linspace`` call.
    """
    start = np.asarray(start, dtype=np.float64)
    stop = np.asarray(stop, dtype=np.float64)
    k = np.asarray(k)
    if num == 1:
        return np.broadcast_to(start, np.broadcast_shapes(start.shape, k.shape)).copy()
    div = num - 1
    delta = stop - start
    step = delta / div
    kf = k.astype(np.float64)
    values = np.where(step == 0, kf / div * delta, kf * step) + start
    return np.where(k == div, stop, values)


# ------------------------------------------------------------ rule-value tables


class _Tables(NamedTuple):
    """Rule values indexed by weighted counts (see the module docstring)."""

    n: int
    by_below: np.ndarray     # [(N+1)*fn + (N - fp)]: weight of values below a threshold
    by_inside: np.ndarray    # [(N+1)*(N - fn) + fp]: weight of values inside an interval


@functools.lru_cache(maxsize=8)
def _rule_value_table(n: int, delta: float) -> np.ndarray:
    """``table[fp, fn]``: value of a rule with ``fp`` false positives and ``fn`` false
    negatives among N models per side: +inf for (0, 0), -inf for a discarded rule,
    else ``max(0, log(1 - delta - FPR) - log(FNR), log(1 - delta - FNR) - log(FPR))``
    ignoring a NaN term."""
    rates = np.arange(n + 1) / n
    fpr, fnr = rates[:, None], rates[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        term1 = np.log(1.0 - delta - fpr) - np.log(fnr)
        term2 = np.log(1.0 - delta - fnr) - np.log(fpr)
    value = np.fmax(term1, term2)  # NaN only where both terms are NaN
    table = np.where(np.isnan(value), -np.inf, np.maximum(value, 0.0))
    table[0, :] = -np.inf
    table[:, 0] = -np.inf
    table[0, 0] = np.inf
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=8)
def _tables(n: int, delta: float) -> _Tables:
    table = _rule_value_table(n, delta)            # [fp, fn]
    by_below = np.ascontiguousarray(table.T[:, ::-1]).ravel()   # [fn, N - fp]
    by_inside = np.ascontiguousarray(table.T[::-1, :]).ravel()  # [N - fn, fp]
    by_below.flags.writeable = False
    by_inside.flags.writeable = False
    return _Tables(n, by_below, by_inside)


# ------------------------------------------------------------ per-example work


class _Best(NamedTuple):
    value: float          # largest rule value of the family, -inf if none kept
    fp: int = -1          # false positives / negatives of the reported rule
    fn: int = -1


def _epsilons(unlearned, retrained, delta, return_details, exact_intervals=False):
    """Fast per-example epsilons; ``exact_intervals`` forces the slower, direct
    ``searchsorted`` count of every interval rule (used by the tests)."""
    n, m = retrained.shape
    cols_r = np.ascontiguousarray(retrained.T)
    cols_u = np.ascontiguousarray(unlearned.T)
    pos_is_retrained = np.median(cols_r, axis=1) > np.median(cols_u, axis=1)
    pos = np.where(pos_is_retrained[:, None], cols_r, cols_u)
    neg = np.where(pos_is_retrained[:, None], cols_u, cols_r)
    range_pos = pos.max(axis=1) - pos.min(axis=1)
    range_neg = neg.max(axis=1) - neg.min(axis=1)
    smaller = np.minimum(range_pos, range_neg)
    larger = np.maximum(range_pos, range_neg)
    constant = larger == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        peaky = ~constant & (smaller / larger < PEAKY_RATIO)

    eps = np.zeros(m)
    family = np.full(m, "none", dtype="<U8")
    fp = np.full(m, -1, dtype=np.int64)
    fn = np.full(m, -1, dtype=np.int64)
    eps[constant] = np.where(pos[constant, 0] == neg[constant, 0], 0.0, EPSILON_CAP)
    family[constant] = "constant"
    eps[peaky] = EPSILON_CAP
    family[peaky] = "peaky"

    tables = _tables(n, delta)
    for i in np.flatnonzero(~constant & ~peaky):
        single, interval = _example_best_rules(pos[i], neg[i], range_pos[i] >= range_neg[i],
                                               tables, return_details, exact_intervals)
        best, name = max((single, "single"), (interval, "interval"), key=lambda item: item[0].value)
        if best.value > -np.inf:
            eps[i] = best.value
            family[i], fp[i], fn[i] = name, best.fp, best.fn
    np.clip(eps, 0.0, EPSILON_CAP, out=eps)
    if not return_details:
        return eps
    details = {"family": family,
               "fpr": np.where(fp >= 0, fp / n, np.nan),
               "fnr": np.where(fn >= 0, fn / n, np.nan)}
    return eps, details


def _example_best_rules(pos, neg, swap_for_intervals, tables, details, exact_intervals):
    """Best rule of each family for one example (``pos``/``neg``: the median-based
    sides; the interval family swaps them when ``swap_for_intervals``)."""
    below, inside = _example_rule_weights(pos, neg, swap_for_intervals, exact_intervals)
    return _single_threshold_best(below, tables, details), _interval_best(inside, tables, details)


def _example_rule_weights(pos, neg, swap_for_intervals, exact_intervals=False):
    """Weighted counts of every rule of one example.

    ``below[t]`` = ``(N+1) * fn + (N - fp)`` of single threshold t (the weight of
    the pooled values below it); ``inside[j, k]`` = ``(N+1) * (N - fn) + fp`` of the
    interval with right end j and left end k (the weight of the values inside it;
    negative when the left end is above the right end, i.e. nothing is inside).
    """
    n = pos.size
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="stable")
    values = values[order]
    from_pos = order < n
    below = _single_threshold_weights(values, _cumulative_weights(from_pos, n))
    interval_pos = ~from_pos if swap_for_intervals else from_pos
    ipos = neg if swap_for_intervals else pos
    inside = _interval_weights(values, _cumulative_weights(interval_pos, n), ipos.min(), ipos.max(),
                               exact_intervals)
    return below, inside


def _cumulative_weights(is_positive, n):
    """``cum[p]`` = weight of the first p sorted values (positives weigh N + 1)."""
    cum = np.zeros(is_positive.size + 1, dtype=np.int64)
    np.cumsum(np.where(is_positive, n + 1, 1), out=cum[1:])
    return cum


def _single_threshold_weights(values, cum):
    lo, hi = values[0], values[-1]
    thresholds = np.linspace(lo, hi, math.ceil((hi - lo) * GRID_DENSITY))
    return cum[np.searchsorted(values, thresholds, side="left")]


def _interval_weights(values, cum, pos_min, pos_max, exact):
    w = pos_max - pos_min
    lo = pos_min + w - INTERVAL_BUFFER
    hi = pos_max + INTERVAL_BUFFER
    right = np.linspace(lo, hi, math.ceil((hi - lo) * GRID_DENSITY))
    start = right - w - INTERVAL_BUFFER
    stop = right - w + INTERVAL_BUFFER
    upto_right = cum[np.searchsorted(values, right, side="right")]
    inside = None if exact else _lattice_inside_weights(values, cum, right, start, stop, upto_right)
    if inside is None:
        left = _linspace_at(start[:, None], stop[:, None], NUM_LEFT_ENDS, np.arange(NUM_LEFT_ENDS))
        inside = upto_right[:, None] - cum[np.searchsorted(values, left, side="left")]
    return inside


def _single_threshold_best(below, tables, details) -> _Best:
    rule_values = tables.by_below[below]
    best = rule_values.max()
    if not details or best == -np.inf:
        return _Best(best)
    n = tables.n
    chosen = below[rule_values == best]
    return _lexicographic_best(best, n - chosen % (n + 1), chosen // (n + 1))


def _interval_best(inside, tables, details) -> _Best:
    # a negative weight (left end above right end) is clipped to index 0: nothing
    # inside, i.e. fp = 0 and fn = N, a discarded rule
    rule_values = np.take(tables.by_inside, inside, mode="clip")
    best = rule_values.max()
    if not details or best == -np.inf:
        return _Best(best)
    n = tables.n
    chosen = inside[rule_values == best]
    return _lexicographic_best(best, chosen % (n + 1), n - chosen // (n + 1))


def _lexicographic_best(value, fp, fn) -> _Best:
    first = np.lexsort((fn, fp))[0]
    return _Best(float(value), int(fp[first]), int(fn[first]))


# ------------------------------------------------------- left-end lattice trick


class _Lattice(NamedTuple):
    """In exact arithmetic, left end ``(j, k)`` is ``start_0 + unit * (a j + b k)``."""

    a: int
    b: int
    unit: float
    size: int


@functools.lru_cache(maxsize=16)
def _lattice(num_right: int) -> _Lattice:
    # l_jk = start_0 + 4 j / (R - 1) + 4 k / 399 = start_0 + 4 (399 j + (R - 1) k) / (399 (R - 1))
    span = NUM_LEFT_ENDS - 1
    g = math.gcd(span, num_right - 1)
    a, b = span // g, (num_right - 1) // g
    unit = 2 * INTERVAL_BUFFER * g / (span * (num_right - 1))
    return _Lattice(a, b, unit, a * (num_right - 1) + b * span + 1)


_MAX_LATTICE_SIZE = 4_000_000


def _lattice_inside_weights(values, cum, right, start, stop, upto_right):
    """Weighted counts inside every interval rule, ``[R, 400]``, or None when the
    lattice shortcut does not apply (the caller then counts directly).

    Every left end lies within ``tol`` of its lattice point (rounding only: the
    right ends are ``D / (R - 1)`` apart with ``D`` = 4 up to rounding, the left
    ends ``~4 / 399``).  A value farther than ``tol`` from every lattice point
    compares the same with the left end as with its lattice point, so the counts
    below each lattice point are one cumulative sum; a value within ``tol`` of a
    lattice point is counted there only after comparing it with the exact left
    ends of the cells on that point.
    """
    num_right = right.size
    if num_right < 2:
        return None
    lattice = _lattice(num_right)
    magnitude = 3.0 * max(abs(values[0]), abs(values[-1])) + 8.0
    span_error = abs((right[-1] - right[0]) - 2 * INTERVAL_BUFFER)
    # a left end is built by ~10 float operations on numbers below ``magnitude``;
    # their rounding stays within ~20 ulp (tests check it), so 1000 eps is ample
    tol = 1000 * np.finfo(np.float64).eps * magnitude + 2 * span_error
    if 8 * tol >= lattice.unit or lattice.size > _MAX_LATTICE_SIZE:
        return None
    base = start[0]
    offset = values - base
    nearest = np.rint(offset / lattice.unit)
    unsafe = np.abs(offset - nearest * lattice.unit) <= tol
    # slot = index of the first lattice point the value is below
    slot = np.where(unsafe, nearest + 1, np.floor(offset / lattice.unit) + 1)
    slot = np.clip(slot, 0, lattice.size).astype(np.intp)
    below = np.repeat(cum, np.diff(slot, prepend=0, append=lattice.size))
    itemsize = below.itemsize
    below_cells = as_strided(below, shape=(num_right, NUM_LEFT_ENDS),
                             strides=(lattice.a * itemsize, lattice.b * itemsize), writeable=False)
    inside = upto_right[:, None] - below_cells
    if unsafe.any():
        _count_values_on_lattice(inside, values, cum, unsafe, nearest, start, stop, lattice)
    return inside


def _count_values_on_lattice(inside, values, cum, unsafe, nearest, start, stop, lattice):
    """Subtract from ``inside`` the weight of each near-lattice value that is below
    the exact left end of a cell sitting on that lattice point."""
    where = np.flatnonzero(unsafe)
    # merge tied values (``values`` is sorted): one weight per distinct value
    first = np.flatnonzero(np.diff(values[where], prepend=-np.inf) != 0)
    distinct = values[where[first]]
    points = nearest[where[first]]
    weights = np.add.reduceat(cum[where + 1] - cum[where], first)
    rows = np.arange(start.size)
    for point in np.unique(points):
        rest = int(point) - lattice.a * rows
        ok = (rest >= 0) & (rest % lattice.b == 0) & (rest // lattice.b < NUM_LEFT_ENDS)
        if not ok.any():
            continue
        j = rows[ok]
        k = rest[ok] // lattice.b
        left = _linspace_at(start[j], stop[j], NUM_LEFT_ENDS, k)
        for value, weight in zip(distinct[points == point], weights[points == point]):
            is_below = value < left
            inside[j[is_below], k[is_below]] -= weight
