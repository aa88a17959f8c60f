"""Build a setting by name: :func:`load_setting`.

The settings register themselves (:mod:`starter_kit.setting`'s registry) when their modules are
imported; this module imports each of them once, below, and nothing imports this module back:
``mnist-groups`` (the default, embedded: the challenge's structure and regime on a CPU,
:mod:`starter_kit.mnist_groups`), ``digits`` (embedded, small and quick; a random forget set, where every method
scores near zero), ``cifar10`` (the CIFAR-10 starting kit, from a local folder) and
``kaggle`` (the Kaggle folder layout). A new setting: a module that registers its builder with
``@register_setting("name", flags=...)``, and one import line here; its flags join the command line's.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

from unlearning_mock.starter_kit import cifar10, digits, kaggle, mnist_groups  # noqa: F401  (each registers its setting)
from unlearning_mock.starter_kit.setting import SETTING_BUILDERS, SETTING_FLAGS, Setting, setting_builder

DEFAULT_DATASET = "mnist-groups"
"""The setting ``make evaluate``, the command, the API and the leaderboard run unless told otherwise (the one place it
is named)."""
DATASETS = (DEFAULT_DATASET,) + tuple(name for name in SETTING_BUILDERS if name != DEFAULT_DATASET)
"""Every registered setting's name, the default first."""

__all__ = ["DATASETS", "DEFAULT_DATASET", "SETTING_FLAGS", "Setting", "load_setting", "setting_options"]


def load_setting(name: str, data_dir=None, amp: bool = False, **options) -> Setting:
    """Build the setting called ``name`` (one of :data:`DATASETS`).

    ``amp`` trains the original and the oracles with bf16 autocast on CUDA; every logit the scorer
    reads is computed in float32, so scores stay comparable.
    """
    setting = _build_setting(name, data_dir, **options)
    if amp:
        setting.recipe = replace(setting.recipe, amp=True)
    return setting


def setting_options(name: str) -> list[str]:
    """The options the setting called ``name`` takes (beyond ``data_dir`` and ``amp``)."""
    parameters = inspect.signature(setting_builder(name)).parameters
    return [p for p, v in parameters.items() if p != "data_dir" and v.kind in
            (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def _build_setting(name: str, data_dir=None, **options) -> Setting:
    builder = setting_builder(name)
    unknown = sorted(set(options) - set(setting_options(name)))
    if unknown:
        takes = setting_options(name)
        raise ValueError(f"the {name} setting does not take the option(s) {', '.join(unknown)} "
                         f"({'it takes ' + ', '.join(takes) if takes else 'it takes none'}); drop them")
    if "data_dir" not in inspect.signature(builder).parameters:
        if data_dir is not None:
            raise ValueError(f"the {name} data ships inside a package: drop --data-dir")
        return builder(**options)
    return builder(data_dir, **options)
