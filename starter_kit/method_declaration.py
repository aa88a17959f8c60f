"""How an unlearning method declares itself: its options with their published values, the values it was
tuned at per setting, its registry entries (family, description, private leaderboard rank and score) and
its named variants -- one decorator, :func:`unlearning_method`, for the reference methods (``methods/``)
and the project's own (``submission/``).

The decorator turns a method's body into the challenge's entry point with every option declared by name
(keyword-only, its published value as the default) and no catch-all: the evaluator refuses a misspelt
option before any training (``mock_evaluator.method.check_options``), and so does the method when called
by hand. Its defaults in a setting come from the setting's profile by one rule
(:meth:`~starter_kit.profile.SettingProfile.defaults`: epoch counts scaled to the same share of a
retrain, the rest as published, then the values tuned in that setting).

The decorated function carries what it declared (``method_name``, ``published``, ``tuned``, ``variants``,
``curve``, ``method_entries``); :mod:`methods.registry` finds every module of ``methods/`` and
``submission/`` whose ``unlearning`` carries entries and lists them. A module that declares a method must
call its entry point ``unlearning`` (the name the evaluator and the Kaggle notebook call).

This module needs only :mod:`starter_kit.profile`, so the Kaggle notebook inlines it with a submission
that uses it.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE, SettingProfile

FAMILIES = ("kaggle", "baseline", "classic", "ours")
"""The families of methods, in the order the tool lists the methods without a private rank."""


@dataclass(frozen=True)
class MethodEntry:
    """One registered method: a name the tool knows it by, the module whose ``unlearning`` runs it, the fixed
    options of that name (a variant's), its family and one-line description, where it placed on the
    NeurIPS 2023 Kaggle private leaderboard (the sample fine-tune: 10) with its published score, and
    ``order``: its place among its family's methods without a rank in the tool's listings."""

    name: str
    module: str
    description: str
    family: str
    options: dict = field(default_factory=dict)
    private_rank: int | None = None
    private_score: float | None = None
    order: int | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")


@dataclass(frozen=True)
class Variant:
    """A named variant of one declared method: its registry name, description and the options it fixes."""

    name: str
    description: str
    options: dict


def unlearning_method(name: str, published: dict, check=None, tuned: dict | None = None, *, family: str,
                      description: str | None = None, private_rank: int | None = None,
                      private_score: float | None = None, order: int | None = None, variants=(),
                      curve: dict | None = None):
    """Decorator: declare and register a method. ``body(net, retain_loader, forget_loader, validation_loader, o,
    profile)`` becomes

    ``unlearning(net, retain_loader, forget_loader, validation_loader=None, *, profile=None, <option>=..., ...)``

    with one keyword-only option per key of ``published`` (its published value shown as the default).
    Each call resolves the options -- the setting's defaults (:meth:`SettingProfile.defaults` with ``tuned``:
    setting name -> values tuned there), then the ones given -- refuses an unknown one with a ``ValueError``
    naming the method's options, runs ``check(net, o, profile)`` (it raises a ``ValueError`` for a model,
    setting or option value the method cannot handle, before any training) and hands ``body`` the options
    as the dict ``o`` and the profile (:data:`CHALLENGE_PROFILE` when none was given).

    Registry metadata: ``family`` (one of :data:`FAMILIES`), ``description``, ``private_rank`` and
    ``private_score`` where published, ``order`` (see :class:`MethodEntry`). ``variants``
    (:class:`Variant` objects) registers several names for the one function, each with the options it fixes,
    instead of ``name`` itself. ``curve``: setting -> the options the per-step accuracy curve
    (``mock_evaluator/studies/curve.py``) runs this method at there, for a method that takes ``record``.
    """
    tuned = {setting: dict(values) for setting, values in (tuned or {}).items()}
    for setting, values in tuned.items():
        _known_options(name, f"tuned values for {setting}", values, published)
    for variant in variants:
        _known_options(name, f"variant {variant.name}", variant.options, published)
    for setting, values in (curve or {}).items():
        _known_options(name, f"curve options for {setting}", values, published)
    if not variants and not description:
        raise ValueError(f"{name}: declare a description (or variants, each with its own)")

    def wrap(body):
        @functools.wraps(body)
        def unlearning(net, retain_loader, forget_loader, validation_loader=None, *,
                       profile: SettingProfile | None = None, **options):
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
        unlearning.method_name, unlearning.published, unlearning.tuned = name, dict(published), tuned
        unlearning.variants, unlearning.curve = tuple(variants), {s: dict(v) for s, v in (curve or {}).items()}
        ranked = dict(family=family, private_rank=private_rank, private_score=private_score, order=order)
        unlearning.method_entries = tuple(
            MethodEntry(v.name, body.__module__, v.description, options=dict(v.options), **ranked) for v in variants
        ) or (MethodEntry(name, body.__module__, description, **ranked),)
        return unlearning
    return wrap


def _known_options(name: str, what: str, values: dict, published: dict) -> None:
    unknown = sorted(set(values) - set(published))
    if unknown:
        raise ValueError(f"{name}: {what} name option(s) {unknown} it does not declare; its options are "
                         f"{sorted(published)}")
