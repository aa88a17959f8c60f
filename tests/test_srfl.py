"""SRFL: what it trains, its contract with the Kaggle notebook, and that it forgets."""

import copy

import pytest
import torch
from torch import nn

from starter_kit.data import make_loaders
from starter_kit.evaluation import accuracy
from submission.unlearning import unlearning


def test_only_the_first_two_stages_change(fresh_original, loaders):
    before = copy.deepcopy(fresh_original.state_dict())
    unlearning(fresh_original, loaders.retain, loaders.forget, loaders.validation, epochs=1)
    params = dict(fresh_original.named_parameters())
    changed = {name for name, p in params.items() if not torch.equal(p, before[name])}
    assert changed, "SRFL changed nothing"
    assert all(name.startswith(("layer1.", "layer2.")) for name in changed)
    assert any(name.startswith("layer1.") for name in changed) and any(name.startswith("layer2.") for name in changed)
    assert all(p.requires_grad for p in fresh_original.parameters()), "parameters left frozen after the call"


def test_in_place_returns_net_in_eval_mode_and_leaves_loaders(fresh_original, loaders):
    forget_before = loaders.forget.dataset.inputs.clone()
    returned = unlearning(fresh_original, loaders.retain, loaders.forget, loaders.validation, epochs=1)
    assert returned is fresh_original and not fresh_original.training
    assert torch.equal(loaders.forget.dataset.inputs, forget_before)


def test_accepts_kaggle_dict_batches_and_records_curves(digits, fresh_original):
    dict_loaders = make_loaders(digits, dict_batches=True)
    record = []
    unlearning(fresh_original, dict_loaders.retain, dict_loaders.forget, dict_loaders.validation, epochs=1, record=record)
    assert len(record) == len(dict_loaders.retain)
    assert {"step", "loss", "facc", "racc"} <= set(record[0])


def test_forget_accuracy_falls_well_below_the_original(digits, original, fresh_original, loaders):
    torch.manual_seed(0)
    unlearning(fresh_original, loaders.retain, loaders.forget, loaders.validation)
    forget_before, forget_after = accuracy(original, loaders.forget), accuracy(fresh_original, loaders.forget)
    assert forget_before == 1.0 and forget_after < 0.8
    # the decoupling: SRFL loses more on forget examples than on retain examples
    assert accuracy(fresh_original, loaders.retain) - forget_after > 0.05


def test_clear_errors(loaders):
    with pytest.raises(ValueError, match="layer1"):
        unlearning(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), loaders.retain, loaders.forget, loaders.validation)
    with pytest.raises(ValueError, match="roll_steps"):
        unlearning(nn.Linear(2, 2), loaders.retain, loaders.forget, loaders.validation, roll_steps=(0, 1))
