"""Datasets as the challenge saw them: train / validation / test, and a forget set inside train.

The digits dataset is scikit-learn's handwritten digits (``load_digits``: 1,797 8x8 grayscale
images, 10 classes), which ships inside scikit-learn, so nothing is downloaded. It is split with a
fixed seed into train / validation / test (70/15/15), and 10% of train is drawn at random as the
forget set, as in the challenge's CIFAR-10 starting kit; the retain set is the rest of train.

Every dataset in the project (digits, CIFAR-10, the Kaggle folder layout) is an
:class:`UnlearningData`: tensors in memory plus the forget/retain index arrays into train.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler

from unlearning_mock.starter_kit.batch_format import collate_dicts, collate_pairs
from unlearning_mock.starter_kit.batches import IMAGE_KEY, LABEL_KEY, DropSingletonBatches

DIGITS_SPLIT_SEED = 0
DIGITS_FORGET_SEED = 1
FORGET_FRACTION = 0.10
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15
DEFAULT_BATCH_SIZE = 64


@dataclass
class UnlearningData:
    """One dataset with its split. Inputs are float32 ``[n, C, H, W]``, targets int64 ``[n]``."""

    name: str
    train_inputs: torch.Tensor
    train_targets: torch.Tensor
    val_inputs: torch.Tensor
    val_targets: torch.Tensor
    test_inputs: torch.Tensor
    test_targets: torch.Tensor
    forget_idx: np.ndarray
    num_classes: int = 10
    # Kaggle dict batches' other columns (``age``, ``person_id``, ``image_id``), where the setting has them:
    extra_columns: dict = field(default_factory=dict)        # per train example
    validation_columns: dict = field(default_factory=dict)   # per validation example

    def __post_init__(self):
        n_train = len(self.train_targets)
        self.forget_idx = np.sort(np.asarray(self.forget_idx, dtype=np.int64))
        if len(self.forget_idx) == 0:
            raise ValueError(f"{self.name}: the forget set is empty")
        if len(np.unique(self.forget_idx)) != len(self.forget_idx):
            raise ValueError(f"{self.name}: the forget indices contain duplicates")
        if self.forget_idx[0] < 0 or self.forget_idx[-1] >= n_train:
            raise ValueError(f"{self.name}: forget indices must lie in [0, {n_train}), the train set's size")
        mask = np.ones(n_train, dtype=bool)
        mask[self.forget_idx] = False
        self.retain_idx = np.flatnonzero(mask)

    # The four sets the challenge names, as (inputs, targets) pairs.
    @property
    def retain(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(self.retain_idx)
        return self.train_inputs[idx], self.train_targets[idx]

    @property
    def forget(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(self.forget_idx)
        return self.train_inputs[idx], self.train_targets[idx]

    @property
    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.val_inputs, self.val_targets

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test_inputs, self.test_targets

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_inputs.shape[1:])

    def fingerprint(self) -> str:
        """A hash of every tensor and index that defines this dataset and its split (for cache keys)."""
        digest = hashlib.sha256(self.name.encode())
        for tensor in (self.train_inputs, self.train_targets, self.val_inputs, self.val_targets,
                       self.test_inputs, self.test_targets):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(np.ascontiguousarray(tensor.cpu().numpy()).tobytes())
        digest.update(self.forget_idx.tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> str:
        return (f"{self.name}: train {len(self.train_targets)} (retain {len(self.retain_idx)}, "
                f"forget {len(self.forget_idx)}), validation {len(self.val_targets)}, "
                f"test {len(self.test_targets)}, input {self.input_shape}, {self.num_classes} classes")


def random_forget_indices(num_train: int, fraction: float = FORGET_FRACTION, seed: int = DIGITS_FORGET_SEED) -> np.ndarray:
    """A random forget set: ``round(fraction * num_train)`` train indices drawn with a fixed seed."""
    if not 0 < fraction < 1:
        raise ValueError(f"the forget fraction must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    size = max(1, int(round(fraction * num_train)))
    return np.sort(rng.choice(num_train, size=size, replace=False))


def load_digits_data(split_seed: int = DIGITS_SPLIT_SEED, forget_seed: int = DIGITS_FORGET_SEED,
                     forget_fraction: float = FORGET_FRACTION) -> UnlearningData:
    """scikit-learn's digits as an :class:`UnlearningData` (inputs ``[n, 1, 8, 8]`` in [0, 1])."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = np.random.default_rng(split_seed).permutation(len(labels))
    n_val = int(round(VALIDATION_FRACTION * len(labels)))
    n_test = int(round(TEST_FRACTION * len(labels)))
    val, test, train = np.split(order, [n_val, n_val + n_test])
    train, val, test = (torch.from_numpy(np.sort(part)) for part in (train, val, test))
    return UnlearningData(
        name="digits",
        train_inputs=images[train], train_targets=labels[train],
        val_inputs=images[val], val_targets=labels[val],
        test_inputs=images[test], test_targets=labels[test],
        forget_idx=random_forget_indices(len(train), forget_fraction, forget_seed),
    )


class TensorPairs(Dataset):
    """(input, target) pairs, or Kaggle-style dicts ``{"image", "age_group", ...}`` when ``as_dict``."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, as_dict: bool = False,
                 extra_columns: dict | None = None):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets, self.as_dict = inputs, targets, as_dict
        self.extra_columns = extra_columns or {}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        if not self.as_dict:
            return self.inputs[i], self.targets[i]
        item = {IMAGE_KEY: self.inputs[i], LABEL_KEY: self.targets[i]}
        item.update({key: column[i] for key, column in self.extra_columns.items()})
        return item


class Loaders(NamedTuple):
    retain: DataLoader
    forget: DataLoader
    validation: DataLoader
    test: DataLoader


LOADER_OFFSETS = {"retain": 0, "forget": 1, "validation": 2, "test": 3}
"""Each loader's shuffling generator is seeded with ``seed * 4 + offset``."""


def _loader(pairs: Dataset, batch_size: int, seed: int, part: str, shuffle: bool, drop_singleton: bool = True,
            collate=None):
    """``DataLoader(pairs, batch_size, shuffle, generator)``, less a one-example last batch (batches.py)."""
    generator = torch.Generator().manual_seed(seed * 4 + LOADER_OFFSETS[part]) if shuffle else None
    if not drop_singleton:
        return DataLoader(pairs, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate)
    order = RandomSampler(pairs, generator=generator) if shuffle else SequentialSampler(pairs)
    return DataLoader(pairs, batch_sampler=DropSingletonBatches(order, batch_size), generator=generator,
                      collate_fn=collate)


def make_loaders(data: UnlearningData, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
                 dict_batches: bool = False) -> Loaders:
    """The challenge's loaders: retain and forget shuffled (seeded), validation and test in order. The three
    a method gets (retain, forget, validation) drop a last batch of one example, as the training recipe does
    (:func:`~starter_kit.batches.batch_sizes`: batch norm cannot train on one); the test loader, for
    evaluation only, keeps every example. Batches are ``[inputs, targets]`` pairs, or with ``dict_batches``
    the challenge's dicts with the setting's other columns (:mod:`starter_kit.batch_format`)."""
    collate = collate_dicts if dict_batches else collate_pairs

    def columns_at(idx):
        return {key: np.asarray(values)[idx] for key, values in data.extra_columns.items()}

    return Loaders(
        retain=_loader(TensorPairs(*data.retain, dict_batches, columns_at(data.retain_idx)), batch_size, seed,
                       "retain", True, collate=collate),
        forget=_loader(TensorPairs(*data.forget, dict_batches, columns_at(data.forget_idx)), batch_size, seed,
                       "forget", True, collate=collate),
        validation=_loader(TensorPairs(*data.validation, dict_batches, data.validation_columns), batch_size, seed,
                           "validation", False, collate=collate),
        test=_loader(TensorPairs(*data.test, dict_batches), batch_size, seed, "test", False, drop_singleton=False,
                     collate=collate),
    )


def retain_positions_loader(data: UnlearningData, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> DataLoader:
    """A loader of positions in the retain set (int64 batches) that draws, batches and reshuffles exactly as
    ``make_loaders(data, batch_size, seed).retain`` does: its k-th batch holds the positions of the examples the
    retain loader's k-th batch holds, pass after pass. What fused training needs to give each model the data
    order its one-model call gets."""
    positions = torch.arange(len(data.retain_idx))
    return _loader(TensorPairs(positions, positions), batch_size, seed, "retain", True)
