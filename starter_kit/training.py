"""The training recipe (one function for the original model and every oracle), and the cached original.

:func:`train_models` trains one model per seed on the given inputs. For a model that can be fused
(:class:`~starter_kit.models.SmallResNet`) it trains ``G`` of them at once as one grouped network --
each with its own initialisation and data order from its own seed, its own batch-norm statistics and
its own optimiser state (SGD and Adam act per parameter element, so the fused update of model ``g``
is exactly the update it would get alone). With one seed it is the ordinary one-at-a-time loop.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from starter_kit.models import SmallResNet, fuse_states, split_fused_state


@dataclass(frozen=True)
class Recipe:
    """How a model is trained from scratch. The defaults are the digits recipe."""

    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "sgd"          # "sgd" (momentum, nesterov off) or "adam"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"        # "cosine": annealing per step, to 0 at the end; "constant"
    augment: str = "none"           # "none" or "crop_flip" (random 4-pixel-padded crop + horizontal flip)
    class_weighted: bool = False    # cross-entropy weighted by 1 / class count (the Kaggle recipe)
    best_validation_from: int | None = None  # keep the best-validation-accuracy checkpoint among epochs >= this (1-based)
    amp: bool = False               # bf16 autocast for the training passes on CUDA (evaluation stays float32)

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"recipe optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.augment not in ("none", "crop_flip"):
            raise ValueError(f"recipe augment must be 'none' or 'crop_flip', got {self.augment!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"recipe schedule must be 'cosine' (per step, to 0) or 'constant', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"recipe needs epochs >= 1, batch_size >= 1 and lr > 0, got {self}")
        if self.best_validation_from is not None and not 1 <= self.best_validation_from <= self.epochs:
            raise ValueError(f"recipe best_validation_from must lie in [1, epochs={self.epochs}] (1-based), "
                             f"got {self.best_validation_from}")

    def as_dict(self) -> dict:
        return asdict(self)


DIGITS_RECIPE = Recipe()


def model_key(model: nn.Module) -> dict:
    """What identifies an architecture in a cache key."""
    if hasattr(model, "config"):
        return model.config()
    return {"class": type(model).__name__,
            "shapes": {name: list(p.shape) for name, p in model.state_dict().items()}}


def cache_hash(*parts) -> str:
    """A short, stable hash of JSON-serialisable parts (used for every cache key)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_fusable(model: nn.Module) -> bool:
    return isinstance(model, SmallResNet) and model.groups == 1


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small CPU tensor to ``device`` without making the CPU wait for the GPU."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def augment_crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The CIFAR-10 kit's augmentation on a batch: random crop with 4-pixel zero padding, random flip."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = _to_device(torch.randint(0, 9, (n,), generator=generator), x.device)
    dx = _to_device(torch.randint(0, 9, (n,), generator=generator), x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    flip = _to_device(torch.rand(n, generator=generator) < 0.5, x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def _class_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    counts = torch.bincount(targets.cpu(), minlength=num_classes).float()
    return torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))


def train_models(make_model, inputs: torch.Tensor, targets: torch.Tensor, recipe: Recipe,
                 seeds, device: str | torch.device = "cpu", fuse: bool = True,
                 validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[nn.Module]:
    """Train one model per seed from scratch with ``recipe``; return them in eval mode on ``device``.

    ``make_model()`` builds a fresh, untrained model; it is called right after ``torch.manual_seed(seed)``,
    so the seed fixes the initialisation; a generator seeded with ``seed`` fixes the data order and
    augmentation. Fusable models train all seeds at once when ``fuse`` is true. Recipes that keep the
    best-validation checkpoint need ``validation`` = (inputs, targets).
    """
    if recipe.best_validation_from is not None and validation is None:
        raise ValueError("this recipe keeps the best-validation checkpoint: pass validation=(inputs, targets)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        return []
    device = torch.device(device)
    inputs, targets = inputs.to(device), targets.to(device)
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(make_model())
    if fuse and len(seeds) > 1 and all(is_fusable(m) for m in models):
        fused = _fused_copy(models)
        _train(fused, inputs, targets, recipe, seeds, device, validation)
        for model, state in zip(models, split_fused_state(fused.state_dict(), len(seeds))):
            model.load_state_dict(state)
        return [model.to(device).eval() for model in models]
    for model, seed in zip(models, seeds):
        _train(model, inputs, targets, recipe, [seed], device, validation)
    return [model.eval() for model in models]


def _fused_copy(models: list[SmallResNet]) -> SmallResNet:
    first = models[0]
    fused = SmallResNet(first.num_classes, first.in_channels, first.widths, groups=len(models))
    fused.load_state_dict(fuse_states([m.state_dict() for m in models]))
    return fused


def _train(model: nn.Module, inputs, targets, recipe: Recipe, seeds: list[int], device, validation=None) -> None:
    """The training loop; ``model`` holds ``len(seeds)`` fused models (1 for an ordinary model)."""
    groups, n = len(seeds), len(targets)
    model.to(device).train()
    channels_last = device.type == "cpu" and inputs.ndim == 4
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model.parameters(), recipe)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.epochs * steps_per_epoch) \
        if recipe.schedule == "cosine" else None
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    weight = None
    if recipe.class_weighted:
        num_classes = getattr(model, "num_classes", None) or model.fc.out_features // groups
        weight = _class_weights(targets, num_classes).to(device)
    best = _BestCheckpoints(model, groups, validation, device) if recipe.best_validation_from else None
    for epoch in range(1, recipe.epochs + 1):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)  # [G, n]
        for start in range(0, n, recipe.batch_size):
            idx = order[:, start:start + recipe.batch_size]                                  # [G, b]
            batch_inputs = inputs[idx]                                                       # [G, b, C, H, W]
            if recipe.augment == "crop_flip":
                batch_inputs = torch.stack([augment_crop_flip(x, g) for x, g in zip(batch_inputs, generators)])
            b = idx.shape[1]
            x = batch_inputs.transpose(0, 1).reshape(b, -1, *inputs.shape[2:])              # [b, G*C, H, W]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.amp and device.type == "cuda"):
                logits = model(x).float().view(b, groups, -1)
            # sum over models of each model's mean loss: every model gets its own ordinary gradient
            loss = F.cross_entropy(logits.reshape(b * groups, -1), targets[idx].t().reshape(-1),
                                   weight=weight, reduction="none").view(b, groups)
            loss = loss.mean(0).sum() if weight is None else _weighted_mean(loss, targets[idx].t(), weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        if best is not None and epoch >= recipe.best_validation_from:
            best.update(model)
    if best is not None:
        best.restore(model)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.eval()


def _weighted_mean(loss: torch.Tensor, batch_targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-model weighted mean (as ``cross_entropy(weight=..., reduction='mean')``), summed over models."""
    w = weight[batch_targets]                                                                # [b, G]
    return (loss.sum(0) / w.sum(0)).sum()


class _BestCheckpoints:
    """Per-model best-validation-accuracy checkpoints of ``groups`` fused models (1 = ordinary)."""

    def __init__(self, model: nn.Module, groups: int, validation, device):
        self.groups = groups
        self.inputs, self.targets = (t.to(device) for t in validation)
        self.best_accuracy = torch.full((groups,), -1.0)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        model.eval()
        x = self.inputs.repeat(1, self.groups, 1, 1) if self.groups > 1 else self.inputs
        logits = torch.cat([model(x[i:i + 512]) for i in range(0, len(x), 512)])
        logits = logits.view(len(self.targets), self.groups, -1)
        accuracy = (logits.argmax(2) == self.targets[:, None]).float().mean(0).cpu()
        model.train()
        improved = accuracy > self.best_accuracy
        self.best_accuracy = torch.where(improved, accuracy, self.best_accuracy)
        for name, value in model.state_dict().items():
            if value.ndim == 0:
                self.state[name].copy_(value)
                continue
            for g in torch.nonzero(improved).flatten().tolist():
                self.state[name].chunk(self.groups)[g].copy_(value.chunk(self.groups)[g])

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)
