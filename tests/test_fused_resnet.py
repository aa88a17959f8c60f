"""Fused ResNet-18s (one grouped module) against torchvision's resnet18 trained and measured one at a time.

Tolerances: fused and lone models run the same float operations except that grouped and ordinary
convolutions accumulate in different orders (~1e-7 relative per step). In float64 the two training
paths agree to ~1e-15 (measured: 4 SGD steps with crop+flip). In float32 a few steps of a ResNet-18
on 16-32 images amplify that rounding (batch norm over 16 values at layer4's 1x1 resolution):
weights agree to <= 1e-4 relative (whole parameter vector, norm), eval logits to <= 1e-2 relative,
and the difference is a small share of what training moved the weights -- a wrong data order,
augmentation draw, class weight or checkpoint choice gives differences of the size of the update.
"""

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from unlearning_mock.mock_evaluator.scoring.figures import ModelFailure, figures_of_models, model_figures
from unlearning_mock.starter_kit.cifar10 import fake_cifar10_images, load_cifar10_data, write_fake_cifar10
from unlearning_mock.starter_kit.models import fusable_arch, fused_model, grouped_logits, resnet18, split_fused_state
from unlearning_mock.starter_kit.training import Recipe, auto_oracle_chunk, is_fusable, train_in_place

SEEDS = (11, 12, 13)
KIT_RECIPE = Recipe(epochs=2, batch_size=16, optimizer="sgd", lr=0.01, augment="crop_flip")   # 4 steps
KAGGLE_RECIPE = Recipe(epochs=3, batch_size=32, optimizer="adam", lr=3e-3, weight_decay=5e-3,
                       class_weighted=True, best_validation_from=1)                            # 3 steps


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """A folder in the real CIFAR-10 format (40 train, 20 test images), read as the evaluator reads it."""
    return load_cifar10_data(write_fake_cifar10(tmp_path_factory.mktemp("cifar"), n_train=40, n_test=20, seed=3))


def _fresh(seeds=SEEDS):
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(resnet18())
    return models


def _train_both(inputs, targets, recipe, validation=None):
    """(initial, fused-trained, one-at-a-time-trained models, fused epochs, lone epochs)."""
    initial, fused, alone = _fresh(), _fresh(), _fresh()
    fused_epochs = train_in_place(fused, inputs, targets, recipe, SEEDS, validation=validation)
    lone_epochs = [train_in_place([m], inputs, targets, recipe, [s], validation=validation)
                   for m, s in zip(alone, SEEDS)]
    return initial, fused, alone, fused_epochs, lone_epochs


def _assert_same_models(initial, fused, alone, probe):
    for start, f, a in zip(initial, fused, alone):
        assert type(f) is torchvision.models.ResNet and not f.training
        fs, as_, s0 = f.state_dict(), a.state_dict(), start.state_dict()
        assert list(fs) == list(as_)
        for name in fs:          # step counters exactly, running statistics within the weights' tolerance
            if not fs[name].is_floating_point():
                assert torch.equal(fs[name], as_[name]), name
        floats = [n for n in fs if fs[n].is_floating_point()]
        fv, av, iv = (torch.cat([s[n].flatten() for n in floats]) for s in (fs, as_, s0))
        difference = (fv - av).norm()
        assert difference <= 1e-4 * av.norm()
        assert difference <= 0.05 * (av - iv).norm()       # training moved them 20x more than rounding did
        with torch.no_grad():
            fl, al = f(probe), a(probe)
        assert (fl - al).abs().max() <= 1e-2 * al.abs().max()


def test_fused_kit_recipe_equals_one_at_a_time(cifar):
    """CIFAR-10 kit recipe (SGD, momentum, weight decay, crop+flip, cosine): G = 3 fused vs one at a time."""
    inputs, targets = cifar.retain
    initial, fused, alone, fused_epochs, lone_epochs = _train_both(inputs[:32], targets[:32], KIT_RECIPE)
    assert fused_epochs is None and lone_epochs == [None] * 3
    _assert_same_models(initial, fused, alone, cifar.test_inputs)
    bn = "layer4.1.bn2.running_var"        # running statistics moved, per model
    assert not torch.equal(fused[0].state_dict()[bn], initial[0].state_dict()[bn])
    assert not torch.allclose(fused[0].state_dict()[bn], fused[1].state_dict()[bn])


def test_fused_kaggle_recipe_equals_one_at_a_time_with_best_validation(cifar):
    """Kaggle recipe (Adam, class-weighted CE, best-validation checkpoint per model) on 0-255 inputs."""
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.zeros(12, np.int64), rng.integers(0, 10, 20)])   # class 0 over-represented
    inputs = torch.from_numpy(fake_cifar10_images(labels, rng)).permute(0, 3, 1, 2).float()
    validation = (torch.from_numpy(fake_cifar10_images(np.arange(10), rng)).permute(0, 3, 1, 2).float(),
                  torch.arange(10))
    initial, fused, alone, fused_epochs, lone_epochs = _train_both(
        inputs, torch.from_numpy(labels), KAGGLE_RECIPE, validation)
    assert fused_epochs == [e[0] for e in lone_epochs]
    assert all(1 <= e <= KAGGLE_RECIPE.epochs for e in fused_epochs)
    _assert_same_models(initial, fused, alone, validation[0])


def test_split_states_load_into_torchvision_resnet18_with_identical_logits():
    models = _fresh((1, 2))
    assert all(is_fusable(m) for m in models)
    fused = fused_model(models)
    reference_keys = list(torchvision.models.resnet18(num_classes=10).state_dict())
    assert list(fused.state_dict()) == reference_keys
    assert "layer2.0.downsample.0.weight" in reference_keys and "fc.bias" in reference_keys
    x = torch.randn(6, 3, 32, 32)
    for mode in ("train", "eval"):        # batch statistics, then running statistics
        fused.train(mode == "train")
        with torch.no_grad():
            out = fused(x.repeat(1, 2, 1, 1)).view(6, 2, 10)
        for g, state in enumerate(split_fused_state(fused.state_dict(), 2)):
            plain = torchvision.models.resnet18(num_classes=10)
            plain.load_state_dict(state)                        # strict: torchvision's keys and shapes
            plain.train(mode == "train")
            with torch.no_grad():
                expected = plain(x)
            assert torch.allclose(out[:, g], expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_only_plain_basicblock_resnets_fuse():
    assert fusable_arch(resnet18()) is not None
    assert fusable_arch(torchvision.models.resnet34(num_classes=10)) is not None
    assert fusable_arch(torchvision.models.resnet50(num_classes=10)) is None            # Bottleneck blocks
    assert fusable_arch(nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))) is None
    with pytest.raises(ValueError, match="one fusable architecture"):
        fused_model([resnet18(), torchvision.models.resnet34(num_classes=10)])


def test_figures_of_models_equal_model_figures(cifar):
    """Batched inference (a non-fusable model, then a fused group of 2) gives model_figures' figures."""
    models = _fresh((1, 2))
    for model in models:   # non-trivial running statistics, so eval mode differs from train mode
        model.train()
        with torch.no_grad():
            model(cifar.retain[0][:16] * (1 + model.fc.bias.abs().sum()))
        model.eval()
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()
    mixed = [linear, models[0], models[1]]
    before = [copy.deepcopy(m.state_dict()) for m in mixed]
    batched = figures_of_models(mixed, cifar, group=2)
    expected = [model_figures(m, cifar) for m in mixed]
    for got, want in zip(batched, expected):
        assert set(got) == set(want)
        for name in want:
            assert np.allclose(got[name], want[name], rtol=1e-4, atol=1e-5), name
    assert all(all(torch.equal(s[k], m.state_dict()[k]) for k in s) for s, m in zip(before, mixed))


def test_figures_of_models_names_the_broken_model(cifar):
    models = _fresh((1, 2))
    with torch.no_grad():
        models[1].fc.bias[3] = float("nan")
    with pytest.raises(ModelFailure, match="model 1: the model's logits on the forget set contain NaN"):
        figures_of_models([m.eval() for m in models], cifar)


def test_grouped_logits_repeat_the_input_per_model():
    models = [m.eval() for m in _fresh((1, 2))]
    x = torch.randn(5, 3, 32, 32)
    out = grouped_logits(fused_model(models).eval(), x, 2, images_per_pass=4)   # 2 images per pass
    with torch.no_grad():
        for g, model in enumerate(models):
            assert torch.allclose(out[:, g], model(x), atol=1e-5)


def test_auto_oracle_chunk_on_cpu():
    assert auto_oracle_chunk(resnet18, "cpu") == 8
    assert auto_oracle_chunk(lambda: nn.Linear(4, 2), "cpu") == 1
    with pytest.raises(ValueError, match="workers >= 1"):
        auto_oracle_chunk(resnet18, "cpu", workers=0)
