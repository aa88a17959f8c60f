"""The per-example likelihood-ratio attack (LiRA) and the spread/shift diagnostics, on forget confidences.

The challenge's ε comes from threshold attacks with empirical rates; the field now reports
**per-example likelihood-ratio attacks** (LiRA, Carlini et al. 2022; for unlearning U-LiRA, Hayes et al.
2024) as **TPR at a low FPR** on log-log ROC curves. :func:`lira_attack` is that attack on what the
evaluator already has: N unlearned and N retrained logit-scaled confidences per forget example.

Per example and per fold, a Gaussian (mean, variance floored at :data:`VARIANCE_FLOOR`) is fitted to the
unlearned and to the retrained models *outside* the fold; each held-out model is scored by
``log N(x; μ_u, σ_u²) − log N(x; μ_r, σ_r²)``. Every model is held out exactly once, so every score is
out of sample. The scores of all models and examples are pooled into one ROC (unlearned = positive).
A model is one unit: it is held out for all examples at once (the folds split models, not examples).

:func:`spread_and_shift` says *why* a method scores what it scores: per forget example, the standard
deviation of its N confidences over the oracles' (the spread ratio; 0.1 = "your models are ten times too
alike") and the distance between the two means in oracle standard deviations (the mean shift), each the
median over the forget examples.
"""

from __future__ import annotations

import numpy as np

VARIANCE_FLOOR = 1e-4
"""The smallest variance a fitted Gaussian gets (a standard deviation of 0.01 in logit-scaled confidence):
N identical copies of a model (the untouched original) would otherwise have zero variance."""
ROC_GRID = np.logspace(-5, 0, 251)
"""The FPRs at which a ROC is kept for results.json and roc.png (the full ROC has one point per score)."""


def fold_labels(num_models: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each of ``num_models`` models: a seeded permutation cut into ``folds`` near-equal parts."""
    labels = np.empty(num_models, dtype=np.int64)
    labels[np.random.default_rng(seed).permutation(num_models)] = np.arange(num_models) % folds
    return labels


def draw_within_folds(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap draw of models that keeps the folds: model j is replaced by a model drawn with replacement
    from j's own fold, so the draw's fold labels are ``labels`` again and a model and its duplicates always
    share a fold (a duplicate on the fitting side would make the held-out copy look like its own kind)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    return order[starts[labels] + (rng.random(len(labels)) * counts[labels]).astype(np.int64)]


def _check(unlearned, retrained, folds: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    arrays = []
    for side, values in (("unlearned", unlearned), ("retrained", retrained)):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"{side} confidences must be a 2-D array [models, examples]; got shape {values.shape}")
        if len(values) < 2 * folds:
            raise ValueError(f"{side} has {len(values)} models; the attack with {folds} folds needs at least "
                             f"{2 * folds} (2 x folds) on each side: evaluate more models or use fewer folds")
        if not np.isfinite(values).all():
            raise ValueError(f"{side} confidences contain NaN or inf")
        arrays.append(values)
    if arrays[0].shape[1] != arrays[1].shape[1]:
        raise ValueError(f"unlearned has {arrays[0].shape[1]} examples (columns) but retrained has "
                         f"{arrays[1].shape[1]}: both must hold the same forget examples in the same order")
    if arrays[0].shape[1] == 0:
        raise ValueError("the confidences hold no forget example")
    return arrays[0], arrays[1]


def _out_of_fold_gaussians(values: np.ndarray, labels: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Per fold and example, the mean and floored variance (ddof 1) of the models *outside* the fold:
    two arrays ``[folds, examples]``."""
    one_hot = labels[None, :] == np.arange(folds)[:, None]                      # [folds, models]
    outside = (~one_hot).astype(np.float64)
    count = outside.sum(1, keepdims=True)
    mean = outside @ values / count
    # the sum of squares around the out-of-fold mean, without forming [folds, models, examples]
    squares = outside @ values ** 2 - count * mean ** 2
    return mean, np.maximum(squares / (count - 1), VARIANCE_FLOOR)


def held_out_scores(unlearned: np.ndarray, retrained: np.ndarray, unlearned_folds: np.ndarray,
                    retrained_folds: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """The log-likelihood ratio of every model on every example, each from Gaussians fitted without the
    model's fold: ``(unlearned scores [Nu, M], retrained scores [Nr, M])``. Inputs are checked by the caller."""
    unlearned, retrained = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    mean_u, var_u = _out_of_fold_gaussians(unlearned, unlearned_folds, folds)
    mean_r, var_r = _out_of_fold_gaussians(retrained, retrained_folds, folds)

    def ratio(x, labels):
        mu, vu, mr, vr = mean_u[labels], var_u[labels], mean_r[labels], var_r[labels]
        return 0.5 * (np.log(vr / vu) + (x - mr) ** 2 / vr - (x - mu) ** 2 / vu)

    return ratio(unlearned, unlearned_folds), ratio(retrained, retrained_folds)


def roc_curve(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` at every distinct threshold (score >= threshold means positive), from (0, 0) to (1, 1).

    Each side is sorted on its own and the two sorted runs are merged by a stable argsort (timsort finds
    the runs): about ten times faster than one argsort of all the scores (5 million of them at N = 512 and
    5,000 examples)."""
    positive, negative = np.sort(positive, axis=None), np.sort(negative, axis=None)
    merged = np.concatenate([positive, negative])
    order = np.argsort(merged, kind="stable")
    merged, is_positive = merged[order], order < positive.size
    first = np.flatnonzero(np.r_[True, merged[1:] != merged[:-1]])   # the first of each distinct value
    positives_below = (np.cumsum(is_positive) - is_positive)[first]   # scores below the threshold
    tpr = 1.0 - positives_below / positive.size
    fpr = 1.0 - (first - positives_below) / negative.size
    return np.r_[0.0, fpr[::-1]], np.r_[0.0, tpr[::-1]]


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, alphas) -> np.ndarray:
    """The highest TPR a threshold reaches with FPR <= each of ``alphas`` (the LiRA papers' reading)."""
    return tpr[np.searchsorted(fpr, np.asarray(alphas, dtype=np.float64), side="right") - 1]


def summarise(unlearned_scores: np.ndarray, retrained_scores: np.ndarray, fprs=(0.01, 0.001)) -> dict:
    """The attack's figures from held-out scores ``[Nu, M]`` and ``[Nr, M]`` (see :func:`lira_attack`)."""
    fpr, tpr = roc_curve(unlearned_scores, retrained_scores)
    per_example = 0.5 * ((unlearned_scores > 0).mean(0) + (retrained_scores <= 0).mean(0))
    return {
        "auc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2),   # ties count one half
        "balanced_accuracy": float(0.5 + 0.5 * np.max(tpr - fpr)),
        "tpr_at_fpr": {alpha: float(value) for alpha, value in zip(fprs, tpr_at(fpr, tpr, fprs))},
        "per_example_accuracy": per_example,
        "fpr": fpr, "tpr": tpr,
    }


def lira_attack(unlearned, retrained, *, folds: int = 2, seed: int = 0, fprs=(0.01, 0.001)) -> dict:
    """The per-example likelihood-ratio attack: can an attacker tell an unlearned model from a retrained one?

    ``unlearned`` ``[Nu, M]`` and ``retrained`` ``[Nr, M]``: logit-scaled confidences on the same M forget
    examples in the same column order (Nu and Nr may differ; each at least ``2 * folds``). Models are split
    into ``folds`` (seeded by ``seed``); per example and fold, Gaussians are fitted to each side's models
    outside the fold and each held-out model is scored by the log-likelihood ratio; all held-out scores are
    pooled into one ROC, unlearned = positive.

    Returns ``auc``; ``balanced_accuracy`` (the best threshold's mean of TPR and 1 − FPR); ``tpr_at_fpr``
    (``{alpha: TPR}`` for each of ``fprs``: the highest TPR at FPR <= alpha); ``per_example_accuracy``
    (``[M]``: the rule "ratio > 0 means unlearned" on held-out models, the mean of its rates on the two
    sides, so unequal model counts do not weigh in); ``fpr`` and ``tpr`` (the ROC at every distinct
    threshold). Exact retraining gives AUC ≈ 0.5 and TPR ≈ FPR.
    """
    unlearned, retrained = _check(unlearned, retrained, folds)
    alphas = tuple(fprs)
    if not alphas or not all(0 < a < 1 for a in alphas):
        raise ValueError(f"fprs must be false-positive rates in (0, 1), got {fprs!r}")
    scores = held_out_scores(unlearned, retrained, fold_labels(len(unlearned), folds, seed),
                             fold_labels(len(retrained), folds, seed), folds)
    return summarise(*scores, fprs=alphas)


LIRA_COLUMNS = ("lira_auc", "lira_tpr_at_1pct", "lira_tpr_at_0.1pct", "lira_worst_5pct_accuracy")
"""The report columns of the attack (summary.csv, leaderboard.csv): AUC, TPR at 1% and 0.1% FPR, and the
95th percentile of the per-example accuracies (the worst-forgotten 5% of the forget examples)."""
ROW_ARRAYS = ("lira_per_example_accuracy", "lira_roc_tpr")
MIN_MODELS = 4
"""The fewest models on a side :func:`lira_row` works with (2 x the default 2 folds); with fewer it returns
``None`` and the reports leave the view's columns empty."""


def lira_columns(attack: dict) -> dict:
    """The :data:`LIRA_COLUMNS` of a :func:`lira_attack` result (made with the default ``fprs``)."""
    return {"lira_auc": attack["auc"], "lira_tpr_at_1pct": attack["tpr_at_fpr"][0.01],
            "lira_tpr_at_0.1pct": attack["tpr_at_fpr"][0.001],
            "lira_worst_5pct_accuracy": float(np.percentile(attack["per_example_accuracy"], 95))}


def lira_row(unlearned, retrained) -> dict | None:
    """What a report row keeps of this view: the :data:`LIRA_COLUMNS`, ``lira_balanced_accuracy``,
    ``spread_ratio`` and ``mean_shift`` (numbers), and the :data:`ROW_ARRAYS`: the per-example accuracies and
    the ROC's TPR at the FPRs of :data:`ROC_GRID`. ``None`` with fewer than :data:`MIN_MODELS` on a side."""
    if min(len(unlearned), len(retrained)) < MIN_MODELS:
        return None
    attack = lira_attack(unlearned, retrained)
    spread, shift = spread_and_shift(unlearned, retrained)
    return {**lira_columns(attack), "lira_balanced_accuracy": attack["balanced_accuracy"],
            "spread_ratio": spread, "mean_shift": shift,
            "lira_per_example_accuracy": attack["per_example_accuracy"],
            "lira_roc_tpr": tpr_at(attack["fpr"], attack["tpr"], ROC_GRID)}


def spread_and_shift(unlearned, retrained) -> tuple[float, float]:
    """``(spread ratio, mean shift)``: per forget example, sd(unlearned) / sd(retrained) and
    |mean(unlearned) − mean(retrained)| / sd(retrained) (ddof 1; the oracles' variance floored at
    :data:`VARIANCE_FLOOR`), each the median over the examples. Inputs ``[models, examples]``; N identical
    copies (the untouched original) have spread ratio 0."""
    unlearned, retrained = (np.asarray(v, dtype=np.float64) for v in (unlearned, retrained))
    sd_u = unlearned.std(0, ddof=1)
    sd_r = np.sqrt(np.maximum(retrained.var(0, ddof=1), VARIANCE_FLOOR))
    shift = np.abs(unlearned.mean(0) - retrained.mean(0)) / sd_r
    return float(np.median(sd_u / sd_r)), float(np.median(shift))
