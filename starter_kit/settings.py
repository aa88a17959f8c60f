"""A *setting*: everything the evaluator needs to re-create one challenge setting.

The data and its split, how to build the model, the recipe that trains the original and every
oracle, the loaders' batch size and batch shape, the kit's baseline, and optionally published
original weights. :func:`load_setting` builds one by name: ``digits`` (embedded, small and quick),
``mnist-groups`` (embedded: the challenge's structure and regime, :mod:`starter_kit.mnist_groups`),
``cifar10`` (the CIFAR-10 starting kit, from a local folder) and ``kaggle`` (the Kaggle folder layout).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from torch import nn

from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning
from unlearning_mock.starter_kit.data import UnlearningData, load_digits_data
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, Recipe


@dataclass
class Setting:
    name: str
    data: UnlearningData
    make_model: Callable[[], nn.Module]
    recipe: Recipe
    batch_size: int = 64
    dict_batches: bool = False
    baseline: Callable = kaggle_sample_unlearning
    baseline_name: str = "kaggle-sample fine-tune (1 epoch, lr 1e-3)"
    original_weights: Path | None = None     # published original weights; trained (and cached) when None
    original_recipe: Recipe | None = None    # the original's recipe when it differs from the oracles' (``recipe``)
    notes: dict = field(default_factory=dict)


    @property
    def recipe_of_original(self) -> Recipe:
        """How the original model is trained: ``original_recipe``, else the oracles' ``recipe``."""
        return self.original_recipe or self.recipe


def digits_setting() -> Setting:
    return Setting(name="digits", data=load_digits_data(), make_model=SmallResNet, recipe=DIGITS_RECIPE)


def mnist_groups_setting(epochs: int | None = None) -> Setting:
    """The challenge's structure and regime on MNIST digits (:mod:`starter_kit.mnist_groups`); ``epochs``
    shortens the recipe (quick checks only: the calibration holds for the frozen epochs)."""
    from unlearning_mock.starter_kit import mnist_groups as m

    recipe, original_recipe = m.recipes(m.EPOCHS if epochs is None else int(epochs))
    return Setting(name=m.NAME, data=m.load_mnist_groups_data(), make_model=m.make_model, recipe=recipe,
                   original_recipe=original_recipe, batch_size=m.BATCH_SIZE,
                   baseline_name="kaggle-sample fine-tune (1 epoch, lr 1e-3)")


DATASETS = ("digits", "mnist-groups", "cifar10", "kaggle")
EMBEDDED = ("digits", "mnist-groups")


def load_setting(name: str, data_dir=None, amp: bool = False, **options) -> Setting:
    """Build the setting called ``name`` (one of :data:`DATASETS`).

    ``amp`` trains the original and the oracles with bf16 autocast on CUDA; every logit the scorer
    reads is computed in float32, so scores stay comparable.
    """
    setting = _build_setting(name, data_dir, **options)
    if amp:
        setting.recipe = replace(setting.recipe, amp=True)
    return setting


def _builder(name: str) -> Callable[..., Setting]:
    if name == "digits":
        return digits_setting
    if name == "mnist-groups":
        return mnist_groups_setting
    if name == "cifar10":
        from unlearning_mock.starter_kit.cifar10 import cifar10_setting

        return cifar10_setting
    if name == "kaggle":
        from unlearning_mock.starter_kit.kaggle import kaggle_setting

        return kaggle_setting
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def setting_options(name: str) -> list[str]:
    """The options the setting called ``name`` takes (beyond ``data_dir`` and ``amp``)."""
    parameters = inspect.signature(_builder(name)).parameters
    return [p for p, v in parameters.items() if p != "data_dir" and v.kind in
            (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def _build_setting(name: str, data_dir=None, **options) -> Setting:
    builder = _builder(name)
    unknown = sorted(set(options) - set(setting_options(name)))
    if unknown:
        takes = setting_options(name)
        raise ValueError(f"the {name} setting does not take the option(s) {', '.join(unknown)} "
                         f"({'it takes ' + ', '.join(takes) if takes else 'it takes none'}); drop them")
    if name in EMBEDDED:
        if data_dir is not None:
            raise ValueError(f"the {name} data ships inside a package (no files to point at): drop --data-dir")
        return builder(**options)
    return builder(data_dir, **options)
