"""A local Kaggle input: the competition's folder layout, written from the embedded digits data.

    python -m mock_evaluator.kaggle.mock_input --out mock_kaggle_input [--seed 0] [--epochs 3] [--force]

What it writes (see :mod:`starter_kit.kaggle` for the layout):

* images: scikit-learn's 8x8 digits (the project's 70/15/15 train/validation/test split), upsampled
  bilinearly to 32x32, as RGB PNGs with values 0-255. Each made-up person has a fixed colour tint
  (per-channel gains drawn in [0.7, 1.0]), so images carry a person-specific signature as faces do;
* ``age_group`` = the digit. Like a face data set, every person belongs to one age group: the images
  of each digit are dealt (seeded) to about ``n / 21`` people, ~21 images each (59 people in train
  for seed 0), and a person has one made-up integer ``age`` with ``age // 10 == age_group`` (group g:
  ages 10g..10g+9);
* ``person_id``: integers, unique across the whole layout (train, validation and test people are
  disjoint); ``image_id`` is ``"PPP-KKK"`` (person folder, image number) at ``images/PPP/KKK.png``;
* ``forget.csv``: all train images of a few people, by person like the organisers' forget set (whole
  people in seeded random order until >= 10% of train: 7 people, 148 of 1,257 images for seed 0);
  ``retain.csv`` the rest of train, ``validation.csv``, and ``test.csv`` (the real input has none;
  local scoring needs it);
* ``original_model.pth``: torchvision ``resnet18(num_classes=10)`` trained from scratch on retain +
  forget with :data:`MOCK_ORIGINAL_RECIPE` -- the organisers' recipe shortened to fit a 2-core CPU in
  about a minute: Adam lr 1e-3 (organisers 1e-4), weight decay 5e-4 (5e-3), cosine schedule over
  3 epochs (30), batch 64, cross-entropy weighted by 1/class-count, no augmentation, inputs 0-255,
  keeping the best-validation checkpoint over all epochs (as the organisers did for the original);
* ``mock_kaggle.json``: the seed, the counts, both recipes and the original's accuracies. The
  ``oracle_recipe`` in it is the same recipe with the retrained models' rule (best validation from
  epoch ``ceil(2/3 * epochs)``, the organisers' 20 of 30); the ``kaggle`` setting trains the oracles
  with it, so they are trained the way this original was.

Everything is reproducible from ``--seed`` (same machine and library versions for the weights).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from unlearning_mock.starter_kit.kaggle import (COLUMNS, MOCK_INFO, NUM_CLASSES, ORIGINAL_WEIGHTS, SPLIT_FILES, forget_by_person,
                                load_kaggle_data)
from unlearning_mock.starter_kit.training import Recipe

DEFAULT_OUT = Path("mock_kaggle_input")
DEFAULT_SEED = 0
DEFAULT_EPOCHS = 3
IMAGES_PER_PERSON = 21
FORGET_FRACTION = 0.10
TINT_RANGE = (0.7, 1.0)
MOCK_ORIGINAL_RECIPE = Recipe(epochs=DEFAULT_EPOCHS, batch_size=64, optimizer="adam", lr=1e-3,
                              weight_decay=5e-4, schedule="cosine", class_weighted=True, best_validation_from=1)


def mock_recipes(epochs: int = DEFAULT_EPOCHS) -> tuple[Recipe, Recipe]:
    """(original recipe, oracle recipe) for ``epochs`` epochs."""
    original = replace(MOCK_ORIGINAL_RECIPE, epochs=int(epochs))
    return original, replace(original, best_validation_from=max(1, math.ceil(2 * int(epochs) / 3)))


def upsample(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """``[n, 1, h, w]`` in [0, 1] -> ``[n, 1, size, size]`` (bilinear), clipped to [0, 1]."""
    out = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp(0, 1)


def _assign_people(labels: np.ndarray, rng: np.random.Generator, first_id: int) -> np.ndarray:
    """Deal the images of each label to ~n/21 people (one label per person); ids from ``first_id``."""
    person = np.empty(len(labels), dtype=np.int64)
    next_id = first_id
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) == 0:
            continue
        groups = max(1, int(round(len(members) / IMAGES_PER_PERSON)))
        for group in np.array_split(members, groups):
            person[group] = next_id
            next_id += 1
    return person


def make_mock_splits(seed: int = DEFAULT_SEED, max_images: dict | None = None,
                     forget_fraction: float = FORGET_FRACTION) -> dict:
    """The mock input's tables and images, in memory.

    Returns ``{split: {"image_id", "image" (uint8 [n, 32, 32, 3]), "age_group", "age", "person_id"}}``
    for retain, forget, validation and test. ``max_images`` (e.g. ``{"train": 60, "validation": 20,
    "test": 20}``) keeps a seeded random subset of a digits split, for tiny test trees.
    """
    from unlearning_mock.starter_kit.data import load_digits_data

    digits = load_digits_data()
    rng = np.random.default_rng(seed)
    parts = {"train": digits.train_inputs, "validation": digits.val_inputs, "test": digits.test_inputs}
    targets = {"train": digits.train_targets, "validation": digits.val_targets, "test": digits.test_targets}
    tables, first_id = {}, 0
    for split in ("train", "validation", "test"):
        inputs, labels = parts[split], targets[split].numpy()
        keep = np.arange(len(labels))
        limit = (max_images or {}).get(split)
        if limit is not None and limit < len(keep):
            keep = np.sort(rng.choice(len(keep), size=int(limit), replace=False))
        inputs, labels = inputs[torch.from_numpy(keep)], labels[keep]
        person = _assign_people(labels, rng, first_id)
        people = np.unique(person)
        first_id = int(people.max()) + 1
        tint = {p: rng.uniform(*TINT_RANGE, size=3) for p in people}
        age = {p: 10 * int(labels[person == p][0]) + int(rng.integers(0, 10)) for p in people}
        gray = upsample(inputs)[:, 0].numpy()                                      # [n, 32, 32] in [0, 1]
        gains = np.stack([tint[p] for p in person])                                # [n, 3]
        images = np.rint(gray[..., None] * gains[:, None, None, :] * 255).clip(0, 255).astype(np.uint8)
        counter: dict[int, int] = {}
        ids = []
        for p in person:
            counter[p] = counter.get(p, 0) + 1
            ids.append(f"{p:03d}-{counter[p] - 1:03d}")
        tables[split] = {"image_id": np.array(ids, dtype=object), "image": images,
                         "age_group": labels.astype(np.int64), "age": np.array([age[p] for p in person]),
                         "person_id": person}
    train = tables.pop("train")
    forget_idx = forget_by_person(train["person_id"], forget_fraction, seed)
    is_forget = np.zeros(len(train["age_group"]), dtype=bool)
    is_forget[forget_idx] = True
    tables["retain"] = {key: value[~is_forget] for key, value in train.items()}
    tables["forget"] = {key: value[is_forget] for key, value in train.items()}
    return tables


def write_layout(out_dir, tables: dict) -> Path:
    """Write ``{split: table}`` (as :func:`make_mock_splits` returns) in the Kaggle layout under ``out_dir``."""
    import pandas as pd
    from PIL import Image

    out_dir = Path(out_dir)
    for split, table in tables.items():
        if split not in SPLIT_FILES:
            raise ValueError(f"unknown split {split!r}: the layout has {list(SPLIT_FILES)}")
        for image_id, image in zip(table["image_id"], table["image"]):
            folder, name = image_id.split("-")
            path = out_dir / "images" / folder / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
        frame = pd.DataFrame({column: table[column] for column in COLUMNS})
        frame.to_csv(out_dir / SPLIT_FILES[split], index=False)
    return out_dir


def write_mock_layout(out_dir, seed: int = DEFAULT_SEED, max_images: dict | None = None,
                      forget_fraction: float = FORGET_FRACTION) -> Path:
    """The CSVs and images of a mock input (no model): :func:`make_mock_splits` then :func:`write_layout`."""
    return write_layout(out_dir, make_mock_splits(seed, max_images, forget_fraction))


@torch.no_grad()
def _accuracy(model, inputs, targets) -> float:
    if len(targets) == 0:
        return float("nan")
    model.eval()
    predictions = torch.cat([model(inputs[i:i + 256]).argmax(1) for i in range(0, len(inputs), 256)])
    return float((predictions == targets).float().mean())


def train_mock_original(out_dir, seed: int = DEFAULT_SEED, epochs: int = DEFAULT_EPOCHS, log=print) -> dict:
    """Train ``original_model.pth`` on retain + forget of the layout in ``out_dir``; return the accuracies."""
    from unlearning_mock.starter_kit.models import resnet18
    from unlearning_mock.starter_kit.original import save_state_atomically
    from unlearning_mock.starter_kit.training import train_models

    out_dir = Path(out_dir)
    data = load_kaggle_data(out_dir)
    recipe, _ = mock_recipes(epochs)
    log(f"training the mock original resnet18 on {len(data.train_targets)} images ({recipe}) ...")
    start = time.perf_counter()
    (model,) = train_models(resnet18, data.train_inputs, data.train_targets, recipe, [seed],
                           validation=data.validation)
    seconds = time.perf_counter() - start
    save_state_atomically({k: v.detach().cpu() for k, v in model.state_dict().items()}, out_dir / ORIGINAL_WEIGHTS)
    accuracy = {name: _accuracy(model, *getattr(data, name)) for name in ("retain", "forget", "validation", "test")}
    log(f"trained in {seconds:.0f} s; accuracy: " + ", ".join(f"{k} {v:.2%}" for k, v in accuracy.items()))
    return {"accuracy": accuracy, "train_seconds": round(seconds, 1)}


def write_mock_kaggle_input(out_dir=DEFAULT_OUT, seed: int = DEFAULT_SEED, epochs: int = DEFAULT_EPOCHS,
                            force: bool = False, log=print) -> Path:
    """The whole mock input: layout, original model and ``mock_kaggle.json``.

    If ``out_dir`` already holds a complete mock input with the same seed and epochs, nothing is done.
    An existing mock input with other parameters is replaced only with ``force``; a non-empty folder
    that is not a mock input is never touched.
    """
    out_dir = Path(out_dir)
    original_recipe, oracle_recipe = mock_recipes(epochs)
    info_path = out_dir / MOCK_INFO
    if out_dir.exists() and any(out_dir.iterdir()):
        info = json.loads(info_path.read_text()) if info_path.is_file() else None
        if info is None:
            raise FileExistsError(f"{out_dir} exists, is not empty and is not a mock Kaggle input "
                                  f"(no {MOCK_INFO}): choose another --out")
        same = info.get("seed") == seed and info.get("original_recipe") == original_recipe.as_dict()
        if same and (out_dir / ORIGINAL_WEIGHTS).is_file() and not force:
            log(f"{out_dir} already holds the mock Kaggle input for seed {seed}, {epochs} epochs: nothing to do")
            return out_dir
        if not same and not force:
            raise FileExistsError(f"{out_dir} holds a mock Kaggle input with other parameters "
                                  f"(seed {info.get('seed')}): pass --force to replace it")
        shutil.rmtree(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    log(f"writing the mock Kaggle layout (seed {seed}) ...")
    tables = make_mock_splits(seed)
    write_layout(partial, tables)
    result = train_mock_original(partial, seed, epochs, log)
    info = {
        "generator": "mock_evaluator.kaggle.mock_input", "seed": seed,
        "counts": {split: int(len(table["age_group"])) for split, table in tables.items()},
        "people": {split: int(len(np.unique(table["person_id"]))) for split, table in tables.items()},
        "original_recipe": original_recipe.as_dict(), "oracle_recipe": oracle_recipe.as_dict(),
        "torch": torch.__version__, **result,
    }
    (partial / MOCK_INFO).write_text(json.dumps(info, indent=2) + "\n")
    partial.rename(out_dir)
    log(f"mock Kaggle input written to {out_dir}: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    return out_dir


def main(argv=None, prog: str = "unlearning-mock mock-kaggle-input") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="fixes people, forget set and training")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs of the original's training")
    parser.add_argument("--force", action="store_true", help="replace an existing mock input")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    try:
        write_mock_kaggle_input(args.out, args.seed, args.epochs, args.force)
    except (FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
