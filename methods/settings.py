"""The reference methods' defaults in any setting, from the setting's profile by one rule; their declared options.

Each method here was published with hyperparameters against a 30-epoch retrain: the Kaggle methods on
the challenge's faces data, the classic ones on CIFAR-10 (ResNet-18). In a setting with profile ``p``
(:class:`~starter_kit.profile.SettingProfile`) its defaults are its published values with

* every epoch count -- an option whose name holds ``epochs``: passes over a loader, tuples element-wise --
  scaled to the same fraction of a retrain's optimiser steps: ``epochs * p.epoch_scale``
  (:meth:`SettingProfile.epochs`; the challenge's own data and CIFAR-10: x 1, mnist-groups: x 1/6, the mock
  Kaggle input: x 1/10);
* everything else, learning rates included, as published (on mnist-groups, batches of 4 where every method was
  published at 64, one factor on every method's learning rates was measured, x 1/16 ... x 4.68, and none keeps the
  methods that break the model whole: ``benchmarks/RESULTS.md``, "the learning-rate rule");
* then the values the method was tuned at in that setting, where it was (``tuned[p.name]``): only digits,
  tuned before this rule, whose methods keep their earlier values -- epochs x 2/3, the setting's declared
  scale (:mod:`starter_kit.profile`), and some learning rates x 0.3 ... x 100, searched on the seed-1 oracles
  (each module's docstring) -- so that its leaderboard figures stay reproducible.

A method's module docstring says where it departs from its source and why. Without a profile (a call by
hand, or the Kaggle notebook on the challenge's data) a method assumes the challenge's own setting
(:data:`~starter_kit.profile.CHALLENGE_PROFILE`), where every published value holds unchanged.

Each method declares its published values, and the values it was tuned at, with
:func:`~starter_kit.method_declaration.unlearning_method` (every option by name, keyword-only, its published
value as the default), which resolves them by the profile's rule on every call.
"""

from __future__ import annotations


def tuned_lrs(published: dict, factor: float) -> dict:
    """Every learning rate of ``published`` (keys containing ``lr``; tuples element-wise) times ``factor``: a
    method's tuned values where a search scaled all its learning rates together (digits)."""
    return {key: tuple(v * factor for v in value) if isinstance(value, tuple) else value * factor
            for key, value in published.items() if "lr" in key}

