"""NegGrad+ -- retain descent plus forget ascent (Kurmanji et al., the SCRUB paper's baseline).

Source: Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023: loss α·CE(retain) −
(1−α)·CE(forget) with α ≈ 0.95–0.99, a retain and a forget batch per step. Epochs and optimiser are not in the
sources; we use the kit fine-tune's (5 epochs, SGD momentum 0.9, weight decay 5e-4, cosine per step), α =
0.99.

Defaults (``methods/settings.py``): as published, epoch counts scaled to the setting by its profile; on
digits the values it was tuned at, kept (its declared epoch scale 2/3 and the ``TUNED`` values below):

| | published (other settings: epochs by the rule) | digits (kept) |
|---|---|---|
| epochs (retain) | 5 | 3⅓ (the same fraction of a retrain) |
| lr | 0.01 | see below |
| α | 0.99 | 0.99 |

Digits learning rates: as published. The search: ``docs/results/digits-learning-rates.md``.
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.starter_kit.method_declaration import unlearning_method
from unlearning_mock.starter_kit.unlearning_steps import (cross_entropy_step, fine_tune, negated_cross_entropy_step,
                                         with_forget_batch)

PUBLISHED = dict(epochs=5.0, lr=0.01, alpha=0.99, momentum=0.9, weight_decay=5e-4)


@unlearning_method("neggrad+", PUBLISHED, family="classic", order=2,
                   description="0.99·CE(retain) − 0.01·CE(forget)")
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    loss_fn = with_forget_batch(cross_entropy_step, negated_cross_entropy_step, forget_loader,
                                retain_weight=o["alpha"], forget_weight=1 - o["alpha"])
    return fine_tune(net, retain_loader, epochs=o["epochs"], lr=o["lr"], momentum=o["momentum"],
                     weight_decay=o["weight_decay"], schedule="cosine", loss_fn=loss_fn)
