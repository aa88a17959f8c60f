"""A setting's *profile*: the few facts about a setting that an unlearning method may read to choose its
defaults, and the one rule that turns a method's published epochs into this setting's.

The challenge's entry point is ``unlearning(net, retain_loader, forget_loader, validation_loader)``. A
method that wants its setting's profile declares a keyword parameter ``profile``; the evaluator, the
leaderboard and the Kaggle notebook then pass the :class:`SettingProfile` of the setting they run (a
user's file without that parameter never sees it). Called without one -- on Kaggle's own data, or by
hand -- a method assumes :data:`CHALLENGE_PROFILE`, the challenge's setting, where every published value
holds unchanged.

**The rule.** The top methods were published against the challenge's retrain: 30 epochs of the faces
retain set at batch 64, which is also the batch the unlearning loaders gave, so one published epoch
(one pass over the retain loader) was 1/30 of a retrain's optimiser steps. Here a method runs the same
*fraction of a retrain's optimiser steps*::

    epochs here = published epochs * retrain_steps / (30 * retain_batches)

(:meth:`SettingProfile.epochs`), where ``retrain_steps`` is this setting's retrain (epochs times steps
per epoch at the recipe's batch size) and ``retain_batches`` the steps of one pass over its retain
loader. Learning rates stay as published.

**The one setting that keeps older values: digits.** Its methods were tuned (and its leaderboard measured)
before the rule, with epochs scaled by the retrain's *epochs* (20 / 30 = 2/3) where the rule's optimiser steps
give 4/3 (its recipe trains at batch 32, its loaders give 64). So that its figures stay reproducible the
digits setting declares that scale (``Setting.method_epoch_scale``, here :attr:`SettingProfile.declared_epoch_scale`)
and its methods keep the learning rates they were tuned at (``TUNED`` in each method's module). Every other
setting -- the Kaggle layout, CIFAR-10, mnist-groups, a new one -- gets the rule.

This module needs only :mod:`starter_kit.batches` (how the project cuts a set into batches), so the Kaggle
notebook inlines it.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearning_mock.starter_kit.batches import batch_sizes

EPOCHS = "epochs"   # an option whose name holds this counts passes over a loader: scaled by the rule
CHALLENGE_RETRAIN_EPOCHS = 30
"""Epochs of the challenge's retrain (the organisers' recipe on the faces data): the published epochs'
yardstick."""


@dataclass(frozen=True)
class SettingProfile:
    """What a method may know about the setting it runs in (one per setting; see the module docstring)."""

    name: str                      # the setting's name, e.g. "digits"
    num_classes: int               # classes of the task (the model's outputs)
    batch_size: int                # examples per batch of the loaders unlearning() gets
    retain_batches: int            # batches in one pass over the retain loader: one unlearning epoch's steps
    retrain_epochs: int            # epochs of the recipe that retrains the oracles
    retrain_steps_per_epoch: int   # optimiser steps per retrain epoch (the retain set at the recipe's batch)
    class_weighted: bool = False   # whether the recipe weights its cross-entropy by 1 / class count
    forget_class_shares: tuple[float, ...] | None = None   # share of the forget set in each class (None: unknown)
    declared_epoch_scale: float | None = None   # a setting tuned before the rule keeps its scale (digits); None: the rule

    def __post_init__(self):
        for name in ("num_classes", "batch_size", "retain_batches", "retrain_epochs", "retrain_steps_per_epoch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"a setting profile's {name} must be a whole number >= 1, got {value!r}")
        shares = self.forget_class_shares
        if shares is not None and (len(shares) != self.num_classes or abs(sum(shares) - 1) > 1e-6):
            raise ValueError(f"forget_class_shares must hold one share per class ({self.num_classes}) summing to 1, "
                             f"got {shares}")
        declared = self.declared_epoch_scale
        if declared is not None and (isinstance(declared, bool) or not isinstance(declared, (int, float))
                                     or not declared > 0):
            raise ValueError(f"a setting profile's declared_epoch_scale must be a number > 0 or None, got {declared!r}")

    def forget_share_of(self, classes) -> float | None:
        """The share of the forget set that lies in ``classes`` (None when the profile does not know)."""
        return None if self.forget_class_shares is None else sum(self.forget_class_shares[c] for c in classes)

    @classmethod
    def of(cls, name: str, num_classes: int, batch_size: int, retain_size: int, retrain_epochs: int,
           retrain_batch_size: int, class_weighted: bool = False, forget_labels=None,
           declared_epoch_scale: float | None = None) -> "SettingProfile":
        """The profile of a setting given by its sizes: batches counted as the project cuts them
        (:func:`~starter_kit.batches.batch_sizes`), forget shares from the forget set's labels (if given)."""
        shares = None
        if forget_labels is not None:
            labels = [int(label) for label in forget_labels]
            if labels:
                shares = tuple(labels.count(c) / len(labels) for c in range(num_classes))
        return cls(name=name, num_classes=num_classes, batch_size=batch_size,
                   retain_batches=len(batch_sizes(retain_size, batch_size)), retrain_epochs=retrain_epochs,
                   retrain_steps_per_epoch=len(batch_sizes(retain_size, retrain_batch_size)),
                   class_weighted=class_weighted, forget_class_shares=shares,
                   declared_epoch_scale=declared_epoch_scale)

    @property
    def retrain_steps(self) -> int:
        """Optimiser steps of one retrain."""
        return self.retrain_epochs * self.retrain_steps_per_epoch

    @property
    def rule_epoch_scale(self) -> float:
        """The rule's epochs here per published epoch: ``retrain_steps / (30 * retain_batches)`` (1 on the
        challenge's data)."""
        return self.retrain_steps / (CHALLENGE_RETRAIN_EPOCHS * self.retain_batches)

    @property
    def epoch_scale(self) -> float:
        """Epochs here per published epoch: the setting's declared scale if it has one (digits), else the rule's."""
        return self.rule_epoch_scale if self.declared_epoch_scale is None else self.declared_epoch_scale

    def epochs(self, published: float) -> float:
        """``published`` epochs (passes over the retain loader, as a method published them) as the same
        fraction of this setting's retrain, in passes over its retain loader (fractions are step caps)."""
        return published * self.epoch_scale

    def defaults(self, published: dict, tuned: dict | None = None) -> dict:
        """A method's defaults here: ``published`` with every epoch count (a key holding ``epochs``; tuples
        element-wise) scaled by :meth:`epochs`, everything else as published, then the values the method was
        tuned at in this setting (``tuned[self.name]``, if any: digits)."""
        def scaled(value):
            return tuple(self.epochs(v) for v in value) if isinstance(value, tuple) else self.epochs(value)
        kept = (tuned or {}).get(self.name, {})
        unknown = sorted(set(kept) - set(published))
        if unknown:
            raise ValueError(f"tuned values {unknown} for the {self.name} setting are not among the method's "
                             f"published options {sorted(published)}")
        return {**{key: scaled(value) if EPOCHS in key else value for key, value in published.items()}, **kept}


CHALLENGE_PROFILE = SettingProfile(
    name="challenge", num_classes=10, batch_size=64, retain_batches=420, retrain_epochs=CHALLENGE_RETRAIN_EPOCHS,
    retrain_steps_per_epoch=420, class_weighted=True)
"""The challenge's own setting (the hidden faces data): ten age groups, batches of 64, the organisers'
30-epoch class-weighted retrain at batch 64. Its retain loader held about 420 batches (the count is
approximate; the rule uses only the ratio, 1 here: published values hold unchanged). Its forget set lay
almost all in the two youngest groups; the exact shares were not published (None)."""
