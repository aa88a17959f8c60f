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

:func:`unlearning_method` turns a method's body into the challenge's entry point with every option
declared by name (keyword-only, its published value as the default) and no catch-all: the evaluator
refuses a misspelt option before any training (``mock_evaluator.method.check_options``), and so does
the method when called by hand.
"""

from __future__ import annotations

import functools
import inspect

from torch import nn

from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE, SettingProfile


def tuned_lrs(published: dict, factor: float) -> dict:
    """Every learning rate of ``published`` (keys containing ``lr``; tuples element-wise) times ``factor``: a
    method's tuned values where a search scaled all its learning rates together (digits)."""
    return {key: tuple(v * factor for v in value) if isinstance(value, tuple) else value * factor
            for key, value in published.items() if "lr" in key}


def unlearning_method(name: str, published: dict, check=None, tuned: dict | None = None):
    """Decorator: ``body(net, retain_loader, forget_loader, validation_loader, o, profile)`` becomes

    ``unlearning(net, retain_loader, forget_loader, validation_loader=None, *, profile=None, <option>=..., ...)``

    with one keyword-only option per key of ``published`` (its published value shown as the default).
    Each call resolves the options -- the setting's defaults (:meth:`SettingProfile.defaults` with ``tuned``:
    setting name -> values tuned there), then the ones given -- refuses an unknown one with a ``ValueError`` naming the
    method's options, runs ``check(net, o, profile)`` (it raises a ``ValueError`` for a model or setting the
    method cannot handle, before any training) and hands ``body`` the options as the dict ``o`` and the
    profile (:data:`CHALLENGE_PROFILE` when none was given).
    """
    def wrap(body):
        @functools.wraps(body)
        def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader=None, *,
                       profile: SettingProfile | None = None, **options) -> nn.Module:
            unknown = sorted(set(options) - set(published))
            if unknown:
                raise ValueError(f"{name}: unknown option(s) {unknown}; its options are {sorted(published)}")
            profile = CHALLENGE_PROFILE if profile is None else profile
            o = {**profile.defaults(published, tuned), **options}
            if check is not None:
                check(net, o, profile)
            return body(net, retain_loader, forget_loader, validation_loader, o, profile)

        keyword = inspect.Parameter.KEYWORD_ONLY
        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        unlearning.__signature__ = inspect.Signature(
            [inspect.Parameter(p, positional) for p in ("net", "retain_loader", "forget_loader")]
            + [inspect.Parameter("validation_loader", positional, default=None),
               inspect.Parameter("profile", keyword, default=None)]
            + [inspect.Parameter(key, keyword, default=value) for key, value in published.items()])
        unlearning.method_name, unlearning.published = name, dict(published)
        unlearning.tuned = {setting: dict(values) for setting, values in (tuned or {}).items()}
        return unlearning
    return wrap
