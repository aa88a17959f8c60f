"""Per-setting defaults of the reference methods, chosen by the model type.

The methods were published for ResNet-18 (the Kaggle faces setting, or CIFAR-10 for the classic
ones); there every published value is used unchanged. On the digits setting
(:class:`starter_kit.models.SmallResNet`) each method keeps its structure and its epoch counts are
scaled to the same fraction of one retrain: the faces original and the CIFAR-10 kit train 30
epochs, the digits recipe 20 (``starter_kit.training.DIGITS_RECIPE``), so E epochs become
``E * 20 / 30`` (fractions are step caps). Each module's docstring says what else changed and why.
"""

from __future__ import annotations

from torch import nn

from unlearning_mock.starter_kit.models import SmallResNet

PUBLISHED_RETRAIN_EPOCHS = 30
DIGITS_RETRAIN_EPOCHS = 20
DIGITS_EPOCH_SCALE = DIGITS_RETRAIN_EPOCHS / PUBLISHED_RETRAIN_EPOCHS


def setting_of(net: nn.Module) -> str:
    """``"digits"`` for the project's SmallResNet, ``"resnet18"`` for anything else (faces, CIFAR-10)."""
    return "digits" if isinstance(net, SmallResNet) else "resnet18"


def method_options(net: nn.Module, defaults: dict, options: dict, method: str) -> dict:
    """The setting's defaults for ``net`` (``defaults[setting_of(net)]``), overridden by ``options``.

    An option the method does not have is a ``ValueError`` naming the ones it has.
    """
    chosen = dict(defaults[setting_of(net)])
    unknown = sorted(set(options) - set(chosen))
    if unknown:
        raise ValueError(f"{method}: unknown option(s) {unknown}; its options are {sorted(chosen)}")
    chosen.update(options)
    return chosen


def scaled(epochs: float) -> float:
    """Published epochs scaled to the digits setting (the same fraction of a retrain)."""
    return epochs * DIGITS_EPOCH_SCALE


def lrs_scaled(options: dict, factor: float) -> dict:
    """``options`` with every learning rate (keys containing ``lr``; tuples element-wise) times ``factor``:
    how a digits default keeps a method's learning-rate structure when the search scales it."""
    return {key: (tuple(v * factor for v in value) if isinstance(value, tuple) else value * factor)
            if "lr" in key else value for key, value in options.items()}
