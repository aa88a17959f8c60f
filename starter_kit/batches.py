"""Batches: unpacking the two batch shapes the challenge used, and cutting a set into batches.

The CIFAR-10 starting kit yields ``(inputs, targets)`` tuples; the Kaggle scorer yields dicts
``{"image": ..., "age_group": ...}`` (plus other columns). Everything in this project that reads a
batch goes through :func:`split_batch`, so both shapes work everywhere.

Every loop that cuts a set into batches -- the training recipe's and the loaders handed to the methods
(:class:`DropSingletonBatches`) -- cuts it with :func:`batch_sizes`: a last batch of a single example is
dropped, because batch norm cannot train on one example ("Expected more than 1 value per channel when
training"): digits at batch 8 has 1,257 = 157 x 8 + 1 training images. (Dropped, not merged: the
mnist-groups calibration was measured with this rule.)
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

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


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of the consecutive batches that cut ``n`` examples at ``batch_size``, a last batch of one
    example dropped (when there is a batch before it and ``batch_size > 1``): ``n - 1`` examples are used."""
    if batch_size < 1 or n < 0:
        raise ValueError(f"batches need batch_size >= 1 and n >= 0, got batch_size={batch_size}, n={n}")
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if len(sizes) > 1 and sizes[-1] == 1 and batch_size > 1:
        sizes.pop()
    return sizes


class DropSingletonBatches(Sampler):
    """A batch sampler: ``sampler``'s indices in batches of ``batch_size`` (as ``BatchSampler``), except that a
    last batch of one example is dropped (:func:`batch_sizes`). With a loader's own sampler and generator it
    draws the same order and yields the same batches as ``DataLoader(batch_size=...)``, less that one."""

    def __init__(self, sampler, batch_size: int):
        self.sampler, self.batch_size = sampler, batch_size
        batch_sizes(len(sampler), batch_size)   # bad sizes fail here

    def __len__(self) -> int:
        return len(batch_sizes(len(self.sampler), self.batch_size))

    def __iter__(self):
        # the whole sampler is read, as BatchSampler does: a RandomSampler draws from its generator at its
        # end, so stopping early would change the next epoch's order
        batch, yielded = [], False
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch, yielded = [], True
        if batch and not (len(batch) == 1 and yielded and self.batch_size > 1):
            yield batch
