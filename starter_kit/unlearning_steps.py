"""Building blocks that unlearning methods share: the project's own (``submission/``), the reference
methods (``methods/``) and the kit's baselines.

What lives here: every step that more than one method uses -- the one fine-tuning loop
(:func:`fine_tune`, which every method's training runs through), the distillation loss, the forget-batch
pairing, weight surgery, gradient masks. A step that only one method uses stays in that method's module
(SRFL's loss, ALIF's auxiliary layers, FCS's contrast loss). Training from scratch -- the original and
the oracles -- has its own, fused loop (:mod:`starter_kit.training`).

Every function takes the challenge's loaders as they come (tuple or Kaggle dict batches) and works on
whatever device ``net`` lives on. Import names from here by the package's name
(``from unlearning_mock.starter_kit.unlearning_steps import cycle``): the Kaggle notebook builder
inlines this module that way.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.starter_kit.batches import split_batch
from unlearning_mock.starter_kit.class_weights import inverse_frequency


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


def distillation_loss(teacher: nn.Module, temperature: float = 1.0, *, kl_weight: float = 1.0,
                      ce_weight: float = 0.0, soft_ce_weight: float = 0.0):
    """A :func:`fine_tune` ``loss_fn`` that distils ``teacher`` (frozen, e.g. :func:`frozen_copy`) into the student:

    ``ce_weight * CE(student, labels) + soft_ce_weight * CE(student, softmax(teacher))
    + kl_weight * KL(teacher / T || student / T)`` on the batch (:func:`kl_to_teacher`; the soft
    cross-entropy at temperature 1). A negative ``kl_weight`` pushes the student away from the teacher
    (SCRUB's max-steps). Terms with weight 0 are not computed.
    """
    if not (kl_weight or ce_weight or soft_ce_weight):
        raise ValueError("distillation_loss needs a non-zero weight on at least one term")

    def loss_fn(student: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = student(inputs)
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        # the soft term is built before the hard one, as KDE always did: the order of autograd's
        # accumulation, and so the weights, stay the same to the bit
        soft = -(F.softmax(teacher_logits, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean() \
            if soft_ce_weight else None
        terms = [ce_weight * F.cross_entropy(logits, targets)] if ce_weight else []
        if soft_ce_weight:
            terms.append(soft_ce_weight * soft)
        if kl_weight:
            terms.append(kl_weight * kl_to_teacher(logits, teacher_logits, temperature))
        return sum(terms[1:], terms[0])
    return loss_fn


def stage_children(net: nn.Module, stages, purpose: str) -> dict[str, nn.Module]:
    """``net``'s top-level submodules by name, after checking that every one of ``stages`` is there; else a
    ``ValueError`` that starts with ``purpose`` (e.g. "SRFL trains only") and names what the model has."""
    children = dict(net.named_children())
    missing = [name for name in stages if name not in children]
    if missing:
        raise ValueError(f"{purpose} {list(stages)} and expects a ResNet-like model with submodules named so (as "
                         f"torchvision's resnet18); this {type(net).__name__} lacks {missing} "
                         f"(its children: {list(children)})")
    return children


def stage_parameters(net: nn.Module, stages, method: str = "this method") -> list[nn.Parameter]:
    """The parameters of ``net``'s top-level submodules named in ``stages`` (in ``named_parameters`` order).

    A model without those submodules gets a ``ValueError`` that names what it has. Pass them as
    :func:`fine_tune`'s ``params`` to train only those stages.
    """
    stage_children(net, stages, f"{method} trains only")
    return [param for name, param in net.named_parameters() if name.split(".")[0] in stages]


def class_counts(loader, num_classes: int) -> torch.Tensor:
    """How many examples of each class ``loader`` yields (one pass)."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for batch in loader:
        _, targets = split_batch(batch)
        counts += torch.bincount(targets.reshape(-1).long().cpu(), minlength=num_classes)[:num_classes].double()
    return counts


def inverse_frequency_weights(loader, num_classes: int) -> torch.Tensor:
    """Cross-entropy class weights 1 / count, as the Kaggle recipe weights them (0 for absent classes)."""
    return inverse_frequency(class_counts(loader, num_classes))


def num_classes_of(net: nn.Module) -> int:
    """The number of classes of a ResNet-like ``net`` (its ``fc`` layer's outputs)."""
    fc = getattr(net, "fc", None)
    if fc is None or not hasattr(fc, "out_features"):
        raise ValueError(f"expected a classifier with an `fc` layer (as resnet18); {type(net).__name__} has none")
    return int(fc.out_features)


# ----------------------------------------------------------------------------------------------------
# The fine-tuning loop that every method's training runs through (``methods/``, ``submission/``, the
# kit's baselines in ``starter_kit/baseline.py``), and the weight surgery several methods share.
# ----------------------------------------------------------------------------------------------------

LR_SCHEDULES = ("constant", "cosine", "cosine_per_epoch")


def lr_factor(schedule, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at 0-based ``step`` of ``total_steps``.

    ``"constant"``; ``"cosine"``: annealed to 0 per step (``CosineAnnealingLR(T_max=total_steps)``
    stepped every step); ``"cosine_per_epoch"``: annealed once per epoch, as the starting kit steps
    ``CosineAnnealingLR(T_max=epochs)`` (fractional epochs allowed); or a callable
    ``schedule(step, total_steps) -> factor``.
    """
    if callable(schedule):
        return float(schedule(step, total_steps))
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "cosine_per_epoch":
        epochs = total_steps / steps_per_epoch
        return 0.5 * (1.0 + math.cos(math.pi * (step // steps_per_epoch) / epochs))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}: use one of {LR_SCHEDULES} "
                     "or a callable (step, total_steps) -> factor")


def steps_in(loader, epochs: float, what: str = "loader") -> int:
    """Optimiser steps in ``epochs`` passes over ``loader`` (fractional epochs: rounded, at least 1)."""
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if len(loader) == 0:
        raise ValueError(f"the {what} is empty: this method needs at least one batch from it")
    return max(1, int(round(epochs * len(loader))))


def check_epochs(epochs) -> None:
    """Refuse an ``epochs`` option that is not a number > 0 (one epoch = one pass over the retain loader)."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not epochs > 0:
        raise ValueError(f"epochs must be a number > 0 (one epoch = one pass over the retain loader; a fraction "
                         f"caps the steps), got {epochs!r}")


def roll_choices(roll_steps) -> list[int]:
    """The class-axis roll steps to draw from, as ints; refuses an empty set or a roll by 0."""
    steps = [int(s) for s in roll_steps]
    if not steps or 0 in steps:
        raise ValueError(f"roll_steps must be non-empty and exclude 0 (a roll by 0 changes nothing), got {steps}")
    return steps


def cross_entropy_step(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The plain fine-tuning loss: cross-entropy of ``net`` on the batch."""
    return F.cross_entropy(net(inputs), targets)


def fine_tune(net: nn.Module, loader, *, epochs: float = 1.0, lr: float = 1e-3, momentum: float = 0.9,
              weight_decay: float = 5e-4, schedule="cosine", params=None, loss_fn=None, optimizer=None,
              before_step=None, after_backward=None, after_step=None, freeze_bn_stats: bool = False) -> nn.Module:
    """Train ``net`` on ``loader``'s batches: the one fine-tuning loop of the project's methods.

    ``epochs`` passes over ``loader`` (a fraction is a step cap: ``round(epochs * len(loader))`` steps;
    the loader is re-iterated, and so re-shuffled, each time it runs out). SGD with ``momentum`` and
    ``weight_decay`` over ``params`` (default: all of ``net``'s; they need not be ``net``'s own, e.g.
    ALIF's auxiliary layers; ``net``'s other parameters are frozen during the loop and their
    ``requires_grad`` restored after), or the given ``optimizer``; the learning rate of every group is
    ``lr * lr_factor(schedule, ...)`` at each step. ``net`` runs in train mode (every batch norm updates
    its running statistics) unless ``freeze_bn_stats``, which keeps every batch norm in eval mode.

    Per-step hooks: ``loss_fn(net, inputs, targets)`` gives the step's loss (default
    :func:`cross_entropy_step`; it may draw further batches, e.g. :func:`with_forget_batch`);
    ``before_step(step, total_steps)`` runs before each step (noise, masks); ``after_backward()``
    between ``backward`` and the update (gradient masks); ``after_step(step, loss)`` after the update
    (records; ``loss`` is the step's loss tensor). Returns ``net`` in eval mode.
    """
    device = model_device(net)
    total = steps_in(loader, epochs)
    loss_fn = cross_entropy_step if loss_fn is None else loss_fn
    all_params = list(net.parameters())
    chosen = all_params if params is None else list(params)
    was_trainable = [p.requires_grad for p in all_params]
    chosen_ids = {id(p) for p in chosen}
    for param in all_params:
        param.requires_grad_(id(param) in chosen_ids)
    if optimizer is None:
        optimizer = torch.optim.SGD(chosen, lr=lr, momentum=momentum, weight_decay=weight_decay)
    try:
        net.train()
        if freeze_bn_stats:
            for module in net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        for step, batch in zip(range(total), cycle(loader)):
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(schedule, step, total, len(loader))
            if before_step is not None:
                before_step(step, total)
            inputs, targets = batch_on(batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net, inputs, targets)
            loss.backward()
            if after_backward is not None:
                after_backward()
            optimizer.step()
            if after_step is not None:
                after_step(step, loss)
    finally:
        for param, flag in zip(all_params, was_trainable):
            param.requires_grad_(flag)
        net.eval()
    return net


class MergedBatches:
    """A loader whose batches are ``per_step`` consecutive batches of ``loader`` concatenated.

    For methods published with a larger batch than the challenge's loaders give (64): e.g. FCS's 256.
    """

    def __init__(self, loader, per_step: int):
        if per_step < 1:
            raise ValueError(f"per_step must be at least 1, got {per_step}")
        self.loader, self.per_step = loader, per_step

    def __len__(self) -> int:
        return math.ceil(len(self.loader) / self.per_step)

    def __iter__(self):
        group = []
        for batch in self.loader:
            group.append(split_batch(batch))
            if len(group) == self.per_step:
                yield torch.cat([x for x, _ in group]), torch.cat([y for _, y in group])
                group = []
        if group:
            yield torch.cat([x for x, _ in group]), torch.cat([y for _, y in group])


def reinitialise(module: nn.Module) -> None:
    """Reset ``module`` and every submodule that has ``reset_parameters`` to its default initialisation
    (drawn from torch's global generator; batch-norm running statistics are reset too)."""
    for sub in module.modules():
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.reset_running_stats()


def conv_weights(net: nn.Module, include_shortcuts: bool = True) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of every ``Conv2d`` of ``net`` (optionally without the shortcut ``downsample`` ones)."""
    return [(name, module.weight) for name, module in net.named_modules()
            if isinstance(module, nn.Conv2d) and (include_shortcuts or "downsample" not in name)]


def is_batch_norm_parameter(net: nn.Module, name: str) -> bool:
    owner = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
    return isinstance(owner, nn.modules.batchnorm._BatchNorm)


@torch.no_grad()
def add_gaussian_noise(params, std: float) -> None:
    """Add N(0, std²) noise to every element of ``params`` (torch's global generator)."""
    for param in params:
        param.add_(torch.randn_like(param) * std)


def multiply_gradients(params, factors) -> callable:
    """An ``after_backward`` hook for :func:`fine_tune`: ``param.grad *= factor`` for each pair
    (a 0/1 mask restricts the update, as SalUn; 0.1 slows it, as MSG)."""
    pairs = list(zip(params, factors))

    def hook() -> None:
        for param, factor in pairs:
            if param.grad is not None:
                param.grad.mul_(factor)
    return hook


def accumulated_gradients(net: nn.Module, loader, params, max_examples: int | None = None,
                          sign: float = 1.0) -> list[torch.Tensor]:
    """``sign`` × the gradient of the mean cross-entropy over ``loader`` (or its first ``max_examples``
    examples, whole batches) with respect to ``params``; ``net`` is put in eval mode (no statistics
    updated) and its own ``.grad`` fields are left untouched."""
    device = model_device(net)
    params = list(params)
    totals = [torch.zeros_like(p) for p in params]
    seen = 0
    net.eval()
    for batch in loader:
        inputs, targets = batch_on(batch, device)
        loss = F.cross_entropy(net(inputs), targets, reduction="sum")
        for total, grad in zip(totals, torch.autograd.grad(loss, params)):
            total.add_(grad)
        seen += len(targets)
        if max_examples is not None and seen >= max_examples:
            break
    if seen == 0:
        raise ValueError("no examples to take gradients on: the loader is empty")
    return [total * (sign / seen) for total in totals]


@torch.no_grad()
def logits_over_loader(net: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inputs, targets, logits)`` of one pass over ``loader`` in eval mode, concatenated."""
    device = model_device(net)
    net.eval()
    parts = [(x, y, net(x)) for x, y in (batch_on(b, device) for b in loader)]
    if not parts:
        raise ValueError("the loader is empty")
    return tuple(torch.cat(column) for column in zip(*parts))


def magnitude_masks(tensors, fraction: float, largest: bool = False, per_tensor: bool = False) -> list[torch.Tensor]:
    """Boolean masks of the ``fraction`` of elements with the smallest (or ``largest``) |value|, under one
    threshold over all ``tensors`` (or one per tensor with ``per_tensor``). Ties at the threshold are in."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the masked fraction must lie in (0, 1], got {fraction}")
    tensors = [t.detach() for t in tensors]

    def threshold(values: torch.Tensor) -> torch.Tensor:
        flat = values.abs().flatten()
        k = max(1, int(round(fraction * flat.numel())))
        return flat.kthvalue(flat.numel() - k + 1 if largest else k).values

    if per_tensor:
        limits = [threshold(t) for t in tensors]
    else:
        limits = [threshold(torch.cat([t.flatten() for t in tensors]))] * len(tensors)
    return [(t.abs() >= limit) if largest else (t.abs() <= limit) for t, limit in zip(tensors, limits)]


def with_forget_batch(retain_loss, forget_loss, forget_loader, retain_weight: float = 1.0,
                      forget_weight: float = 1.0):
    """A :func:`fine_tune` ``loss_fn`` that pairs each retain batch with the next forget batch (the forget
    loader cycles): ``retain_weight * retain_loss(net, x_r, y_r) + forget_weight * forget_loss(net, x_f, y_f)``.
    """
    forget_stream = cycle(forget_loader, "forget loader")

    def loss_fn(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        forget_inputs, forget_targets = batch_on(next(forget_stream), inputs.device)
        return (retain_weight * retain_loss(net, inputs, targets)
                + forget_weight * forget_loss(net, forget_inputs, forget_targets))
    return loss_fn


def random_label_cross_entropy(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against labels drawn uniformly over the classes (torch's global generator):
    the forget term of random-label unlearning and SalUn."""
    logits = net(inputs)
    random_labels = torch.randint(logits.shape[1], targets.shape, device=targets.device)
    return F.cross_entropy(logits, random_labels)


def negated_cross_entropy_step(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Minus the cross-entropy of ``net`` on the batch: gradient ascent on it (GA, NegGrad+)."""
    return -F.cross_entropy(net(inputs), targets)
