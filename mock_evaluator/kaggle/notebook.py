"""Build the Kaggle notebook from ``submission/unlearning.py`` (or any method file of the project), and
run it headless like Kaggle would.

    python -m mock_evaluator.kaggle.notebook [--out dist]                      # -> dist/submission.ipynb
    python -m mock_evaluator.kaggle.notebook --submission submission/alif.py --option target=unseen
    python -m mock_evaluator.kaggle.notebook --run --input mock_kaggle_input --count 2 [--out dist]
                                                                   # -> dist/submission.zip

``--submission`` takes a .py file, a Jupyter (Kaggle) notebook -- its kept code, as
:mod:`mock_evaluator.kaggle.notebook_source` extracts it -- or a module name; ``--option key=value`` (repeatable,
values as Python literals) fixes keyword options of its ``unlearning``, written into the notebook's
``UNLEARNING_OPTIONS`` cell and passed on every call; ``--batches kaggle|tuples`` (``UNLEARNING_BATCHES``) says
whether the notebook's loaders yield the competition's dicts (the default) or ``(image, age_group)`` pairs.
Scored back with ``unlearning-mock --submission submission.ipynb``, the notebook's options and batch format apply.

The notebook has the competition's cells: imports; the input root
(``/kaggle/input/neurips-2023-machine-unlearning/``, overridable with ``UNLEARNING_KAGGLE_ROOT``);
the submission's source, inlined: ``submission/unlearning.py`` and, recursively, every project module
it imports (``from starter_kit.X import ...`` / ``from submission.X import ...``), dependencies
first, with those import statements removed; the data loading (dict batches of 64 as Kaggle's:
``image`` float32 0-255 3x32x32, ``age_group``, ``age``, ``person_id``, ``image_id``, or pairs; retain and
forget shuffled, validation not); and the loop: N times (512; ``UNLEARNING_NUM_CHECKPOINTS``
overrides it for local runs and is ignored on Kaggle) load ``original_model.pth`` into
``resnet18(num_classes=10)``, call ``unlearning(net, retain_loader, forget_loader,
validation_loader)``, save ``unlearned_checkpoint_{i}.pth`` into a temporary folder outside the
working directory; raise unless exactly N checkpoints exist; zip them into ``submission.zip``. With
``empty.txt`` in the input root (Kaggle's public mock run) it only creates an empty (0-byte)
``submission.zip``, as the organisers' notebook did with ``touch``.

``--run`` rebuilds the notebook, then executes it with nbclient in ``--out`` as the working
directory, with a kernel on this interpreter (``sys.executable -m ipykernel_launcher``), and writes
the executed copy to ``submission.executed.ipynb`` next to it.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
import time
from pathlib import Path

from unlearning_mock.mock_evaluator.kaggle.notebook_source import read_notebook
from unlearning_mock.mock_evaluator.sources import (PACKAGE, PROJECT_PACKAGES, PROJECT_ROOT, is_project_module, module_path as
                                                     own_module_path, project_module_path)
from unlearning_mock.starter_kit.batch_format import BATCH_FORMATS, KAGGLE, check_format

ENTRY_MODULE = f"{PACKAGE}.submission.unlearning"
PROFILE_MODULE = f"{PACKAGE}.starter_kit.profile"   # always inlined: the notebook builds the setting's profile
ENTRY_FUNCTION = "unlearning"
DEFAULT_OUT = Path("dist")
NOTEBOOK_NAME = "submission.ipynb"
EXECUTED_NAME = "submission.executed.ipynb"
ROOT_ENV = "UNLEARNING_KAGGLE_ROOT"
COUNT_ENV = "UNLEARNING_NUM_CHECKPOINTS"
KAGGLE_ROOT = "/kaggle/input/neurips-2023-machine-unlearning"
NUM_CHECKPOINTS = 512


class InlineError(ValueError):
    """The submission imports something that cannot be inlined into the notebook."""


# ----------------------------------------------------------------------------------------------------
# Inlining the submission's project imports
# ----------------------------------------------------------------------------------------------------

def module_path(name: str, root: Path = PROJECT_ROOT) -> Path:
    """The file of project module ``name``; InlineError when there is none."""
    path = project_module_path(name, root)
    if path is None:
        raise InlineError(f"project module {name!r} not found under {root}")
    return path


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` at module level."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    return (len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _rewrite_module(name: str, root: Path) -> tuple[str, list[str]]:
    """(source with project imports and the main guard removed, the project modules it imports). ``name``: a
    project module, or the path of a user's own .py file or notebook (whose own-folder helpers cannot be inlined)."""
    own_file = name.endswith((".py", ".ipynb"))
    path = Path(name) if own_file else module_path(name, root)
    source = read_notebook(path).code if name.endswith(".ipynb") else path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise InlineError(f"{path} does not parse: {error}") from error
    lines = source.splitlines()
    edits: list[tuple[int, int, list[str]]] = []   # (first line, last line) 1-based inclusive -> new lines
    dependencies: list[str] = []

    def replace_statement(node: ast.stmt, new_lines: list[str]) -> None:
        first, last = node.lineno, node.end_lineno
        indent = lines[first - 1][:node.col_offset]
        if lines[first - 1][:node.col_offset].strip() or lines[last - 1][node.end_col_offset:].split("#")[0].strip():
            raise InlineError(f"{path}:{first}: put the project import on a line of its own (no ';')")
        edits.append((first, last, [indent + text for text in new_lines]))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise InlineError(f"{path}:{node.lineno}: relative import "
                                  f"'from {'.' * node.level}{node.module or ''} import ...' cannot be inlined; "
                                  "import from the package by name (from unlearning_mock.starter_kit.X import name)")
            if own_file and node.module and own_module_path(node.module, [path.parent], root) is not None:
                raise InlineError(f"{path}:{node.lineno}: 'from {node.module} import ...' imports a helper from the "
                                  "submission's own folder, which the notebook cannot ship: paste it into the file")
            if not node.module or not is_project_module(node.module):
                continue
            target = node.module
            for alias in node.names:
                if alias.name == "*":
                    raise InlineError(f"{path}:{node.lineno}: 'from {target} import *' cannot be inlined; "
                                      "import the names you use")
                submodule = f"{target}.{alias.name}"
                if project_module_path(submodule, root) is not None:
                    raise InlineError(f"{path}:{node.lineno}: 'from {target} import {alias.name}' imports a "
                                      f"module; import the names you use: from {submodule} import ...")
            dependencies.append(target)
            renames = [f"{alias.asname} = {alias.name}" for alias in node.names
                       if alias.asname and alias.asname != alias.name]
            replace_statement(node, renames or [f"pass  # inlined above: from {target} import "
                                                + ", ".join(a.name for a in node.names)])
        elif isinstance(node, ast.Import):
            project = [alias.name for alias in node.names if is_project_module(alias.name)]
            if project:
                raise InlineError(f"{path}:{node.lineno}: 'import {project[0]}' cannot be inlined; "
                                  f"use 'from {project[0]} import name' for the names you need")
    for node in tree.body:
        if _is_main_guard(node):
            edits.append((node.lineno, node.end_lineno, []))
    for first, last, new in sorted(edits, reverse=True):
        lines[first - 1:last] = new
    return "\n".join(lines).rstrip() + "\n", dependencies


def top_level_names(source: str) -> set[str]:
    """Names a module's top level defines (functions, classes, assignments; not imports)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return {name for name in names if not (name.startswith("__") and name.endswith("__"))}


def inline_sources(entry: str = ENTRY_MODULE, root: Path = PROJECT_ROOT, also=()) -> list[tuple[str, str]]:
    """``[(module name, rewritten source)]`` for the modules ``also``, ``entry`` and every project module they
    need, dependencies first (``entry`` last)."""
    ordered: list[tuple[str, str]] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise InlineError(f"circular project imports: {' -> '.join(visiting + [name])}")
        visiting.append(name)
        source, dependencies = _rewrite_module(name, root)
        for dependency in dependencies:
            visit(dependency)
        visiting.pop()
        done.add(name)
        ordered.append((name, source))

    for name in (*also, entry):
        visit(name)
    owner: dict[str, str] = {}
    for name, source in ordered:
        for defined in top_level_names(source):
            if defined in owner:
                raise InlineError(f"{name} and {owner[defined]} both define {defined!r} at top level; "
                                  "inlined into one notebook they would clash: rename one")
            owner[defined] = name
    if ENTRY_FUNCTION not in top_level_names(ordered[-1][1]):
        raise InlineError(f"{entry} must define a top-level function {ENTRY_FUNCTION!r}(net, retain_loader, "
                          "forget_loader, validation_loader)")
    return ordered


# ----------------------------------------------------------------------------------------------------
# The notebook
# ----------------------------------------------------------------------------------------------------

IMPORTS_CELL = '''\
import csv
import inspect
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.models import resnet18

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
print("Running on device:", DEVICE.upper())'''

CONFIG_CELL = f'''\
# The competition's input. {ROOT_ENV} points a local run at a folder in the same layout.
INPUT_ROOT = os.environ.get("{ROOT_ENV}", "{KAGGLE_ROOT}")

# Kaggle required exactly {NUM_CHECKPOINTS} checkpoints. {COUNT_ENV} lowers the count for local runs
# only: on Kaggle (KAGGLE_KERNEL_RUN_TYPE is set there) it is ignored.
NUM_CHECKPOINTS = {NUM_CHECKPOINTS}
if os.environ.get("{COUNT_ENV}"):
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        print("{COUNT_ENV} is ignored on Kaggle: writing {NUM_CHECKPOINTS} checkpoints")
    else:
        NUM_CHECKPOINTS = int(os.environ["{COUNT_ENV}"])
        if NUM_CHECKPOINTS < 1:
            raise ValueError("{COUNT_ENV} must be >= 1")
print("Input:", INPUT_ROOT, "| checkpoints:", NUM_CHECKPOINTS)'''

DATA_CELL = '''\
BATCH_SIZE = 64


def load_example(row):
    """One row of a split's CSV as Kaggle's dataset yields it; the image is read once, as uint8."""
    folder, name = row["image_id"].split("-")
    path = os.path.join(INPUT_ROOT, "images", folder, name + ".png")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return {
        "image": torch.from_numpy(pixels).permute(2, 0, 1),
        "image_id": row["image_id"],
        "age_group": torch.tensor(int(row["age_group"])),
        "age": torch.tensor(int(row["age"])),
        "person_id": int(row["person_id"]) if str(row["person_id"]).lstrip("-").isdigit() else row["person_id"],
    }


class HiddenDataset(Dataset):
    """A split of the hidden data set: dicts with the image as float32 0-255, 3x32x32 (or (image, age_group)
    pairs, as UNLEARNING_BATCHES says)."""

    def __init__(self, split="train"):
        super().__init__()
        with open(os.path.join(INPUT_ROOT, f"{split}.csv"), newline="") as handle:
            self.examples = [load_example(row) for row in csv.DictReader(handle)]
        if len(self.examples) == 0:
            raise ValueError(f"No examples in {split}.csv.")

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, idx):
        example = dict(self.examples[idx])
        example["image"] = example["image"].to(torch.float32)
        if UNLEARNING_BATCHES == "tuples":
            return example["image"], example["age_group"]
        return example


def get_dataset(batch_size):
    """The retain, forget and validation loaders (retain and forget shuffled)."""
    retain_ds = HiddenDataset(split="retain")
    forget_ds = HiddenDataset(split="forget")
    val_ds = HiddenDataset(split="validation")
    retain_loader = DataLoader(retain_ds, batch_size=batch_size, shuffle=True)
    forget_loader = DataLoader(forget_ds, batch_size=batch_size, shuffle=True)
    validation_loader = DataLoader(val_ds, batch_size=batch_size, shuffle=False)
    return retain_loader, forget_loader, validation_loader


def setting_profile(retain_loader, forget_loader):
    """The profile passed to an unlearning() that declares `profile` (starter_kit/profile.py): this data and
    the recipe its retrained models train with -- the organisers' (30 epochs at batch 64, class-weighted
    cross-entropy) on Kaggle, a local mock input's own (its mock_kaggle.json)."""
    recipe = {"epochs": 30, "batch_size": 64, "class_weighted": True}
    info = os.path.join(INPUT_ROOT, "mock_kaggle.json")
    if os.path.exists(info):
        with open(info) as handle:
            recipe = json.load(handle).get("oracle_recipe", recipe)
    forget_labels = [int(example["age_group"]) for example in forget_loader.dataset.examples]
    return SettingProfile.of("kaggle", 10, BATCH_SIZE, len(retain_loader.dataset), recipe["epochs"],
                             recipe["batch_size"], recipe.get("class_weighted", False), forget_labels)'''

MAIN_CELL = '''\
if os.path.exists(os.path.join(INPUT_ROOT, "empty.txt")):
    # Kaggle's public mock run: only an empty submission.zip, as the organisers' notebook did (touch).
    open("submission.zip", "wb").close()
    print("empty.txt found: wrote an empty submission.zip")
else:
    checkpoint_dir = tempfile.mkdtemp(prefix="unlearned_checkpoints_")
    working_dir = os.path.realpath(os.getcwd())
    if os.path.commonpath([os.path.realpath(checkpoint_dir), working_dir]) == working_dir:
        raise RuntimeError(f"the checkpoint folder {checkpoint_dir} must lie outside the working directory")
    try:
        retain_loader, forget_loader, validation_loader = get_dataset(BATCH_SIZE)
        net = resnet18(weights=None, num_classes=10)
        net.to(DEVICE)
        keywords = dict(UNLEARNING_OPTIONS)
        if "profile" in inspect.signature(unlearning).parameters:   # it reads the setting's profile
            keywords["profile"] = setting_profile(retain_loader, forget_loader)
        for i in range(NUM_CHECKPOINTS):
            net.load_state_dict(torch.load(os.path.join(INPUT_ROOT, "original_model.pth"),
                                           map_location=DEVICE, weights_only=True))
            unlearning(net, retain_loader, forget_loader, validation_loader, **keywords)
            state = net.state_dict()
            torch.save(state, os.path.join(checkpoint_dir, f"unlearned_checkpoint_{i}.pth"))
            print(f"checkpoint {i + 1}/{NUM_CHECKPOINTS} saved", flush=True)

        # Ensure that submission.zip will contain exactly NUM_CHECKPOINTS checkpoints.
        unlearned_ckpts = sorted(name for name in os.listdir(checkpoint_dir) if name.endswith(".pth"))
        if len(unlearned_ckpts) != NUM_CHECKPOINTS:
            raise RuntimeError(f"Expected exactly {NUM_CHECKPOINTS} checkpoints, found {len(unlearned_ckpts)}.")
        with zipfile.ZipFile("submission.zip.partial", "w") as archive:
            for name in unlearned_ckpts:
                archive.write(os.path.join(checkpoint_dir, name), arcname=name)
        os.replace("submission.zip.partial", "submission.zip")
        print(f"submission.zip written with {len(unlearned_ckpts)} checkpoints")
    finally:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)'''


def entry_module(submission: str, root: Path = PROJECT_ROOT) -> str:
    """What to inline first: the module name of a .py file inside the project (or of a module name; the tool's
    own by their short name too: ``submission.alif``), or the resolved path of a .py file or notebook of the
    user's own."""
    if submission.endswith(".ipynb"):
        return str(Path(submission).resolve())
    if not submission.endswith(".py"):
        return f"{PACKAGE}.{submission}" if submission.split(".")[0] in PROJECT_PACKAGES else submission
    path = Path(submission).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"submission file {path} does not exist")
    if not path.is_relative_to(root.resolve()):
        return str(path)
    return ".".join([PACKAGE, *path.relative_to(root.resolve()).with_suffix("").parts])


def _source_name(name: str) -> str:
    """A project module as its file in the project (``submission/unlearning.py``); a user's file by its name."""
    if name.endswith((".py", ".ipynb")):
        return Path(name).name
    return "/".join(name.split(".")[1:]) + ".py"


def build_notebook(entry: str = ENTRY_MODULE, root: Path = PROJECT_ROOT, options: dict | None = None,
                   batches: str = KAGGLE):
    """The submission notebook (an ``nbformat`` v4 notebook node), validated. ``options`` are passed to
    ``unlearning`` as keywords on every call (``UNLEARNING_OPTIONS``); each must be a Python literal. ``batches``
    (``UNLEARNING_BATCHES``): the loaders yield the competition's dicts (``kaggle``) or pairs (``tuples``)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    options = dict(options or {})
    for key, value in options.items():
        if not key.isidentifier() or ast.literal_eval(repr(value)) != value:
            raise ValueError(f"option {key}={value!r}: keys must be identifiers and values Python literals")
    modules = inline_sources(entry, root, also=(PROFILE_MODULE,))
    listing = ", ".join(f"`{name}`" for name, _ in modules)
    cells = [
        new_markdown_cell(
            "# NeurIPS 2023 Machine Unlearning -- submission\n\n"
            f"Generated by `unlearning-mock package` from `{_source_name(entry)}`; edit that file "
            "and rebuild rather than editing this notebook.\n\n"
            f"Inlined project modules (dependencies first): {listing}.\n\n"
            f"Local runs: `{ROOT_ENV}` points at a folder in the Kaggle layout, `{COUNT_ENV}` lowers "
            f"the number of checkpoints ({NUM_CHECKPOINTS} on Kaggle)."),
        new_code_cell(IMPORTS_CELL),
        new_code_cell(CONFIG_CELL),
        new_code_cell("# Keyword options passed to unlearning() on every call (set with --option when packaging),\n"
                      "# and what its loaders yield: the competition's dicts ('kaggle') or (image, age_group) pairs\n"
                      "# ('tuples'; set with --batches).\n"
                      f"UNLEARNING_OPTIONS = {options!r}\nUNLEARNING_BATCHES = {check_format(batches)!r}"),
    ]
    for name, source in modules:
        cells.append(new_markdown_cell(f"## Inlined: `{name}`"))
        cells.append(new_code_cell(f"# ---- inlined from {_source_name(name)} ----\n{source}".rstrip()))
    cells += [
        new_markdown_cell("## Data loading (as Kaggle's scoring notebook: dict batches of 64)"),
        new_code_cell(DATA_CELL),
        new_markdown_cell(f"## Unlearning {NUM_CHECKPOINTS} times, then `submission.zip`"),
        new_code_cell(MAIN_CELL),
    ]
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(notebook.cells):  # stable ids: the same source builds the same file
        cell["id"] = f"cell-{index:02d}"
    nbformat.validate(notebook)
    return notebook


def write_notebook(out_dir=DEFAULT_OUT, entry: str = ENTRY_MODULE, root: Path = PROJECT_ROOT,
                   options: dict | None = None, batches: str = KAGGLE) -> Path:
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / NOTEBOOK_NAME
    nbformat.write(build_notebook(entry, root, options, batches), str(path))
    return path


# ----------------------------------------------------------------------------------------------------
# Running it headless
# ----------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _environment(**values):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kernel_manager_class():
    from jupyter_client.manager import KernelManager

    class ThisInterpreterKernelManager(KernelManager):
        """Launches the kernel on this interpreter, whatever kernelspec named ``python3`` is installed."""

        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]

    return ThisInterpreterKernelManager


def run_notebook(notebook_path, input_dir, count: int = 2, timeout: int | None = None, log=print) -> Path:
    """Execute the notebook with its folder as working directory; return the ``submission.zip`` path."""
    import importlib.util

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook_path = Path(notebook_path).resolve()
    input_dir = Path(input_dir).resolve()
    work_dir = notebook_path.parent
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist (write the local one with "
                                "`python -m mock_evaluator.kaggle.mock_input --out mock_kaggle_input`)")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if importlib.util.find_spec("ipykernel") is None:
        raise RuntimeError(f"ipykernel is not installed for {sys.executable}: pip install ipykernel")
    notebook = nbformat.read(str(notebook_path), as_version=4)
    zip_path = work_dir / "submission.zip"
    zip_path.unlink(missing_ok=True)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            kernel_manager_class=_kernel_manager_class(),
                            resources={"metadata": {"path": str(work_dir)}})
    log(f"executing {notebook_path} against {input_dir} with {count} checkpoint(s) ...")
    start = time.perf_counter()
    try:
        with _environment(**{ROOT_ENV: input_dir, COUNT_ENV: count}):
            client.execute()
    except CellExecutionError as error:
        nbformat.write(notebook, str(work_dir / EXECUTED_NAME))
        raise RuntimeError(f"the notebook failed (executed copy in {work_dir / EXECUTED_NAME}):\n{error}") from None
    nbformat.write(notebook, str(work_dir / EXECUTED_NAME))
    if not zip_path.is_file():
        raise RuntimeError(f"the notebook ran but wrote no {zip_path}")
    log(f"done in {time.perf_counter() - start:.0f} s: {zip_path} ({zip_path.stat().st_size} bytes); "
        f"executed notebook {work_dir / EXECUTED_NAME}")
    return zip_path


def main(argv=None, prog: str = "unlearning-mock package") -> int:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Build (and optionally run) the Kaggle submission notebook.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--submission", default=ENTRY_MODULE,
                        help="the method to package: a .py file (yours, or one of a clone's) or a module of the tool, "
                             "e.g. submission.alif (default: SRFL, %(default)s)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a keyword option of its unlearning() (Python literal), repeatable")
    parser.add_argument("--batches", choices=BATCH_FORMATS, default=None,
                        help="what the notebook's loaders yield: 'kaggle', the competition's dicts (default), or "
                             "'tuples', (image, age_group) pairs")
    parser.add_argument("--run", action="store_true", help="also execute the notebook headless (nbclient)")
    parser.add_argument("--input", type=Path, default=Path("mock_kaggle_input"),
                        help="with --run: the input folder in the Kaggle layout (default mock_kaggle_input)")
    parser.add_argument("--count", type=int, default=2, help="with --run: number of checkpoints (default 2)")
    parser.add_argument("--timeout", type=int, default=None, help="with --run: seconds per cell (default none)")
    args = parser.parse_args(argv)
    try:
        from unlearning_mock.mock_evaluator.method import check_options, load_function, method_from_spec, parse_option

        entry = entry_module(args.submission)
        method = method_from_spec(entry, dict(parse_option(text) for text in args.option), batches=args.batches,
                                  log=print)
        try:
            check_options(load_function(method), method.option_dict)
        except ValueError as error:
            raise ValueError(f"{entry}: {error}") from None
        path = write_notebook(args.out, entry, options=method.option_dict, batches=method.batches or KAGGLE)
        print(f"wrote {path}")
        if args.run:
            run_notebook(path, args.input, args.count, args.timeout)
    except (InlineError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
