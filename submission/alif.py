"""ALIF -- Auxiliary Layer for Inducing Forget -- with the challenge's entry point.

**Where this design comes from.** The seed names ALIF and claims that, like SRFL, it "achieved
decoupling in forget/retain accuracy: forget goes low, while retain goes high" -- and gives no
algorithm ("TBD"). Everything below is the project's own design, built to honour that name and claim;
it is not the seed author's method.

The design:

1. **An auxiliary layer per chosen convolution.** Every ``nn.Conv2d`` inside the chosen stages
   (default ``layer1`` and ``layer2``, the stages SRFL trains -- both 3x3 convolutions of each block
   *and* the 1x1 downsample convolution of ``layer2``'s shortcut) gets an auxiliary 1x1
   channel-mixing layer ``A`` (C_out x C_out, no bias) applied to its output, before the batch norm
   that follows it. ``A`` starts as the identity, so the network starts exactly as the original. ``A``
   is attached with a forward hook: the model's modules, parameters and state-dict keys never change.
2. **Only the A's train.** Every original parameter is frozen (``requires_grad`` restored afterwards).
   Batch norm behaves as in any fine-tuning: the network runs in train mode, so every batch norm
   normalises with batch statistics and updates its running statistics (its affine weights stay
   frozen); ``freeze_bn_stats=True`` instead keeps every batch norm in eval mode (running statistics
   untouched), so training optimises exactly the eval-mode network.
3. **The objective per step** -- one retain batch, one forget batch (the forget loader cycles):
   ``KL(teacher || student) + retain_ce * CE(student, labels)`` on the retain batch (teacher = the
   frozen original), plus ``forget_weight`` times a forget term chosen by ``target``:

   - ``"decouple"`` (the seed's claim): ``KL(rolled teacher || student)`` on the forget batch, the
     teacher's forget logits rolled along the class axis by a random step from ``roll_steps`` (as
     SRFL does): forget predictions move to a neighbouring class, so forget accuracy falls while the
     retain term holds retain accuracy.
   - ``"unseen"`` (built from what the challenge's metric rewards): the metric compares the forget
     examples' logit-scaled confidences ``s = log p_y - log(1 - p_y)`` with those of retrained models,
     which never saw them. Once, at the start, the original's confidences on the validation set (data
     it never saw) are summarised per class as ``quantiles`` quantiles. Each step, the student's
     forget confidences are matched *per class* to that distribution by 1-D optimal transport: within
     each class of the batch, the k examples are ranked by their current confidence and the j-th is
     pulled (smooth-L1) towards the validation quantile at level (j + 1/2) / k. This matches the
     mean, the spread and the shape of "unseen" confidences while keeping each example's rank (an
     example the model finds harder stays lower). A class with fewer than two validation examples
     uses the pooled validation distribution.

4. **Fold the auxiliary layers away.** A 1x1 channel mix after a convolution is linear in the
   convolution's output and commutes with its zero padding and stride, so
   ``A · conv(x; W, b) = conv(x; A·W, A·b)`` with ``(A·W)[o, i, kh, kw] = sum_c A[o, c] W[c, i, kh, kw]``.
   After training, every ``W`` is replaced by ``A·W`` (computed in float64, stored in the weight's
   dtype) and the hooks are removed: the returned model has exactly the original architecture, its
   state-dict keys and shapes, and the trained network's eval-mode logits (to float32 rounding;
   the tests require <= 1e-4).

Defaults come from the setting's profile (``profile``, passed by the evaluator; without one, the
challenge's own setting) by the rule every method here follows (``starter_kit/profile.py``): ALIF's
reference values are those it was tuned to on digits (the evaluator's ``--seed 1``, never the
leaderboard's seed 0, within the challenge's 20% of a retrain): 2 digits epochs (36 steps), lr 0.05. Read
through the digits setting's epoch scale (2/3) that is 3 epochs against the challenge's 30-epoch retrain
(:data:`PUBLISHED`) at lr 0.05. So digits runs 2 epochs at lr 0.05 as before; another
setting runs ``profile.epochs(3)`` (mnist-groups ½ epoch, the mock Kaggle input 0.3) at lr 0.05
(torchvision resnet18 used 1 epoch at lr 0.01 before this rule). See the README's ALIF section for the
measurements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.starter_kit.method_declaration import Variant, unlearning_method
from unlearning_mock.starter_kit.profile import SettingProfile
from unlearning_mock.starter_kit.unlearning_steps import (batch_on, check_epochs, cycle, fine_tune, frozen_copy,
                                                          kl_to_teacher, model_device, num_classes_of, roll_choices,
                                                          stage_children, steps_in)

ALIF_TARGETS = ("decouple", "unseen")
ALIF_STAGES = ("layer1", "layer2")
# Its reference values: epochs against the challenge's 30-epoch retrain (2 digits epochs at its scale 2/3).
PUBLISHED = dict(target="decouple", stages=ALIF_STAGES, epochs=3.0, lr=0.05, momentum=0.9, max_steps=None,
                 retain_ce=1.0, forget_weight=1.0, roll_steps=(-1, 1), quantiles=101, freeze_bn_stats=False,
                 seed=None, record=None)
# The per-step accuracy curve: the setting's defaults, except on the mock Kaggle input (1 epoch at lr 0.01, its
# values before the profile).
CURVE = {"digits": {}, "kaggle": {"epochs": 1, "lr": 0.01}, "mnist-groups": {}}


# ----------------------------------------------------------------------------------------------------
# The auxiliary layers: attach, fold, detach
# ----------------------------------------------------------------------------------------------------

def alif_convolutions(net: nn.Module, stages=ALIF_STAGES) -> list[tuple[str, nn.Conv2d]]:
    """``(qualified name, conv)`` of every ``nn.Conv2d`` inside the top-level submodules ``stages``."""
    children = stage_children(net, stages, "ALIF adds auxiliary layers to the convolutions of the stages")
    convs = []
    for stage in stages:
        for name, module in children[stage].named_modules():
            if isinstance(module, nn.Conv2d):
                if module.groups != 1:
                    raise ValueError(f"ALIF folds a full channel mix into each convolution, which a grouped "
                                     f"convolution cannot hold: {stage}.{name} has groups={module.groups} "
                                     f"(use an ordinary, ungrouped model)")
                convs.append((f"{stage}.{name}", module))
    if not convs:
        raise ValueError(f"the stages {list(stages)} of this {type(net).__name__} hold no nn.Conv2d: "
                         f"ALIF has nothing to attach its auxiliary layers to")
    return convs


class AuxiliaryMixers:
    """Identity-initialised 1x1 channel mixers ``A`` on the outputs of ``convs``, via forward hooks.

    ``mixers.parameters`` are the A's (not registered in the model). :meth:`fold` writes ``A·W`` into
    every convolution and removes the hooks; :meth:`detach` only removes the hooks.
    """

    def __init__(self, convs: list[tuple[str, nn.Conv2d]]):
        self.convs = convs
        self.parameters = [nn.Parameter(torch.eye(conv.out_channels, device=conv.weight.device,
                                                  dtype=conv.weight.dtype)) for _, conv in convs]
        self.hooks = [conv.register_forward_hook(self._mixing_hook(mixer))
                      for (_, conv), mixer in zip(convs, self.parameters)]

    @staticmethod
    def _mixing_hook(mixer: nn.Parameter):
        def mix(module, inputs, output):
            return F.conv2d(output, mixer[:, :, None, None])
        return mix

    def detach(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks = []

    @torch.no_grad()
    def fold(self) -> None:
        """``W <- A·W`` (and ``b <- A·b``) for every convolution, then remove the hooks."""
        self.detach()
        for (_, conv), mixer in zip(self.convs, self.parameters):
            mix = mixer.detach().double()
            weight = conv.weight
            folded = (mix @ weight.detach().double().reshape(weight.shape[0], -1)).reshape(weight.shape)
            weight.copy_(folded.to(weight.dtype))
            if conv.bias is not None:
                conv.bias.copy_((mix @ conv.bias.detach().double()).to(conv.bias.dtype))


# ----------------------------------------------------------------------------------------------------
# The "unseen" target: per-class quantiles of the original's validation confidences
# ----------------------------------------------------------------------------------------------------

def alif_confidences(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Logit-scaled confidence ``log p_y - log(1 - p_y) = z_y - logsumexp_{j != y} z_j``, differentiable."""
    own = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(targets, logits.shape[1]).bool(), float("-inf"))
    return own - torch.logsumexp(others, dim=1)


@torch.no_grad()
def unseen_quantiles(net: nn.Module, validation_loader, num_classes: int, quantiles: int = 101) -> torch.Tensor:
    """``[classes, quantiles]``: quantiles (levels 0..1) of ``net``'s eval-mode validation confidences per class."""
    if validation_loader is None:
        raise ValueError('target="unseen" needs the validation loader (the unseen examples whose confidences '
                         'the forget examples are made to match); pass validation_loader')
    device, was_training = model_device(net), net.training
    net.eval()
    confidences, labels = [], []
    for batch in validation_loader:
        inputs, targets = batch_on(batch, device)
        confidences.append(alif_confidences(net(inputs).float(), targets))
        labels.append(targets)
    net.train(was_training)
    if not confidences:
        raise ValueError('the validation loader is empty: target="unseen" needs validation examples')
    confidences, labels = torch.cat(confidences), torch.cat(labels)
    levels = torch.linspace(0, 1, quantiles, device=device)
    pooled = torch.quantile(confidences, levels)
    table = torch.stack([torch.quantile(confidences[labels == c], levels) if (labels == c).sum() >= 2 else pooled
                         for c in range(num_classes)])
    return table


def unseen_targets(confidences: torch.Tensor, labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Per example, the quantile of its class's table at its within-class rank level (j + 1/2) / k."""
    confidences, n = confidences.detach(), len(labels)
    by_confidence = torch.argsort(confidences)
    order = by_confidence[torch.argsort(labels[by_confidence], stable=True)]   # by class, then confidence
    counts = torch.bincount(labels, minlength=table.shape[0])
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long, device=labels.device)
    rank[order] = torch.arange(n, device=labels.device) - starts[labels[order]]
    position = (rank + 0.5) / counts[labels] * (table.shape[1] - 1)
    low = position.floor().long().clamp(max=table.shape[1] - 2)
    frac = position - low
    rows = table[labels]
    return rows.gather(1, low[:, None]).squeeze(1) * (1 - frac) + rows.gather(1, (low + 1)[:, None]).squeeze(1) * frac


# ----------------------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------------------

def alif_check(net: nn.Module, o: dict, profile: SettingProfile) -> None:
    """Refuse an unknown target, a bad roll set, ``max_steps`` < 1, ``quantiles`` < 2, ``epochs`` <= 0 and
    ``lr`` < 0, before any training."""
    if o["target"] not in ALIF_TARGETS:
        raise ValueError(f"unknown target {o['target']!r}: choose one of {ALIF_TARGETS}")
    if o["target"] == "decouple":
        roll_choices(o["roll_steps"])
    if o["max_steps"] is not None and o["max_steps"] < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {o['max_steps']!r}")
    if o["quantiles"] < 2:
        raise ValueError(f"quantiles must be >= 2, got {o['quantiles']!r}")
    check_epochs(o["epochs"])
    if not o["lr"] >= 0:
        raise ValueError(f"lr must be >= 0, got {o['lr']!r}")


@unlearning_method("alif", PUBLISHED, alif_check, family="ours", order=2, curve=CURVE, variants=(
        Variant("alif-decouple", "ALIF aimed at decoupling forget from retain", {"target": "decouple"}),
        Variant("alif-unseen", "ALIF aimed at treating forget examples as unseen", {"target": "unseen"})))
def unlearning(net: nn.Module, retain_loader, forget_loader, validation_loader, o: dict,
               profile: SettingProfile) -> nn.Module:
    """Unlearn ``forget_loader`` from ``net`` with ALIF; changes ``net`` in place and returns it (eval mode).

    An epoch is one pass over the retain loader, the forget loader cycled alongside (a fraction caps
    the steps at ``round(epochs * len(retain_loader))``, as every method here); ``max_steps`` caps the
    total number of steps too. ``epochs`` and ``lr`` default from the setting's ``profile`` (module docstring).
    SGD with ``momentum`` trains the auxiliary layers (no weight decay: it would pull them towards 0,
    not towards the identity). ``seed`` fixes the roll steps of ``target="decouple"`` (the loaders'
    own generators fix the data order). Pass a list as ``record`` to receive one dict per step:
    ``{"step", "loss", "facc", "racc"}`` -- the student's accuracy on that step's forget and retain
    batches (as computed in the training pass).
    """
    target, epochs, lr, record = o["target"], o["epochs"], float(o["lr"]), o["record"]
    roll_steps, retain_ce, forget_weight = o["roll_steps"], o["retain_ce"], o["forget_weight"]
    steps_in(retain_loader, epochs, "retain loader")  # an empty retain loader fails here, before any training
    if o["max_steps"] is not None:
        epochs = min(epochs, o["max_steps"] / len(retain_loader))
    convs = alif_convolutions(net, tuple(o["stages"]))
    num_classes = num_classes_of(net)
    table = unseen_quantiles(net, validation_loader, num_classes, o["quantiles"]) if target == "unseen" else None
    teacher = frozen_copy(net)
    rng = torch.Generator().manual_seed(o["seed"]) if o["seed"] is not None else None
    rolls = torch.tensor(roll_choices(roll_steps)) if target == "decouple" else None
    forget_batches = cycle(forget_loader, "forget loader")
    last = {}  # the step's batch accuracies, for `record`

    def loss_fn(student: nn.Module, retain_x: torch.Tensor, retain_y: torch.Tensor) -> torch.Tensor:
        forget_x, forget_y = batch_on(next(forget_batches), retain_x.device)
        student_forget, student_retain = student(forget_x), student(retain_x)
        with torch.no_grad():  # the teacher is in eval mode: one pass over both batches is the same
            if target == "decouple":
                teacher_forget, teacher_retain = teacher(torch.cat([forget_x, retain_x])).split(
                    [len(forget_x), len(retain_x)])
            else:
                teacher_retain = teacher(retain_x)
        loss = kl_to_teacher(student_retain, teacher_retain) + retain_ce * F.cross_entropy(student_retain, retain_y)
        if target == "decouple":
            shift = int(rolls[torch.randint(len(rolls), (1,), generator=rng)])
            forget_loss = kl_to_teacher(student_forget, torch.roll(teacher_forget, shifts=shift, dims=1))
        else:
            confidences = alif_confidences(student_forget, forget_y)
            forget_loss = F.smooth_l1_loss(confidences, unseen_targets(confidences, forget_y, table))
        if record is not None:
            last.update(facc=(student_forget.argmax(1) == forget_y).float().mean().item(),
                        racc=(student_retain.argmax(1) == retain_y).float().mean().item())
        return loss + forget_weight * forget_loss

    def record_step(step: int, loss: torch.Tensor) -> None:
        record.append({"step": step, "loss": loss.item(), **last})

    mixers = AuxiliaryMixers(convs)
    try:
        # only the A's train (net's own parameters frozen, restored after); no weight decay
        fine_tune(net, retain_loader, epochs=epochs, lr=lr, momentum=o["momentum"], weight_decay=0.0,
                  schedule="constant", params=mixers.parameters, loss_fn=loss_fn, freeze_bn_stats=o["freeze_bn_stats"],
                  after_step=record_step if record is not None else None)
        mixers.fold()
    finally:
        mixers.detach()
        net.eval()
    return net
