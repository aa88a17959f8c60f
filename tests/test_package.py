"""The Kaggle notebook: its structure, the inlining, the empty.txt rule, and a headless run with 2 checkpoints."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from unlearning_mock.mock_evaluator.kaggle.checkpoint_zip import read_checkpoints
from unlearning_mock.starter_kit.kaggle import load_kaggle_data
from unlearning_mock.mock_evaluator.kaggle.mock_input import write_mock_layout
from unlearning_mock.starter_kit.models import resnet18
from unlearning_mock.mock_evaluator.kaggle import notebook as package
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.mock_evaluator.kaggle.notebook import InlineError, build_notebook, inline_sources, main, run_notebook, write_notebook

TINY = {"train": 40, "validation": 10, "test": 10}
PROJECT_IMPORT = re.compile(r"^\s*(from|import)\s+(unlearning_mock\.)?(starter_kit|submission|methods|mock_evaluator)\b", re.MULTILINE)


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory):
    root = write_mock_layout(tmp_path_factory.mktemp("kaggle") / "input", seed=1, max_images=TINY)
    torch.manual_seed(0)
    torch.save(resnet18(num_classes=10).state_dict(), root / "original_model.pth")  # untrained is fine here
    return root


@pytest.fixture(scope="module")
def notebook():
    return build_notebook()


def code(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_structure_and_validation(notebook, tmp_path):
    nbformat.validate(notebook)
    assert notebook.nbformat == 4 and notebook.metadata.kernelspec.name == "python3"
    path = write_notebook(tmp_path / "dist")
    assert path == tmp_path / "dist" / "submission.ipynb"
    on_disk = nbformat.read(str(path), as_version=4)
    nbformat.validate(on_disk)
    assert on_disk == notebook  # rebuilding gives the same file
    sources = code(notebook)
    joined = "\n".join(sources)
    assert "/kaggle/input/neurips-2023-machine-unlearning" in joined and package.ROOT_ENV in joined
    assert "NUM_CHECKPOINTS = 512" in joined and package.COUNT_ENV in joined
    assert "keywords = dict(UNLEARNING_OPTIONS)" in joined   # the options, plus the profile where declared
    assert "unlearning(net, retain_loader, forget_loader, validation_loader, **keywords)" in joined
    assert joined.index("class SettingProfile") < joined.index("def setting_profile(")
    assert "unlearned_checkpoint_{i}.pth" in joined and "submission.zip" in joined and "empty.txt" in joined
    assert "tempfile.mkdtemp" in joined and "resnet18(weights=None, num_classes=10)" in joined
    for source in sources:
        ast.parse(source)
    # the inlined source: split_batch from starter_kit/batches.py precedes SRFL, no project imports remain
    assert not PROJECT_IMPORT.search(joined), PROJECT_IMPORT.search(joined)
    assert joined.index("def split_batch") < joined.index("def unlearning(")
    assert "def srfl_loss" in joined


def _write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package_dir in ("starter_kit", "submission"):
        (root / package_dir).mkdir(exist_ok=True)
        (root / package_dir / "__init__.py").touch()
    return root


def test_inlining_rules(tmp_path):
    root = _write(tmp_path / "ok", {
        "starter_kit/helpers.py": "from unlearning_mock.starter_kit.base import BASE as B0\n\ndef helper():\n    return B0 + 1\n\n"
                                  "if __name__ == '__main__':\n    print('never in the notebook')\n",
        "starter_kit/base.py": '"""Doc."""\nfrom __future__ import annotations\nBASE = 41\n',
        "submission/unlearning.py": "from unlearning_mock.starter_kit.helpers import (\n    helper,\n)\n\n"
                                    "def unlearning(net, retain_loader, forget_loader, validation_loader):\n"
                                    "    from unlearning_mock.starter_kit.base import BASE\n    return helper() + BASE\n",
    })
    modules = inline_sources("unlearning_mock.submission.unlearning", root)
    assert [name.split(".", 1)[1] for name, _ in modules] == ["starter_kit.base", "starter_kit.helpers", "submission.unlearning"]
    namespace: dict = {}
    for name, source in modules:
        assert not PROJECT_IMPORT.search(source), source
        exec(compile(source, name, "exec"), namespace)
    assert namespace["unlearning"](None, None, None, None) == 83
    assert "never in the notebook" not in modules[1][1]


@pytest.mark.parametrize("files, message", [
    ({"submission/unlearning.py": "from .other import x\ndef unlearning(*a): pass\n"}, "relative import"),
    ({"submission/unlearning.py": "import unlearning_mock.starter_kit.base\ndef unlearning(*a): pass\n",
      "starter_kit/base.py": "X = 1\n"}, "'import unlearning_mock.starter_kit.base' cannot be inlined"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit import base\ndef unlearning(*a): pass\n",
      "starter_kit/base.py": "X = 1\n"}, "imports a module"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit.base import *\ndef unlearning(*a): pass\n",
      "starter_kit/base.py": "X = 1\n"}, r"import \*"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit.nothing import x\ndef unlearning(*a): pass\n"}, "not found"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit.base import X\nX2 = 2\ndef unlearning(*a): pass\n",
      "starter_kit/base.py": "def unlearning(): pass\nX = 1\n"}, "both define 'unlearning'"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit.base import X\n",
      "starter_kit/base.py": "from unlearning_mock.submission.unlearning import Y\nX = 1\n"}, "circular"),
    ({"submission/unlearning.py": "def other(): pass\n"}, "must define a top-level function 'unlearning'"),
    ({"submission/unlearning.py": "from unlearning_mock.starter_kit.base import X; Y = 2\ndef unlearning(*a): pass\n",
      "starter_kit/base.py": "X = 1\n"}, "on a line of its own"),
])
def test_inlining_errors(tmp_path, files, message):
    root = _write(tmp_path / "bad", files)
    with pytest.raises(InlineError, match=message):
        inline_sources("unlearning_mock.submission.unlearning", root)


def _run_cells_in_process(notebook, cwd: Path, env: dict, upto: str | None = None) -> dict:
    """Execute the code cells in this process (fast; for rules that need no kernel)."""
    namespace: dict = {"__name__": "__main__"}
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    os.chdir(cwd)
    os.environ.update(env)
    try:
        for source in code(notebook):
            if upto is not None and upto in source:
                break
            exec(compile(source, "<cell>", "exec"), namespace)
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    return namespace


def test_empty_txt_rule(notebook, tmp_path):
    root = tmp_path / "public_mock"
    root.mkdir()
    (root / "empty.txt").touch()
    work = tmp_path / "work"
    work.mkdir()
    namespace = _run_cells_in_process(notebook, work, {package.ROOT_ENV: str(root), package.COUNT_ENV: "3"})
    assert namespace["NUM_CHECKPOINTS"] == 3
    assert (work / "submission.zip").stat().st_size == 0
    assert sorted(p.name for p in work.iterdir()) == ["submission.zip"]


def test_count_override_ignored_on_kaggle(notebook, tmp_path):
    env = {package.ROOT_ENV: str(tmp_path), package.COUNT_ENV: "2", "KAGGLE_KERNEL_RUN_TYPE": "Batch"}
    namespace = _run_cells_in_process(notebook, tmp_path, env, upto="def load_example")
    assert namespace["NUM_CHECKPOINTS"] == 512


def test_notebook_loaders_match_the_layout_loader(notebook, tiny_input, tmp_path):
    namespace = _run_cells_in_process(notebook, tmp_path, {package.ROOT_ENV: str(tiny_input)},
                                      upto='os.path.join(INPUT_ROOT, "empty.txt")')
    retain_loader, forget_loader, validation_loader = namespace["get_dataset"](64)
    # the profile the notebook passes to an unlearning() that declares it: the evaluator's for this input
    notebook_profile = namespace["setting_profile"](retain_loader, forget_loader)
    assert dataclasses.asdict(notebook_profile) == dataclasses.asdict(load_setting("kaggle", tiny_input).profile)
    data = load_kaggle_data(tiny_input)
    batch = next(iter(validation_loader))                      # not shuffled: the CSV's order
    assert batch["image"].dtype == torch.float32 and tuple(batch["image"].shape[1:]) == (3, 32, 32)
    assert torch.equal(batch["image"], data.val_inputs) and torch.equal(batch["age_group"], data.val_targets)
    assert {"image", "age_group", "age", "person_id", "image_id"} <= set(batch)
    assert len(retain_loader.dataset) == len(data.retain_idx) and len(forget_loader.dataset) == len(data.forget_idx)


@pytest.mark.packaging
def test_headless_run_with_two_checkpoints(tiny_input, tmp_path):
    path = write_notebook(tmp_path / "dist")
    zip_path = run_notebook(path, tiny_input, count=2, log=lambda *_: None)
    assert zip_path == tmp_path / "dist" / "submission.zip"
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == ["unlearned_checkpoint_0.pth", "unlearned_checkpoint_1.pth"]
    states = read_checkpoints(zip_path, lambda: resnet18(num_classes=10), expected_count=2)
    original = torch.load(tiny_input / "original_model.pth", weights_only=True)
    assert any(not torch.equal(states[0][k], original[k]) for k in original)  # unlearning changed the weights
    assert all(torch.equal(states[0][k], original[k]) for k in original if k.startswith("fc."))  # SRFL: layer1-2 only
    executed = nbformat.read(str(tmp_path / "dist" / package.EXECUTED_NAME), as_version=4)
    assert "checkpoint 2/2 saved" in str(executed.cells[-1].outputs)
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == [
        package.EXECUTED_NAME, "submission.ipynb", "submission.zip"]  # the checkpoints lived elsewhere


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "dist")]) == 0
    assert (tmp_path / "dist" / "submission.ipynb").is_file()
    assert main(["--out", str(tmp_path / "dist"), "--run", "--input", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_packaging_another_method_with_options(tmp_path, capsys):
    out = tmp_path / "dist"
    assert main(["--out", str(out), "--submission", "submission/unlearning.py", "--option", "variant=seed",
                 "--option", "epochs=3"]) == 0
    import nbformat

    notebook = nbformat.read(str(out / "submission.ipynb"), as_version=4)
    sources = "\n".join(cell.source for cell in notebook.cells)
    assert "UNLEARNING_OPTIONS = {'epochs': 3, 'variant': 'seed'}" in sources   # sorted: one file whatever the order
    assert "keywords = dict(UNLEARNING_OPTIONS)" in sources and "**keywords)" in sources
    assert main(["--out", str(out), "--option", "no_such_option=1"]) == 2
    assert "does not accept option(s) ['no_such_option']" in capsys.readouterr().err
    outside = tmp_path / "mine.py"
    outside.write_text("def unlearning(net, retain_loader, forget_loader, validation_loader):\n    return net\n")
    assert main(["--out", str(out), "--submission", str(outside)]) == 0   # a user's own file, outside the tool
    sources = "\n".join(cell.source for cell in nbformat.read(str(out / "submission.ipynb"), as_version=4).cells)
    assert "# ---- inlined from mine.py ----" in sources and "return net" in sources
    (tmp_path / "helpers.py").write_text("SCALE = 1.0\n")
    outside.write_text("from helpers import SCALE\n\ndef unlearning(net, retain_loader, forget_loader, "
                       "validation_loader):\n    return net\n")
    assert main(["--out", str(out), "--submission", str(outside)]) == 2
    assert "helper from the submission's own folder" in capsys.readouterr().err
