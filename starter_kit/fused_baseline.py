"""The kit baseline's N runs trained as one fused network: the evaluator's own code, so it need not run one call at a
time.

A :class:`~starter_kit.baseline.RetainFineTune` (the Kaggle sample fine-tune and the CIFAR-10 kit's) reads the
retain loader and nothing else: no global random numbers, no forget or validation batches. So run ``i``'s call --
a copy of the original, the loaders seeded with ``seeds[i]`` -- is reproduced for G models at once by giving model
``g`` the batches its own retain loader would give (:func:`~starter_kit.data.retain_positions_loader`, pass after
pass as :func:`~starter_kit.unlearning_steps.cycle` re-iterates it) and every model the same per-step learning rate
(:func:`~starter_kit.unlearning_steps.lr_factor`), then training them fused
(:func:`~starter_kit.training.fine_tune_fused`). The result agrees with the one-model calls up to the float32
rounding of grouped convolutions (``tests/test_fused_baseline.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from unlearning_mock.starter_kit.baseline import SCHEDULE, RetainFineTune
from unlearning_mock.starter_kit.data import UnlearningData, retain_positions_loader
from unlearning_mock.starter_kit.models import fusable_arch
from unlearning_mock.starter_kit.training import fine_tune_fused
from unlearning_mock.starter_kit.unlearning_steps import cycle, lr_factor, steps_in


def can_fuse_baseline(setting) -> bool:
    """Whether the setting's kit baseline can train fused: a :class:`RetainFineTune` on a fusable model."""
    return isinstance(setting.baseline, RetainFineTune) and fusable_arch(setting.make_model()) is not None


def fine_tune_copies_fused(fine_tune: RetainFineTune, models: list[nn.Module], data: UnlearningData,
                           batch_size: int, seeds, profile=None, device: str | torch.device = "cpu") -> None:
    """What ``fine_tune(models[i], *make_loaders(data, batch_size, seeds[i])[:3], profile=profile)`` does to each
    model, for all of them at once (module docstring); the models end in eval mode on ``device``."""
    seeds = [int(seed) for seed in seeds]
    if len(seeds) != len(models):
        raise ValueError(f"one seed per model: {len(models)} models, {len(seeds)} seeds")
    loaders = [retain_positions_loader(data, batch_size, seed) for seed in seeds]
    steps_per_pass = len(loaders[0])
    total = steps_in(loaders[0], fine_tune.epochs_in(profile), "retain loader")
    streams = [cycle(loader, "retain loader") for loader in loaders]
    batches = [torch.stack([next(stream)[0] for stream in streams]) for _ in range(total)]
    lrs = [fine_tune.lr * lr_factor(SCHEDULE, step, total, steps_per_pass) for step in range(total)]
    fine_tune_fused(models, *data.retain, batches, lrs, fine_tune.momentum, fine_tune.weight_decay, device)
