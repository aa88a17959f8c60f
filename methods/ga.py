"""GA -- gradient ascent on the forget set (a classic baseline of the unlearning literature).

Source: the gradient-ascent baseline of the unlearning literature (e.g. Kurmanji et al., NeurIPS 2023): maximise the
cross-entropy on the forget set for a few epochs at a small learning rate (1e-4 … 1e-2). Here: 5
epochs over the forget set, SGD momentum 0.9, weight decay 5e-4, constant learning rate.

Defaults (``methods/settings.py``): as published, epoch counts scaled to the setting by its profile; on
digits the values it was tuned at, kept (its declared epoch scale 2/3 and the ``TUNED`` values below):

| | published (other settings: epochs by the rule) | digits (kept) |
|---|---|---|
| forget epochs | 5 | 3⅓ (the same fraction of a retrain) |
| lr | 1e-4 | tuned, see below |
Digits learning rates: ×100 the published 1e-4 (lr 1e-2, the top of the published range). The search: ``docs/results/digits-learning-rates.md``.
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.methods.settings import tuned_lrs
from unlearning_mock.starter_kit.method_declaration import unlearning_method
from unlearning_mock.starter_kit.unlearning_steps import fine_tune, negated_cross_entropy_step

PUBLISHED = dict(epochs=5.0, lr=1e-4, momentum=0.9, weight_decay=5e-4)
TUNED = {"digits": tuned_lrs(PUBLISHED, 100)}   # the digits search (docstring)


@unlearning_method("ga", PUBLISHED, tuned=TUNED, family="classic", order=1,
                   description="gradient ascent on the forget set")
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    return fine_tune(net, forget_loader, epochs=o["epochs"], lr=o["lr"], momentum=o["momentum"],
                     weight_decay=o["weight_decay"], schedule="constant", loss_fn=negated_cross_entropy_step)
