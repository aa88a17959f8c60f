"""SRFL -- Simple Rolling in Forget Logits -- with the challenge's entry point.

A frozen copy of the original model is the teacher. Only the first two backbone stages of the
student (``layer1``, ``layer2``) train. Each step takes one retain batch and one forget batch; the
teacher's logits on the forget batch are rolled along the class axis by a random step (so each forget
example is pushed towards a neighbouring class), and the student minimises

    KL(softmax(rolled teacher forget) || softmax(student forget))
  - cosine_similarity(rolled teacher forget logits, student forget logits)     (mean over the batch)
  + KL(softmax(teacher retain) || softmax(student retain)).

Known behaviour: forget accuracy collapses while retain accuracy stays high -- yet SRFL scored poorly
on the challenge's metric, because retrained models do *not* misclassify forget examples: they treat
them like unseen test examples.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from starter_kit.batches import split_batch

TRAINABLE_STAGES = ("layer1", "layer2")


def _freeze_all_but(net: nn.Module, stages) -> list[nn.Parameter]:
    children = dict(net.named_children())
    missing = [name for name in stages if name not in children]
    if missing:
        raise ValueError(
            f"SRFL trains only the first two backbone stages and expects a ResNet-like model with "
            f"submodules named {list(stages)} (as torchvision's resnet18); this "
            f"{type(net).__name__} lacks {missing} (its children: {list(children)})"
        )
    trainable = []
    for name, param in net.named_parameters():
        keep = name.split(".")[0] in stages
        param.requires_grad_(keep)
        if keep:
            trainable.append(param)
    return trainable


def _endless(loader):
    """Batches of ``loader`` forever, re-iterating it (and so re-shuffling) each time it runs out."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("the forget loader is empty: SRFL needs forget examples")


def _kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher) || softmax(student)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student_logits, dim=1), F.softmax(teacher_logits, dim=1), reduction="batchmean")


def srfl_loss(student_forget, rolled_teacher_forget, student_retain, teacher_retain) -> torch.Tensor:
    """The SRFL objective for one step (see the module docstring)."""
    cosine = F.cosine_similarity(rolled_teacher_forget, student_forget, dim=1).mean()
    return _kl(student_forget, rolled_teacher_forget) - cosine + _kl(student_retain, teacher_retain)


def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader=None, *,
               epochs: int = 2, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
               roll_steps=(-1, 1), seed: int | None = None, record: list | None = None) -> nn.Module:
    """Unlearn ``forget_loader`` from ``net`` with SRFL; changes ``net`` in place and returns it (eval mode).

    An epoch is one pass over the retain loader; the forget loader is cycled alongside it. Each step
    rolls the teacher's forget logits by a step drawn from ``roll_steps`` (never 0: that is no change).
    ``seed`` fixes the roll steps (the loaders' own generators fix the data order). Pass a list as
    ``record`` to receive one dict per step: ``{"step", "loss", "facc", "racc"}`` -- the student's
    accuracy on that step's forget and retain batches.

    The defaults are tuned for the project's small digits data (one epoch there is ~18 steps). The
    algorithm's author used SGD with lr 1e-3, momentum 0.9 and one epoch on CIFAR-10 (~700 steps):
    ``unlearning(..., epochs=1, lr=1e-3)``.
    """
    roll_steps = [int(s) for s in roll_steps]
    if not roll_steps or 0 in roll_steps:
        raise ValueError(f"roll_steps must be non-empty and exclude 0 (a roll by 0 changes nothing), got {roll_steps}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = next(net.parameters()).device
    teacher = copy.deepcopy(net).eval()
    for param in teacher.parameters():
        param.requires_grad_(False)
    trainable = _freeze_all_but(net, TRAINABLE_STAGES)
    optimizer = torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)
    rng = torch.Generator().manual_seed(seed) if seed is not None else None
    choices = torch.tensor(roll_steps)
    net.train()
    step = 0
    try:
        for _ in range(epochs):
            forget_batches = _endless(forget_loader)
            for retain_batch in retain_loader:
                retain_x, retain_y = (t.to(device) for t in split_batch(retain_batch))
                forget_x, forget_y = (t.to(device) for t in split_batch(next(forget_batches)))
                with torch.no_grad():  # the teacher is in eval mode: one pass over both batches is the same
                    teacher_forget, teacher_retain = teacher(torch.cat([forget_x, retain_x])).split(
                        [len(forget_x), len(retain_x)])
                shift = int(choices[torch.randint(len(choices), (1,), generator=rng)])
                rolled = torch.roll(teacher_forget, shifts=shift, dims=1)
                student_forget, student_retain = net(forget_x), net(retain_x)
                loss = srfl_loss(student_forget, rolled, student_retain, teacher_retain)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if record is not None:
                    record.append({
                        "step": step, "loss": loss.item(),
                        "facc": (student_forget.argmax(1) == forget_y).float().mean().item(),
                        "racc": (student_retain.argmax(1) == retain_y).float().mean().item(),
                    })
                step += 1
    finally:
        for param in net.parameters():
            param.requires_grad_(True)
        net.eval()
    return net
