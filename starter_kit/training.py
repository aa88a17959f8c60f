"""The training recipe (one function for the original model and every oracle).

:func:`train_models` trains one model per seed on the given inputs. For a model that can be fused
(:class:`~starter_kit.models.SmallResNet`, torchvision's ``resnet18``: see
:func:`~starter_kit.models.fusable_arch`) it trains ``G`` of them at once as one grouped network --
each with its own initialisation, data order and augmentation draws from its own seed, its own
batch-norm statistics, its own optimiser state (SGD and Adam act per parameter element, so the fused
update of model ``g`` is exactly the update it would get alone; the loss is the sum of the models'
own mean losses) and its own best-validation checkpoint. With one seed it is the ordinary loop.

Speed: the data stay on the training device; each epoch's order and crop/flip draws come from the
models' CPU generators (so a seed gives the same model on any device) and reach the device in one
copy per epoch, so a step never waits for the host. Inputs and weights are channels-last; ``recipe.amp``
runs the forward pass under bf16 autocast on CUDA (the loss and every evaluation logit in float32).
``compile_model=True`` wraps the training forward in ``torch.compile`` -- off by default: not measured
on a GPU yet, and on CPU its compile time exceeds what it saves on short runs.
:func:`auto_oracle_chunk` picks how many models to fuse from the device's free memory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from unlearning_mock.starter_kit.batches import batch_sizes
from unlearning_mock.starter_kit.class_weights import inverse_frequency
from unlearning_mock.starter_kit.models import fusable_arch, fused_model, grouped_logits, split_fused_state


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


CPU_ORACLE_CHUNK = {"small": 128, "large": 8}
"""Models fused at once on a CPU: 128 for models under 1M parameters (the digits SmallResNet: 11.5x the
one-at-a-time speed, benchmarks/bench_oracles.py), 8 for larger ones (ResNet-18: see bench_cifar.py;
beyond 8 the fused step's memory grows with no further gain on a 2-core machine)."""
GPU_MAX_ORACLE_CHUNK = 64
"""Upper bound of :func:`auto_oracle_chunk` on CUDA (a guess, to be set from bench_cifar.py on a GPU)."""


def is_fusable(model: nn.Module) -> bool:
    """Whether ``train_models`` can train several of these models as one grouped network."""
    return fusable_arch(model) is not None


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a CPU tensor to ``device`` without making the CPU wait for the GPU."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Crop image ``i`` of ``x`` ``[N, C, H, W]`` at offset ``(dy[i], dx[i])`` (0..8) of its 4-pixel zero
    padding and mirror it where ``flip[i]``: RandomCrop(padding=4) + RandomHorizontalFlip with given draws."""
    n, c, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def _crop_flip_draws(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dy, dx, flip)`` for ``n`` images from a CPU generator."""
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    return dy, dx, torch.rand(n, generator=generator) < 0.5


def augment_crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The CIFAR-10 kit's augmentation on a batch: random crop with 4-pixel zero padding, random flip.

    The draws come from the CPU ``generator``, so the same seed gives the same crops on any device."""
    return crop_flip(x, *(_to_device(t, x.device) for t in _crop_flip_draws(len(x), generator)))


def _optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def train_models(make_model, inputs: torch.Tensor, targets: torch.Tensor, recipe: Recipe,
                 seeds, device: str | torch.device = "cpu", fuse: bool = True,
                 validation: tuple[torch.Tensor, torch.Tensor] | None = None, *,
                 compile_model: bool = False) -> list[nn.Module]:
    """Train one model per seed from scratch with ``recipe``; return them in eval mode on ``device``.

    ``make_model()`` builds a fresh, untrained model; it is called right after ``torch.manual_seed(seed)``,
    so the seed fixes the initialisation; a generator seeded with ``seed`` fixes the data order and
    augmentation. Fusable models (:func:`is_fusable`) train all seeds at once when ``fuse`` is true: pass
    as many seeds as :func:`auto_oracle_chunk` allows. Recipes that keep the best-validation checkpoint
    need ``validation`` = (inputs, targets). The returned models are what ``make_model()`` returns
    (e.g. torchvision's ``resnet18``), holding the trained weights.
    """
    seeds = [int(s) for s in seeds]
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(make_model())
    train_in_place(models, inputs, targets, recipe, seeds, device, fuse, validation, compile_model=compile_model)
    return models


def train_in_place(models: list[nn.Module], inputs: torch.Tensor, targets: torch.Tensor, recipe: Recipe,
                   seeds, device: str | torch.device = "cpu", fuse: bool = True,
                   validation: tuple[torch.Tensor, torch.Tensor] | None = None, *,
                   compile_model: bool = False) -> list[int] | None:
    """Train ``models[i]`` (initialised by the caller) with data order and augmentation from ``seeds[i]``;
    they end in eval mode on ``device``. All at once as one grouped network when ``fuse`` and they are
    fusable, else one at a time. Returns, for a best-validation recipe, the 1-based epoch whose
    checkpoint each model kept (else None)."""
    if recipe.best_validation_from is not None and validation is None:
        raise ValueError("this recipe keeps the best-validation checkpoint: pass validation=(inputs, targets)")
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(models):
        raise ValueError(f"train_in_place needs one seed per model; got {len(models)} models, {len(seeds)} seeds")
    if not models:
        return [] if recipe.best_validation_from is not None else None
    device = torch.device(device)
    inputs, targets = inputs.to(device), targets.to(device)
    archs = [fusable_arch(m) for m in models]
    if fuse and len(models) > 1 and archs[0] is not None and all(a == archs[0] for a in archs):
        fused = fused_model([m.to(device) for m in models])
        epochs = _train(fused, inputs, targets, recipe, seeds, device, validation, compile_model)
        for model, state in zip(models, split_fused_state(fused.state_dict(), len(models))):
            model.load_state_dict(state)
            model.eval()
        return epochs
    epochs = [_train(model, inputs, targets, recipe, [seed], device, validation, compile_model)
              for model, seed in zip(models, seeds)]
    return None if recipe.best_validation_from is None else [e[0] for e in epochs]


def fine_tune_fused(models: list[nn.Module], inputs: torch.Tensor, targets: torch.Tensor, batches: list[torch.Tensor],
                    lrs: list[float], momentum: float = 0.9, weight_decay: float = 5e-4,
                    device: str | torch.device = "cpu") -> None:
    """Go on training ``models`` (their current weights, e.g. copies of one original) fused, in train mode: step
    ``s`` gives model ``g`` the examples ``batches[s][g]`` (positions in ``inputs``) and every model the learning
    rate ``lrs[s]``; SGD with ``momentum`` and ``weight_decay``, plain cross-entropy -- what
    :func:`starter_kit.unlearning_steps.fine_tune` does to one model, for all at once (each model's loss is its own
    mean, so each gets the update it would get alone). They end in eval mode on ``device``, in the ordinary layout."""
    if len(batches) != len(lrs):
        raise ValueError(f"fine_tune_fused needs a learning rate per step: {len(batches)} steps, {len(lrs)} rates")
    if not all(b.shape == (len(models), len(b[0])) for b in batches):
        raise ValueError(f"each step's batch must be [models={len(models)}, batch] positions")
    device = torch.device(device)
    fused = fused_model([m.to(device) for m in models]).train()
    images = inputs.ndim == 4
    if images:
        fused.to(memory_format=torch.channels_last)
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.SGD(fused.parameters(), lr=lrs[0] if lrs else 0.0, momentum=momentum,
                                weight_decay=weight_decay)
    sizes = [b.shape[1] for b in batches]
    plan = _EpochPlan(_to_device(torch.cat(batches, dim=1), device), None, None, None)
    for start, size, lr in zip(itertools.accumulate([0] + sizes), sizes, lrs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = _fused_batch(inputs, targets, plan, slice(start, start + size))
        _training_step(fused, optimizer, x, y, None, False)
    if images:
        fused.to(memory_format=torch.contiguous_format)
    for model, state in zip(models, split_fused_state(fused.state_dict(), len(models))):
        model.load_state_dict(state)
        model.eval()


class _EpochPlan(NamedTuple):
    """One epoch's draws for G models, on the training device: ``order`` [G, n] and, for crop+flip,
    ``dy``, ``dx``, ``flip`` [G, n] for the image at each position of that order (else None)."""

    order: torch.Tensor
    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor | None


def _epoch_plan(generators: list[torch.Generator], n: int, augment: str, device: torch.device) -> _EpochPlan:
    draws = []
    for generator in generators:   # per model: its order, then its crop/flip draws, from its own generator
        order = torch.randperm(n, generator=generator)
        draws.append((order, *_crop_flip_draws(n, generator)) if augment == "crop_flip" else (order,))
    stacked = [_to_device(torch.stack(column), device) for column in zip(*draws)]
    return _EpochPlan(*stacked, *[None] * (4 - len(stacked)))


def _fused_batch(inputs: torch.Tensor, targets: torch.Tensor, plan: _EpochPlan, rows: slice):
    """The step's input ``[b, G*C, H, W]`` (channels-last for images; model g reads channels g*C..) and
    targets ``[b, G]``, gathered (and augmented) on the device."""
    idx = plan.order[:, rows]                                                     # [G, b]
    groups, b = idx.shape
    x = inputs[idx]                                                               # [G, b, C, H, W]
    if plan.dy is not None:
        flat = crop_flip(x.flatten(0, 1), plan.dy[:, rows].flatten(), plan.dx[:, rows].flatten(),
                         plan.flip[:, rows].flatten())
        x = flat.view_as(x)
    if x.ndim == 5:  # one copy into channels-last [b, H, W, G*C], seen as [b, G*C, H, W]
        c, h, w = x.shape[2:]
        x = x.permute(1, 3, 4, 0, 2).reshape(b, h, w, groups * c).permute(0, 3, 1, 2)
    else:
        x = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])
    return x, targets[idx].t()


def _training_step(forward, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                   weight: torch.Tensor | None, amp: bool) -> None:
    """One optimiser step of G fused models on ``x`` [b, G*C, ...], ``y`` [b, G]; no host synchronisation.

    The loss is the sum over models of each model's own mean (or class-weighted mean) cross-entropy, so
    every model gets exactly the gradient it would get alone."""
    b, groups = y.shape
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = forward(x)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)).view(b * groups, -1)  # bf16 -> float32
    loss = F.cross_entropy(logits, y.reshape(-1), weight=weight, reduction="none").view(b, groups)
    # per-model weighted mean, as cross_entropy(weight=..., reduction="mean") divides by the summed weights
    loss = loss.mean(0).sum() if weight is None else (loss.sum(0) / weight[y].sum(0)).sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _train(model: nn.Module, inputs, targets, recipe: Recipe, seeds: list[int], device, validation=None,
           compile_model: bool = False) -> list[int] | None:
    """The training loop; ``model`` holds ``len(seeds)`` fused models (1 for an ordinary model).
    Returns the best-validation epoch per model, or None without best-validation selection."""
    groups, n = len(seeds), len(targets)
    model.to(device).train()
    images = inputs.ndim == 4
    if images:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model.parameters(), recipe)
    # a one-example last batch is dropped (batches.batch_sizes: batch norm in training mode needs two values
    # per channel); the epoch's random order decides which example sits out
    sizes = batch_sizes(n, recipe.batch_size)
    starts = [0] + list(itertools.accumulate(sizes))[:-1]
    steps_per_epoch = len(sizes)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.epochs * steps_per_epoch) \
        if recipe.schedule == "cosine" else None
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    weight = None
    if recipe.class_weighted:
        num_classes = getattr(model, "num_classes", None) or model.fc.out_features // groups
        weight = inverse_frequency(torch.bincount(targets.cpu(), minlength=num_classes)).to(
            device, next(model.parameters()).dtype)
    best = _BestCheckpoints(model, groups, validation, device) if recipe.best_validation_from else None
    forward = torch.compile(model) if compile_model else model
    amp = recipe.amp and device.type == "cuda"
    autotune = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = autotune or device.type == "cuda"   # fixed shapes: let cuDNN pick
    try:
        for epoch in range(1, recipe.epochs + 1):
            plan = _epoch_plan(generators, n, recipe.augment, device)
            for start, size in zip(starts, sizes):
                x, y = _fused_batch(inputs, targets, plan, slice(start, start + size))
                _training_step(forward, optimizer, x, y, weight, amp)
                if scheduler is not None:
                    scheduler.step()
            if best is not None and epoch >= recipe.best_validation_from:
                best.update(model, epoch)
    finally:
        torch.backends.cudnn.benchmark = autotune
    if best is not None:
        best.restore(model)
    if images:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    return best.epochs.tolist() if best is not None else None


class _BestCheckpoints:
    """Per-model best-validation-accuracy checkpoints of ``groups`` fused models (1 = ordinary), kept on
    the device and updated with one masked copy per tensor (no per-model loop)."""

    def __init__(self, model: nn.Module, groups: int, validation, device):
        self.groups = groups
        self.inputs, self.targets = (t.to(device) for t in validation)
        self.best_accuracy = torch.full((groups,), -1.0, device=device)
        self.epochs = torch.zeros(groups, dtype=torch.long, device=device)
        self.state = {k: v.detach().clone(memory_format=torch.contiguous_format)
                      for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, epoch: int) -> None:
        model.eval()
        logits = grouped_logits(model, self.inputs, self.groups)                         # [n, G, classes]
        model.train()
        accuracy = (logits.argmax(2) == self.targets[:, None]).float().mean(0)
        improved = accuracy > self.best_accuracy
        self.best_accuracy = torch.where(improved, accuracy, self.best_accuracy)
        self.epochs = torch.where(improved, epoch, self.epochs)
        for name, value in model.state_dict().items():
            kept = self.state[name]
            if value.ndim == 0:
                kept.copy_(value)
                continue
            rows = kept.view(self.groups, -1)
            rows.copy_(torch.where(improved[:, None], value.reshape(self.groups, -1), rows))

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)


def training_step_timer(make_model, inputs: torch.Tensor, targets: torch.Tensor, recipe: Recipe, groups: int = 1,
                        batch_size: int | None = None, device: str | torch.device = "cpu", channels_last: bool = True):
    """A clock for the training step of ``groups`` fused models (1: the ordinary model): returns
    ``seconds_per_step(steps)``, which runs ``steps`` optimiser steps (``recipe``'s optimiser, plain cross-entropy)
    on consecutive real batches of ``batch_size`` (default the recipe's) and returns the mean wall time of one.
    ``channels_last`` as the recipe's own loop lays images out (a method's call gets a model in the ordinary
    layout). Whatever is global at the call -- torch's threads, the convolution backend -- is what is timed."""
    device = torch.device(device)
    torch.manual_seed(0)
    model = make_model()
    model = (fused_model([model] * groups) if groups > 1 else model).to(device).train()
    images = inputs.ndim == 4
    if images and channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = _optimizer(model.parameters(), recipe)
    batch = batch_size or recipe.batch_size
    count = len(targets) // batch
    if count < 1:
        raise ValueError(f"a step timer needs at least one batch of {batch} examples, got {len(targets)}")
    plan = _EpochPlan(torch.arange(count * batch, device=device).repeat(groups, 1), None, None, None)
    inputs, targets = inputs.to(device), targets.to(device)
    position = 0

    def seconds_per_step(steps: int) -> float:
        nonlocal position
        if steps < 1:
            raise ValueError(f"time at least one step, got {steps}")
        batches = []
        for _ in range(steps):
            rows = slice(position * batch, (position + 1) * batch)
            position = (position + 1) % count
            x, y = _fused_batch(inputs, targets, plan, rows)
            batches.append((x if channels_last else x.contiguous(), y))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for x, y in batches:
            _training_step(model, optimizer, x, y, None, False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / steps
    return seconds_per_step


def auto_oracle_chunk(make_model, device: str | torch.device, recipe: Recipe | None = None,
                      sample_shape: tuple | None = None, *, workers: int = 1,
                      max_chunk: int = GPU_MAX_ORACLE_CHUNK, memory_fraction: float = 0.8) -> int:
    """How many models ``train_models`` should fuse at once on ``device``.

    Not fusable: 1. CPU: :data:`CPU_ORACLE_CHUNK` (128 below 1M parameters, else 8). CUDA: one fused
    training step (``recipe``'s batch size, optimiser, amp; inputs of ``sample_shape`` such as
    ``(3, 32, 32)``) is run at G = 1 and G = 2; the peak-memory difference is one model's share (weights,
    gradients, optimiser state, activations; plus a best-validation copy when the recipe keeps one), and
    G is the largest power of two that fills at most ``memory_fraction`` of the free memory divided among
    ``workers`` processes sharing the GPU, capped at ``max_chunk`` (a power of two keeps the choice, and
    so the oracles' cache key, stable when the free memory varies a little).
    """
    device = torch.device(device)
    if workers < 1 or max_chunk < 1 or not 0 < memory_fraction <= 1:
        raise ValueError(f"auto_oracle_chunk needs workers >= 1, max_chunk >= 1 and 0 < memory_fraction <= 1; "
                         f"got {workers}, {max_chunk}, {memory_fraction}")
    torch.manual_seed(0)
    model = make_model()
    if not is_fusable(model):
        return 1
    if device.type != "cuda":
        parameters = sum(p.numel() for p in model.parameters())
        return CPU_ORACLE_CHUNK["small" if parameters < 1_000_000 else "large"]
    if recipe is None or sample_shape is None:
        raise ValueError("auto_oracle_chunk on CUDA needs the recipe and the input shape, e.g. "
                         "auto_oracle_chunk(setting.make_model, 'cuda', setting.recipe, (3, 32, 32))")
    one, two = (_step_memory(model, g, recipe, tuple(sample_shape), device) for g in (1, 2))
    per_model = max(two - one, 1)
    fixed = max(one - per_model, 0)
    free, _ = torch.cuda.mem_get_info(device)
    fits = int(min(max((free * memory_fraction / workers - fixed) // per_model, 1), max_chunk))
    return 1 << (fits.bit_length() - 1)   # a power of two: the same G (and oracle cache key) run after run


def _step_memory(model: nn.Module, groups: int, recipe: Recipe, sample_shape: tuple, device: torch.device) -> int:
    """Peak CUDA bytes of two training steps of ``groups`` fused copies of ``model`` (weights included)."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fused = fused_model([model] * groups).to(device).train()
    if len(sample_shape) == 3:
        fused.to(memory_format=torch.channels_last)
    optimizer = _optimizer(fused.parameters(), recipe)
    c, *rest = sample_shape
    x = torch.randn(recipe.batch_size, groups * c, *rest, device=device)
    if len(sample_shape) == 3:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(recipe.batch_size, groups, dtype=torch.long, device=device)
    weight = torch.ones(fused.num_classes, device=device) if recipe.class_weighted else None
    for _ in range(2):   # the second step holds the optimiser state too
        _training_step(fused, optimizer, x, y, weight, recipe.amp)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    if recipe.best_validation_from is not None:
        peak += sum(t.numel() * t.element_size() for t in fused.state_dict().values())
    del fused, optimizer, x, y
    torch.cuda.empty_cache()
    return peak
