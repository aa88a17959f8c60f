"""FT (CIFAR-10 kit) -- the starting kit's baseline: fine-tune on the retain set only.

Source: the CIFAR-10 starting kit (``shared/CHALLENGE_FACTS.md``): 5 epochs of retain cross-entropy,
SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule stepped per epoch. The loop is the kit
baseline's, :func:`starter_kit.baseline.finetune_unlearning`.

Per-setting defaults:

| | resnet18 (published) | digits |
|---|---|---|
| epochs | 5 | 3⅓ (the same fraction of a retrain, 30 → 20 epochs) |
| lr | 0.1 | as published |
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.methods.settings import method_options, scaled
from unlearning_mock.starter_kit.baseline import finetune_unlearning

_PUBLISHED = dict(epochs=5.0, lr=0.1, momentum=0.9, weight_decay=5e-4)
DEFAULTS = {"resnet18": _PUBLISHED, "digits": dict(_PUBLISHED, epochs=scaled(5.0))}


def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader=None, **options) -> nn.Module:
    return finetune_unlearning(net, retain_loader, **method_options(net, DEFAULTS, options, "ft-kit"))
