"""``unlearning-mock tune`` and ``leaderboard --tuned`` (mock_evaluator/tune*.py, tuned_options.py,
tuned_leaderboard.py): the space derived from a method's declarations, the refusal of the evaluation seed, a user's
file tuned from an empty folder, interrupted and resumed without repeating work, an infeasible trial, and the
tuned leaderboard reading what a study recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from unlearning_mock.methods.registry import get_entry
from unlearning_mock.mock_evaluator.api import leaderboard, tune
from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.mock_evaluator.tune_space import (Dimension, derive_space, entry_point_defaults, parse_dimension,
                                                       read_entry_point, start_point)
from unlearning_mock.mock_evaluator.tuned_options import read_tuned, record_tuned
from unlearning_mock.starter_kit.settings import load_setting

N = 4   # the tuning N of these tests (digits): each trial is 4 one-step calls

USER_METHOD = '''
import torch


def unlearning(net, retain_loader, forget_loader, validation_loader, *, lr=0.01, steps=2, flag=True, seed=None,
               name="plain"):
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    net.train()
    for _, (inputs, targets) in zip(range(steps), retain_loader):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    return net.eval()
'''


def _space(spec, profile, fixed=None, **keywords):
    entry = entry_point_defaults(method_from_spec(spec, fixed or {}), profile)
    return entry, {d.name: d for d in derive_space(entry, fixed or {}, profile, 0.2, **keywords)}


def _range(d: Dimension) -> tuple:
    return d.low, d.high, d.log, d.integer


def test_the_space_comes_from_the_declared_options_resolved_in_the_setting(digits_profile):
    # ga declares epochs=5, lr=1e-4 ... and keeps lr x 100 on digits: the range is around the resolved 1e-2
    entry, space = _space("methods.ga", digits_profile)
    assert entry.defaults["lr"] == pytest.approx(1e-2)
    assert _range(space["lr"]) == (pytest.approx(1e-3), pytest.approx(1e-1), True, False)
    assert space["weight_decay"].log and space["weight_decay"].low == pytest.approx(5e-5)
    epochs = digits_profile.epochs(5.0)
    assert space["epochs"].low == pytest.approx(epochs / 4) and space["epochs"].high >= epochs
    assert "momentum" not in space   # kept as published
    assert start_point(entry, tuple(space.values()))["lr"] == pytest.approx(1e-2)
    # an option given is fixed; a range given replaces the derived one; --only keeps the named ones
    _, fixed = _space("methods.ga", digits_profile, fixed={"lr": 0.5})
    assert "lr" not in fixed and "epochs" in fixed
    _, narrowed = _space("methods.ga", digits_profile, overrides=(parse_dimension("epochs=1:2"),), only=("epochs",))
    assert narrowed == {"epochs": Dimension("epochs", 1.0, 2.0)}
    with pytest.raises(ValueError, match="takes no option 'lrr'.*'lr'"):
        _space("methods.ga", digits_profile, overrides=(parse_dimension("lrr=1:2"),))
    with pytest.raises(ValueError, match="lr is fixed"):
        _space("methods.ga", digits_profile, fixed={"lr": 0.5}, only=("lr",))


def test_the_space_of_a_users_plain_function(tmp_path, digits_profile):
    path = tmp_path / "plain.py"
    path.write_text(USER_METHOD)
    entry, space = _space(str(path), digits_profile)
    assert set(space) == {"lr", "steps"}          # not the bool, the seed or the string
    assert _range(space["lr"]) == (pytest.approx(1e-3), pytest.approx(1e-1), True, False)
    assert space["steps"] == Dimension("steps", 1, 4, integer=True)
    assert start_point(entry, tuple(space.values())) == {"lr": 0.01, "steps": 2}


@pytest.mark.parametrize("text", ["lr", "lr=1e-3", "lr=a:b", "lr=1:2:cubic", "1x=1:2"])
def test_a_bad_range_is_refused_with_its_form(text):
    with pytest.raises(ValueError, match="NAME=LOW:HIGH|must be numbers"):
        parse_dimension(text)
    assert parse_dimension("rounds=2:8:int") == Dimension("rounds", 2, 8, integer=True)
    with pytest.raises(ValueError, match="low > 0"):
        parse_dimension("lr=0:1:log")


def test_the_evaluation_seed_is_never_tuned_on(tmp_path, capsys):
    path = tmp_path / "plain.py"
    path.write_text(USER_METHOD)
    assert main(["tune", "--submission", str(path), "--tuning-seed", "0", "--seed", "0", "--dataset", "digits",
                 "--cache-dir", str(tmp_path)]) == 2
    assert "the tuning seed (0) is the evaluation seed" in capsys.readouterr().err
    with pytest.raises(ValueError, match="tuning seed"):
        tune(str(path), tuning_seed=3, seed=3, dataset="digits", cache_dir=str(tmp_path), log=lambda *_: None)
    assert not (tmp_path / "tune").exists()   # refused before any work


def test_tuned_options_files_keep_their_provenance(tmp_path):
    path = tmp_path / "digits.json"
    entry = {"options": {"lr": 0.01}, "trials": 3, "tuning_seed": 1, "num_models": 8, "command": "unlearning-mock tune"}
    record_tuned(path, "digits", "ga", entry)
    record_tuned(path, "digits", "ft-kaggle", {**entry, "options": {"lr": 0.002}})
    assert read_tuned(path, "digits") == {"ft-kaggle": {**entry, "options": {"lr": 0.002}}, "ga": entry}
    with pytest.raises(ValueError, match="'digits' setting, not 'mnist-groups'"):
        read_tuned(path, "mnist-groups")
    with pytest.raises(ValueError, match="no tuned options for the digits setting"):
        read_tuned(tmp_path / "missing.json", "digits")
    path.write_text(json.dumps({"setting": "digits", "methods": {"ga": {"options": {}}}}))
    with pytest.raises(ValueError, match="lacks"):
        read_tuned(path, "digits")


def _study(cache_dir):
    (storage,) = (cache_dir / "tune").glob("digits-plain-*.db")
    return optuna.load_study(study_name=storage.stem, storage=f"sqlite:///{storage}")


def _runs(cache_dir) -> dict:
    return {path: path.stat().st_mtime_ns for path in (cache_dir / "runs").glob("digits-plain*/model-*.npz")}


@pytest.mark.slow
def test_a_users_file_from_an_empty_folder_resumes_after_an_interruption(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.py").write_text(USER_METHOD)
    cache = tmp_path / "cache"
    common = ["--submission", "plain.py", "--num-models", str(N), "--dataset", "digits", "--cache-dir", str(cache),
              "--workers", "1", "--quiet", "--trials", "3"]

    def interrupt_at_trial_2(line):
        if str(line).startswith("trial 2/3: lr"):
            raise KeyboardInterrupt   # Ctrl-C while trial 2 starts

    with pytest.raises(KeyboardInterrupt):
        tune("plain.py", trials=3, num_models=N, dataset="digits", cache_dir=str(cache), workers=1, progress=False,
             log=interrupt_at_trial_2)
    first = _study(cache).trials
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL"]
    assert first[0].params == {"lr": 0.01, "steps": 2}   # the first trial is the defaults
    before = _runs(cache)
    assert len(before) == N

    assert main(["tune", *common]) == 0
    printed = capsys.readouterr().out
    assert "(1 of 3 trials finished)" in printed
    assert "trial 2/3:" in printed and "trial 3/3:" in printed and "trial 4/3" not in printed
    resumed = _study(cache).trials
    assert [t.state.name for t in resumed] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert resumed[2].params == first[1].params   # the interrupted options ran again
    after = _runs(cache)
    assert {path: after[path] for path in before} == before   # the finished trial's models were not made again
    distinct = {tuple(sorted(t.params.items())) for t in resumed if t.state.name == "COMPLETE"}
    assert len(after) == N * len(distinct)

    best = max((t for t in resumed if t.state.name == "COMPLETE"), key=lambda t: t.value)
    command = (f"unlearning-mock --dataset digits --num-models 512 --seed 0 --submission plain.py "
               f"--submission-option lr={best.params['lr']!r} --submission-option steps={best.params['steps']}")
    assert command in printed
    folder = tmp_path / "outputs" / f"tune-digits-plain-n{N}-seed1"
    trials = pd.read_csv(folder / "trials.csv")
    assert list(trials["state"]) == ["scored", "interrupted", "scored", "scored"]
    assert json.loads((folder / "best.json").read_text())["command"] == command
    assert (folder / "tune.png").stat().st_size > 0

    # the same command again: the study is complete, nothing runs
    assert main(["tune", *common]) == 0
    assert "(3 of 3 trials finished)" in capsys.readouterr().out and _runs(cache) == after


@pytest.mark.slow
def test_a_trial_over_the_time_budget_is_infeasible_not_a_score(tmp_path, cache_dir):
    path = tmp_path / "plain.py"
    path.write_text(USER_METHOD)
    result = tune(str(path), trials=1, time_budget=1e-5, num_models=N, dataset="digits", cache_dir=str(cache_dir),
                  output_dir=str(tmp_path / "out"), workers=1, progress=False, log=lambda *_: None)
    assert result.best_options is None and result.command is None and result.counted == 1
    (row,) = result.trials.to_dict("records")
    assert row["state"] == "infeasible (over the time budget)" and row["score"] is None
    assert row["time_fraction"] > 1e-5


@pytest.mark.slow
def test_the_tuned_leaderboard_shows_published_and_tuned_rows_side_by_side(tmp_path, cache_dir, capsys):
    tuned = tmp_path / "digits.json"
    assert main(["tune", "--method", "ft-kaggle", "--only", "lr", "--trials", "2", "--num-models", str(N),
                 "--dataset", "digits", "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path), "--workers", "1",
                 "--quiet", "--record", str(tuned)]) == 0
    (entry,) = read_tuned(tuned, "digits").values()
    assert entry["trials"] == 2 and entry["tuning_seed"] == 1 and entry["num_models"] == N
    assert sum(entry["trial_states"].values()) == 2 and entry["best_trial"] in (1, 2)
    assert entry["defaults_score"] is None or entry["defaults_score"] <= entry["tuning_score"]
    assert entry["command"].startswith("unlearning-mock tune --method ft-kaggle --dataset digits --trials 2")
    capsys.readouterr()

    assert main(["leaderboard", "--methods", "ft-kaggle", "--tuned", str(tuned), "--num-models", "8", "--dataset",
                 "digits", "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path), "--workers", "1", "--quiet",
                 "--no-baseline", "--bootstrap", "5"]) == 0
    printed = capsys.readouterr().out
    assert "ft-kaggle (tuned)" in printed and "published and tuned options side by side" in printed
    assert f"Every tuned row: the best of 2 trials at N = {N} on tuning seed 1" in printed
    assert "Published and tuned rows scored at N = 8 on seed 0." in printed
    folder = tmp_path / "leaderboard-digits-n8-seed0"
    board = pd.read_csv(folder / "leaderboard.csv").set_index("method")
    (row,) = pd.read_csv(folder / "tuned.csv").to_dict("records")
    assert row["published"] == pytest.approx(board.loc["ft-kaggle", "final_score"])
    assert row["tuned"] == pytest.approx(board.loc["ft-kaggle (tuned)", "final_score"])
    assert row["options"].startswith("lr=")
    assert "ft-kaggle" in (folder / "tuned.md").read_text()
    # the API: the same rows (the runs come from the cache)
    board = leaderboard(["ft-kaggle"], tuned=str(tuned), num_models=8, dataset="digits", cache_dir=str(cache_dir),
                        output_dir=str(tmp_path / "api"), workers=1, progress=False, baseline=False, bootstrap=5,
                        log=lambda *_: None)
    assert list(board.comparison["method"]) == ["ft-kaggle"]
    assert board.comparison.loc[0, "tuned"] == pytest.approx(row["tuned"])
    # tuned options equal to the published ones (no trial beat the defaults): the tuned row reuses the published runs
    ga = get_entry("ga")
    published = {**read_entry_point(method_from_spec(ga.module, ga.options), load_setting("digits").profile).defaults,
                 **ga.options}
    record_tuned(tuned, "digits", "ga", {**entry, "options": published})   # every option written out, as a study does
    board = leaderboard(["ga"], tuned=str(tuned), num_models=8, dataset="digits", cache_dir=str(cache_dir),
                        output_dir=str(tmp_path / "api"), workers=1, progress=False, baseline=False, bootstrap=5,
                        log=lambda *_: None)
    assert board.comparison.loc[0, "tuned"] == board.comparison.loc[0, "published"]
    runs = [folder.name for folder in (cache_dir / "runs").iterdir()]
    # ft-kaggle's tuned row has runs of its own unless its defaults (trial 1) were its best trial
    assert bool([name for name in runs if name.startswith("digits-ft-kaggle__tuned_-")]) == (entry["best_trial"] != 1)
    assert [name for name in runs if name.startswith("digits-ga-")]
    assert not [name for name in runs if name.startswith("digits-ga__tuned_-")]
    # never on the seed the options were tuned on
    with pytest.raises(ValueError, match="seed 1 is the tuning seed of the tuned options of ft-kaggle"):
        leaderboard(["ft-kaggle"], tuned=str(tuned), seed=1, num_models=8, dataset="digits", cache_dir=str(cache_dir),
                    log=lambda *_: None)


def test_an_evaluation_that_does_not_tune_never_imports_optuna():
    code = ("import sys; from unlearning_mock.mock_evaluator import api, cli, leaderboard; "
            "cli._parser('evaluate'); cli._parser('leaderboard'); print('optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
