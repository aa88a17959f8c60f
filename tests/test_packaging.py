"""The tool as users install it: pyproject.toml agrees with requirements.txt, the wheel holds every module the
command imports, and the installed command runs from an empty folder elsewhere, writing ./outputs and reusing
its cache."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.sources import PACKAGE, PROJECT_PACKAGES, PROJECT_ROOT, imported_names

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _requirement_lines(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.sub(r"\s+", "", line) for line in lines if line}


def test_requirements_txt_agrees_with_pyproject():
    project = PYPROJECT["project"]
    declared = {re.sub(r"\s+", "", d) for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    assert _requirement_lines(PROJECT_ROOT / "requirements.txt") == declared
    ray = {re.sub(r"\s+", "", d) for d in project["optional-dependencies"]["ray"]}
    assert _requirement_lines(PROJECT_ROOT / "requirements-ray.txt") == ray


def test_pyproject_lists_every_package_of_the_tree():
    """A sub-room added to the tree but not to pyproject.toml would be missing from the wheel."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {".".join([PACKAGE, *init.parent.relative_to(PROJECT_ROOT).parts])
               for folder in PROJECT_PACKAGES for init in (PROJECT_ROOT / folder).rglob("__init__.py")}
    assert on_disk == listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the project's files (setuptools writes build/ next to the sources)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in PROJECT_PACKAGES:
        shutil.copytree(PROJECT_ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True, cwd=out)
    (path,) = out.glob("unlearning_mock-*.whl")
    return path


def test_the_wheel_holds_every_module_and_file_the_command_needs(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        sources = {name: archive.read(name).decode() for name in names if name.endswith(".py")}
    tracked = {f"{PACKAGE}/{path.relative_to(PROJECT_ROOT).as_posix()}"
               for folder in PROJECT_PACKAGES for path in (PROJECT_ROOT / folder).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    assert tracked <= names, f"not in the wheel: {sorted(tracked - names)}"
    assert not any(name.startswith(("starter_kit/", "submission/", "methods/", "mock_evaluator/")) for name in names), \
        "a project folder was installed under its bare name: it would shadow a user's own folder"
    modules = {name[:-3].replace("/", ".").removesuffix(".__init__") for name in sources}
    for name, source in sources.items():
        package = name[:-3].replace("/", ".").rsplit(".", 1)[0]
        for imported in imported_names(ast.parse(source), package):
            if imported.split(".")[0] == PACKAGE:
                parent = imported.rsplit(".", 1)[0]   # from X import y: y may be a name, X must be a module
                assert imported in modules or parent in modules, f"{name} imports {imported}, not in the wheel"
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "unlearning-mock = unlearning_mock.mock_evaluator.cli:main" in archive.read(metadata).decode()




def _cache_files(cache: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in cache.rglob("*") if path.is_file()}


@pytest.mark.packaging
def test_the_installed_command_runs_from_an_empty_folder(wheel, tmp_path, one_step_source):
    """pip-install the wheel into a fresh environment (its dependencies borrowed from this one), then from an
    empty folder elsewhere: the default submission, then a file of the folder's own, against one cache."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                           text=True).strip())
    # this environment's packages (torch ...) as a plain path: its .pth files (the clone's editable finder) are not run
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
                   check=True)
    work, cache = tmp_path / "elsewhere", tmp_path / "cache"
    work.mkdir()
    (work / "my_method.py").write_text(one_step_source)
    (work / "submission").mkdir()   # a user's own folder named like the project's: must not shadow or be shadowed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"UNLEARNING_CACHE_DIR": str(cache)}
    command = [str(env_dir / "bin" / "unlearning-mock"), "--dataset", "digits", "--num-models", "4", "--quiet", "--warn-only", "--workers", "1"]
    first = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"cache: {cache}" in first.stdout
    (default_run,) = (work / "outputs").iterdir()
    summary = pd.read_csv(default_run / "summary.csv")
    assert {"unlearning", "baseline", "oracle reference"} <= set(summary["method"])
    where = subprocess.check_output([str(python), "-c", "import unlearning_mock.submission.unlearning as m; print(m.__file__)"],
                                    cwd=work, env=env, text=True)
    assert where.startswith(str(purelib)), where   # the installed copy, not the clone

    before = _cache_files(cache)
    second = subprocess.run(command + ["--submission", "my_method.py"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training the original model" not in second.stdout
    after = _cache_files(cache)
    assert all(after.get(path) == mtime for path, mtime in before.items()), "the second run redid cached work"
    new = [path.relative_to(cache) for path in set(after) - set(before)]
    assert new and all(path.parts[0] == "runs" and "my_method" in path.parts[1] for path in new), new
    assert (work / "outputs" / "digits-my_method-n4-seed0" / "summary.csv").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["my_method.py", "outputs", "submission"]
