"""Team Forget -- private leaderboard #9.

Source: the team's write-up, as summarised in ``shared/REFERENCE_METHODS.md``.

Cycles; each: re-initialise ``num_layers`` randomly chosen conv layers (never ``fc`` or a shortcut
conv; drawn from torch's generator), then train on retain images only, minimising the MSE between the
model's logits and the original model's (a frozen copy) on the images plus N(0, 0.1²) input noise;
cosine learning rate per cycle from 1e-3. The optimiser is not published: SGD momentum 0.9, weight
decay 5e-4 (the other Kaggle methods' choice). Schedule: 3 cycles of [1, 2, 2] epochs (the write-up's
other schedule, 4 cycles of [2, 1, 1, 1], via ``cycle_epochs``).

Defaults: as published, epoch counts scaled to the setting (``methods/settings.py``: the same
fraction of a retrain's optimiser steps; digits x 4/3). ``num_layers`` = 6 as published on any model:
on the digits SmallResNet that is 6 of its 7 non-shortcut convolutions (the earlier digits default was
2, the share that 6 is of resnet18's 17).

Earlier digits tuning, for the record (no longer the default: learning rates now stay as
published): learning rates as published left the model damaged (retain accuracy 0.88); the search
scaled all of the method's learning rates together, N = 16 runs per value scored against the cached
seed-1 oracle set A (``--seed 1``, never the leaderboard's seed 0): ×1 0.0355, ×3 0.0604, ×10 0.0965.
Chosen: ×10 (lr 0.01).

×30 was not tried for lack of CPU time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.methods.settings import unlearning_method
from unlearning_mock.starter_kit.unlearning_steps import fine_tune, frozen_copy, reinitialise

PUBLISHED = dict(cycle_epochs=(1.0, 2.0, 2.0), num_layers=6, lr=1e-3, momentum=0.9, weight_decay=5e-4,
                 input_noise_std=0.1)


@unlearning_method("team-forget", PUBLISHED)
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict, profile) -> nn.Module:
    original = frozen_copy(net)
    candidates = [name for name, module in net.named_modules()
                  if isinstance(module, nn.Conv2d) and "downsample" not in name]
    noise_std = o["input_noise_std"]

    def match_original(model, inputs, targets):
        noisy = inputs + noise_std * torch.randn_like(inputs)
        with torch.no_grad():
            teacher = original(noisy)
        return F.mse_loss(model(noisy), teacher)

    for epochs in o["cycle_epochs"]:
        for i in torch.randperm(len(candidates))[:o["num_layers"]].tolist():
            reinitialise(net.get_submodule(candidates[i]))
        fine_tune(net, retain_loader, epochs=epochs, lr=o["lr"], momentum=o["momentum"],
                  weight_decay=o["weight_decay"], schedule="cosine", loss_fn=match_original)
    return net
