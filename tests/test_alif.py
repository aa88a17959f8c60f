"""ALIF: the auxiliary layers start as the identity, only they train, they fold away exactly, and both
targets move the forget examples the way they should."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.evaluation import accuracy, predict_logits
from unlearning_mock.starter_kit.models import SmallResNet, resnet18
from unlearning_mock.submission import alif
from unlearning_mock.submission.alif import AuxiliaryMixers, alif_confidences, alif_convolutions, unlearning

pytestmark = pytest.mark.training


def _model_and_input(kind, original):
    if kind == "smallresnet":
        return copy.deepcopy(original), torch.rand(16, 1, 8, 8)
    torch.manual_seed(0)
    net = resnet18(num_classes=10)
    with torch.no_grad():  # batch-norm statistics of the data, as a trained model has
        for _ in range(3):
            net.train()(torch.randn(16, 3, 32, 32))
    return net, torch.randn(4, 3, 32, 32)


@pytest.mark.parametrize("kind", ["smallresnet", "resnet18"])
def test_folding_non_identity_mixers_is_exact_and_keeps_the_architecture(kind, original):
    net, inputs = _model_and_input(kind, original)
    net.eval()
    keys_before = {k: v.shape for k, v in net.state_dict().items()}
    convs = alif_convolutions(net)
    assert {name for name, _ in convs} >= {"layer1.0.conv1" if kind == "resnet18" else "layer1.conv1",
                                           "layer2.0.downsample.0" if kind == "resnet18" else "layer2.downsample.0"}
    with torch.no_grad():
        before = net(inputs)
    mixers = AuxiliaryMixers(convs)
    torch.manual_seed(1)
    with torch.no_grad():
        for mixer in mixers.parameters:
            mixer.add_(0.1 * torch.randn_like(mixer))
        mixed = net(inputs)
        mixers.fold()
        folded = net(inputs)
    assert (folded - mixed).abs().max().item() <= 1e-4
    assert (folded - before).abs().max().item() > 0.1, "the mixers changed the logits too little to test the fold"
    assert {k: v.shape for k, v in net.state_dict().items()} == keys_before
    fresh = SmallResNet() if kind == "smallresnet" else resnet18(num_classes=10)
    fresh.load_state_dict(net.state_dict())  # strict
    with torch.no_grad():
        assert (fresh.eval()(inputs) - mixed).abs().max().item() <= 1e-4


ROUNDING = 1e-4
"""How far float rounding moves the original's logits when the same function is computed along another path."""


def test_identity_start_and_a_zero_learning_rate_change_nothing(original, loaders):
    net = copy.deepcopy(original)
    inputs = loaders.forget.dataset.inputs[:32]
    with torch.no_grad():
        expected_eval, expected_train = original.eval()(inputs), copy.deepcopy(original).train()(inputs)
        mixers = AuxiliaryMixers(alif_convolutions(net))
        # equal up to float rounding (logits up to ~15; PyTorch's native convolutions round the identity-mixed path
        # differently, by ~2e-5), never more: a mixer moved by 0.1 changes them by more than 0.1 (the test above)
        assert (net.eval()(inputs) - expected_eval).abs().max().item() <= ROUNDING
        assert (copy.deepcopy(net).train()(inputs) - expected_train).abs().max().item() <= ROUNDING
        mixers.detach()
    for target in ("decouple", "unseen"):
        net = copy.deepcopy(original)
        unlearning(net, loaders.retain, loaders.forget, loaders.validation, target=target, lr=0.0,
                   max_steps=3, freeze_bn_stats=True)
        with torch.no_grad():
            assert (net(inputs) - expected_eval).abs().max().item() <= ROUNDING
        for name, tensor in net.state_dict().items():
            assert torch.equal(tensor, original.state_dict()[name]), name


def test_only_the_auxiliary_layers_train_and_fold_into_the_chosen_convolutions(original, loaders, monkeypatch):
    net = copy.deepcopy(original)
    seen = {}
    real_fold = AuxiliaryMixers.fold

    def checked_fold(self):
        seen["unchanged"] = all(torch.equal(p, original.state_dict()[n]) for n, p in net.named_parameters())
        seen["moved"] = [not torch.equal(m, torch.eye(len(m))) for m in self.parameters]
        real_fold(self)

    monkeypatch.setattr(AuxiliaryMixers, "fold", checked_fold)
    unlearning(net, loaders.retain, loaders.forget, loaders.validation, max_steps=4)
    assert seen["unchanged"], "an original parameter changed before the fold"
    assert seen["moved"] and all(seen["moved"]), "an auxiliary layer did not train"
    changed = {n for n, p in net.named_parameters() if not torch.equal(p, original.state_dict()[n])}
    assert changed == {"layer1.conv1.weight", "layer1.conv2.weight", "layer2.conv1.weight",
                       "layer2.conv2.weight", "layer2.downsample.0.weight"}
    assert all(p.requires_grad for p in net.parameters()) and not net.training


def test_decouple_lowers_forget_accuracy_more_than_retain_accuracy(original, digits, digits_profile):
    """On the mean of three seeds (a single trajectory moves with the CPU's kernels); the original handed back
    unchanged would fail both assertions."""
    loaders = make_loaders(digits)
    forget_before = accuracy(original, loaders.forget)
    decoupled_before = accuracy(original, loaders.retain) - forget_before
    assert forget_before > 0.95 and abs(decoupled_before) < 0.03
    after = []
    for seed in (0, 1, 2):
        net = copy.deepcopy(original)
        seeded = make_loaders(digits, seed=seed)
        torch.manual_seed(seed)
        record = []
        returned = unlearning(net, seeded.retain, seeded.forget, seeded.validation, target="decouple",
                              record=record, profile=digits_profile)   # digits: 2 epochs (5% of the retrain), lr 0.05
        assert returned is net and not net.training
        assert len(record) == 2 * len(seeded.retain) and {"step", "loss", "facc", "racc"} == set(record[0])
        forget = accuracy(net, loaders.forget)
        after.append((forget, accuracy(net, loaders.retain) - forget))
    forget_after, decoupled_after = (sum(values) / len(after) for values in zip(*after))
    assert forget_after < 0.9, after
    assert decoupled_after > decoupled_before + 0.03, after


def test_fractional_epochs_cap_the_steps_and_max_steps_caps_them_further(original, loaders):
    record = []
    unlearning(copy.deepcopy(original), loaders.retain, loaders.forget, loaders.validation, epochs=0.5, record=record)
    assert [row["step"] for row in record] == list(range(round(0.5 * len(loaders.retain))))
    capped = []
    unlearning(copy.deepcopy(original), loaders.retain, loaders.forget, loaders.validation, epochs=1.5, max_steps=5,
               record=capped)
    assert len(capped) == 5


def test_unseen_moves_forget_confidences_towards_the_validation_ones(digits, original):
    # On digits the original barely memorises (its forget confidences already look like validation ones),
    # so the "unseen" reference is made clearly lower here: noisy validation images.
    dict_loaders = make_loaders(digits, dict_batches=True)   # Kaggle-style dict batches
    val_x, val_y = digits.validation
    noisy = DataLoader(TensorDataset(val_x + 0.6 * torch.randn(val_x.shape, generator=torch.Generator().manual_seed(0)),
                                     val_y), batch_size=64)
    net = copy.deepcopy(original)
    torch.manual_seed(0)
    unlearning(net, dict_loaders.retain, dict_loaders.forget, noisy, target="unseen")

    def mean_confidence(model, loader):
        logits, targets = predict_logits(model, loader)
        return alif_confidences(logits, targets).mean().item()

    unseen = mean_confidence(original, noisy)
    before, after = mean_confidence(original, dict_loaders.forget), mean_confidence(net, dict_loaders.forget)
    assert before > unseen + 2.0, "the noisy reference should be far less confident than the forget examples"
    assert abs(after - unseen) < 0.6 * abs(before - unseen)


def test_confidences_match_the_metric_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 30.0, 1.0]])
    targets = torch.tensor([0, 1])
    p = logits.double().softmax(1)
    expected = torch.log(p[[0, 1], targets]) - torch.log(1 - p[[0, 1], targets])
    assert torch.allclose(alif_confidences(logits, targets).double(), expected, atol=1e-5)


def test_unseen_targets_follow_ranks_within_each_class():
    table = torch.stack([torch.linspace(0, 1, 5), torch.linspace(10, 20, 5)])   # class 0: 0..1, class 1: 10..20
    confidences = torch.tensor([5.0, 1.0, 7.0, 3.0])
    labels = torch.tensor([0, 0, 1, 1])
    targets = alif.unseen_targets(confidences, labels, table)
    assert torch.allclose(targets, torch.tensor([0.75, 0.25, 17.5, 12.5]))


def test_contract_errors(loaders):
    with pytest.raises(ValueError, match="layer1"):
        unlearning(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), loaders.retain, loaders.forget, loaders.validation)
    with pytest.raises(ValueError, match="target"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, loaders.validation, target="forget")
    with pytest.raises(ValueError, match="epochs"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, loaders.validation, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, loaders.validation, lr=-1.0)
    with pytest.raises(ValueError, match="roll_steps"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, loaders.validation, roll_steps=(0, 1))
    with pytest.raises(ValueError, match="validation"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, None, target="unseen")
    with pytest.raises(ValueError, match="grouped|groups"):
        unlearning(SmallResNet(groups=2), loaders.retain, loaders.forget, loaders.validation)
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        unlearning(SmallResNet(), loaders.retain, loaders.forget, loaders.validation, stages=("relu",))
