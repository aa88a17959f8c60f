"""The ``digits`` setting: scikit-learn's handwritten digits, embedded; the small ResNet; the
digits recipe (:data:`starter_kit.training.DIGITS_RECIPE`); loaders of 64 tuple batches.

Its methods keep the epoch scale they were tuned at before the profile's rule (:mod:`starter_kit.profile`):
published epochs x the retrain's 20 epochs / the challenge's 30."""

from __future__ import annotations

from unlearning_mock.starter_kit.data import load_digits_data
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.profile import CHALLENGE_RETRAIN_EPOCHS
from unlearning_mock.starter_kit.setting import Setting, register_setting
from unlearning_mock.starter_kit.training import DIGITS_RECIPE


@register_setting("digits")
def digits_setting() -> Setting:
    return Setting(name="digits", data=load_digits_data(), make_model=SmallResNet, recipe=DIGITS_RECIPE,
                   method_epoch_scale=DIGITS_RECIPE.epochs / CHALLENGE_RETRAIN_EPOCHS)
