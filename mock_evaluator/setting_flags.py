"""The command line's setting-specific flags, built from what the settings declare (``SettingFlag`` objects in
``@register_setting(name, flags=...)``): one ``--option-name`` per declared option, its help naming the settings
that take it, and the values given, as the setting options a run passes to ``load_setting``."""

from __future__ import annotations

import argparse

from unlearning_mock.starter_kit.settings import SETTING_FLAGS


def declared_flags() -> dict[str, tuple]:
    """Option -> (how its text becomes a value, help) over every registered setting, in declaration order; two
    settings that read one option differently are a ``ValueError``."""
    flags: dict[str, dict] = {}
    for setting, options in SETTING_FLAGS.items():
        for option, flag in options.items():
            seen = flags.setdefault(option, {"type": flag.type, "helps": {}})
            if seen["type"] != flag.type:
                raise ValueError(f"the settings read --{option.replace('_', '-')} differently: the {setting} setting "
                                 f"as {flag.type}, an earlier one as {seen['type']}; make them agree")
            seen["helps"].setdefault(flag.help, []).append(setting)
    return {option: (seen["type"], "; ".join(f"{'/'.join(settings)}: {text}" for text, settings in seen["helps"].items()))
            for option, seen in flags.items()}


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--option-name`` per declared setting option (a switch where it reads no value)."""
    for option, (kind, text) in declared_flags().items():
        flag = "--" + option.replace("_", "-")
        if kind is None:
            parser.add_argument(flag, dest=option, action="store_true", help=text)
        else:
            parser.add_argument(flag, dest=option, type=kind, default=None, help=text)


def setting_flag_values(args: argparse.Namespace) -> dict:
    """The setting options given on the command line (a switch left off and a flag not given are not options)."""
    return {option: value for option in declared_flags()
            if (value := getattr(args, option)) is not None and value is not False}
