"""What the evaluator keeps of each model: confidences on the forget set, losses and accuracies.

Measuring a model is a job's work (the engine's jobs measure every model they train or get back); scoring
reads only the stacked figures (:func:`stack_figures`). The forget set's confidence is the challenge's
logit-scaled confidence (:func:`logit_scaled_confidence`). :func:`model_figures` measures one model; :func:`figures_of_models` measures many at once by fusing
those that can be fused (:func:`starter_kit.models.fusable_arch`: SmallResNet, torchvision's resnet18)
into one grouped module in eval mode -- the same float32 logits up to rounding (grouped and ordinary
convolutions sum in different orders: ~1e-6 relative), the same figures.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unlearning_mock.starter_kit.data import UnlearningData
from unlearning_mock.starter_kit.evaluation import logits_on, per_example_losses
from unlearning_mock.starter_kit.models import fusable_arch, fused_model, grouped_logits

SCALARS = ("retain_acc", "forget_acc", "test_acc", "val_acc")
ARRAYS = ("forget_conf", "forget_loss", "test_loss")
FIGURES_GROUP = 32
"""Models fused per inference pass in :func:`figures_of_models` (32 ResNet-18s: 1.4 GB of weights)."""
LOG_OFFSET = 1e-45


class ModelFailure(RuntimeError):
    """A model (usually a submission's output) that cannot be scored; the message says why."""


def logit_scaled_confidence(logits, targets) -> np.ndarray:
    """Logit-scaled confidence of each example in its target class.

    ``logits`` is ``[M, C]`` (any real dtype), ``targets`` ``[M]`` integers in
    ``[0, C)``.  Computed in float64: each row's max is subtracted, a softmax is
    taken, ``p`` = probability of the target class and ``q`` = the sum of the
    *other* probabilities (not ``1 - p``, which loses all precision when ``p`` is
    close to 1).  Returns ``log(p + 1e-45) - log(q + 1e-45)`` as a float64 ``[M]``.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if logits.ndim != 2:
        raise ValueError(f"logits must be a 2-D array [examples, classes]; got shape {logits.shape}")
    if logits.dtype.kind not in "iuf":
        raise ValueError(f"logits must hold real numbers; got dtype {logits.dtype}")
    if targets.ndim != 1:
        raise ValueError(f"targets must be a 1-D array [examples]; got shape {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets must be integers; got dtype {targets.dtype}")
    num_examples, num_classes = logits.shape
    if targets.shape[0] != num_examples:
        raise ValueError(f"logits have {num_examples} rows but targets has {targets.shape[0]} entries")
    if num_classes == 0:
        raise ValueError("logits must have at least one class")
    if num_examples and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes}); got values in [{targets.min()}, {targets.max()}]")
    z = logits.astype(np.float64)
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or inf")
    z -= z.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(num_examples)
    p = probs[rows, targets]
    probs[rows, targets] = 0.0
    q = probs.sum(axis=1)
    return np.log(p + LOG_OFFSET) - np.log(q + LOG_OFFSET)


def _parts(data: UnlearningData):
    return (("forget", data.forget), ("retain", data.retain), ("test", data.test), ("val", data.validation))


def _figures_from_logits(logits_of, data: UnlearningData) -> dict:
    """The figures from ``logits_of(part, inputs)`` (float32 CPU logits); ModelFailure on NaN or inf."""
    figures = {}
    for part, (inputs, targets) in _parts(data):
        logits = logits_of(part, inputs)
        if not torch.isfinite(logits).all():
            raise ModelFailure(f"the model's logits on the {part} set contain NaN or inf")
        figures[f"{part}_acc"] = (logits.argmax(1) == targets).float().mean().item()
        if part == "forget":
            figures["forget_conf"] = logit_scaled_confidence(logits.numpy(), targets.numpy())
            figures["forget_loss"] = per_example_losses(logits, targets).numpy()
        elif part == "test":
            figures["test_loss"] = per_example_losses(logits, targets).numpy()
    return figures


def model_figures(model: nn.Module, data: UnlearningData) -> dict:
    """Per-model figures: ``forget_conf`` [M] (logit-scaled confidence), ``forget_loss`` [M],
    ``test_loss`` [T] (the kit attack's features) and the four accuracies."""
    return _figures_from_logits(lambda part, inputs: logits_on(model, inputs), data)


def figures_of_models(models: list[nn.Module], data: UnlearningData, device: str | torch.device | None = None,
                      group: int = FIGURES_GROUP) -> list[dict]:
    """:func:`model_figures` of every model, computed ``group`` models at a time as one fused module.

    Runs of consecutive models of one fusable architecture are fused (eval mode, float32, on ``device``:
    default the first model's); any other model is measured alone. The models are not changed. A model
    with NaN or inf logits raises :class:`ModelFailure` naming its index in ``models``.
    """
    if group < 1:
        raise ValueError(f"figures_of_models needs group >= 1, got {group}")
    if not models:
        return []
    device = torch.device(device) if device is not None else next(models[0].parameters()).device
    figures: list[dict] = []
    start = 0
    while start < len(models):
        arch = fusable_arch(models[start])
        stop = start + 1
        while stop < len(models) and stop - start < group and arch is not None and fusable_arch(models[stop]) == arch:
            stop += 1
        if stop - start == 1:
            logits = {part: logits_on(models[start], inputs)[:, None] for part, (inputs, _) in _parts(data)}
        else:
            fused = fused_model(models[start:stop]).to(device).eval()
            logits = {part: grouped_logits(fused, inputs, stop - start).cpu() for part, (inputs, _) in _parts(data)}
            del fused
        for g in range(stop - start):
            try:
                figures.append(_figures_from_logits(lambda part, inputs: logits[part][:, g], data))
            except ModelFailure as failure:
                raise ModelFailure(f"model {start + g}: {failure}") from failure
        start = stop
    return figures


def stack_figures(per_model: list[dict]) -> dict:
    """Stack a list of per-model figure dicts into arrays with a leading model axis."""
    return {name: np.stack([np.asarray(f[name]) for f in per_model]) for name in (*SCALARS, *ARRAYS)}
