"""The reference methods' defaults from the setting's profile by one rule (digits keeping the values it was tuned
at); every method declares its options; a method refuses a model or setting it cannot handle before training;
the evaluator passes the profile only to a method that declares it."""

import copy
import dataclasses
import inspect

import pytest
import torch
from torch import nn

from unlearning_mock.methods.registry import METHODS, load_method
from unlearning_mock.mock_evaluator.method import call_keywords, check_options, declares_profile
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE

REFERENCE = [name for name, entry in METHODS.items() if entry.module.startswith("unlearning_mock.methods.")]

# Every reference method's digits defaults as the digits leaderboard was measured with them (methods/settings.py's
# DEFAULTS["digits"] before settings had profiles): they must not move.
DIGITS_BEFORE_THE_PROFILE = {
    "fcs": {"rounds": 8, "retain_epochs_per_round": 0.6666666666666666, "uniform_lr": 0.005, "forget_lr": 0.0003, "forget_min_lr": 1e-06, "retain_lr": 0.004, "momentum": 0.9, "retain_weight_decay": 0.01, "temperature": 1.15, "retain_batches_per_step": 4},
    "msg": {"epochs": 3.333333333333333, "lr_low": 0.00033, "lr_high": 0.001, "rise_fraction": 0.6, "momentum": 0.9, "weight_decay": 0.0005, "reinit_fraction": 0.3, "kept_gradient_scale": 0.1, "per_layer": False},
    "cfw": {"epochs": 2.6666666666666665, "lr": 0.06999999999999999, "momentum": 0.9, "weight_decay": 0.0005, "noise_std": 0.6, "last_epoch_noise_std": 0.005, "last_noise_at": 0.75, "class_weights": None},
    "prmq": {"epochs": 2.1333333333333333, "lr": 0.015, "momentum": 0.9, "weight_decay": 0.0005, "prune_fraction": 0.99, "count_power": -0.1, "entropy_weight": 1.0},
    "ct": {"variant": "ensemble", "b_probability": 0.51953125, "epochs": 2.0, "lr": 0.03, "momentum": 0.9, "weight_decay": 0.0005, "b_relabel_at": 0.6666666666666666, "b_forget_batch": 64},
    "kde": {"warmup_epochs": 2.0, "warmup_lr": 0.027, "epochs": 2.0, "lr": 0.03, "momentum": 0.9, "weight_decay": 0.0005, "temperature": 5.0, "reset": ("conv1", "fc")},
    "rni": {"epochs_per_phase": 0.6666666666666666, "partial_lrs": (0.006, 0.006, 0.006, 0.006, 0.006), "full_lrs": (0.006, 0.006, 0.006, 0.03), "num_partial": 9, "num_noised": 6, "noise_std": 0.04, "momentum": 0.9, "weight_decay": 0.0005},
    "team-forget": {"cycle_epochs": (0.6666666666666666, 1.3333333333333333, 1.3333333333333333), "num_layers": 2, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005, "input_noise_std": 0.1},
    "ft-kaggle": {"epochs": 0.6666666666666666, "lr": 0.001, "momentum": 0.9, "weight_decay": 0.0005},
    "ft-kit": {"epochs": 3.333333333333333, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005},
    "ga": {"epochs": 3.333333333333333, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005},
    "neggrad+": {"epochs": 3.333333333333333, "lr": 0.01, "alpha": 0.99, "momentum": 0.9, "weight_decay": 0.0005},
    "scrub": {"epochs": 3.333333333333333, "max_epochs": 1.3333333333333333, "lr": 0.0005, "momentum": 0.9, "weight_decay": 0.0005, "kl_weight": 0.5, "temperature": 2.0},
    "random-labels": {"epochs": 2.0, "lr": 0.003, "momentum": 0.9, "weight_decay": 0.0005},
    "salun": {"epochs": 2.0, "lr": 0.003, "momentum": 0.9, "weight_decay": 0.0005, "mask_fraction": 0.5},
    "bad-teacher": {"epochs": 0.6666666666666666, "lr": 0.0001, "temperature": 1.0},
}


def test_published_values_become_the_settings_defaults_by_one_rule(digits_profile):
    fcs, team_forget = load_method("fcs")[0], load_method("team-forget")[0]
    assert CHALLENGE_PROFILE.defaults(fcs.published) == fcs.published                # the challenge: as published
    mock = dataclasses.replace(digits_profile, name="kaggle", retrain_epochs=3, declared_epoch_scale=None)
    assert mock.epoch_scale == pytest.approx(3 * 36 / (30 * 18))               # retrain steps / (30 x retain batches)
    defaults = mock.defaults(fcs.published, load_method("fcs")[0].tuned)
    assert defaults["retain_epochs_per_round"] == pytest.approx(mock.epoch_scale)   # epochs: the share of a retrain
    assert {k: v for k, v in defaults.items() if "epochs" not in k} == \
        {k: v for k, v in fcs.published.items() if "epochs" not in k}              # the rest, lrs included, as published
    scale = mock.epoch_scale
    assert mock.defaults(team_forget.published)["cycle_epochs"] == pytest.approx((scale, 2 * scale, 2 * scale))


def test_digits_keeps_every_methods_defaults_from_before_the_profile(digits_profile):
    from unlearning_mock.methods.cfw import class_weights_for
    from unlearning_mock.methods.team_forget import layers_per_cycle
    from unlearning_mock.submission.alif import alif_settings
    from unlearning_mock.submission.unlearning import SRFL_PUBLISHED, SRFL_TUNED

    assert sorted(DIGITS_BEFORE_THE_PROFILE) == sorted(REFERENCE)
    for name, before in DIGITS_BEFORE_THE_PROFILE.items():
        unlearning = load_method(name)[0]
        now = digits_profile.defaults(unlearning.published, unlearning.tuned)
        if name == "cfw":
            now["class_weights"] = class_weights_for(now["class_weights"], digits_profile)
        if name == "team-forget":
            now["num_layers"] = layers_per_cycle(SmallResNet(), now["num_layers"])
        assert now == before, name                                    # exactly: the same floats, the same weights
    assert digits_profile.defaults(SRFL_PUBLISHED, SRFL_TUNED) == {"epochs": 2, "lr": 1e-2}
    assert alif_settings(digits_profile, None, None) == (2, 0.05)


def test_the_other_settings_get_the_rule(digits_profile):
    from unlearning_mock.methods.cfw import FACES_CLASS_WEIGHTS, class_weights_for
    from unlearning_mock.starter_kit.settings import load_setting

    groups = load_setting("mnist-groups").profile                              # its recipe: batch 4, 5 epochs
    assert (groups.batch_size, groups.retrain_epochs, groups.declared_epoch_scale) == (4, 5, None)
    assert groups.epoch_scale == pytest.approx(1 / 6)                          # loaders and retrain both at batch 4
    ft_kit = load_method("ft-kit")[0]
    assert groups.defaults(ft_kit.published, ft_kit.tuned) == {**ft_kit.published, "epochs": pytest.approx(5 / 6)}
    assert class_weights_for("auto", groups) == FACES_CLASS_WEIGHTS             # its forget set lies in classes 0-1
    assert digits_profile.rule_epoch_scale == pytest.approx(4 / 3) and digits_profile.epoch_scale == 20 / 30


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
        check_options(unlearning, {"epoch": 3})              # the evaluator refuses a typo before oracles train
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
    team_forget, _ = load_method("team-forget")
    with pytest.raises(ValueError, match=r"num_layers must be 'auto' or a whole number from 1 to 7"):
        team_forget(SmallResNet(), [], [], None, num_layers=8)


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
        check_options(declares, {"profile": 3})
    with pytest.raises(ValueError, match=r"it accepts \['lr'\]"):
        check_options(declares, {"lrr": 3})


def test_the_kaggle_layouts_baseline_is_the_sample_epochs_share_of_its_retrain(original, digits, digits_profile):
    from unlearning_mock.starter_kit.baseline import finetune_unlearning, kaggle_sample_at_the_settings_share
    from unlearning_mock.starter_kit.data import make_loaders

    mock = dataclasses.replace(digits_profile, name="kaggle", retrain_epochs=3, retrain_steps_per_epoch=18,
                               declared_epoch_scale=None)                 # the mock input: a 3-epoch retrain at 64
    assert declares_profile(kaggle_sample_at_the_settings_share) and mock.epochs(1.0) == pytest.approx(0.1)

    def after(function, **keywords):
        net, loaders = copy.deepcopy(original), make_loaders(digits, seed=0)   # the same data order each time
        torch.manual_seed(0)
        function(net, loaders.retain, loaders.forget, loaders.validation, **keywords)
        return net.fc.weight.detach().clone()

    share = after(kaggle_sample_at_the_settings_share, profile=mock)
    assert torch.equal(share, after(finetune_unlearning, epochs=mock.epochs(1.0), lr=1e-3))   # 2 of 18 retain steps
    assert not torch.equal(share, after(finetune_unlearning, epochs=1, lr=1e-3))     # not the whole epoch
