"""Adding a reference method is one new file under methods/: the registry discovers it, the tool lists it and the
leaderboard scores it, with no other file edited."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from unlearning_mock.methods.registry import discover

METHODS_FOLDER = Path(importlib.import_module("unlearning_mock.methods").__file__).parent

PROBE_SOURCE = '''"""A probe method: a short retain fine-tune."""

from __future__ import annotations

from unlearning_mock.starter_kit.baseline import finetune_unlearning
from unlearning_mock.starter_kit.method_declaration import unlearning_method

PUBLISHED = dict(epochs=3.0, lr=1e-3, momentum=0.9, weight_decay=5e-4)


@unlearning_method("{name}", PUBLISHED, family="classic", description="{description}")
def unlearning(net, retain_loader, forget_loader, validation_loader, o, profile):
    return finetune_unlearning(net, retain_loader, **o)
'''


@pytest.fixture
def probe_method():
    """``(name, description)`` of a method declared in a new file of methods/, removed afterwards."""
    stem = f"probe_{uuid.uuid4().hex[:8]}"
    name, description = stem.replace("_", "-"), f"a retain fine-tune written by the test {stem}"
    path = METHODS_FOLDER / f"{stem}.py"
    path.write_text(PROBE_SOURCE.format(name=name, description=description))
    importlib.invalidate_caches()
    try:
        yield name, description
    finally:
        path.unlink()
        for cached in (METHODS_FOLDER / "__pycache__").glob(f"{stem}.*"):
            cached.unlink()
        sys.modules.pop(f"unlearning_mock.methods.{stem}", None)


def tool(*arguments: str) -> subprocess.CompletedProcess:
    """``unlearning-mock ARGUMENTS`` in a fresh interpreter (its registry discovers the methods anew)."""
    return subprocess.run([sys.executable, "-m", "unlearning_mock.mock_evaluator", *arguments],
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.training
def test_a_new_file_in_methods_is_discovered_listed_and_scored(probe_method, tmp_path, cache_dir):
    name, description = probe_method
    entry = {entry.name: entry for entry in discover()}[name]
    assert (entry.family, entry.description, entry.options) == ("classic", description, {})
    assert entry.module == f"unlearning_mock.methods.{name.replace('-', '_')}"

    listing = tool("methods")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    listed = [line.split()[0] for line in lines[1:]]
    assert name in listed and description in lines[1 + listed.index(name)]
    assert listed.index(name) > listed.index("bad-teacher")      # after the classic methods declared with an order

    run = tool("leaderboard", "--dataset", "digits", "--methods", name, "--num-models", "2", "--no-baseline",
               "--executor", "inline", "--attack-models", "1", "--bootstrap", "2", "--quiet",
               "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    frame = pd.read_csv(tmp_path / "leaderboard-digits-n2-seed0" / "leaderboard.csv").set_index("method")
    assert frame.loc[name, "family"] == "classic" and frame.loc[name, "description"] == description
    assert 0 <= frame.loc[name, "retain_acc"] <= 1 and name in run.stdout


def test_the_probe_is_gone_after_the_test():
    assert not list(METHODS_FOLDER.glob("probe_*.py"))
    assert not any(entry.name.startswith("probe-") for entry in discover())
