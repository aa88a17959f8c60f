"""SalUn -- Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency" (ICLR 2024).

Source: Fan et al., "SalUn", ICLR 2024: random-label unlearning (see
``methods/random_labels.py``: retain CE + forget CE with random labels, a retain and a forget batch per
step) whose updates are masked to the ``mask_fraction`` = 50% of weights with the largest
|∇(−CE on the forget set)|, one threshold over all parameters, computed once on the original model.
Gradients outside the mask are zeroed (weight decay still acts there, as in SalUn's code). Epochs and
lr as our random-labels run, so the two differ only by the mask.

Defaults: those of ``methods/random_labels.py`` in every setting (epochs 3 published, 2 on digits; lr 0.01
published, 3e-3 on digits, tuned on its own as below).

Digits learning rates: ×0.3 the published one (lr 3e-3, as random labels). The search: ``docs/results/digits-learning-rates.md``.
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.methods.settings import tuned_lrs
from unlearning_mock.starter_kit.method_declaration import unlearning_method
from unlearning_mock.starter_kit.unlearning_steps import (accumulated_gradients, cross_entropy_step, fine_tune, magnitude_masks,
                                         multiply_gradients, random_label_cross_entropy, with_forget_batch)

PUBLISHED = dict(epochs=3.0, lr=0.01, momentum=0.9, weight_decay=5e-4, mask_fraction=0.5)
TUNED = {"digits": tuned_lrs(PUBLISHED, 0.3)}   # the digits search (docstring)


@unlearning_method("salun", PUBLISHED, tuned=TUNED, family="classic", order=5,
                   description="random labels with updates masked to the 50% most forget-salient weights")
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    params = list(net.parameters())
    saliency = accumulated_gradients(net, forget_loader, params, sign=-1.0)
    masks = [mask.to(param.dtype) for mask, param in zip(magnitude_masks(saliency, o["mask_fraction"], largest=True),
                                                         params)]
    loss_fn = with_forget_batch(cross_entropy_step, random_label_cross_entropy, forget_loader)
    return fine_tune(net, retain_loader, epochs=o["epochs"], lr=o["lr"], momentum=o["momentum"],
                     weight_decay=o["weight_decay"], schedule="cosine", loss_fn=loss_fn,
                     after_backward=multiply_gradients(params, masks))
