"""Class weights 1 / count: how the Kaggle recipe weights its cross-entropy (the organisers' training, and
methods that follow it). One rule for the training recipe (:mod:`starter_kit.training`) and the methods
(:func:`starter_kit.unlearning_steps.inverse_frequency_weights`)."""

from __future__ import annotations

import torch


def inverse_frequency(counts: torch.Tensor) -> torch.Tensor:
    """float32 weights ``1 / count`` per class from per-class ``counts`` (0 for a class that never occurs)."""
    counts = counts.double()
    return torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts)).float()
