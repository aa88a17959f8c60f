"""SRFL -- Simple Rolling in Forget Logits -- with the challenge's entry point, in two variants.

A frozen copy of the original model is the teacher; the student trains only the parameters of its
top-level submodules ``layer1`` and ``layer2`` (:func:`~starter_kit.unlearning_steps.stage_parameters`):
every convolution weight, batch-norm weight and bias of those stages, ``layer2``'s downsample shortcut
included -- on torchvision's resnet18 the first four of its eight blocks, on the digits SmallResNet two
blocks of three. Everything else (the stem ``conv1``/``bn1``, ``layer3``, ``layer4`` where there is one,
``fc``) keeps its weights. (The author's code selects parameters whose *name contains* "layer1" or
"layer2"; on these models that is the same set.) A model without ``layer1`` and ``layer2`` is refused
before any training. Each step takes one retain batch and
one forget batch (the forget loader cycles); the teacher's forget logits are rolled along the class
axis by a step drawn at random from the variant's roll set, so every forget example is pulled towards
another class. One loss function, :func:`srfl_loss`, with named weights (:class:`SRFLWeights`)
covers both variants:

``variant="submitted"`` (the default) -- the author's published training code ("SRFL as its author
submitted it")::

    0.1 * KL(teacher retain || student retain)
  + 0.8 * KL(rolled teacher forget || student forget)             (rolls drawn from {-3, +3})
  + 0.1 * CE(student retain, retain labels)                       (0.5(1-w), w, 0.5(1-w) with w = 0.8)
  + 1.0 * CE(student retain, retain labels)                       (a second, full-weight retain CE)
  - (1 - cos(student forget logits, *unrolled* teacher forget logits))     (mean over the batch)

  with class weights in both CE terms when the setting has them. The last term pushes the student's
  forget logits *away* from the original's (it is minimised by lowering the cosine).

``variant="seed"`` -- the seed README's pseudo-code (the project's rendering until now)::

    KL(rolled teacher forget || student forget) - cos(rolled teacher forget, student forget)
  + KL(teacher retain || student retain)                          (rolls drawn from {-1, +1})

  Its cosine term pulls the student's forget logits *towards* the rolled teacher's.

The seed's figure (CIFAR-10 starting kit, ~820 steps, forget batch accuracy 1.0 -> ~0.1, retain batch
accuracy dipping to ~0.5 and recovering to ~0.9) was made by the author's code, i.e. ``"submitted"``.

Both variants share the author's optimiser: SGD (momentum 0.9, weight decay 1e-4) over the trainable
parameters, cosine annealing with ``T_max = epochs`` stepped once per epoch. An epoch is one pass
over the retain loader. Like the author's code, the whole network is put in ``train()`` mode: the
batch-norm layers *outside* layer1/layer2 (``bn1``, ``layer3``, ``layer4``) keep updating their running
statistics from the student's retain and forget batches even though their weights are frozen.

Known behaviour: forget accuracy falls while retain accuracy stays high -- yet SRFL scores poorly on
the challenge's metric, because retrained models do *not* misclassify forget examples: they treat
them like unseen test examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.starter_kit.method_declaration import Variant, unlearning_method
from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE, SettingProfile
from unlearning_mock.starter_kit.unlearning_steps import (batch_on, check_epochs, cycle, fine_tune, frozen_copy,
                                                          inverse_frequency_weights, kl_to_teacher, lr_factor,
                                                          model_device, num_classes_of, roll_choices,
                                                          stage_parameters, steps_in)

SRFL_STAGES = ("layer1", "layer2")


@dataclass(frozen=True)
class SRFLWeights:
    """Named weights of the SRFL loss terms (see :func:`srfl_loss`).

    ``cosine`` multiplies cos(student forget, reference) where the reference is the teacher's forget
    logits, rolled or not (``cosine_to``); ``constant`` is added as is (it changes the logged loss,
    not the gradient: the author's −(1 − cos) is ``cosine=+1, constant=-1``).
    """

    kl_retain: float
    kl_forget: float
    ce_retain: float
    cosine: float
    cosine_to: str  # "rolled" or "unrolled" teacher forget logits
    constant: float = 0.0


SRFL_FORGET_WEIGHT = 0.8  # the author's fweight w: KL terms 0.5(1-w) retain, w forget; CE 0.5(1-w)

SRFL_VARIANTS = {
    "submitted": {
        # the distillation terms 0.5(1-w), w, 0.5(1-w), plus the second, full-weight retain CE
        "weights": SRFLWeights(kl_retain=0.5 * (1 - SRFL_FORGET_WEIGHT), kl_forget=SRFL_FORGET_WEIGHT,
                               ce_retain=0.5 * (1 - SRFL_FORGET_WEIGHT) + 1.0,
                               cosine=1.0, cosine_to="unrolled", constant=-1.0),
        "roll_steps": (-3, 3),
    },
    "seed": {
        "weights": SRFLWeights(kl_retain=1.0, kl_forget=1.0, ce_retain=0.0, cosine=-1.0, cosine_to="rolled"),
        "roll_steps": (-1, 1),
    },
}

# The author's values: 1 epoch at lr 1e-3, against a 30-epoch retrain. In a setting, the epochs become the
# same fraction of its retrain's optimiser steps (starter_kit/profile.py); digits keeps the values measured
# there before that rule (the docstring of `unlearning`). None: the variant's roll set.
PUBLISHED = dict(variant="submitted", epochs=1.0, lr=1e-3, momentum=0.9, weight_decay=1e-4,
                 schedule="cosine_per_epoch", roll_steps=None, class_weights="auto", seed=None, record=None)
TUNED = {"digits": {"epochs": 2, "lr": 1e-2}}
# The per-step accuracy curve runs longer than the submission defaults on digits and the mock Kaggle input, to
# show the whole curve; on mnist-groups the setting's defaults, the runs the evaluator scores.
CURVE = {"digits": {"epochs": 8, "lr": 1e-2}, "kaggle": {"epochs": 3, "lr": 1e-2}, "mnist-groups": {}}


def srfl_loss(student_forget: torch.Tensor, teacher_forget: torch.Tensor, shift: int,
              student_retain: torch.Tensor, teacher_retain: torch.Tensor, retain_targets: torch.Tensor,
              weights: SRFLWeights, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The SRFL objective for one step; ``teacher_forget`` is unrolled, ``shift`` the roll along classes.

    weights.kl_retain * KL(teacher retain || student retain)
    + weights.kl_forget * KL(rolled teacher forget || student forget)
    + weights.ce_retain * CE(student retain, retain_targets; class_weights)
    + weights.cosine * mean cos(student forget, rolled or unrolled teacher forget) + weights.constant
    """
    rolled = torch.roll(teacher_forget, shifts=shift, dims=1)
    loss = weights.kl_retain * kl_to_teacher(student_retain, teacher_retain)
    loss = loss + weights.kl_forget * kl_to_teacher(student_forget, rolled)
    if weights.ce_retain:
        loss = loss + weights.ce_retain * F.cross_entropy(student_retain, retain_targets, weight=class_weights)
    reference = rolled if weights.cosine_to == "rolled" else teacher_forget
    cosine = F.cosine_similarity(student_forget, reference, dim=1).mean()
    return loss + weights.cosine * cosine + weights.constant


def srfl_class_weights(option, retain_loader, net: nn.Module, profile: SettingProfile = CHALLENGE_PROFILE):
    """Resolve ``class_weights``: "auto" (1/count where ``profile``'s recipe weights its cross-entropy so, else
    none), "inverse_frequency", None, or a tensor of per-class weights."""
    if option is None or (option == "auto" and not profile.class_weighted):
        return None
    if isinstance(option, torch.Tensor):
        return option.float().to(model_device(net))
    if option in ("auto", "inverse_frequency"):
        return inverse_frequency_weights(retain_loader, num_classes_of(net)).to(model_device(net))
    raise ValueError(f"class_weights must be 'auto', 'inverse_frequency', None or a tensor, got {option!r}")


def srfl_check(net: nn.Module, o: dict, profile: SettingProfile) -> None:
    """Refuse an unknown variant, epochs or lr <= 0 and a roll set that is empty or holds 0, before training."""
    if o["variant"] not in SRFL_VARIANTS:
        raise ValueError(f"unknown SRFL variant {o['variant']!r}: choose one of {sorted(SRFL_VARIANTS)}")
    check_epochs(o["epochs"])
    if not o["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {o['lr']!r}")
    if o["roll_steps"] is not None:
        roll_choices(o["roll_steps"])


@unlearning_method("srfl", PUBLISHED, srfl_check, tuned=TUNED, family="ours", order=1, curve=CURVE, variants=(
        Variant("srfl-submitted", "SRFL as its author submitted it", {"variant": "submitted"}),
        Variant("srfl-seed", "SRFL as the seed README describes it", {"variant": "seed"})))
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict,
               profile: SettingProfile) -> nn.Module:
    """Unlearn ``forget_loader`` from ``net`` with SRFL; changes ``net`` in place and returns it (eval mode).

    ``variant``: ``"submitted"`` (the author's code, the default) or ``"seed"`` (the seed README's
    pseudo-code); it selects the loss weights and the roll set (module docstring). ``roll_steps``
    overrides the roll set (non-empty, no 0). ``validation_loader`` is not used.

    Optimiser (the author's): SGD with ``lr``, ``momentum`` 0.9, ``weight_decay`` 1e-4 over the
    parameters of layer1/layer2. ``epochs`` passes over the retain loader (a fraction caps the steps
    at ``round(epochs * len(retain_loader))``). ``schedule`` (:func:`lr_factor`):
    ``"cosine_per_epoch"`` (default, the author's ``CosineAnnealingLR(T_max=epochs)`` stepped once per
    epoch: epoch e runs at ``lr * (1 + cos(pi e / epochs)) / 2``), ``"cosine"`` (per step),
    ``"constant"``, or a callable ``(step, total_steps) -> factor``.

    ``class_weights`` (for the CE terms of ``"submitted"``): ``"auto"`` (default) -- 1/count of each
    class in the retain loader where the setting's recipe weights its cross-entropy so (the profile's
    ``class_weighted``: the challenge's data and the Kaggle layout), none elsewhere (digits, CIFAR-10);
    ``"inverse_frequency"`` -- 1/count always; ``None`` -- off; or a tensor of weights. Inferring them
    takes one pass over the retain loader.

    ``profile`` (:class:`~starter_kit.profile.SettingProfile`, passed by the evaluator; without one, the
    challenge's own setting) sets the defaults (:data:`PUBLISHED`, :data:`TUNED`): ``epochs`` = the
    author's 1 epoch as the same fraction of the setting's retrain (``profile.epochs(1.0)``: the challenge's
    data and CIFAR-10 1, mnist-groups 1/6, the mock Kaggle input 0.1), ``lr`` = the author's 1e-3 -- except on
    digits, which keeps the values measured there before the rule: 2 epochs (36 steps), lr 1e-2. 4 epochs at
    lr 1e-2 took 0.25-0.31 of a retrain (over budget; ``--num-models 16 --no-baseline --warn-only --seed 1``,
    2 heavily loaded CPU cores), 2 epochs about half that; lr 1e-3 barely moves the model in 36 steps; lr
    2e-2 and 5e-2 lowered forget accuracy (0.50) but retain and test accuracy more (0.70-0.73 / 0.66-0.69).

    These defaults are submission runs; the decoupling picture needs more steps (``mock_evaluator.studies.curve``).

    ``seed`` fixes the roll steps (the loaders' own generators fix the data order). Pass a list as
    ``record`` to receive one dict per step: ``{"step", "epoch", "lr", "loss", "facc", "racc"}`` --
    ``facc`` / ``racc`` are the student's accuracies on that step's forget and retain batch, from the
    train-mode outputs the step's loss was computed on.
    """
    settings = SRFL_VARIANTS[o["variant"]]
    epochs, lr, schedule, record = o["epochs"], o["lr"], o["schedule"], o["record"]
    steps = roll_choices(settings["roll_steps"] if o["roll_steps"] is None else o["roll_steps"])
    weights = settings["weights"]

    total = steps_in(retain_loader, epochs, "retain loader")
    lr_factor(schedule, 0, total, len(retain_loader))  # an unknown schedule fails here, before any training
    trainable = stage_parameters(net, SRFL_STAGES, "SRFL")
    teacher = frozen_copy(net)
    rng = torch.Generator().manual_seed(o["seed"]) if o["seed"] is not None else None
    choices = torch.tensor(steps)
    cw = srfl_class_weights(o["class_weights"], retain_loader, net, profile) if weights.ce_retain else None
    forget_batches = cycle(forget_loader, "forget loader")
    last = {}  # the step's shift and batch accuracies, for `record`

    def loss_fn(student: nn.Module, retain_x: torch.Tensor, retain_y: torch.Tensor) -> torch.Tensor:
        forget_x, forget_y = batch_on(next(forget_batches), retain_x.device)
        with torch.no_grad():  # the teacher is in eval mode: one pass over both batches is the same
            teacher_forget, teacher_retain = teacher(torch.cat([forget_x, retain_x])).split(
                [len(forget_x), len(retain_x)])
        shift = int(choices[torch.randint(len(choices), (1,), generator=rng)])
        student_forget, student_retain = student(forget_x), student(retain_x)
        if record is not None:
            last.update(shift=shift, facc=(student_forget.argmax(1) == forget_y).float().mean().item(),
                        racc=(student_retain.argmax(1) == retain_y).float().mean().item())
        return srfl_loss(student_forget, teacher_forget, shift, student_retain, teacher_retain, retain_y, weights, cw)

    def record_step(step: int, loss: torch.Tensor) -> None:
        record.append({"step": step, "epoch": step // len(retain_loader),
                       "lr": lr * lr_factor(schedule, step, total, len(retain_loader)), "loss": loss.item(), **last})

    # The author's code puts the whole network in train() mode (fine_tune does too): every batch norm,
    # the frozen ones outside layer1/layer2 included, updates its running statistics.
    return fine_tune(net, retain_loader, epochs=epochs, lr=lr, momentum=o["momentum"], weight_decay=o["weight_decay"],
                     schedule=schedule, params=trainable, loss_fn=loss_fn,
                     after_step=record_step if record is not None else None)
