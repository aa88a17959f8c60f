"""The starting kit's simple membership-inference attack on per-example losses.

Forget examples are labelled 1 (members), test examples 0; the larger set is subsampled (seeded) to
the size of the smaller; a logistic regression on the loss is scored by accuracy over 10
``StratifiedShuffleSplit`` splits (random_state 0). The mean accuracy is reported: 0.5 means the
attacker cannot tell forget from test examples.
"""

from __future__ import annotations

import numpy as np
from sklearn import linear_model, model_selection

N_SPLITS = 10


def simple_mia(sample_loss: np.ndarray, members: np.ndarray, n_splits: int = N_SPLITS, random_state: int = 0) -> np.ndarray:
    """Cross-validated accuracies of a logistic regression predicting ``members`` from ``sample_loss``."""
    sample_loss, members = np.asarray(sample_loss, dtype=np.float64), np.asarray(members)
    if len(np.unique(members)) < 2:
        raise ValueError("the attack needs both members (1) and non-members (0)")
    if not np.all(np.isfinite(sample_loss)):
        raise ValueError("the attack's losses contain NaN or inf")
    attack_model = linear_model.LogisticRegression()
    cv = model_selection.StratifiedShuffleSplit(n_splits=n_splits, random_state=random_state)
    return model_selection.cross_val_score(attack_model, sample_loss.reshape(-1, 1), members, cv=cv, scoring="accuracy")


def forget_vs_test_attack(forget_losses, test_losses, seed: int = 0) -> float:
    """The kit's attack: mean accuracy telling forget losses (1) from test losses (0), balanced."""
    forget_losses, test_losses = np.asarray(forget_losses), np.asarray(test_losses)
    rng = np.random.default_rng(seed)
    size = min(len(forget_losses), len(test_losses))
    if size < N_SPLITS:
        raise ValueError(f"the attack needs at least {N_SPLITS} forget and test examples, got {size}")
    forget_losses = forget_losses[rng.permutation(len(forget_losses))[:size]]
    test_losses = test_losses[rng.permutation(len(test_losses))[:size]]
    losses = np.concatenate([test_losses, forget_losses])
    members = np.concatenate([np.zeros(size), np.ones(size)]).astype(int)
    return float(simple_mia(losses, members).mean())
