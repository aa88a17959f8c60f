"""The attacks every report runs beside the challenge's metric: what one is, and the list the tool iterates over.

An :class:`Attack` asks, from the forget examples' logit-scaled confidences of a method's N models and of the N
oracles, whether an attacker can tell unlearned models from retrained ones. It names

* ``name``: the key of its row (``MethodScore.attacks[name]``, ``results["original_<name>"]``, the
  leaderboard.json section);
* ``columns``: the figures it adds to summary.csv and leaderboard.csv, each with a paired-bootstrap interval in
  the leaderboard (``<column>_low``, ``<column>_high``); ``diagnostics``: figures added without one;
* ``arrays``: the per-row arrays kept in results.json and leaderboard.json (not in the CSVs);
  ``per_example``: ``(per_example.csv column, array)`` for a per-forget-example figure, or None;
  ``extras``: constant entries of results.json and leaderboard.json (e.g. the grid an array is read at);

and computes :meth:`Attack.row` (``None`` below :attr:`Attack.min_models` models on a side: the reports leave its
columns empty) and :meth:`Attack.bootstrap` (replicates of its ``columns``, paired across methods as the score's).
:data:`ATTACKS` lists the attacks in report order; the per-example likelihood-ratio attack (:data:`LIRA`) is the
first. A new attack: a subclass here (its computation in a module of its own, as :mod:`~mock_evaluator.scoring.lira`),
added to :data:`ATTACKS`.
"""

from __future__ import annotations

import numpy as np

from unlearning_mock.mock_evaluator.scoring import lira
from unlearning_mock.mock_evaluator.scoring.uncertainty import bootstrap_lira


class Attack:
    """One attack on the forget examples (module docstring); subclasses set the attributes and the two methods."""

    name: str = ""
    columns: tuple[str, ...] = ()
    diagnostics: tuple[str, ...] = ()
    arrays: tuple[str, ...] = ()
    per_example: tuple[str, str] | None = None
    extras: dict = {}
    min_models: int = 2
    upper: float = np.inf   # the largest value its columns take (1 for rates and AUCs): intervals are clipped there

    def row(self, unlearned: np.ndarray, retrained: np.ndarray) -> dict | None:
        """Its figures (every column, diagnostic and array) for ``unlearned`` ``[N, M]`` against ``retrained``
        ``[N, M]`` confidences; ``None`` with fewer than :attr:`min_models` models on a side."""
        raise NotImplementedError

    def bootstrap(self, figures: dict[str, dict], oracles: dict, reps: int, seed: int) -> dict[str, np.ndarray]:
        """``{method: array [reps, len(columns)]}``: its columns on paired bootstrap replicates of every method's
        ``figures`` against ``oracles``."""
        raise NotImplementedError

    def scalars(self, row: dict | None) -> dict:
        """The numbers of ``row`` (its arrays left out): what summary.csv and results.json's scalars hold."""
        return {key: value for key, value in (row or {}).items() if key not in self.arrays}


class LikelihoodRatioAttack(Attack):
    """The per-example likelihood-ratio attack with the spread / shift diagnostics (:mod:`~mock_evaluator.scoring.
    lira`)."""

    name = "lira"
    columns = lira.LIRA_COLUMNS
    diagnostics = ("spread_ratio", "mean_shift")
    arrays = lira.ROW_ARRAYS
    per_example = ("lira_accuracy", "lira_per_example_accuracy")
    extras = {"lira_roc_fpr": lira.ROC_GRID}    # the FPRs of every lira_roc_tpr
    min_models = lira.MIN_MODELS
    upper = 1.0

    def row(self, unlearned, retrained):
        return lira.lira_row(unlearned, retrained)

    def bootstrap(self, figures, oracles, reps, seed):
        return bootstrap_lira(figures, oracles, reps, seed=seed)


LIRA = LikelihoodRatioAttack()
ATTACKS: tuple[Attack, ...] = (LIRA,)
"""Every attack the reports run, in the order of their columns."""


def attack_rows(unlearned, retrained) -> dict[str, dict | None]:
    """``{attack name: its row}`` of every attack in :data:`ATTACKS`."""
    return {attack.name: attack.row(unlearned, retrained) for attack in ATTACKS}


def attack_scalars(rows: dict[str, dict | None]) -> dict:
    """The numbers of every attack's row in ``rows`` (from :func:`attack_rows`), merged."""
    return {key: value for attack in ATTACKS for key, value in attack.scalars(rows.get(attack.name)).items()}


def report_columns() -> list[str]:
    """Every attack's columns and diagnostics, in report order."""
    return [column for attack in ATTACKS for column in (*attack.columns, *attack.diagnostics)]
