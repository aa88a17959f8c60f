"""What a *setting* is (:class:`Setting`, with its :class:`~starter_kit.profile.SettingProfile`), and the
registry the settings register into.

A setting is everything the evaluator needs to re-create one challenge setting: the data and its split,
how to build the model, the recipe that trains the original and every oracle, the loaders' batch size
and default batch format, the kit's baseline, and optionally published original weights.

Each setting's module defines a builder and registers it under its name with
:func:`register_setting` (``starter_kit/digits.py``, ``mnist_groups.py``, ``cifar10.py``, ``kaggle.py``); this module imports
none of them, so no import circle forms. :func:`starter_kit.settings.load_setting` builds one by name. The builder's
keyword parameters are the setting's options; those it declares as :class:`SettingFlag` objects are also the command
line's ``--option-name`` flags.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning
from unlearning_mock.starter_kit.batch_format import KAGGLE, TUPLES, check_format
from unlearning_mock.starter_kit.data import UnlearningData
from unlearning_mock.starter_kit.profile import SettingProfile
from unlearning_mock.starter_kit.training import Recipe


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
    method_epoch_scale: float | None = None  # methods' epochs per published epoch, where tuned before the rule (digits)
    notes: dict = field(default_factory=dict)

    @property
    def profile(self) -> SettingProfile:
        """What a method may know about this setting (:mod:`starter_kit.profile`), from its data, recipe and loaders."""
        return SettingProfile.of(self.name, self.data.num_classes, self.batch_size, len(self.data.retain_idx),
                                 self.recipe.epochs, self.recipe.batch_size, self.recipe.class_weighted,
                                 forget_labels=self.data.forget[1].tolist(),
                                 declared_epoch_scale=self.method_epoch_scale)

    def batch_format(self, requested: str | None = None) -> str:
        """The batch format of a submission's loaders: ``requested`` (``kaggle`` or ``tuples``), else the setting's
        own (the Kaggle layout's dicts, elsewhere pairs)."""
        return check_format(requested) or (KAGGLE if self.dict_batches else TUPLES)

    @property
    def recipe_of_original(self) -> Recipe:
        """How the original model is trained: ``original_recipe``, else the oracles' ``recipe``."""
        return self.original_recipe or self.recipe


@dataclass(frozen=True)
class SettingFlag:
    """An option of a setting's builder offered on the command line as ``--option-name``: its help, and how the
    flag's text becomes the option's value (``type``; ``None``: a switch, True when given)."""

    help: str
    type: Callable | None = str


SETTING_BUILDERS: dict[str, Callable[..., Setting]] = {}
"""Setting name -> its builder, in registration order (filled by :func:`register_setting`)."""
SETTING_FLAGS: dict[str, dict[str, SettingFlag]] = {}
"""Setting name -> its options offered on the command line (:class:`SettingFlag`), in declaration order."""


def register_setting(name: str, flags: dict[str, SettingFlag] | None = None):
    """Decorator: register ``builder(data_dir?, **options) -> Setting`` under ``name``; ``flags``: which of the
    builder's options the command line offers (option -> :class:`SettingFlag`)."""
    def register(builder: Callable[..., Setting]) -> Callable[..., Setting]:
        if name in SETTING_BUILDERS and SETTING_BUILDERS[name] is not builder:
            raise ValueError(f"a setting named {name!r} is registered already ({SETTING_BUILDERS[name].__module__}); "
                             "choose another name")
        parameters = inspect.signature(builder).parameters
        undeclared = sorted(option for option in (flags or {}) if option not in parameters or option == "data_dir")
        if undeclared:
            raise ValueError(f"the {name} setting declares flags for {undeclared}, which its builder "
                             f"{builder.__name__} does not take as options")
        SETTING_BUILDERS[name] = builder
        SETTING_FLAGS[name] = dict(flags or {})
        return builder
    return register


def setting_builder(name: str) -> Callable[..., Setting]:
    """The builder registered under ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in SETTING_BUILDERS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(SETTING_BUILDERS)}")
    return SETTING_BUILDERS[name]
