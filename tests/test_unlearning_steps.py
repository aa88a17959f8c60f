"""The shared steps of ``starter_kit/unlearning_steps.py`` that several methods build on: the fine-tuning
loop's hooks, the one distillation loss, the one class-weight rule."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.class_weights import inverse_frequency
from unlearning_mock.starter_kit.unlearning_steps import (distillation_loss, fine_tune, inverse_frequency_weights,
                                                          stage_parameters)

pytestmark = pytest.mark.training


def _data(n=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = torch.rand(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(inputs, targets), batch_size=16, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def test_distillation_loss_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(0)
    student, teacher = nn.Linear(5, 4), nn.Linear(5, 4)
    inputs, targets = torch.randn(8, 5), torch.randint(0, 4, (8,))
    z, t = student(inputs), teacher(inputs).detach()
    ce = F.cross_entropy(z, targets)
    soft = -(t.softmax(1) * z.log_softmax(1)).sum(1).mean()
    kl = (F.softmax(t / 3, 1) * (F.log_softmax(t / 3, 1) - F.log_softmax(z / 3, 1))).sum(1).mean()
    loss = distillation_loss(teacher, 3.0, kl_weight=0.5, ce_weight=2.0, soft_ce_weight=0.25)(student, inputs, targets)
    assert loss.item() == pytest.approx((2.0 * ce + 0.25 * soft + 0.5 * kl).item(), rel=1e-6)
    assert distillation_loss(teacher, 3.0, kl_weight=-1.0)(student, inputs, targets).item() == pytest.approx(-kl.item())
    assert distillation_loss(student, 3.0)(student, inputs, targets).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="non-zero weight"):
        distillation_loss(teacher, kl_weight=0.0)


def test_fine_tune_hooks_run_once_per_step_in_order():
    torch.manual_seed(0)
    net, loader, calls = SmallResNet(), _data(), []
    fine_tune(net, loader, epochs=1.5, lr=0.01, before_step=lambda step, total: calls.append(("before", step, total)),
              after_backward=lambda: calls.append(("backward",)),
              after_step=lambda step, loss: calls.append(("after", step, loss.item())))
    total = round(1.5 * len(loader))
    assert [c[0] for c in calls] == ["before", "backward", "after"] * total
    assert [c[1] for c in calls if c[0] == "after"] == list(range(total))
    assert all(c[2] == total for c in calls if c[0] == "before") and not net.training


def test_fine_tune_trains_only_the_given_params_and_frozen_bn_stats_stay():
    torch.manual_seed(0)
    net = SmallResNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = stage_parameters(net, ("layer1",), "this test")
    fine_tune(net, _data(), epochs=1.0, lr=0.1, params=params, freeze_bn_stats=True)
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("layer1.") for k in changed)
    assert not any("running" in k or "num_batches" in k for k in changed), "a batch norm updated its statistics"
    assert all(p.requires_grad for p in net.parameters())
    fine_tune(net, _data(), epochs=1.0, lr=0.1, params=params)
    assert not torch.equal(net.bn1.running_mean, before["bn1.running_mean"]), "train mode updates every batch norm"
    with pytest.raises(ValueError, match="lacks \\['layer4'\\]"):
        stage_parameters(net, ("layer1", "layer4"), "this test")


def test_one_inverse_frequency_rule_for_the_recipe_and_the_methods():
    counts = torch.arange(0, 200_000)
    as_float32 = torch.where(counts > 0, 1.0 / counts.float().clamp(min=1), torch.zeros(len(counts)))
    assert torch.equal(inverse_frequency(counts), as_float32)   # what the training recipe computed before
    loader = DataLoader(TensorDataset(torch.zeros(7, 1), torch.tensor([0, 0, 0, 2, 2, 3, 3])), batch_size=3)
    assert inverse_frequency_weights(loader, 5).tolist() == pytest.approx([1 / 3, 0.0, 0.5, 0.5, 0.0])
