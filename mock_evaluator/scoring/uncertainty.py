"""How sure a score is: a paired bootstrap over models, and rank agreement with the challenge.

**The interval.** A score depends on which N unlearned models and which N oracles happened to be drawn.
One bootstrap replicate draws N of the method's models and N oracles with replacement and scores them
again exactly as the challenge does (per-example ε, points, F, accuracy ratios). The interval is the
score ± 1.96 bootstrap standard deviations (clipped at 0): a *normal* bootstrap interval, centred on the
score, not the percentile one. Drawing with replacement repeats models, the threshold attacks treat the
repeats as ties, and that shifts every replicate's F down (at N = 8 the oracle reference's replicates
all lay below its score); their spread still measures the sampling noise. Replicates are *paired*:
replicate b uses the same oracle indices and the same run indices *i* for every method (run *i* of
every method shares its seed), so two methods' difference has its own bootstrap standard deviation, and
neighbouring methods are called *separated* when their difference exceeds 1.96 of those.
All methods of one replicate are scored in one vectorised metric call.

**The likelihood-ratio attack's intervals** (:func:`bootstrap_lira`) are made the same way, paired across
methods, with one difference: the models are drawn within the attack's folds (:func:`~mock_evaluator.scoring.
lira.draw_within_folds`), so that a model and its duplicates are never on both sides of a fit.

**Rank transfer.** Kendall's τ and Spearman's ρ (with p-values, ``scipy.stats``) between the mock's order
of methods and the challenge's private leaderboard order.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from unlearning_mock.mock_evaluator.scoring.lira import (LIRA_COLUMNS, draw_within_folds, fold_labels, held_out_scores,
                                                         lira_columns, summarise)
from unlearning_mock.mock_evaluator.scoring.metric import bucket_points, per_example_epsilons


def _paired(figures: dict[str, dict], oracles: dict, reps: int) -> tuple[list[str], int, int, np.ndarray]:
    """The checks both bootstraps make; ``(names, N, M, every method's confidences side by side [N, K*M])``."""
    if reps < 1:
        raise ValueError(f"the number of bootstrap replicates must be >= 1, got {reps}")
    names = list(figures)
    n = len(oracles["forget_conf"])
    sizes = {name: len(figures[name]["forget_conf"]) for name in names}
    if any(size != n for size in sizes.values()):
        raise ValueError(f"every method needs N = {n} models like the oracles, got {sizes}")
    conf = np.concatenate([figures[name]["forget_conf"] for name in names], axis=1)
    return names, n, oracles["forget_conf"].shape[1], conf


def bootstrap_scores(figures: dict[str, dict], oracles: dict, reps: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """``{method: array [reps, 2]}`` of bootstrapped (final score, F) for every method's ``figures``
    (N models each, ``forget_conf`` [N, M] and the accuracies) against ``oracles`` (N models)."""
    names, n, m, conf = _paired(figures, oracles, reps)
    rng = np.random.default_rng(seed)
    out = {name: np.empty((reps, 2)) for name in names}
    for b in range(reps):
        runs, refs = rng.integers(0, n, n), rng.integers(0, n, n)
        retrained = oracles["forget_conf"][refs]
        eps = per_example_epsilons(conf[runs], np.tile(retrained, (1, len(names))))
        quality = bucket_points(eps, n).reshape(len(names), m).mean(1)
        ra_r, ta_r = oracles["retain_acc"][refs].mean(), oracles["test_acc"][refs].mean()
        for k, name in enumerate(names):
            f = figures[name]
            ratio = (f["retain_acc"][runs].mean() / ra_r) * (f["test_acc"][runs].mean() / ta_r)
            out[name][b] = quality[k] * ratio, quality[k]
    return out


def bootstrap_lira(figures: dict[str, dict], oracles: dict, reps: int = 100, seed: int = 0,
                   folds: int = 2) -> dict[str, np.ndarray]:
    """``{method: array [reps, 4]}`` of the bootstrapped :data:`~mock_evaluator.scoring.lira.LIRA_COLUMNS`
    (AUC, TPR at 1% and 0.1% FPR, worst-5% accuracy) of every method's ``figures`` against ``oracles``, the
    attack refitted on every replicate (inputs as for :func:`bootstrap_scores`)."""
    names, n, m, conf = _paired(figures, oracles, reps)
    if n < 2 * folds:
        raise ValueError(f"the likelihood-ratio attack with {folds} folds needs at least {2 * folds} models, got {n}")
    rng = np.random.default_rng(seed)
    labels = fold_labels(n, folds, 0)           # lira_attack's folds (its default seed)
    out = {name: np.empty((reps, len(LIRA_COLUMNS))) for name in names}
    for b in range(reps):
        runs, refs = draw_within_folds(labels, rng), draw_within_folds(labels, rng)
        retrained = np.tile(oracles["forget_conf"][refs], (1, len(names)))
        unlearned_scores, retrained_scores = held_out_scores(conf[runs], retrained, labels, labels, folds)
        for k, name in enumerate(names):
            block = slice(k * m, (k + 1) * m)
            out[name][b] = list(lira_columns(summarise(unlearned_scores[:, block], retrained_scores[:, block])).values())
    return out


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def interval(samples: np.ndarray, estimate: float, level: float = 0.95,
             upper: float = np.inf) -> tuple[float, float]:
    """``estimate ± z · sd(samples)``, the lower end clipped at 0 (scores are never negative), the upper end
    at ``upper`` (1 for rates and AUCs)."""
    half = _z(level) * float(np.std(samples, ddof=1)) if len(samples) > 1 else 0.0
    return max(0.0, estimate - half), min(upper, estimate + half)


def separated(a: np.ndarray, b: np.ndarray, difference: float, level: float = 0.95) -> bool:
    """Whether two methods' observed score ``difference`` exceeds ``z`` paired-bootstrap standard deviations of
    their difference (``a``, ``b``: their replicates, paired)."""
    spread = float(np.std(np.asarray(a) - np.asarray(b), ddof=1)) if len(a) > 1 else 0.0
    return abs(difference) > _z(level) * spread


EXACT_SPEARMAN_UP_TO = 8   # methods: up to this many, Spearman's p counts every ordering (8! = 40,320)


def exact_spearman_p(a, b) -> float:
    """The two-sided p of Spearman's ρ between ``a`` and ``b`` by enumerating every ordering of ``a``: the share of
    orderings whose |ρ| is at least the observed one. scipy's p comes from a t approximation that is meaningless for a
    handful of methods (it says p = 0 for three methods in agreement, where one ordering in three agrees as well)."""
    from itertools import permutations

    from scipy.stats import rankdata

    x, y = rankdata(a), rankdata(b)
    orderings = np.array(list(permutations(x)))
    x_c, y_c = orderings - x.mean(), y - y.mean()
    rhos = (x_c @ y_c) / (np.sqrt((x_c ** 2).sum(axis=1)) * np.sqrt((y_c ** 2).sum()))
    observed = abs(rhos[0])                        # the first ordering is x itself
    return float(np.mean(np.abs(rhos) >= observed - 1e-12))


def rank_agreement(scores: dict[str, float], reference_ranks: dict[str, int]) -> dict:
    """Kendall's τ and Spearman's ρ between the order of ``scores`` (higher is better) and
    ``reference_ranks`` (1 = best) over the names both have."""
    from scipy.stats import kendalltau, spearmanr

    names = [name for name in reference_ranks if name in scores]
    if len(names) < 3:
        raise ValueError(f"rank agreement needs at least 3 methods with a known rank, got {names}")
    ours = [-scores[name] for name in names]            # rank 1 = the highest score
    theirs = [reference_ranks[name] for name in names]
    tau, tau_p = kendalltau(ours, theirs)   # exact p for these sizes (scipy's "auto")
    rho, rho_p = spearmanr(ours, theirs)
    if len(names) <= EXACT_SPEARMAN_UP_TO:
        rho_p = exact_spearman_p(ours, theirs)
    mock_rank = {name: 1 + sum(scores[other] > scores[name] for other in names) for name in names}
    return {"methods": names, "kendall_tau": float(tau), "kendall_p": float(tau_p), "spearman_rho": float(rho),
            "spearman_p": float(rho_p), "mock_rank": mock_rank, "reference_rank": {n: reference_ranks[n] for n in names}}
