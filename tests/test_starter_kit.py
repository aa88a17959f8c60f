"""The embedded data, the model and its recipe, the cached original, the baseline and the kit's attack."""

import os

import numpy as np
import pytest
import torch

from unlearning_mock.starter_kit.attack import forget_vs_test_attack
from unlearning_mock.starter_kit.baseline import finetune_unlearning
from unlearning_mock.starter_kit.batches import split_batch
from unlearning_mock.starter_kit.data import load_digits_data, make_loaders
from unlearning_mock.starter_kit.evaluation import accuracy, logits_on
from unlearning_mock.starter_kit.models import SmallResNet, fuse_states, split_fused_state
from unlearning_mock.starter_kit.original import load_or_train_original, original_cache_path
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, Recipe, train_models

pytestmark = pytest.mark.training


def test_the_kernel_set_asked_for_is_the_one_that_runs():
    """``ATEN_CPU_CAPABILITY`` (``make test-second-kernel``) must take effect, or that pass checks nothing new."""
    asked = os.environ.get("ATEN_CPU_CAPABILITY")
    if asked is None:
        pytest.skip("no kernel set forced: this CPU's own runs")
    assert torch.backends.cpu.get_cpu_capability() == asked.upper()


def test_split_is_disjoint_sized_and_reproducible(digits):
    n = len(digits.train_targets) + len(digits.val_targets) + len(digits.test_targets)
    assert n == 1797
    assert abs(len(digits.val_targets) - 0.15 * n) <= 1 and abs(len(digits.test_targets) - 0.15 * n) <= 1
    assert len(digits.forget_idx) == round(0.1 * len(digits.train_targets))
    assert set(digits.forget_idx).isdisjoint(digits.retain_idx)
    assert len(digits.forget_idx) + len(digits.retain_idx) == len(digits.train_targets)
    again = load_digits_data()
    assert np.array_equal(again.forget_idx, digits.forget_idx)
    assert torch.equal(again.test_inputs, digits.test_inputs)
    other = load_digits_data(forget_seed=7)
    assert not np.array_equal(other.forget_idx, digits.forget_idx)
    # the three parts hold different images: no test image is also a train image
    train_rows = {row.tobytes() for row in digits.train_inputs.numpy()}
    assert sum(row.tobytes() in train_rows for row in digits.test_inputs.numpy()) < 3  # digits has a few duplicates
    assert 0.0 <= digits.train_inputs.min() and digits.train_inputs.max() <= 1.0


def test_loaders_yield_tuples_or_kaggle_dicts(digits):
    tuple_batch = next(iter(make_loaders(digits).forget))
    dict_batch = next(iter(make_loaders(digits, dict_batches=True).forget))
    assert isinstance(tuple_batch, (list, tuple)) and isinstance(dict_batch, dict)
    for batch in (tuple_batch, dict_batch):
        inputs, targets = split_batch(batch)
        assert inputs.shape[1:] == (1, 8, 8) and targets.dtype == torch.int64
    first = [split_batch(b)[1] for b in make_loaders(digits, seed=3).retain]
    second = [split_batch(b)[1] for b in make_loaders(digits, seed=3).retain]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_original_model_meets_the_quality_bar(digits, original, loaders):
    assert accuracy(original, make_loaders(digits).retain) >= 0.995
    train_acc = (logits_on(original, digits.train_inputs).argmax(1) == digits.train_targets).float().mean()
    test_acc = (logits_on(original, digits.test_inputs).argmax(1) == digits.test_targets).float().mean()
    assert train_acc >= 0.995 and test_acc >= 0.95


def test_original_is_cached_and_reloaded(digits, original, cache_dir):
    path = original_cache_path(digits, SmallResNet, DIGITS_RECIPE, 0, cache_dir)
    assert path.exists()
    reloaded = load_or_train_original(digits, SmallResNet, DIGITS_RECIPE, cache_dir=cache_dir,
                                      log=lambda *_: (_ for _ in ()).throw(AssertionError("retrained")))
    for a, b in zip(reloaded.state_dict().values(), original.state_dict().values()):
        assert torch.equal(a, b)
    other_recipe = Recipe(epochs=DIGITS_RECIPE.epochs + 1)
    assert original_cache_path(digits, SmallResNet, other_recipe, 0, cache_dir) != path


def test_fused_training_matches_one_at_a_time(digits):
    inputs, targets = digits.retain
    recipe = Recipe(epochs=1)
    fused = train_models(SmallResNet, inputs, targets, recipe, [3, 4, 5])
    alone = train_models(SmallResNet, inputs, targets, recipe, [4], fuse=False)[0]
    same_seed = (logits_on(fused[1], digits.test_inputs) - logits_on(alone, digits.test_inputs)).abs().max()
    other_seed = (logits_on(fused[0], digits.test_inputs) - logits_on(alone, digits.test_inputs)).abs().max()
    assert same_seed < 0.05 * other_seed


def test_fused_state_round_trip():
    models = [SmallResNet() for _ in range(3)]
    fused = SmallResNet(groups=3)
    fused.load_state_dict(fuse_states([m.state_dict() for m in models]))
    x = torch.randn(5, 1, 8, 8)
    fused.eval()
    out = fused(x.repeat(1, 3, 1, 1)).view(5, 3, 10)
    for g, model in enumerate(models):
        assert torch.allclose(out[:, g], model.eval()(x), atol=1e-5)
    for state, model in zip(split_fused_state(fused.state_dict(), 3), models):
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_kit_baselines_keep_accuracy(fresh_original, loaders):
    finetune_unlearning(fresh_original, loaders.retain, epochs=1, lr=1e-3)
    assert accuracy(fresh_original, loaders.retain) > 0.98


def test_kit_attack_near_chance_on_one_distribution_and_high_on_two():
    rng = np.random.default_rng(0)
    same = forget_vs_test_attack(rng.exponential(1.0, 300), rng.exponential(1.0, 300))
    assert abs(same - 0.5) < 0.08
    separated = forget_vs_test_attack(rng.exponential(0.01, 300), rng.exponential(1.0, 300) + 0.5)
    assert separated > 0.9
