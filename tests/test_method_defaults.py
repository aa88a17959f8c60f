"""The reference methods' defaults from the setting's profile by one rule; every method declares its options;
a method refuses a model or setting it cannot handle before training; the evaluator passes the profile only
to a method that declares it."""

import dataclasses
import inspect

import pytest
import torch
from torch import nn

from unlearning_mock.methods.registry import METHODS, load_method
from unlearning_mock.methods.settings import setting_defaults
from unlearning_mock.mock_evaluator.method import call_keywords, check_options, declares_profile
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE

REFERENCE = [name for name, entry in METHODS.items() if entry.module.startswith("unlearning_mock.methods.")]


def test_published_values_become_the_settings_defaults_by_one_rule(digits_profile):
    fcs = load_method("fcs")[0].published
    team_forget = load_method("team-forget")[0].published
    assert setting_defaults(fcs, None) == fcs == setting_defaults(fcs, CHALLENGE_PROFILE)
    digits = setting_defaults(fcs, digits_profile)
    assert digits["retain_epochs_per_round"] == pytest.approx(4 / 3)           # epochs: the share of a retrain
    assert {k: v for k, v in digits.items() if "epochs" not in k} == {k: v for k, v in fcs.items() if "epochs" not in k}
    assert setting_defaults(team_forget, digits_profile)["cycle_epochs"] == pytest.approx((4 / 3, 8 / 3, 8 / 3))


@pytest.mark.parametrize("name", REFERENCE)
def test_every_reference_method_declares_its_options(name):
    unlearning, _ = load_method(name)
    parameters = inspect.signature(unlearning).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    assert list(parameters)[:4] == ["net", "retain_loader", "forget_loader", "validation_loader"]
    assert set(parameters) - {"net", "retain_loader", "forget_loader", "validation_loader"} == \
        {"profile", *unlearning.published}
    assert declares_profile(unlearning)
    with pytest.raises(ValueError, match=r"does not accept option\(s\) \['epoch'\]"):
        check_options(unlearning, {"epoch": 3}, name)              # the evaluator refuses a typo before oracles train
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['epoch'\]"):
        unlearning(SmallResNet(), [], [], None, epoch=3)          # and so does the method, called by hand


def test_cfw_class_weights_follow_where_the_forget_set_lies(digits_profile):
    from unlearning_mock.methods.cfw import FACES_CLASS_WEIGHTS, class_weights_for

    assert class_weights_for("auto", digits_profile) is None                  # digits: forget set spread over classes
    assert class_weights_for("auto", CHALLENGE_PROFILE) == FACES_CLASS_WEIGHTS  # the challenge's own data
    faces_like = dataclasses.replace(digits_profile, forget_class_shares=(0.6, 0.3) + (0.0125,) * 8)
    assert class_weights_for("auto", faces_like) == FACES_CLASS_WEIGHTS
    unlearning, _ = load_method("cfw")
    net = SmallResNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"one weight per class \(10 in the digits setting\), got 2"):
        unlearning(net, [], [], None, profile=digits_profile, class_weights=(1.0, 0.5))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items()), "it trained before refusing"


def test_a_method_refuses_a_model_it_cannot_handle_before_training():
    unlearning, _ = load_method("kde")
    with pytest.raises(ValueError, match=r"kde resets \['conv1', 'fc'\].*Sequential lacks \['conv1', 'fc'\]"):
        unlearning(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), [], [], None)


def test_the_profile_reaches_only_a_method_that_declares_it(digits_profile):
    def declares(net, retain_loader, forget_loader, validation_loader=None, *, lr=0.1, profile=None):
        return net

    def catch_all(net, retain_loader, forget_loader, validation_loader=None, **options):
        return net

    def plain(net, retain_loader, forget_loader, validation_loader):
        return net

    assert call_keywords(declares, {"lr": 0.2}, digits_profile) == {"lr": 0.2, "profile": digits_profile}
    assert call_keywords(catch_all, {"x": 1}, digits_profile) == {"x": 1}
    assert call_keywords(plain, {}, digits_profile) == {}
    with pytest.raises(ValueError, match="'profile' is not an option"):
        check_options(declares, {"profile": 3}, "declares")
    with pytest.raises(ValueError, match=r"it accepts \['lr'\]"):
        check_options(declares, {"lrr": 3}, "declares")
