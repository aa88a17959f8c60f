"""The command line's setting-specific flags come from what the settings declare (``register_setting(name,
flags=...)``): the same flags as the settings' options, their values passed on to the setting."""

from __future__ import annotations

import pytest

from unlearning_mock.mock_evaluator.cli import _config, _parser
from unlearning_mock.mock_evaluator.setting_flags import declared_flags
from unlearning_mock.starter_kit.setting import SETTING_BUILDERS, SETTING_FLAGS, SettingFlag, register_setting
from unlearning_mock.starter_kit.settings import setting_options


@pytest.fixture
def probe_setting():
    """Registers settings for the test and removes them (and their flags) afterwards."""
    before = set(SETTING_BUILDERS)
    yield register_setting
    for name in set(SETTING_BUILDERS) - before:
        SETTING_BUILDERS.pop(name)
        SETTING_FLAGS.pop(name)


def test_every_declared_flag_is_an_option_of_its_setting():
    for setting, flags in SETTING_FLAGS.items():
        assert set(flags) <= set(setting_options(setting)), setting
    assert list(declared_flags()) == ["epochs", "download", "forget_idx", "original_weights"]
    assert declared_flags()["epochs"][1].startswith("cifar10/kaggle: epochs of the training recipe; mnist-groups:")


@pytest.mark.parametrize("mode", ["evaluate", "leaderboard"])
def test_the_flags_become_the_settings_options(mode):
    given = _parser(mode).parse_args(["--epochs", "3", "--download", "--forget-idx", "forget.npy",
                                      "--original-weights", "w.pth", "--amp"])
    assert _config(given, submissions=()).setting_options == {
        "epochs": 3, "download": True, "forget_idx": "forget.npy", "original_weights": "w.pth", "amp": True}
    assert _config(_parser(mode).parse_args([]), submissions=()).setting_options == {}


def test_a_new_settings_flag_joins_the_command_line(probe_setting):
    @probe_setting("probe-flags", flags={"noise": SettingFlag("label noise of the probe", float),
                                         "epochs": SettingFlag("epochs of the probe", int)})
    def probe(noise: float = 0.0, epochs: int | None = None):
        raise AssertionError("not built here")

    parser = _parser("evaluate")
    assert _config(parser.parse_args(["--noise", "0.25"]), submissions=()).setting_options == {"noise": 0.25}
    assert "probe-flags: label noise of the probe" in parser.format_help()
    assert "probe-flags: epochs of the probe" in declared_flags()["epochs"][1]


def test_a_flag_must_be_an_option_and_read_alike(probe_setting):
    with pytest.raises(ValueError, match=r"declares flags for \['nois'\], which its builder probe does not take"):
        @probe_setting("probe-typo", flags={"nois": SettingFlag("label noise")})
        def probe(noise: float = 0.0):
            raise AssertionError("not built here")

    @probe_setting("probe-text-epochs", flags={"epochs": SettingFlag("epochs as text")})
    def probe_text(epochs: str = "3"):
        raise AssertionError("not built here")

    with pytest.raises(ValueError, match="the settings read --epochs differently"):
        declared_flags()
