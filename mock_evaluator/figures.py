"""What the evaluator keeps of each model: confidences on the forget set, losses and accuracies."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mock_evaluator.metric import logit_scaled_confidence
from starter_kit.data import UnlearningData
from starter_kit.evaluation import logits_on, per_example_losses

SCALARS = ("retain_acc", "forget_acc", "test_acc", "val_acc")
ARRAYS = ("forget_conf", "forget_loss", "test_loss")


class ModelFailure(RuntimeError):
    """A model (usually a submission's output) that cannot be scored; the message says why."""


def model_figures(model: nn.Module, data: UnlearningData) -> dict:
    """Per-model figures: ``forget_conf`` [M] (logit-scaled confidence), ``forget_loss`` [M],
    ``test_loss`` [T] (the kit attack's features) and the four accuracies."""
    figures = {}
    for part, (inputs, targets) in (("forget", data.forget), ("retain", data.retain),
                                    ("test", data.test), ("val", data.validation)):
        logits = logits_on(model, inputs)
        if not torch.isfinite(logits).all():
            raise ModelFailure(f"the model's logits on the {part} set contain NaN or inf")
        figures[f"{part}_acc"] = (logits.argmax(1) == targets).float().mean().item()
        if part == "forget":
            figures["forget_conf"] = logit_scaled_confidence(logits.numpy(), targets.numpy())
            figures["forget_loss"] = per_example_losses(logits, targets).numpy()
        elif part == "test":
            figures["test_loss"] = per_example_losses(logits, targets).numpy()
    return figures


def stack_figures(per_model: list[dict]) -> dict:
    """Stack a list of per-model figure dicts into arrays with a leading model axis."""
    return {name: np.stack([np.asarray(f[name]) for f in per_model]) for name in (*SCALARS, *ARRAYS)}
