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


DECLARED = {}
for _name in METHODS:   # one declared function per method, whatever its variants
    _function = load_method(_name)[0]
    DECLARED.setdefault(_function.method_name, _function)


def by_the_rule(profile, published: dict, tuned: dict) -> dict:
    """The rule read off its description (methods/settings.py), not through SettingProfile.defaults: an option
    whose name holds "epochs" times the setting's epoch scale (tuples element-wise), the rest as published,
    then the values tuned in that setting."""
    expected = {}
    for key, value in published.items():
        if "epochs" in key:
            value = tuple(v * profile.epoch_scale for v in value) if isinstance(value, tuple) \
                else value * profile.epoch_scale
        expected[key] = value
    return {**expected, **tuned.get(profile.name, {})}


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


@pytest.mark.parametrize("method", sorted(DECLARED))
def test_every_declared_method_gets_its_defaults_by_the_rule_in_every_setting(method, digits_profile):
    from unlearning_mock.starter_kit.settings import load_setting

    unlearning = DECLARED[method]
    assert unlearning.published and set(unlearning.tuned) <= {"digits"}       # only digits keeps tuned values
    for profile in (digits_profile, load_setting("mnist-groups").profile, CHALLENGE_PROFILE):
        assert profile.defaults(unlearning.published, unlearning.tuned) == \
            by_the_rule(profile, unlearning.published, unlearning.tuned), (method, profile.name)


def test_digits_keeps_the_values_its_leaderboard_was_measured_with(digits_profile):
    """Digits runs its methods at 2/3 of the published epochs (its declared scale, not the rule's 4/3) and at
    the learning rates each was tuned at there; SRFL and ALIF at the values measured there."""
    from unlearning_mock.methods.cfw import class_weights_for
    from unlearning_mock.methods.team_forget import layers_per_cycle

    def digits(method):
        return digits_profile.defaults(DECLARED[method].published, DECLARED[method].tuned)

    assert digits_profile.epoch_scale == 20 / 30
    assert digits("ga") == {"epochs": pytest.approx(10 / 3), "lr": pytest.approx(1e-2), "momentum": 0.9,
                            "weight_decay": 5e-4}                                  # lr x 100 (its docstring)
    assert digits("scrub") == {**DECLARED["scrub"].published, "epochs": pytest.approx(10 / 3),
                               "max_epochs": pytest.approx(4 / 3)}                 # not tuned: lrs as published
    assert digits("team-forget")["cycle_epochs"] == pytest.approx((2 / 3, 4 / 3, 4 / 3))
    assert layers_per_cycle(SmallResNet(), digits("team-forget")["num_layers"]) == 2
    assert class_weights_for(digits("cfw")["class_weights"], digits_profile) is None
    assert (digits("cfw")["lr"], digits("kde")["warmup_lr"]) == pytest.approx((0.07, 0.027))
    assert digits("rni")["full_lrs"] == pytest.approx((0.006, 0.006, 0.006, 0.03))
    assert {k: digits("srfl")[k] for k in ("epochs", "lr")} == {"epochs": 2, "lr": 1e-2}
    assert {k: digits("alif")[k] for k in ("epochs", "lr")} == {"epochs": 2, "lr": 0.05}


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


@pytest.mark.parametrize("name", list(METHODS))
def test_every_registered_method_declares_its_options(name):
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
