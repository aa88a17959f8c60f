"""Unpacking the two batch shapes the challenge used.

The CIFAR-10 starting kit yields ``(inputs, targets)`` tuples; the Kaggle scorer yields dicts
``{"image": ..., "age_group": ...}`` (plus other columns). Everything in this project that reads a
batch goes through :func:`split_batch`, so both shapes work everywhere.
"""

from __future__ import annotations

import torch

IMAGE_KEY = "image"
LABEL_KEY = "age_group"


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(inputs, targets)`` from a tuple/list batch or a Kaggle-style dict batch."""
    if isinstance(batch, dict):
        missing = [key for key in (IMAGE_KEY, LABEL_KEY) if key not in batch]
        if missing:
            raise ValueError(
                f"dict batch lacks key(s) {missing}; expected the Kaggle layout "
                f"{{'{IMAGE_KEY}': inputs, '{LABEL_KEY}': targets, ...}}, got keys {sorted(batch)}"
            )
        return batch[IMAGE_KEY], batch[LABEL_KEY]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(
        "a batch must be an (inputs, targets) tuple or a dict with 'image' and 'age_group', "
        f"got {type(batch).__name__}"
    )
