"""Where a module's source lives, and what it imports: the one resolver behind two uses.

* :func:`mock_evaluator.method.method_from_spec` hashes a method's *import closure* into its fingerprint
  (:func:`import_closure`), so editing a helper it imports redoes its cached runs;
* :mod:`mock_evaluator.kaggle.notebook` inlines a submission's project imports into one notebook
  (:func:`project_module_path` for each ``from unlearning_mock.X import ...``).

Installed, the project's folders live under one distinctive package name, :data:`PACKAGE`
(``unlearning_mock.starter_kit``, ``unlearning_mock.submission``, ...), so a user's own ``submission/`` or
``methods/`` folder is never shadowed. :data:`PROJECT_ROOT` is the folder that holds those folders: the
repository in a clone (editable install), ``site-packages/unlearning_mock`` in an installed wheel.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "unlearning_mock"
PROJECT_PACKAGES = ("starter_kit", "submission", "methods", "mock_evaluator")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def is_project_module(name: str) -> bool:
    """``unlearning_mock.<one of the project's packages>[...]``."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[0] == PACKAGE and parts[1] in PROJECT_PACKAGES


def _find(parts: list[str], bases) -> Path | None:
    for base in bases:
        for candidate in (Path(base).joinpath(*parts).with_suffix(".py"), Path(base).joinpath(*parts, "__init__.py")):
            if parts and candidate.is_file():
                return candidate.resolve()
    return None


def project_module_path(name: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The file of project module ``name`` (``unlearning_mock.starter_kit.data`` -> ``root/starter_kit/data.py``,
    a package -> its ``__init__.py``); None for any other name or a project name with no file."""
    if not is_project_module(name):
        return None
    return _find(name.split(".")[1:], [root])


def module_path(name: str, folders=(), root: Path = PROJECT_ROOT) -> Path | None:
    """A project module's file (under ``root``), else a module found in one of ``folders`` (a submission's
    own folder, for its helpers); None for anything else (torch, numpy, the standard library)."""
    if name.split(".")[0] == PACKAGE:
        return project_module_path(name, root)
    return _find([p for p in name.split(".") if p], folders)


def package_of(path: Path, root: Path = PROJECT_ROOT) -> str | None:
    """The dotted package a project file belongs to (for its relative imports); None outside the project."""
    path = Path(path).resolve()
    if not path.is_relative_to(root):
        return None
    parts = list(path.relative_to(root).with_suffix("").parts)[:-1]  # a module's or an __init__'s folder
    return ".".join([PACKAGE, *parts]) if parts else None


def imported_names(tree: ast.AST, package: str | None) -> list[str]:
    """Dotted names a module imports, with ``from X import y`` also yielding ``X.y`` (y may be a module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                if not package:
                    continue
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def imported_files(tree: ast.AST, package: str | None, folder: Path, root: Path = PROJECT_ROOT) -> list[Path]:
    """The files of the project modules, and of the modules in ``folder`` (the importer's own), that a parsed
    module imports; importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too."""
    found = []
    for name in imported_names(tree, package):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            path = module_path(".".join(parts[:i]), [folder], root)
            if path is not None:
                found.append(path)
    return found


def import_closure(files, root: Path = PROJECT_ROOT) -> list[Path]:
    """``files`` and every project / own-folder module they import, transitively; sorted, unique.

    Modules are looked up in each file's own folder and in the project; anything else (torch, numpy, the
    standard library) is outside the closure. Imports made from strings at run time are not seen.
    """
    seen: set[Path] = set()
    stack = [Path(f).resolve() for f in files]
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError as error:
            raise ValueError(f"{path} does not parse: {error}") from None
        stack += [found for found in imported_files(tree, package_of(path, root), path.parent, root) if found not in seen]
    return sorted(seen)
