"""FCS -- fanchuan's method, private leaderboard #2 of the NeurIPS 2023 Machine Unlearning Challenge.

Source: fanchuan's Kaggle write-up and notebook
(https://www.kaggle.com/competitions/neurips-2023-machine-unlearning/discussion/458721); DeepUnlearn (Cadet et
al., arXiv:2410.01276).

1. One pass over the forget set minimising KL(softmax(z) || uniform); SGD lr 5e-3, momentum 0.9.
2. ``rounds`` rounds, each: a *forget round* -- every forget batch paired with a retain batch (256,
   its own shuffle), loss = -mean over the retain batch of log_softmax(z_f · z_rᵀ / 1.15) (retain
   logits detached), SGD lr 3e-4, momentum 0.9, cosine per step to 1e-6 over all forget steps of
   all rounds -- then a *retain round*: one pass over retain, batch 256, cross-entropy, SGD lr
   4e-3, momentum 0.9, weight decay 0.01.

Batches of 256 are four of the challenge's 64-batches concatenated
(:class:`~starter_kit.unlearning_steps.MergedBatches`). The retain rounds get a fresh optimiser
each (the write-up does not say whether the momentum carries over).

Defaults (``methods/settings.py``): as published, epoch counts scaled to the setting by its profile; on
digits the values it was tuned at, kept (its declared epoch scale 2/3 and the ``TUNED`` values below):

| | published (other settings: epochs by the rule) | digits (kept) |
|---|---|---|
| rounds | 8 | 8 |
| retain epochs per round | 1 | 2/3 (8 epochs → 5⅓, the same fraction of a retrain) |
| learning rates | 5e-3 / 3e-4 / 4e-3 | as published |

Digits learning rates: as published. The search: ``docs/results/digits-learning-rates.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.starter_kit.method_declaration import unlearning_method
from unlearning_mock.starter_kit.unlearning_steps import MergedBatches, batch_on, cycle, fine_tune

PUBLISHED = dict(rounds=8, retain_epochs_per_round=1.0, uniform_lr=5e-3, forget_lr=3e-4, forget_min_lr=1e-6,
                 retain_lr=4e-3, momentum=0.9, retain_weight_decay=0.01, temperature=1.15, retain_batches_per_step=4)


def uniform_kl_loss(logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || uniform), averaged over the batch."""
    log_p = F.log_softmax(logits, dim=1)
    return (log_p.exp() * log_p).sum(1).mean() + math.log(logits.shape[1])


def forget_contrast_loss(forget_logits: torch.Tensor, retain_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """-mean over the retain batch of log_softmax(z_f · z_rᵀ / T): every forget example made equally
    similar to every retain example (retain logits detached)."""
    similarity = forget_logits @ retain_logits.detach().T / temperature
    return -F.log_softmax(similarity, dim=1).mean()


@unlearning_method("fcs", PUBLISHED, family="kaggle", private_rank=2,
                   description="fanchuan: uniform-KL pass, then rounds of forget-logit contrast + retain CE")
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    # (1) one pass over the forget set towards the uniform prediction: the shared loop, no weight decay
    fine_tune(net, forget_loader, epochs=1.0, lr=o["uniform_lr"], momentum=o["momentum"], weight_decay=0.0,
              schedule="constant", loss_fn=lambda model, inputs, _: uniform_kl_loss(model(inputs)))

    retain_256 = MergedBatches(retain_loader, o["retain_batches_per_step"])
    retain_stream = cycle(retain_256, "retain loader")

    def contrast(model: nn.Module, forget_inputs: torch.Tensor, _) -> torch.Tensor:
        retain_inputs, _ = batch_on(next(retain_stream), forget_inputs.device)
        with torch.no_grad():
            retain_logits = model(retain_inputs)
        return forget_contrast_loss(model(forget_inputs), retain_logits, o["temperature"])

    # one optimiser and one cosine (forget_lr down to forget_min_lr) over the forget steps of all rounds
    forget_opt = torch.optim.SGD(net.parameters(), lr=o["forget_lr"], momentum=o["momentum"])
    forget_steps = o["rounds"] * len(forget_loader)

    def forget_lr(first_step: int):
        """The round's schedule, as the learning rate itself (fine_tune's ``lr=1.0`` times it)."""
        def at(step: int, _total: int) -> float:
            cosine = 0.5 * (1 + math.cos(math.pi * (first_step + step) / forget_steps))
            return o["forget_min_lr"] + (o["forget_lr"] - o["forget_min_lr"]) * cosine
        return at

    for round_index in range(o["rounds"]):
        # (2a) a forget round: one pass over the forget set, each batch against the next retain batch
        fine_tune(net, forget_loader, epochs=1.0, lr=1.0, schedule=forget_lr(round_index * len(forget_loader)),
                  loss_fn=contrast, optimizer=forget_opt)
        # (2b) a retain round: cross-entropy on retain, a fresh optimiser
        fine_tune(net, retain_256, epochs=o["retain_epochs_per_round"], lr=o["retain_lr"], momentum=o["momentum"],
                  weight_decay=o["retain_weight_decay"], schedule="constant")
    return net
