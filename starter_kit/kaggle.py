"""The Kaggle competition's data layout as a dataset of its own (``--dataset kaggle --data-dir DIR``).

The layout the organisers' scoring notebook read from ``/kaggle/input/neurips-2023-machine-unlearning/``::

    DIR/retain.csv, DIR/forget.csv, DIR/validation.csv   columns: image_id, age_group, age, person_id
    DIR/images/A/B.png                                   the image with image_id "A-B"
    DIR/original_model.pth                               torchvision resnet18(num_classes=10) state dict

Images are read as float32 tensors with values 0-255 (no normalisation), shape 3x32x32; the label is
``age_group`` (10 equal-width age groups); batches are dicts ``{"image", "age_group", "age",
"person_id", "image_id"}`` of 64. Scoring also needs a test split, which the real input does not have:
``DIR/test.csv`` in the same format (the local mock input, :mod:`mock_evaluator.kaggle.mock_input`, writes one).

The train set is retain + forget (in that order); by default the forget set is ``forget.csv`` as given
(the organisers' forget set held all images of a few people). :func:`load_kaggle_data` can also
re-draw it by person (:func:`forget_by_person`) or at random (``random_forget_indices``).

The organisers' recipe for the original and the retrained models is :data:`KAGGLE_RECIPE`. A layout
written by :mod:`mock_evaluator.kaggle.mock_input` carries its own recipe in ``DIR/mock_kaggle.json`` (its
original was trained with a short CPU recipe); :func:`kaggle_setting` then trains the oracles with
that recipe, so that the retrained models are trained the way the original was.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from unlearning_mock.starter_kit.baseline import kaggle_sample_at_the_settings_share
from unlearning_mock.starter_kit.data import UnlearningData, random_forget_indices
from unlearning_mock.starter_kit.models import resnet18
from unlearning_mock.starter_kit.setting import Setting, SettingFlag, register_setting
from unlearning_mock.starter_kit.training import Recipe

NAME = "kaggle"
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
COLUMNS = ("image_id", "age_group", "age", "person_id")
SPLIT_FILES = {"retain": "retain.csv", "forget": "forget.csv", "validation": "validation.csv", "test": "test.csv"}
ORIGINAL_WEIGHTS = "original_model.pth"
MOCK_INFO = "mock_kaggle.json"
KAGGLE_BATCH_SIZE = 64
FORGET_MODES = ("csv", "person", "random")

# The organisers' recipe: Adam (lr 1e-4, weight decay 5e-3), cosine schedule over 30 epochs, batch 64,
# cross-entropy weighted by 1/class-count, no augmentation, images as float 0-255, keeping the
# best-validation-accuracy checkpoint. For the *original* model they kept the best checkpoint over all
# epochs; for the *retrained* models only from epoch 20 on. The evaluator uses ``setting.recipe`` to
# train the oracles (retrained models), so this recipe carries the retrained models' rule (from 20).
KAGGLE_RECIPE = Recipe(epochs=30, batch_size=64, optimizer="adam", lr=1e-4, weight_decay=5e-3,
                       schedule="cosine", class_weighted=True, best_validation_from=20)
KAGGLE_ORIGINAL_RECIPE = replace(KAGGLE_RECIPE, best_validation_from=1)

_IMAGE_ID = re.compile(r"^([^-/\\]+)-([^-/\\]+)$")


def image_path(data_dir, image_id: str) -> Path:
    """Where image ``"A-B"`` lives: ``DIR/images/A/B.png``."""
    match = _IMAGE_ID.match(str(image_id))
    if match is None or ".." in match.groups():
        raise ValueError(f"image_id {image_id!r} is not of the form 'A-B' (A a folder, B a file name, "
                         "neither containing '-', '/' or '\\')")
    folder, name = match.groups()
    return Path(data_dir) / "images" / folder / f"{name}.png"


def read_image(path: Path, expected_shape=IMAGE_SHAPE) -> torch.Tensor:
    """One PNG as a float32 ``[3, H, W]`` tensor with values 0-255 (RGB, no normalisation)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} is missing")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except Exception as error:
        raise ValueError(f"cannot read image {path}: {error}") from error
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32)
    if expected_shape is not None and tuple(tensor.shape) != tuple(expected_shape):
        raise ValueError(f"image {path} has shape {tuple(tensor.shape)} (channels, height, width) "
                         f"after RGB conversion; the Kaggle layout needs {tuple(expected_shape)}")
    return tensor


def read_split(data_dir, split: str, expected_shape=IMAGE_SHAPE) -> dict:
    """One CSV of the layout and its images: ``{"image_id", "image", "age_group", "age", "person_id"}``."""
    import pandas as pd

    path = Path(data_dir) / SPLIT_FILES[split]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a Kaggle-layout folder needs "
                                f"{', '.join(SPLIT_FILES[s] for s in ('retain', 'forget', 'validation'))} "
                                f"(and {SPLIT_FILES['test']} for scoring)")
    try:
        table = pd.read_csv(path, dtype={"image_id": str})
    except Exception as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; the Kaggle layout has columns {list(COLUMNS)}, "
                         f"this file has {list(table.columns)}")
    if len(table) == 0:
        raise ValueError(f"{path} has no rows")
    if table[list(COLUMNS)].isna().any().any():
        bad = table[table[list(COLUMNS)].isna().any(axis=1)].index[0]
        raise ValueError(f"{path}: row {bad + 2} has an empty value")
    if table["image_id"].duplicated().any():
        raise ValueError(f"{path}: image_id {table['image_id'][table['image_id'].duplicated()].iloc[0]!r} "
                         "appears twice")
    labels = _integer_column(table, "age_group", path)
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{path}: age_group must lie in 0..{NUM_CLASSES - 1}, found "
                         f"{labels.min()}..{labels.max()}")
    images = [read_image(image_path(data_dir, image_id), expected_shape) for image_id in table["image_id"]]
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{path}: the images have different shapes {sorted(shapes)}")
    person = table["person_id"].to_numpy()
    return {
        "image_id": table["image_id"].to_numpy(dtype=object),
        "image": torch.stack(images),
        "age_group": torch.from_numpy(labels),
        "age": _integer_column(table, "age", path),
        "person_id": person.astype(np.int64) if np.issubdtype(person.dtype, np.integer) else person,
    }


def _integer_column(table, column: str, path: Path) -> np.ndarray:
    values = table[column].to_numpy()
    if not np.issubdtype(values.dtype, np.integer):
        try:
            as_float = values.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: column {column!r} must hold integers") from None
        if not np.all(as_float == np.round(as_float)):
            raise ValueError(f"{path}: column {column!r} must hold integers")
        values = as_float
    return values.astype(np.int64)


def forget_by_person(person_ids, fraction: float, seed: int = 0) -> np.ndarray:
    """A forget set of whole people, as the organisers drew it: all images of randomly chosen people.

    People are taken in a seeded random order while the forget set holds fewer than
    ``round(fraction * n)`` images (at least one person); the result is sorted train indices. Raises if
    that would take every person (nothing would be left to retain).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the forget fraction must lie in (0, 1), got {fraction}")
    person_ids = np.asarray(person_ids)
    people, inverse = np.unique(person_ids, return_inverse=True)
    if len(people) < 2:
        raise ValueError("a by-person forget set needs at least two people in the train set")
    counts = np.bincount(inverse)
    target = max(1, int(round(fraction * len(person_ids))))
    chosen, total = [], 0
    for person in np.random.default_rng(seed).permutation(len(people)):
        if total >= target:
            break
        chosen.append(person)
        total += counts[person]
    if len(chosen) == len(people):
        raise ValueError(f"a by-person forget set of {fraction:.0%} of train takes every one of the "
                         f"{len(people)} people: choose a smaller fraction")
    return np.sort(np.flatnonzero(np.isin(inverse, chosen)))


def load_kaggle_data(data_dir, forget: str = "csv", forget_fraction: float | None = None,
                     forget_seed: int = 0, require_test: bool = True) -> UnlearningData:
    """The Kaggle layout in ``data_dir`` as an :class:`UnlearningData` named ``"kaggle"``.

    Train is retain.csv then forget.csv; ``extra_columns`` holds ``age``, ``person_id`` and ``image_id`` per train
    example (numpy arrays), ``validation_columns`` the same per validation example, so dict batches carry them as
    Kaggle's did. ``forget``:

    * ``"csv"`` (default): the forget set is forget.csv as given;
    * ``"person"``: re-drawn as all images of random people (:func:`forget_by_person`);
    * ``"random"``: re-drawn as random train images.

    A re-drawn forget set has ``forget_fraction`` of train (default: the size of forget.csv), drawn
    with ``forget_seed``. Scoring needs ``test.csv``; without it a ValueError explains how to add one
    (``require_test=False`` loads an empty test split instead).
    """
    data_dir = Path(data_dir)
    if forget not in FORGET_MODES:
        raise ValueError(f"forget must be one of {FORGET_MODES}, got {forget!r}")
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Kaggle data folder {data_dir} does not exist")
    test_path = data_dir / SPLIT_FILES["test"]
    if require_test and not test_path.is_file():
        raise ValueError(
            f"{test_path} is missing: scoring needs a test split, and the real Kaggle input has none "
            f"(the organisers kept theirs hidden). Provide {SPLIT_FILES['test']} next to retain.csv in "
            f"the same format (columns {', '.join(COLUMNS)}; images under images/A/B.png for image_id "
            "'A-B'), held out from retain, forget and validation -- or write a complete local input with "
            "`python -m mock_evaluator.kaggle.mock_input --out DIR`"
        )
    splits = {split: read_split(data_dir, split) for split in ("retain", "forget", "validation")}
    if test_path.is_file():
        splits["test"] = read_split(data_dir, "test")
    shapes = {split: tuple(part["image"].shape[1:]) for split, part in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{data_dir}: the splits' images have different shapes {shapes}")
    seen: dict[str, str] = {}
    for split, part in splits.items():
        for image_id in part["image_id"]:
            if image_id in seen:
                raise ValueError(f"{data_dir}: image_id {image_id!r} is in both {SPLIT_FILES[seen[image_id]]} "
                                 f"and {SPLIT_FILES[split]}")
            seen[image_id] = split
    if "test" not in splits:
        empty = splits["validation"]
        splits["test"] = {"image": empty["image"][:0], "age_group": empty["age_group"][:0]}

    retain, forget_part = splits["retain"], splits["forget"]
    n_retain, n_forget = len(retain["age_group"]), len(forget_part["age_group"])
    n_train = n_retain + n_forget
    person_ids = np.concatenate([retain["person_id"], forget_part["person_id"]])
    if forget == "csv":
        forget_idx = np.arange(n_retain, n_train)
    else:
        fraction = forget_fraction if forget_fraction is not None else n_forget / n_train
        forget_idx = (forget_by_person(person_ids, fraction, forget_seed) if forget == "person"
                      else random_forget_indices(n_train, fraction, forget_seed))
    return UnlearningData(
        name=NAME,
        train_inputs=torch.cat([retain["image"], forget_part["image"]]),
        train_targets=torch.cat([retain["age_group"], forget_part["age_group"]]),
        val_inputs=splits["validation"]["image"], val_targets=splits["validation"]["age_group"],
        test_inputs=splits["test"]["image"], test_targets=splits["test"]["age_group"],
        forget_idx=forget_idx,
        num_classes=NUM_CLASSES,
        extra_columns={"age": np.concatenate([retain["age"], forget_part["age"]]), "person_id": person_ids,
                       "image_id": np.concatenate([retain["image_id"], forget_part["image_id"]])},
        validation_columns={key: splits["validation"][key] for key in ("age", "person_id", "image_id")},
    )


def read_mock_info(data_dir) -> dict | None:
    """``DIR/mock_kaggle.json`` (written by :mod:`mock_evaluator.kaggle.mock_input`), or None when absent."""
    path = Path(data_dir) / MOCK_INFO
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error


def kaggle_recipe(data_dir=None, epochs: int | None = None) -> Recipe:
    """The oracles' recipe: the mock input's own (``mock_kaggle.json``) if present, else :data:`KAGGLE_RECIPE`.

    ``epochs`` overrides the number of epochs; the best-validation rule then starts at
    ``min(best_validation_from, epochs)``.
    """
    recipe = KAGGLE_RECIPE
    info = read_mock_info(data_dir) if data_dir is not None else None
    if info and "oracle_recipe" in info:
        recipe = Recipe(**info["oracle_recipe"])
    if epochs is not None:
        start = recipe.best_validation_from
        recipe = replace(recipe, epochs=int(epochs),
                         best_validation_from=None if start is None else min(start, int(epochs)))
    return recipe


@register_setting("kaggle", flags={"epochs": SettingFlag("epochs of the training recipe", int)})
def kaggle_setting(data_dir, epochs: int | None = None, forget: str = "csv", **ignored):
    """The ``kaggle`` setting: the layout in ``data_dir``, resnet18, the organisers' recipe, dict batches of 64."""
    if data_dir is None:
        raise ValueError("the kaggle dataset reads a folder in the Kaggle layout: pass --data-dir DIR "
                         "(write a local one with `python -m mock_evaluator.kaggle.mock_input --out DIR`)")
    data_dir = Path(data_dir)
    weights = data_dir / ORIGINAL_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: the kaggle setting scores against the published "
                                "original model, a torchvision resnet18(num_classes=10) state dict")
    data = load_kaggle_data(data_dir, forget=forget)
    info = read_mock_info(data_dir)
    recipe = kaggle_recipe(data_dir, epochs)
    notes = {"data_dir": str(data_dir),
             "recipe_source": f"{MOCK_INFO} (the mock input's own recipe)" if info and "oracle_recipe" in info
             else "the organisers' recipe (KAGGLE_RECIPE)"}
    if info:
        notes["mock"] = {key: info[key] for key in ("seed", "accuracy", "original_recipe") if key in info}
    return Setting(
        name=NAME, data=data, make_model=resnet18, recipe=recipe,
        batch_size=KAGGLE_BATCH_SIZE, dict_batches=True, baseline=kaggle_sample_at_the_settings_share,
        baseline_name="kaggle-sample fine-tune (lr 1e-3; 1 epoch's share of a 30-epoch retrain)",
        original_weights=weights, notes=notes,
    )
