"""Batch sizes that do not divide the data: a last batch of one example joins the batch before it, in the
training recipe's loop (fused and one at a time) and in the loaders the methods get (digits at batch 8:
1,257 = 157 x 8 + 1 training images, where batch norm used to stop with "Expected more than 1 value per
channel when training")."""

import pytest
import torch
from torch.utils.data import DataLoader

from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning
from unlearning_mock.starter_kit.batches import batch_sizes
from unlearning_mock.starter_kit.data import TensorPairs, UnlearningData, make_loaders
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, Recipe, train_models


def test_batch_sizes_merge_only_a_last_batch_of_one():
    sizes = batch_sizes(1257, 8)
    assert sizes[-2:] == [8, 9] and len(sizes) == 157 and sum(sizes) == 1257
    assert batch_sizes(1131, 8)[-1] == 3 and len(batch_sizes(1131, 8)) == 142
    assert batch_sizes(16, 8) == [8, 8] and batch_sizes(9, 8) == [9] and batch_sizes(1, 8) == [1]
    assert batch_sizes(0, 8) == [] and batch_sizes(3, 1) == [1, 1, 1]
    with pytest.raises(ValueError, match="batch_size >= 1"):
        batch_sizes(10, 0)


def test_loaders_merge_a_one_example_last_batch_and_are_otherwise_dataloaders(digits):
    # the validation set (270 = 33 x 8 + 6) and test set cut as a DataLoader does; a train-sized set does not
    loaders = make_loaders(digits, batch_size=8, seed=0)
    plain = DataLoader(TensorPairs(*digits.validation), batch_size=8)
    assert [len(y) for _, y in loaders.validation] == [len(y) for _, y in plain]
    one_over = UnlearningData("one-over", digits.train_inputs, digits.train_targets, digits.train_inputs[:17],
                              digits.train_targets[:17], digits.test_inputs, digits.test_targets,
                              forget_idx=list(range(9)))                 # forget 9 = 8 + 1, validation 17 = 2 x 8 + 1
    cut = make_loaders(one_over, batch_size=8, seed=0)
    assert [len(y) for _, y in cut.forget] == [9] and len(cut.forget) == 1
    assert [len(y) for _, y in cut.validation] == [8, 9] and len(cut.validation) == 2
    seen = torch.cat([y for _, y in cut.forget])
    assert sorted(seen.tolist()) == sorted(one_over.forget[1].tolist())   # every example, once
    # a method trains on them (train-mode batch norm on every batch)
    torch.manual_seed(0)
    kaggle_sample_unlearning(SmallResNet(), cut.forget, cut.forget, cut.validation)


@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["one-at-a-time", "fused"])
def test_the_recipe_trains_at_a_batch_size_that_leaves_one_example(digits, seeds):
    recipe = Recipe(**{**DIGITS_RECIPE.as_dict(), "epochs": 1, "batch_size": 8})
    assert len(digits.train_targets) % 8 == 1
    models = train_models(SmallResNet, digits.train_inputs, digits.train_targets, recipe, seeds)
    with torch.no_grad():
        accuracy = (models[0](digits.test_inputs).argmax(1) == digits.test_targets).float().mean().item()
    assert accuracy > 0.5, "one epoch at batch 8 should learn the digits"
