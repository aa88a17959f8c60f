"""FT (Kaggle sample) -- the challenge's sample notebook: fine-tune on the retain set only.

Source: the Kaggle sample notebook (``shared/CHALLENGE_FACTS.md``): 1 epoch of retain cross-entropy,
SGD lr 1e-3, momentum 0.9, weight decay 5e-4, cosine schedule (stepped per epoch, so constant within
one epoch). It ranked below every team on the private leaderboard. The loop is the kit baseline's,
:func:`starter_kit.baseline.finetune_unlearning`.

Per-setting defaults:

| | resnet18 (published) | digits |
|---|---|---|
| epochs | 1 | 2/3 (the same fraction of a retrain; ``epochs=1`` gives the evaluator's baseline row) |
| lr | 1e-3 | as published |
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.methods.settings import method_options, scaled
from unlearning_mock.starter_kit.baseline import finetune_unlearning

_PUBLISHED = dict(epochs=1.0, lr=1e-3, momentum=0.9, weight_decay=5e-4)
DEFAULTS = {"resnet18": _PUBLISHED, "digits": dict(_PUBLISHED, epochs=scaled(1.0))}


def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader=None, **options) -> nn.Module:
    return finetune_unlearning(net, retain_loader, **method_options(net, DEFAULTS, options, "ft-kaggle"))
