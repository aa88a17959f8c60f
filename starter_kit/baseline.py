"""The starting kit's baseline unlearning: fine-tune on the retain set only.

SGD with momentum 0.9 and weight decay 5e-4, cosine schedule over the run (annealed once per epoch,
as the kit steps ``CosineAnnealingLR(T_max=epochs)``). Two settings: the CIFAR-10 kit's (5 epochs,
lr 0.1) and the Kaggle sample notebook's (1 epoch, lr 1e-3; on the Kaggle layout as the same fraction of its
retrain, :data:`kaggle_sample_at_the_settings_share`). Each is a :class:`RetainFineTune` -- the fine-tune as
data, called with the challenge's signature ``unlearning(net, retain_loader, forget_loader, validation_loader)`` --
so the evaluator can also train N copies of it fused (:mod:`starter_kit.fused_baseline`). The loop is the
project's one fine-tuning loop, :func:`starter_kit.unlearning_steps.fine_tune`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unlearning_mock.starter_kit.unlearning_steps import fine_tune

SCHEDULE = "cosine_per_epoch"


def finetune_unlearning(net: nn.Module, retain_loader, forget_loader=None, validation_loader=None,
                        epochs: float = 1, lr: float = 1e-3, momentum: float = 0.9,
                        weight_decay: float = 5e-4) -> nn.Module:
    """Retain-only fine-tuning; changes ``net`` in place, returns it in eval mode.

    ``epochs`` may be fractional (a step cap over the retain loader).
    """
    return fine_tune(net, retain_loader, epochs=epochs, lr=lr, momentum=momentum, weight_decay=weight_decay,
                     schedule=SCHEDULE)


@dataclass(frozen=True)
class RetainFineTune:
    """A kit baseline: :func:`finetune_unlearning` with these values. ``at_the_settings_share``: ``epochs`` is read
    as the same fraction of the setting's retrain (``profile.epochs(epochs)``, the profile's rule; no profile:
    ``epochs`` as given)."""

    epochs: float = 1.0
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    at_the_settings_share: bool = False

    def epochs_in(self, profile=None) -> float:
        """Passes over the retain loader in the setting of ``profile``."""
        return profile.epochs(self.epochs) if self.at_the_settings_share and profile is not None else self.epochs

    def __call__(self, net, retain_loader, forget_loader=None, validation_loader=None, *, profile=None) -> nn.Module:
        return finetune_unlearning(net, retain_loader, forget_loader, validation_loader, epochs=self.epochs_in(profile),
                                   lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


kaggle_sample_unlearning = RetainFineTune(epochs=1, lr=1e-3)
"""The Kaggle sample notebook's unlearning: 1 epoch of retain fine-tuning, lr 1e-3."""

kaggle_sample_at_the_settings_share = RetainFineTune(epochs=1, lr=1e-3, at_the_settings_share=True)
"""The Kaggle sample's 1 epoch as the same fraction of the setting's retrain, lr 1e-3: the Kaggle layout's baseline,
whose mock input retrains in 3 epochs where the organisers trained 30 (there 0.1 epoch; on the organisers' recipe 1
epoch, as published)."""

cifar_kit_unlearning = RetainFineTune(epochs=5, lr=0.1)
"""The CIFAR-10 starting kit's unlearning: 5 epochs of retain fine-tuning, lr 0.1."""
