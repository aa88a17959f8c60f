"""The Kaggle layout: the loader on a small generated tree, by-person forget sets, the mock writer, errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.kaggle import (KAGGLE_RECIPE, MOCK_INFO, forget_by_person, kaggle_recipe, kaggle_setting,
                                load_kaggle_data)
from unlearning_mock.mock_evaluator.kaggle.mock_input import main as mock_main
from unlearning_mock.mock_evaluator.kaggle.mock_input import make_mock_splits, mock_recipes, write_mock_layout

TINY = {"train": 80, "validation": 20, "test": 20}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_mock_layout(tmp_path_factory.mktemp("kaggle") / "input", seed=0, max_images=TINY)


@pytest.fixture
def copy(tree, tmp_path):
    return shutil.copytree(tree, tmp_path / "copy")


def test_loader_shapes_dtype_range_and_columns(tree):
    data = load_kaggle_data(tree)
    retain = pd.read_csv(tree / "retain.csv")
    forget = pd.read_csv(tree / "forget.csv")
    assert data.name == "kaggle"
    assert len(data.train_targets) == TINY["train"] == len(retain) + len(forget)
    assert len(data.val_targets) == TINY["validation"] and len(data.test_targets) == TINY["test"]
    for inputs in (data.train_inputs, data.val_inputs, data.test_inputs):
        assert inputs.dtype == torch.float32 and tuple(inputs.shape[1:]) == (3, 32, 32)
        assert inputs.min() >= 0 and inputs.max() <= 255 and inputs.max() > 1  # 0-255, not normalised
        assert torch.equal(inputs, inputs.round())
    # train = retain rows then forget rows; forget_idx = the forget rows' positions
    assert np.array_equal(data.forget_idx, np.arange(len(retain), TINY["train"]))
    assert np.array_equal(data.train_targets.numpy(), np.concatenate([retain.age_group, forget.age_group]))
    assert np.array_equal(data.extra_columns["person_id"], np.concatenate([retain.person_id, forget.person_id]))
    assert np.array_equal(data.extra_columns["age"] // 10, data.train_targets.numpy())
    # the first retain image is the PNG at images/A/B.png, read as RGB 0-255
    folder, name = retain.image_id[0].split("-")
    png = np.asarray(Image.open(tree / "images" / folder / f"{name}.png").convert("RGB"))
    assert torch.equal(data.train_inputs[0], torch.from_numpy(png.copy()).permute(2, 0, 1).float())


def test_dict_batches(tree):
    data = load_kaggle_data(tree)
    loaders = make_loaders(data, batch_size=64, dict_batches=True)
    batch = next(iter(loaders.retain))
    assert {"image", "age_group", "age", "person_id"} <= set(batch)
    assert batch["image"].dtype == torch.float32 and tuple(batch["image"].shape[1:]) == (3, 32, 32)
    assert batch["image"].max() <= 255 and batch["image"].max() > 1
    assert batch["age_group"].dtype == torch.int64 and len(batch["image"]) == min(64, len(data.retain_idx))
    assert torch.equal(batch["age"] // 10, batch["age_group"])
    forget_batch = next(iter(loaders.forget))
    forget_people = set(data.extra_columns["person_id"][data.forget_idx].tolist())
    assert set(forget_batch["person_id"].tolist()) <= forget_people


def test_forget_set_is_by_person(tree):
    data = load_kaggle_data(tree)
    people = data.extra_columns["person_id"]
    assert set(people[data.forget_idx]).isdisjoint(people[data.retain_idx])
    redrawn = load_kaggle_data(tree, forget="person", forget_fraction=0.2, forget_seed=3)
    assert set(people[redrawn.forget_idx]).isdisjoint(people[redrawn.retain_idx])
    assert len(redrawn.forget_idx) >= round(0.2 * len(people))
    random = load_kaggle_data(tree, forget="random", forget_fraction=0.25)
    assert len(random.forget_idx) == round(0.25 * len(people))


def test_forget_by_person():
    people = np.repeat(np.arange(10), 10)
    forget = forget_by_person(people, 0.25, seed=1)
    assert len(forget) == 30  # whole people until >= 25 images
    chosen = set(people[forget])
    assert len(chosen) == 3 and all(np.sum(people == p) == 10 for p in chosen)
    assert np.array_equal(forget, forget_by_person(people, 0.25, seed=1))
    assert set(people[np.setdiff1d(np.arange(100), forget)]).isdisjoint(chosen)
    with pytest.raises(ValueError, match="every one"):
        forget_by_person(np.array([0, 0, 1, 1]), 0.9)
    with pytest.raises(ValueError, match="two people"):
        forget_by_person(np.zeros(5), 0.2)
    with pytest.raises(ValueError, match="fraction"):
        forget_by_person(people, 1.5)


def test_mock_splits_reproducible_and_consistent():
    a = make_mock_splits(seed=4, max_images=TINY)
    b = make_mock_splits(seed=4, max_images=TINY)
    c = make_mock_splits(seed=5, max_images=TINY)
    for split in a:
        assert np.array_equal(a[split]["image"], b[split]["image"])
        assert list(a[split]["image_id"]) == list(b[split]["image_id"])
    assert any(not np.array_equal(a[s]["person_id"], c[s]["person_id"]) for s in a)
    people = {split: set(table["person_id"].tolist()) for split, table in a.items()}
    assert people["validation"].isdisjoint(people["retain"] | people["forget"] | people["test"])
    for table in a.values():
        assert table["image"].dtype == np.uint8 and table["image"].shape[1:] == (32, 32, 3)
        assert np.array_equal(table["age"] // 10, table["age_group"])
        for person in np.unique(table["person_id"]):  # one age group (and one age) per person
            assert len(np.unique(table["age_group"][table["person_id"] == person])) == 1
            assert len(np.unique(table["age"][table["person_id"] == person])) == 1


def test_missing_files_and_columns(copy):
    (copy / "test.csv").rename(copy / "test.csv.bak")
    with pytest.raises(ValueError, match="test.csv.*scoring needs a test split"):
        load_kaggle_data(copy)
    assert len(load_kaggle_data(copy, require_test=False).test_targets) == 0
    (copy / "test.csv.bak").rename(copy / "test.csv")

    (copy / "forget.csv").unlink()
    with pytest.raises(FileNotFoundError, match="forget.csv is missing"):
        load_kaggle_data(copy)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_kaggle_data(copy / "nowhere")


def test_bad_columns_images_and_overlaps(copy):
    validation = pd.read_csv(copy / "validation.csv", dtype={"image_id": str})
    validation.drop(columns="age").to_csv(copy / "validation.csv", index=False)
    with pytest.raises(ValueError, match=r"validation.csv lacks column\(s\) \['age'\]"):
        load_kaggle_data(copy)
    validation.to_csv(copy / "validation.csv", index=False)

    folder, name = validation.image_id[0].split("-")
    image = copy / "images" / folder / f"{name}.png"
    image.rename(image.with_suffix(".bak"))
    with pytest.raises(FileNotFoundError, match=f"{name}.png is missing"):
        load_kaggle_data(copy)
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(image)
    with pytest.raises(ValueError, match=r"shape \(3, 16, 16\).*\(3, 32, 32\)"):
        load_kaggle_data(copy)
    image.with_suffix(".bak").rename(image)

    test = pd.read_csv(copy / "test.csv", dtype={"image_id": str})
    pd.concat([test, validation.iloc[:1]]).to_csv(copy / "test.csv", index=False)
    with pytest.raises(ValueError, match="in both validation.csv and test.csv"):
        load_kaggle_data(copy)
    test.assign(age_group=12).to_csv(copy / "test.csv", index=False)
    with pytest.raises(ValueError, match="age_group must lie in 0..9"):
        load_kaggle_data(copy)


def test_setting_and_recipes(copy):
    with pytest.raises(FileNotFoundError, match="original_model.pth is missing"):
        kaggle_setting(copy)
    (copy / "original_model.pth").write_bytes(b"")  # the setting only records the path
    setting = kaggle_setting(copy)
    assert setting.name == "kaggle" and setting.dict_batches and setting.batch_size == 64
    assert setting.recipe == KAGGLE_RECIPE and setting.original_weights == copy / "original_model.pth"
    assert KAGGLE_RECIPE.optimizer == "adam" and KAGGLE_RECIPE.lr == 1e-4 and KAGGLE_RECIPE.weight_decay == 5e-3
    assert KAGGLE_RECIPE.epochs == 30 and KAGGLE_RECIPE.class_weighted and KAGGLE_RECIPE.best_validation_from == 20
    assert kaggle_setting(copy, epochs=5).recipe == replace(KAGGLE_RECIPE, epochs=5, best_validation_from=5)
    assert kaggle_setting(copy, epochs=25).recipe.best_validation_from == 20
    model = setting.make_model()
    assert model.fc.out_features == 10
    # a mock input carries its own oracle recipe
    original, oracle = mock_recipes(3)
    assert original.best_validation_from == 1 and oracle.best_validation_from == 2
    (copy / MOCK_INFO).write_text(json.dumps({"seed": 0, "oracle_recipe": oracle.as_dict()}))
    assert kaggle_recipe(copy) == oracle and kaggle_setting(copy).recipe == oracle
    assert kaggle_recipe(copy, epochs=1) == replace(oracle, epochs=1, best_validation_from=1)
    from unlearning_mock.starter_kit.settings import load_setting

    assert load_setting("kaggle", copy).data.summary() == setting.data.summary()


def test_mock_cli_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert mock_main(["--out", str(tmp_path)]) == 2
    assert "not a mock Kaggle input" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
