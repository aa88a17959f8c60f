"""Scoring one method's N models against the oracle set, as the challenge did, plus the kit's attack and every
attack of :mod:`mock_evaluator.scoring.attacks` (the per-example likelihood-ratio view first)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unlearning_mock.mock_evaluator.scoring.attacks import attack_rows, attack_scalars
from unlearning_mock.mock_evaluator.scoring.metric import bucket_points, final_score, per_example_epsilons
from unlearning_mock.starter_kit.attack import forget_vs_test_attack


@dataclass
class MethodScore:
    name: str
    num_models: int
    forget_quality: float
    final_score: float
    retain_acc: float
    forget_acc: float
    test_acc: float
    retain_ratio: float
    test_ratio: float
    attack_accuracy: float
    attack_models: int
    mean_seconds: float | None = None
    time_fraction: float | None = None       # mean run time / one ordinary retrain
    timed_calls: int | None = None           # calls the time comes from: all N, or a few (a fused kit baseline)
    over_budget: bool | None = None
    epsilons: np.ndarray = field(default=None, repr=False)
    points: np.ndarray = field(default=None, repr=False)
    details: dict = field(default=None, repr=False)
    confidences: np.ndarray = field(default=None, repr=False)   # [N, M], for the plots
    time_fractions: np.ndarray = field(default=None, repr=False)
    attacks: dict = field(default_factory=dict, repr=False)   # attack name -> its row (None below its min_models)

    def summary(self) -> dict:
        """The scalar figures (for results.json and summary.csv), every attack's columns and diagnostics included."""
        scalars = {k: v for k, v in self.__dict__.items()
                   if k not in ("epsilons", "points", "details", "confidences", "time_fractions", "attacks")}
        return {**scalars, **attack_scalars(self.attacks)}


def mean_attack_accuracy(figures: dict, num_models: int) -> float:
    """The kit's forget-vs-test loss attack on each of the first ``num_models`` models, averaged."""
    count = min(num_models, len(figures["forget_loss"]))
    return float(np.mean([forget_vs_test_attack(figures["forget_loss"][i], figures["test_loss"][i])
                          for i in range(count)]))


def score_method(name: str, figures: dict, oracles: dict, attack_models: int = 32,
                 retrain_seconds: float | None = None, time_budget: float = 0.2) -> MethodScore:
    """Per-example ε, points, F and the final score of ``figures`` (N models) against ``oracles``."""
    unlearned, retrained = figures["forget_conf"], oracles["forget_conf"]
    epsilons, details = per_example_epsilons(unlearned, retrained, return_details=True)
    points = bucket_points(epsilons, len(retrained))
    quality = float(points.mean())
    ra_u, ra_r = float(figures["retain_acc"].mean()), float(oracles["retain_acc"].mean())
    ta_u, ta_r = float(figures["test_acc"].mean()), float(oracles["test_acc"].mean())
    score = MethodScore(
        name=name, num_models=len(unlearned), forget_quality=quality,
        final_score=final_score(quality, ra_u, ra_r, ta_u, ta_r),
        retain_acc=ra_u, forget_acc=float(figures["forget_acc"].mean()), test_acc=ta_u,
        retain_ratio=ra_u / ra_r, test_ratio=ta_u / ta_r,
        attack_accuracy=mean_attack_accuracy(figures, attack_models), attack_models=min(attack_models, len(unlearned)),
        epsilons=epsilons, points=points, details=details, confidences=unlearned,
        attacks=attack_rows(unlearned, retrained),
    )
    if retrain_seconds is not None and "seconds" in figures:
        fractions = figures["seconds"] / retrain_seconds
        score.time_fractions = fractions
        score.mean_seconds = float(figures["seconds"].mean())
        score.time_fraction = float(fractions.mean())
        score.timed_calls = len(fractions)
        score.over_budget = bool(score.time_fraction > time_budget)
    return score
