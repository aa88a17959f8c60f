"""A method is a value: several methods in one run, options, fingerprints that cannot go stale, common
random numbers, validation, exit codes (real digits data, N = 8)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from testing_helpers import write

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.method import method_from_spec, parse_option
from unlearning_mock.mock_evaluator.sources import import_closure
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import Recipe

N = 8
ROOT = Path(__file__).resolve().parents[1]


def run_cli(out, cache_dir, *extra, name="run"):
    return main(["--dataset", "digits", "--num-models", str(N), "--cache-dir", str(cache_dir), "--output-dir", str(out), "--run-name", name,
                 "--quiet", "--workers", "1", "--attack-models", "2", "--no-baseline", "--warn-only", *extra])


# A submission that logs every call (its seed and options) to a file and imports a helper of its own folder.
LOGGING_SUBMISSION = '''
    import json
    import torch
    from helper import SCALE
    from unlearning_mock.starter_kit.batches import split_batch

    def unlearning(net, retain_loader, forget_loader, validation_loader, scale=1.0, log=None):
        first = split_batch(next(iter(retain_loader)))[1][:5].tolist()
        with open(log, "a") as handle:
            handle.write(json.dumps({"seed": torch.initial_seed(), "draw": torch.rand(1).item(),
                                     "batch": first, "scale": scale}) + "\\n")
        with torch.no_grad():
            net.fc.bias.mul_(SCALE * scale)
        return net
'''


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_parse_option():
    assert parse_option("lr=0.02") == ("lr", 0.02)
    assert parse_option("variant=seed") == ("variant", "seed")
    assert parse_option("stages=('layer1',)") == ("stages", ("layer1",))
    with pytest.raises(ValueError, match="key=value"):
        parse_option("lr")


def test_fingerprint_covers_the_import_closure(tmp_path):
    sub = write(tmp_path / "s" / "sub.py", LOGGING_SUBMISSION)
    helper = write(tmp_path / "s" / "helper.py", "SCALE = 1.0\n")
    closure = import_closure([Path(sub)])
    assert Path(helper).resolve() in closure and ROOT / "starter_kit" / "batches.py" in closure
    assert all("torch" not in p.parts for p in closure)
    first = method_from_spec(sub)
    assert method_from_spec(sub).fingerprint == first.fingerprint
    assert method_from_spec(sub, {"scale": 2.0}).fingerprint != first.fingerprint
    assert method_from_spec(sub, {"scale": 2.0}).name == "sub[scale=2.0]"
    write(tmp_path / "s" / "helper.py", "SCALE = 1.5\n")
    assert method_from_spec(sub).fingerprint != first.fingerprint
    write(tmp_path / "s" / "unrelated.py", "X = 1\n")
    assert method_from_spec(sub).fingerprint == method_from_spec(sub).fingerprint


def test_a_project_module_is_a_method():
    method = method_from_spec("submission.unlearning", {"variant": "seed"})
    assert method.kind == "module" and method.name == "unlearning[variant=seed]"
    assert ROOT / "starter_kit" / "unlearning_steps.py" in import_closure([ROOT / "submission" / "unlearning.py"])
    # building a method runs none of its code; loading it (in a worker's child process) finds the bad option
    from unlearning_mock.mock_evaluator.engine.jobs import method_problem

    assert "does not accept option" in method_problem(method_from_spec("submission.unlearning", {"no_such_option": 1}))
    with pytest.raises(ValueError, match="neither a .py file nor an importable module"):
        method_from_spec("no_such_module_here")


@pytest.mark.slow
def test_two_methods_one_run_common_seeds_and_stale_cache(tmp_path, cache_dir):
    log = tmp_path / "calls.jsonl"
    sub = write(tmp_path / "s" / "sub.py", LOGGING_SUBMISSION)
    write(tmp_path / "s" / "helper.py", "SCALE = 1.0\n")
    other = write(tmp_path / "o" / "other.py", LOGGING_SUBMISSION.replace("from helper import SCALE", "SCALE = 0.5"))
    args = ["--submission", sub, "--submission-option", f"log={str(log)!r}", "--submission-option", "scale=2.0",
            "--submission", other, "--submission-option", f"log={str(log)!r}"]
    assert run_cli(tmp_path, cache_dir, *args) == 0
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    names = set(summary["method"])
    assert {"oracle reference", "original (not unlearned)"} <= names and len(names) == 4
    first = calls(log)
    assert len(first) == 2 * N and {c["scale"] for c in first} == {2.0, 1.0}
    # common random numbers: run i of both methods saw the same seed, the same draw and the same data order
    by_seed = {}
    for c in first:
        by_seed.setdefault(c["seed"], []).append((c["draw"], c["batch"]))
    assert len(by_seed) == N and all(len(v) == 2 and v[0] == v[1] for v in by_seed.values())
    # a second run with only an unrelated file new in the submission's folder: everything is reused (the runs'
    # keys are stable from run to run, and a file the submission does not import is not part of them)
    log.unlink()
    write(tmp_path / "s" / "notes.py", "TEXT = 'unrelated'\n")
    assert run_cli(tmp_path, cache_dir, *args) == 0 and calls(log) == []
    # the helper that sub.py imports changes: sub's runs are redone, other's are not
    write(tmp_path / "s" / "helper.py", "SCALE = 1.25\n")
    assert run_cli(tmp_path, cache_dir, *args) == 0
    assert len(calls(log)) == N and {c["scale"] for c in calls(log)} == {2.0}


@pytest.mark.slow
def test_exit_code_covers_every_method(tmp_path, cache_dir, capsys):
    good = write(tmp_path / "good.py", "def unlearning(net, retain_loader, forget_loader, validation_loader):\n"
                                      "    return net\n")
    bad = write(tmp_path / "bad.py", "def unlearning(net, retain_loader, forget_loader, validation_loader):\n"
                                    "    raise RuntimeError('boom')\n")
    assert run_cli(tmp_path, cache_dir, "--submission", good, "--submission", bad, name="mixed") == 2
    err = capsys.readouterr().err
    assert "bad failed on model 0: unlearning() raised RuntimeError: boom" in err
    summary = pd.read_csv(tmp_path / "mixed" / "summary.csv")
    assert "good" in set(summary["method"]) and "bad" not in set(summary["method"])


@pytest.mark.slow
def test_bad_options_fail_before_training(tmp_path, capsys):
    empty_cache = tmp_path / "cache"
    assert run_cli(tmp_path, empty_cache, "--submission-option", "bogus=1") == 2
    assert "does not accept option(s) ['bogus']" in capsys.readouterr().err
    assert run_cli(tmp_path, empty_cache, "--epochs", "5") == 2
    assert "the digits setting does not take the option(s) epochs" in capsys.readouterr().err
    # a reference method declares its options: a typo is refused, by the CLI and by the API
    assert run_cli(tmp_path, empty_cache, "--submission", "methods.fcs", "--submission-option", "retain_lr=0.1",
                   "--submission-option", "retain_epoch_per_round=2") == 2
    err = capsys.readouterr().err
    assert "fcs[retain_epoch_per_round=2,retain_lr=0.1]: unlearning() does not accept option(s) " \
           "['retain_epoch_per_round']" in err and err.count("fcs[") == 1, err
    from unlearning_mock.mock_evaluator import api
    with pytest.raises(ValueError, match=r"does not accept option\(s\) \['lrr'\]"):
        api.evaluate(("methods.ga", {"lrr": 0.1}), dataset="digits", num_models=N, cache_dir=str(empty_cache), log=lambda *_: None)
    assert not empty_cache.exists()  # nothing was trained


def test_settings_and_recipes_reject_what_they_do_not_take():
    with pytest.raises(ValueError, match="kaggle setting does not take the option.*download"):
        load_setting("kaggle", "somewhere", download=True)
    with pytest.raises(ValueError, match="schedule"):
        Recipe(schedule="cosin")
    with pytest.raises(ValueError, match="best_validation_from"):
        Recipe(epochs=3, best_validation_from=4)
