"""A setting's profile (starter_kit/profile.py): what a method may know about its setting, and the rule's scale."""

import dataclasses

import pytest

from unlearning_mock.starter_kit.profile import CHALLENGE_PROFILE, SettingProfile


def test_digits_profile_and_its_scale(digits, digits_profile):
    p = digits_profile
    assert (p.name, p.num_classes, p.batch_size, p.retain_batches) == ("digits", 10, 64, 18)   # 1,131 retain at 64
    assert (p.retrain_epochs, p.retrain_steps_per_epoch, p.retrain_steps) == (20, 36, 720)   # at the recipe's 32
    assert p.rule_epoch_scale == pytest.approx(4 / 3)                       # 720 / (30 x 18)
    assert p.epoch_scale == 20 / 30 and p.epochs(3.0) == pytest.approx(2.0)   # digits keeps the scale it was tuned at
    assert dataclasses.replace(p, declared_epoch_scale=None).epochs(3.0) == pytest.approx(4.0)
    assert not p.class_weighted and sum(p.forget_class_shares) == pytest.approx(1.0)
    assert p.forget_share_of((0, 1)) == pytest.approx(float((digits.forget[1] <= 1).float().mean()))
    assert CHALLENGE_PROFILE.epoch_scale == 1.0 and CHALLENGE_PROFILE.forget_share_of((0, 1)) is None


def test_profile_refuses_impossible_values():
    with pytest.raises(ValueError, match="retain_batches must be a whole number >= 1"):
        dataclasses.replace(CHALLENGE_PROFILE, retain_batches=0)
    with pytest.raises(ValueError, match="one share per class"):
        dataclasses.replace(CHALLENGE_PROFILE, forget_class_shares=(0.5, 0.5))
    with pytest.raises(ValueError, match="declared_epoch_scale must be a number > 0 or None"):
        dataclasses.replace(CHALLENGE_PROFILE, declared_epoch_scale=0)


def test_a_setting_profile_is_what_the_notebook_builds_from_the_same_sizes(digits, digits_profile):
    built = SettingProfile.of("digits", 10, 64, len(digits.retain_idx), 20, 32, False, digits.forget[1].tolist(),
                              declared_epoch_scale=20 / 30)
    assert built == digits_profile
