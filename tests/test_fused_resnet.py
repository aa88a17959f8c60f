"""Fused ResNet-18s (one grouped module) against torchvision's resnet18 trained and measured one at a time.

What is guaranteed, and how it is tested. Fused and lone models run the same float operations except that
grouped and ordinary convolutions accumulate in different orders. In float64 the two training paths agree
to ~1e-16 relative (measured: 4 SGD steps with crop+flip, 3.3e-16 at worst), so the float64 test demands
1e-10: any difference in data order, augmentation draw, class weight or checkpoint choice breaks it by
orders of magnitude (a wrong data order moves the weights by ~0.3 of the whole update).

In float32 the first step's gradients already differ by ~7e-6 relative (rounding through eight blocks of
batch norm), and a few training steps of this tiny problem amplify such differences by orders of
magnitude, unevenly between models: after the kit recipe's 4 steps the three models differ by 1.1e-3,
9.6e-5 and 5.3e-4 relative (2 threads; 1.35e-3, 8.8e-5, 5.0e-6 with 1 thread; eval logits up to 4.6e-2
relative). That is the run's own sensitivity, not fusing: a *lone* run of model 0 from weights nudged by
one float32 rounding (relative 1.2e-7) ends 1.8e-2 of the update away from the un-nudged one, further than
the fused run (7.9e-3). So float32 is held only to "the difference is a small share of what training moved
the weights": at most 5% (measured: fused <= 0.8%, a one-rounding nudge <= 1.8%, a wrong data order 28-32%).
The Kaggle recipe (Adam, 3 steps) stays far closer and keeps its tighter float32 bounds.
"""

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from unlearning_mock.mock_evaluator.engine.figures import ModelFailure, figures_of_models, model_figures
from unlearning_mock.starter_kit.cifar10 import fake_cifar10_images, load_cifar10_data, write_fake_cifar10
from unlearning_mock.starter_kit.models import fusable_arch, fused_model, grouped_logits, resnet18, split_fused_state
from unlearning_mock.starter_kit.training import Recipe, auto_oracle_chunk, is_fusable, train_in_place

pytestmark = pytest.mark.training

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


def _train_both(inputs, targets, recipe, validation=None, dtype=torch.float32):
    """(initial, fused-trained, one-at-a-time-trained models, fused epochs, lone epochs), all in ``dtype``."""
    initial, fused, alone = ([m.to(dtype) for m in _fresh()] for _ in range(3))
    inputs = inputs.to(dtype)
    validation = None if validation is None else (validation[0].to(dtype), validation[1])
    fused_epochs = train_in_place(fused, inputs, targets, recipe, SEEDS, validation=validation)
    lone_epochs = [train_in_place([m], inputs, targets, recipe, [s], validation=validation)
                   for m, s in zip(alone, SEEDS)]
    return initial, fused, alone, fused_epochs, lone_epochs


def _assert_same_models(initial, fused, alone, probe, relative=1e-4, share_of_update=0.05, logits=1e-2):
    """Fused and lone models agree: weights to ``relative`` of their norm (whole vector) and to
    ``share_of_update`` of what training moved them, eval logits on ``probe`` to ``logits`` of their size
    (None skips a bound); integer buffers (step counters) exactly."""
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
        if relative is not None:
            assert difference <= relative * av.norm()
        assert difference <= share_of_update * (av - iv).norm()
        if logits is not None:
            with torch.no_grad():
                fl, al = f(probe.to(fv.dtype)), a(probe.to(fv.dtype))
            assert (fl - al).abs().max() <= logits * al.abs().max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_kit_recipe_equals_one_at_a_time(cifar, dtype):
    """CIFAR-10 kit recipe (SGD, momentum, weight decay, crop+flip, cosine): G = 3 fused vs one at a time;
    in float64 to 1e-10, in float32 to 5% of the update (module docstring: why no tighter)."""
    inputs, targets = cifar.retain
    initial, fused, alone, fused_epochs, lone_epochs = _train_both(inputs[:32], targets[:32], KIT_RECIPE,
                                                                   dtype=dtype)
    assert fused_epochs is None and lone_epochs == [None] * 3
    if dtype == torch.float64:
        _assert_same_models(initial, fused, alone, cifar.test_inputs, relative=1e-10, share_of_update=1e-9,
                            logits=1e-10)
    else:
        _assert_same_models(initial, fused, alone, cifar.test_inputs, relative=None, share_of_update=0.05, logits=None)
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
