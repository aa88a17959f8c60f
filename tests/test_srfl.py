"""SRFL: the two variants' loss term by term, what trains, the schedule, class weights, the contract, the curve."""

import copy
import dataclasses
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.evaluation import accuracy
from unlearning_mock.starter_kit.models import SmallResNet, resnet18
from unlearning_mock.starter_kit.unlearning_steps import inverse_frequency_weights
from unlearning_mock.mock_evaluator.studies import curve
from unlearning_mock.submission.unlearning import PUBLISHED, SRFL_VARIANTS, srfl_class_weights, srfl_loss, unlearning

pytestmark = pytest.mark.training

# ---------------------------------------------------------------------------------------------------
# The loss, by hand
# ---------------------------------------------------------------------------------------------------


def hand_kl(student, teacher):
    """KL(softmax(teacher) || softmax(student)), summed over classes, averaged over the batch."""
    p_t = teacher.softmax(1)
    return (p_t * (p_t.log() - student.log_softmax(1))).sum(1).mean()


def hand_ce(student, targets, weight):
    nll = -student.log_softmax(1)[torch.arange(len(targets)), targets]
    w = weight[targets]
    return (w * nll).sum() / w.sum()


def hand_roll(logits, shift):
    """rolled[:, j] = logits[:, (j - shift) mod C] (torch.roll's direction)."""
    classes = logits.shape[1]
    return logits[:, [(j - shift) % classes for j in range(classes)]]


def hand_cos(a, b):
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean()


def hand_terms(sf, tf, shift, sr, tr, y, cw, cosine_to):
    rolled = hand_roll(tf, shift)
    return torch.stack([hand_kl(sr, tr), hand_kl(sf, rolled), hand_ce(sr, y, cw),
                        hand_cos(sf, rolled if cosine_to == "rolled" else tf), torch.tensor(1.0)])


# (weights of: KL retain, KL rolled forget, CE retain, cosine, constant), written from the sheet / README
EXPECTED = {
    # 0.1 KL retain + 0.8 KL rolled forget + 0.1 CE + 1.0 CE - (1 - cos(student forget, UNROLLED teacher forget))
    "submitted": ([0.1, 0.8, 0.1 + 1.0, 1.0, -1.0], "unrolled"),
    # KL rolled forget - cos(rolled teacher forget, student forget) + KL retain
    "seed": ([1.0, 1.0, 0.0, -1.0, 0.0], "rolled"),
}


@pytest.mark.parametrize("variant", ["submitted", "seed"])
def test_loss_term_weights_recovered_from_hand_computed_terms(variant):
    """Solve for each term's weight from srfl_loss on 8 random cases whose terms are computed by hand."""
    expected, cosine_to = EXPECTED[variant]
    gen = torch.Generator().manual_seed(0)
    rows, values = [], []
    for case in range(8):
        sf, tf, sr, tr = (torch.randn(3, 5, generator=gen, dtype=torch.float64) * 2 for _ in range(4))
        y = torch.randint(5, (3,), generator=gen)
        cw = torch.rand(5, generator=gen, dtype=torch.float64) + 0.1
        shift = (-3, 3, -1, 1)[case % 4]
        rows.append(hand_terms(sf, tf, shift, sr, tr, y, cw, cosine_to))
        values.append(srfl_loss(sf, tf, shift, sr, tr, y, SRFL_VARIANTS[variant]["weights"], cw))
    a, b = torch.stack(rows).double(), torch.stack(values).double()
    weights = torch.linalg.lstsq(a, b[:, None]).solution.squeeze(1)
    assert torch.allclose(a @ weights, b, atol=1e-10), "the loss is not this linear combination of the terms"
    assert weights.tolist() == pytest.approx(expected, abs=1e-9)


def test_submitted_loss_on_one_tiny_case():
    sf = torch.tensor([[2.0, 0.0, -1.0]])
    tf = torch.tensor([[3.0, 1.0, 0.0]])
    sr = torch.tensor([[0.5, 1.5, -0.5], [1.0, 0.0, 0.0]])
    tr = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, -1.0]])
    y = torch.tensor([1, 0])
    cw = torch.tensor([0.5, 2.0, 1.0])
    rolled = torch.tensor([[0.0, 3.0, 1.0]])  # roll by +1: the last class moves to the front
    expected = (0.1 * hand_kl(sr, tr) + 0.8 * hand_kl(sf, rolled) + 1.1 * hand_ce(sr, y, cw)
                - (1 - F.cosine_similarity(sf, tf).mean()))
    got = srfl_loss(sf, tf, 1, sr, tr, y, SRFL_VARIANTS["submitted"]["weights"], cw)
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    # the class weights reach the CE: uniform weights give the unweighted CE, others do not
    uniform = srfl_loss(sf, tf, 1, sr, tr, y, SRFL_VARIANTS["submitted"]["weights"], torch.ones(3))
    plain = srfl_loss(sf, tf, 1, sr, tr, y, SRFL_VARIANTS["submitted"]["weights"], None)
    assert uniform.item() == pytest.approx(plain.item(), abs=1e-6) and abs(got.item() - plain.item()) > 1e-3


# ---------------------------------------------------------------------------------------------------
# The training loop on digits (SmallResNet)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def small(loaders):
    """Retain: 128 digits (2 steps an epoch), forget: 64, shuffled with fixed generators -- cheap loops."""
    def subset(loader, n, seed):
        return DataLoader(Subset(loader.dataset, range(n)), batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))
    return SimpleNamespace(retain=subset(loaders.retain, 128, 0), forget=subset(loaders.forget, 64, 1))


@pytest.mark.parametrize("variant, allowed", [("submitted", {-3, 3}), ("seed", {-1, 1})])
def test_roll_steps_come_from_the_variant_set(fresh_original, small, variant, allowed):
    record = []
    unlearning(fresh_original, small.retain, small.forget, variant=variant, epochs=6, seed=0, record=record)
    assert {row["shift"] for row in record} == allowed  # only these, and both of them (12 draws)


def test_only_layer1_and_layer2_weights_change_and_bn_outside_keeps_train_mode(fresh_original, small):
    before = copy.deepcopy(fresh_original.state_dict())
    returned = unlearning(fresh_original, small.retain, small.forget, None, epochs=1)
    assert returned is fresh_original and not fresh_original.training
    changed = {name for name, p in fresh_original.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(("layer1" in name or "layer2" in name) for name in changed)
    assert any("layer1" in name for name in changed) and any("layer2" in name for name in changed)
    assert all(p.requires_grad for p in fresh_original.parameters()), "parameters left frozen after the call"
    # the author's net.train(): the stem's and layer3's batch-norm statistics move although frozen
    assert not torch.equal(fresh_original.bn1.running_mean, before["bn1.running_mean"])
    assert not torch.equal(fresh_original.layer3.bn1.running_mean, before["layer3.bn1.running_mean"])


def test_cosine_schedule_steps_once_per_epoch(fresh_original, small):
    record = []
    unlearning(fresh_original, small.retain, small.forget, epochs=4, lr=0.02, record=record)
    steps_per_epoch = len(small.retain)
    assert len(record) == 4 * steps_per_epoch
    for row in record:
        assert row["epoch"] == row["step"] // steps_per_epoch
        assert row["lr"] == pytest.approx(0.02 * (1 + math.cos(math.pi * row["epoch"] / 4)) / 2)
    constant = []
    unlearning(copy.deepcopy(fresh_original), small.retain, small.forget, epochs=2, lr=0.02,
               schedule="constant", record=constant)
    assert {row["lr"] for row in constant} == {0.02}


def test_fractional_epochs_cap_the_steps(fresh_original, loaders):
    record = []
    unlearning(fresh_original, loaders.retain, loaders.forget, epochs=0.3, record=record)
    assert len(record) == round(0.3 * len(loaders.retain)) and {row["epoch"] for row in record} == {0}


def test_class_weights_reach_the_training(original, loaders):
    forget = [next(iter(loaders.forget))]
    retain = DataLoader(Subset(loaders.retain.dataset, range(128)), batch_size=64)  # fixed order

    def layer1_after(class_weights):
        net = copy.deepcopy(original)
        unlearning(net, retain, forget, epochs=1, lr=1e-2, seed=0, class_weights=class_weights)
        return net.layer1.conv1.weight.detach().clone()

    plain = layer1_after(None)
    scaled_uniform = layer1_after(torch.full((10,), 5.0))   # a weighted mean: uniform = unweighted
    skewed = layer1_after(torch.linspace(0.1, 3.0, 10))
    assert torch.allclose(plain, scaled_uniform, atol=1e-7)
    # the original fits the retain batches, so the CE's share of the update is small (measured 5e-5 of a
    # 4e-3 change) -- but far above float noise (the uniform weights above agree to 0)
    assert (plain - skewed).abs().max() > 1e-5


def test_class_weights_auto_follow_the_settings_recipe(original, loaders, digits_profile):
    expected = inverse_frequency_weights(loaders.retain, 10)
    weighted = dataclasses.replace(digits_profile, class_weighted=True)
    assert torch.allclose(srfl_class_weights("auto", loaders.retain, original, weighted), expected)
    assert srfl_class_weights("auto", loaders.retain, original, digits_profile) is None   # digits' CE is unweighted
    assert torch.allclose(srfl_class_weights("auto", loaders.retain, original), expected)  # no profile: the challenge's
    assert torch.allclose(srfl_class_weights("inverse_frequency", loaders.retain, original, digits_profile), expected)
    assert srfl_class_weights(None, loaders.retain, original, weighted) is None


def test_defaults_digits_keeps_its_values_another_setting_gets_the_authors_at_its_share(original, loaders,
                                                                                        digits_profile):
    record = []
    unlearning(copy.deepcopy(original), loaders.retain, loaders.forget, profile=digits_profile, record=record)
    assert len(record) == 2 * len(loaders.retain) and record[0]["lr"] == pytest.approx(1e-2)   # digits, as before
    other = dataclasses.replace(digits_profile, name="other", declared_epoch_scale=None)        # the rule: x 4/3
    record = []
    unlearning(copy.deepcopy(original), loaders.retain, loaders.forget, profile=other, record=record)
    assert len(record) == round(4 / 3 * len(loaders.retain)) and record[0]["lr"] == pytest.approx(PUBLISHED["lr"])


def decoupling(net, loaders) -> tuple[float, float]:
    """Forget accuracy, and retain minus forget accuracy (eval mode)."""
    forget = accuracy(net, loaders.forget)
    return forget, accuracy(net, loaders.retain) - forget


def test_dict_batches_record_and_forget_accuracy_falls(digits, original):
    """SRFL decouples forget from retain: forget accuracy falls, and further than retain accuracy, on the mean
    of three seeds (a single trajectory moves with the CPU's kernels); the original handed back unchanged
    would fail both assertions."""
    tuples = make_loaders(digits)
    forget_before, decoupled_before = decoupling(original, tuples)
    assert forget_before > 0.95 and abs(decoupled_before) < 0.03
    after = []
    for seed in (0, 1, 2):
        net = copy.deepcopy(original)
        dict_loaders = make_loaders(digits, seed=seed, dict_batches=True)
        record = []
        torch.manual_seed(seed)
        unlearning(net, dict_loaders.retain, dict_loaders.forget, dict_loaders.validation, epochs=2, lr=1e-2,
                   record=record)
        assert len(record) == 2 * len(dict_loaders.retain)
        assert {"step", "loss", "facc", "racc"} <= set(record[0])
        after.append(decoupling(net, tuples))
    forget_after, decoupled_after = (sum(values) / len(after) for values in zip(*after))
    assert forget_after < 0.8, after
    assert decoupled_after > decoupled_before + 0.05, after   # the decoupling, in eval mode


def _tiny_resnet_batches(dict_batches: bool, n: int = 6):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 3, 32, 32, generator=gen) * 255, torch.arange(n) % 3
    return [{"image": x, "age_group": y, "age": y * 10}] if dict_batches else [(x, y)]


@pytest.mark.parametrize("dict_batches", [False, True])
def test_resnet18_one_step(dict_batches):
    torch.manual_seed(0)
    net = resnet18(num_classes=10)
    before = copy.deepcopy(net.state_dict())
    record = []
    returned = unlearning(net, _tiny_resnet_batches(dict_batches), _tiny_resnet_batches(dict_batches, 4),
                          record=record, seed=0)
    assert returned is net and not net.training and len(record) == 1  # resnet18 default: one epoch
    changed = {name for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith(("layer1.", "layer2.")) for name in changed)


# ---------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------


def test_clear_errors(loaders):
    net = SmallResNet()
    with pytest.raises(ValueError, match="unknown SRFL variant"):
        unlearning(net, loaders.retain, loaders.forget, variant="readme")
    with pytest.raises(ValueError, match="roll_steps"):
        unlearning(net, loaders.retain, loaders.forget, roll_steps=(0, 1))
    with pytest.raises(ValueError, match="roll_steps"):
        unlearning(net, loaders.retain, loaders.forget, roll_steps=())
    with pytest.raises(ValueError, match="epochs"):
        unlearning(net, loaders.retain, loaders.forget, epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        unlearning(net, loaders.retain, loaders.forget, schedule="step")
    with pytest.raises(ValueError, match="lr"):
        unlearning(net, loaders.retain, loaders.forget, lr=0.0)
    with pytest.raises(ValueError, match="class_weights"):
        unlearning(net, loaders.retain, loaders.forget, class_weights="balanced")
    with pytest.raises(ValueError, match="layer1"):
        unlearning(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), loaders.retain, loaders.forget)


# ---------------------------------------------------------------------------------------------------
# The curve tool
# ---------------------------------------------------------------------------------------------------


def test_curve_tool_short_run_on_digits(original, digits, cache_dir, tmp_path, capsys):
    curve.main(["--settings", "digits", "--epochs", "0.5", "--cache-dir", str(cache_dir),
                "--output-dir", str(tmp_path)])
    frame = pd.read_csv(tmp_path / "srfl_curve.csv")
    assert list(frame.columns[:3]) == ["setting", "variant", "step"] and {"loss", "facc", "racc"} <= set(frame)
    steps = round(0.5 * len(make_loaders(digits).retain))
    assert frame.groupby("variant").size().to_dict() == {"submitted": steps, "seed": steps}
    assert (tmp_path / "srfl_accuracy.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "digits   submitted" in out and "digits   seed" in out and "decoupled" in out


def test_last_fifth_and_decoupling_rule():
    frame = pd.DataFrame({"step": range(10), "facc": [1.0] * 8 + [0.1, 0.3], "racc": [0.5] * 8 + [0.9, 1.0]})
    assert curve.last_fifth(frame) == {"tail_facc": pytest.approx(0.2), "tail_racc": pytest.approx(0.95),
                                       "decoupled": True}
    assert not curve.last_fifth(frame.assign(facc=0.35))["decoupled"]
    assert not curve.last_fifth(frame.assign(racc=0.84))["decoupled"]


def test_curve_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method"):
        curve.method_function("sgd")
