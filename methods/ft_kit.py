"""FT (CIFAR-10 kit) -- the starting kit's baseline: fine-tune on the retain set only.

Source: the CIFAR-10 starting kit (``shared/CHALLENGE_FACTS.md``): 5 epochs of retain cross-entropy,
SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule stepped per epoch. The loop is the kit
baseline's, :func:`starter_kit.baseline.finetune_unlearning`.

Defaults (``methods/settings.py``): as published, epoch counts scaled to the setting by its profile; on
digits the values it was tuned at, kept (its declared epoch scale 2/3 and the ``TUNED`` values below):

| | published (other settings: epochs by the rule) | digits (kept) |
|---|---|---|
| epochs | 5 | 3⅓ (the same fraction of a retrain, 30 → 20 epochs) |
| lr | 0.1 | as published |
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.starter_kit.baseline import finetune_unlearning
from unlearning_mock.starter_kit.method_declaration import unlearning_method

PUBLISHED = dict(epochs=5.0, lr=0.1, momentum=0.9, weight_decay=5e-4)


@unlearning_method("ft-kit", PUBLISHED, family="baseline",
                   description="the CIFAR-10 kit: retain fine-tune, 5 epochs, lr 0.1")
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    return finetune_unlearning(net, retain_loader, **o)
