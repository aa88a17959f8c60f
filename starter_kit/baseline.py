"""The starting kit's baseline unlearning: fine-tune on the retain set only.

SGD with momentum 0.9 and weight decay 5e-4, cosine schedule over the run (annealed once per epoch,
as the kit steps ``CosineAnnealingLR(T_max=epochs)``). Two settings: the CIFAR-10 kit's (5 epochs,
lr 0.1) and the Kaggle sample notebook's (1 epoch, lr 1e-3; on the Kaggle layout as the same fraction of its
retrain, :func:`kaggle_sample_at_the_settings_share`). All have the challenge's signature
``unlearning(net, retain_loader, forget_loader, validation_loader)``. The loop is the project's one
fine-tuning loop, :func:`starter_kit.unlearning_steps.fine_tune`.
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.starter_kit.unlearning_steps import fine_tune


def finetune_unlearning(net: nn.Module, retain_loader, forget_loader=None, validation_loader=None,
                        epochs: float = 1, lr: float = 1e-3, momentum: float = 0.9,
                        weight_decay: float = 5e-4) -> nn.Module:
    """Retain-only fine-tuning; changes ``net`` in place, returns it in eval mode.

    ``epochs`` may be fractional (a step cap over the retain loader).
    """
    return fine_tune(net, retain_loader, epochs=epochs, lr=lr, momentum=momentum, weight_decay=weight_decay,
                     schedule="cosine_per_epoch")


def kaggle_sample_unlearning(net, retain_loader, forget_loader, validation_loader) -> nn.Module:
    """The Kaggle sample notebook's unlearning: 1 epoch of retain fine-tuning, lr 1e-3."""
    return finetune_unlearning(net, retain_loader, forget_loader, validation_loader, epochs=1, lr=1e-3)


def kaggle_sample_at_the_settings_share(net, retain_loader, forget_loader, validation_loader, *,
                                        profile=None) -> nn.Module:
    """The Kaggle sample's 1 epoch as the same fraction of the setting's retrain (``profile.epochs(1)``, the
    profile's rule; no profile: 1 epoch), lr 1e-3: the Kaggle layout's baseline, whose mock input retrains in 3
    epochs where the organisers trained 30 (there 0.1 epoch; on the organisers' recipe 1 epoch, as published)."""
    epochs = 1.0 if profile is None else profile.epochs(1.0)
    return finetune_unlearning(net, retain_loader, forget_loader, validation_loader, epochs=epochs, lr=1e-3)


def cifar_kit_unlearning(net, retain_loader, forget_loader, validation_loader) -> nn.Module:
    """The CIFAR-10 starting kit's unlearning: 5 epochs of retain fine-tuning, lr 0.1."""
    return finetune_unlearning(net, retain_loader, forget_loader, validation_loader, epochs=5, lr=0.1)
