"""Building blocks that unlearning methods share: the project's own (``submission/``), the reference
methods (``methods/``) and the kit's baseline. Each step exists once, here.

Every function takes the challenge's loaders as they come (tuple or Kaggle dict batches) and works on
whatever device ``net`` lives on. Import names from here (``from starter_kit.unlearning_steps import
cycle``): the Kaggle notebook builder inlines this module that way.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from starter_kit.batches import split_batch


def model_device(net: nn.Module) -> torch.device:
    """The device of ``net``'s first parameter (the challenge hands ``net`` over already placed)."""
    return next(net.parameters()).device


def batch_on(batch, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of a tuple or Kaggle dict batch, moved to ``device``."""
    inputs, targets = split_batch(batch)
    return inputs.to(device), targets.to(device)


def cycle(loader, what: str = "loader"):
    """Batches of ``loader`` forever, re-iterating it (and so re-shuffling) each time it runs out."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError(f"the {what} is empty: this method needs at least one batch from it")


def frozen_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` in eval mode with gradients off: the usual teacher (the original model)."""
    teacher = copy.deepcopy(net).eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  temperature: float = 1.0) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch (no T² factor)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.softmax(teacher_logits / temperature, dim=1), reduction="batchmean")


def train_only(net: nn.Module, stages, method: str = "this method") -> list[nn.Parameter]:
    """Freeze every parameter except those of the top-level submodules named in ``stages``.

    Returns the trainable parameters. A model without those submodules gets a ``ValueError`` that
    names what it has. Undo with :func:`all_trainable` (or use :func:`trainable_only`).
    """
    children = dict(net.named_children())
    missing = [name for name in stages if name not in children]
    if missing:
        raise ValueError(f"{method} trains only {list(stages)} and expects a ResNet-like model with submodules "
                         f"named so (as torchvision's resnet18); this {type(net).__name__} lacks {missing} "
                         f"(its children: {list(children)})")
    trainable = []
    for name, param in net.named_parameters():
        keep = name.split(".")[0] in stages
        param.requires_grad_(keep)
        if keep:
            trainable.append(param)
    return trainable


def all_trainable(net: nn.Module) -> None:
    for param in net.parameters():
        param.requires_grad_(True)


@contextmanager
def trainable_only(net: nn.Module, stages, method: str = "this method"):
    """``with trainable_only(net, ("layer1", "layer2")) as params:`` -- frozen elsewhere, restored after."""
    try:
        yield train_only(net, stages, method)
    finally:
        all_trainable(net)


def class_counts(loader, num_classes: int) -> torch.Tensor:
    """How many examples of each class ``loader`` yields (one pass)."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for batch in loader:
        _, targets = split_batch(batch)
        counts += torch.bincount(targets.reshape(-1).long().cpu(), minlength=num_classes)[:num_classes].double()
    return counts


def inverse_frequency_weights(loader, num_classes: int) -> torch.Tensor:
    """Cross-entropy class weights 1 / count, as the Kaggle recipe weights them (0 for absent classes)."""
    counts = class_counts(loader, num_classes)
    return torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts)).float()


def num_classes_of(net: nn.Module) -> int:
    """The number of classes of a ResNet-like ``net`` (its ``fc`` layer's outputs)."""
    fc = getattr(net, "fc", None)
    if fc is None or not hasattr(fc, "out_features"):
        raise ValueError(f"expected a classifier with an `fc` layer (as resnet18); {type(net).__name__} has none")
    return int(fc.out_features)
