"""Batched, no-grad, eval-mode measurements of a model: logits, per-example losses, accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from unlearning_mock.starter_kit.batches import split_batch


def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


@torch.no_grad()
def predict_logits(net: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [n, classes], targets [n])`` over a loader (tuple or dict batches), on the CPU."""
    was_training, device = net.training, _device_of(net)
    net.eval()
    all_logits, all_targets = [], []
    for batch in loader:
        inputs, targets = split_batch(batch)
        all_logits.append(net(inputs.to(device)).float().cpu())
        all_targets.append(targets.cpu())
    net.train(was_training)
    return torch.cat(all_logits), torch.cat(all_targets)


EVAL_BATCH = 1024
"""Images per evaluation pass (:func:`logits_on`)."""


@torch.no_grad()
def logits_on(net: nn.Module, inputs: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits of ``net`` (eval mode) on an input tensor, in float32 on the CPU."""
    was_training, device = net.training, _device_of(net)
    net.eval()
    out = torch.cat([net(inputs[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(inputs), batch_size)])
    net.train(was_training)
    return out


def per_example_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each example (the starting kit's attack feature)."""
    return F.cross_entropy(logits, targets, reduction="none")


def accuracy(net: nn.Module, loader: DataLoader) -> float:
    """Share of correctly classified examples of a loader, as the starting kit computes it."""
    logits, targets = predict_logits(net, loader)
    return (logits.argmax(1) == targets).float().mean().item()
