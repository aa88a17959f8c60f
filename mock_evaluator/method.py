"""A method is a value: a name, where its ``unlearning`` function comes from, keyword options, a fingerprint.

Built from a spec (:func:`method_from_spec`):

* a path to a ``.py`` file that defines ``unlearning(net, retain_loader, forget_loader, validation_loader)``;
* a path to a Jupyter (Kaggle) notebook, ``.ipynb``, that defines it in a code cell: only the code that defines
  things is kept (:mod:`mock_evaluator.kaggle.notebook_source`), and it travels in the method value;
* a module of the project, by dotted name (``submission.alif``, ``methods.fcs``);
* ``baseline``: the setting's starter-kit baseline (the Kaggle sample fine-tune on digits and Kaggle, the
  CIFAR-10 kit's on CIFAR-10).

Options (``--submission-option key=value``) are parsed as Python literals and passed to ``unlearning`` as
keywords; one the function does not accept is an error before any training. A method's *batch format*
(``kaggle`` dicts or ``tuples``; None: the setting's own, :mod:`starter_kit.batch_format`) says what its loaders
yield. A function that declares the
keyword ``profile`` also gets the setting's :class:`~starter_kit.profile.SettingProfile`
(:func:`call_keywords`); ``profile`` is not an option. Building a method runs none of its code: the
evaluator loads it (:func:`load_function`, :func:`check_options`) only in a child process of a worker
(:mod:`mock_evaluator.engine.jobs`), never in the driver. The fingerprint hashes the
method's source (a notebook's kept code), every module it imports from the project or from its own folder
(transitively, found by reading the ``import`` statements), and its options: edit any of those and its cached runs are redone; edit
an unrelated file and they are reused. Code loaded dynamically (``importlib.import_module(name_in_a_string)``)
is not seen: name such files in a normal import, or clear the cache.

A :class:`Method` holds only strings and tuples (a notebook's kept code among them), so it travels to worker
processes and cluster tasks.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from unlearning_mock.mock_evaluator.kaggle.notebook_source import read_notebook, run_cells
from unlearning_mock.mock_evaluator.sources import PACKAGE, PROJECT_PACKAGES, PROJECT_ROOT, import_closure, imported_files
from unlearning_mock.starter_kit.batch_format import check_format

BASELINE = "baseline"
POSITIONAL = ("net", "retain_loader", "forget_loader", "validation_loader")
PROFILE = "profile"   # the keyword through which a method that declares it gets its setting's profile


@dataclass(frozen=True)
class Method:
    """One unlearning method as the evaluator runs it."""

    name: str                 # the row name in every report, e.g. "unlearning[variant=seed]"
    kind: str                 # "file", "notebook", "module", "baseline" or "zip" (checkpoints, no function)
    target: str               # the file path, the module name, "baseline" or the zip path
    options: tuple = ()       # sorted (key, value) pairs passed as keywords
    fingerprint: str = ""     # source closure + options; part of the runs' cache key
    batches: str | None = None   # "kaggle" or "tuples"; None: the setting's own
    source: tuple = ()        # a notebook's kept code: ((file name, code), ...) per cell

    @property
    def option_dict(self) -> dict:
        return dict(self.options)

    @property
    def slug(self) -> str:
        """The name made safe for a folder name."""
        return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in self.name)[:80]


def parse_option(text: str) -> tuple[str, object]:
    """``"lr=0.02"`` -> ``("lr", 0.02)``; the value is a Python literal, else kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"--submission-option {text!r}: write it as key=value with a Python identifier as the key "
                         "(e.g. lr=0.02, variant=seed, stages=('layer1',))")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()
    return key, value


def _format_value(value) -> str:
    return value if isinstance(value, str) else repr(value)


def display_name(base: str, options: dict) -> str:
    if not options:
        return base
    return f"{base}[{','.join(f'{k}={_format_value(v)}' for k, v in sorted(options.items()))}]"


def method_from_spec(spec: str, options: dict | None = None, name: str | None = None,
                     baseline_function=None, batches: str | None = None, log=None) -> Method:
    """Build a :class:`Method` from a file path (``.py`` or ``.ipynb``), a project module name or ``baseline`` (see
    the module doc). A notebook's own ``UNLEARNING_OPTIONS`` and ``UNLEARNING_BATCHES`` (a packaged notebook's)
    apply unless ``options`` / ``batches`` say otherwise; ``log`` gets its line of what was kept and left out.

    ``baseline_function`` is the setting's baseline callable (needed only to check options of ``baseline``).
    Raises ``FileNotFoundError`` / ``ValueError`` with a message saying what to do.
    """
    options = dict(options or {})
    batches = check_format(batches)
    code, cells = "", ()
    if spec == BASELINE:
        kind, target, base = "baseline", BASELINE, BASELINE
        sources = [PROJECT_ROOT / "starter_kit" / "baseline.py"]
        if baseline_function is not None:  # the project's own kit function: checked here
            try:
                check_options(baseline_function, options)
            except ValueError as error:
                raise ValueError(f"{base}: {error}") from None
    elif spec.endswith(".ipynb"):
        notebook = read_notebook(Path(spec).resolve())
        if log is not None:
            log(notebook.summary())
        options, batches = {**dict(notebook.options), **options}, batches or notebook.batches
        kind, target, base = "notebook", str(notebook.path), notebook.path.stem
        code, cells = notebook.statements, notebook.cells
        sources = [path for _, text in cells for path in imported_files(ast.parse(text), None, notebook.path.parent)]
    elif spec.endswith(".py") or Path(spec).exists() or "/" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"submission file {path} does not exist")
        kind, target, base = "file", str(path), path.stem
        sources = [path]
    else:
        if spec.split(".")[0] in PROJECT_PACKAGES:  # the project's own modules by their short name: methods.fcs
            spec = f"{PACKAGE}.{spec}"
        kind, target, base = "module", spec, spec.split(".")[-1]
        sources = [module_file(spec)]
    digest = hashlib.sha256(code.encode())
    for path in import_closure(sources):
        digest.update(str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path.name).encode())
        digest.update(path.read_bytes())
    digest.update(repr(sorted(options.items())).encode())
    return Method(name=name or display_name(base, options), kind=kind, target=target,
                  options=tuple(sorted(options.items())), fingerprint=digest.hexdigest()[:16], batches=batches,
                  source=cells)


def zip_method(path: str) -> Method:
    """A submission.zip of checkpoints: scored as a method whose runs are already done."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    return Method(name=file.name, kind="zip", target=str(file))


def module_file(name: str) -> Path:
    try:
        spec = importlib.util.find_spec(name)
    except (ModuleNotFoundError, ValueError):
        spec = None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"{name!r} is neither a .py file nor an importable module of the project "
                         f"(e.g. submission/unlearning.py, submission.alif, methods.fcs)")
    return Path(spec.origin).resolve()


def load_function(method: Method):
    """The ``unlearning`` function of a file, notebook or module method (None for ``baseline`` and ``zip``). Runs
    the method's code in this process, and a file's (notebook's) folder goes onto ``sys.path`` for its own
    helpers: the evaluator calls it only in a child process that ends with the call."""
    kind, target = method.kind, method.target
    if kind in ("baseline", "zip"):
        return None
    if kind in ("file", "notebook"):
        file = Path(target)
        if str(file.parent) not in sys.path:  # the submission may import its own helpers
            sys.path.insert(0, str(file.parent))
        module_name = f"submission_{hashlib.sha1(target.encode()).hexdigest()[:12]}"
        if kind == "file":
            module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(module_name, file))
        else:
            module = types.ModuleType(module_name)
            module.__file__ = target
        sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
        try:
            if kind == "file":
                module.__spec__.loader.exec_module(module)
            else:
                run_cells(method.source, module.__dict__)
        except BaseException:
            del sys.modules[module_name]
            raise
        where = str(file)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise ValueError(f"cannot import {target!r}: {error}") from None
        where = target
    function = getattr(module, "unlearning", None)
    if not callable(function):
        raise ValueError(f"{where} defines no function `unlearning(net, retain_loader, forget_loader, validation_loader)`")
    return function


def declares_profile(function) -> bool:
    """Whether ``function`` declares the keyword ``profile`` by name (a ``**kwargs`` catch-all does not count)."""
    parameter = inspect.signature(function).parameters.get(PROFILE)
    return parameter is not None and parameter.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                       inspect.Parameter.POSITIONAL_OR_KEYWORD)


def call_keywords(function, options: dict, profile) -> dict:
    """The keywords of one ``unlearning`` call: the method's ``options``, plus ``profile`` where it declares it."""
    return {**options, PROFILE: profile} if declares_profile(function) else dict(options)


def check_options(function, options: dict) -> None:
    """Every option must be a keyword ``function`` accepts (anything goes with ``**kwargs``); ``profile`` is
    the evaluator's to pass, never an option. The message does not name the method: the caller does."""
    if PROFILE in options:
        raise ValueError("'profile' is not an option: the evaluator passes the setting's profile itself "
                         "to an unlearning() that declares it; drop --submission-option profile=...")
    if not options:
        return
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [p for p, v in parameters.items() if p not in POSITIONAL and p != PROFILE
                and v.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unlearning() does not accept option(s) {unknown}; it accepts "
                         f"{accepted or 'no options'}")
