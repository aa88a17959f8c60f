"""Batch sizes that do not divide the data: a last batch of one example is dropped, in the training recipe's
loop (fused and one at a time) and in the loaders the methods get (digits at batch 8: 1,257 = 157 x 8 + 1
training images, where batch norm used to stop with "Expected more than 1 value per channel when training")."""

import pytest
import torch
from torch.utils.data import DataLoader

from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning
from unlearning_mock.starter_kit.batches import batch_sizes
from unlearning_mock.starter_kit.data import TensorPairs, UnlearningData, make_loaders
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, Recipe, train_models


def test_batch_sizes_drop_only_a_last_batch_of_one():
    sizes = batch_sizes(1257, 8)
    assert sizes == [8] * 157 and sum(sizes) == 1256
    assert batch_sizes(1131, 8)[-1] == 3 and len(batch_sizes(1131, 8)) == 142
    assert batch_sizes(16, 8) == [8, 8] and batch_sizes(9, 8) == [8] and batch_sizes(1, 8) == [1]
    assert batch_sizes(0, 8) == [] and batch_sizes(3, 1) == [1, 1, 1]
    with pytest.raises(ValueError, match="batch_size >= 1"):
        batch_sizes(10, 0)


def batches_of(loader, epochs=2):
    return [[y.tolist() for _, y in loader] for _ in range(epochs)]


def test_loaders_are_dataloaders_less_a_one_example_last_batch(digits):
    one_over = UnlearningData("one-over", digits.train_inputs, digits.train_targets, digits.train_inputs[:17],
                              digits.train_targets[:17], digits.test_inputs[:9], digits.test_targets[:9],
                              forget_idx=list(range(9)))        # forget 9 = 8 + 1, validation 17 = 2 x 8 + 1
    cut = make_loaders(one_over, batch_size=8, seed=3)
    # the same draws as DataLoader with the same generator, epoch after epoch; only the one-example batch goes
    plain = DataLoader(TensorPairs(*one_over.forget), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(3 * 4 + 1))
    assert batches_of(cut.forget) == [epoch[:-1] for epoch in batches_of(plain)]
    assert len(cut.forget) == 1 and [len(b) for b in batches_of(cut.validation, 1)[0]] == [8, 8]
    plain_retain = DataLoader(TensorPairs(*one_over.retain), batch_size=8, shuffle=True,
                              generator=torch.Generator().manual_seed(3 * 4))
    assert batches_of(cut.retain) == batches_of(plain_retain)          # 1,248 = 156 x 8: nothing dropped
    assert [len(b) for b in batches_of(cut.test, 1)[0]] == [8, 1]       # the test loader keeps every example
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
