"""How the project's modules import each other: no circles, the engine never imports the scoring, no module takes
a private name (``_x``) from another, and no test module imports another test module.

Read from the sources (every ``from unlearning_mock.X import ...`` / ``import unlearning_mock.X``, also those
inside functions) of every project package (:data:`~mock_evaluator.sources.PROJECT_PACKAGES`: the starter kit,
the submissions, the methods and the evaluator). The engine measures models and runs jobs; the scoring reads
what the engine measured, so the dependency points from the evaluator's driver to both and never from the
engine to the scoring. Tests share fixtures and helpers through ``conftest.py`` and helper modules, never
through another test module (importing one runs its tests' module-level code and re-registers its fixtures).
"""

import ast
from pathlib import Path

from unlearning_mock.mock_evaluator.sources import PROJECT_PACKAGES

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
ENGINE, SCORING = "unlearning_mock.mock_evaluator.engine", "unlearning_mock.mock_evaluator.scoring"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return "unlearning_mock." + ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(folders) -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import module`` counts as the module)."""
    modules = {_module_name(path): path for folder in folders for path in (ROOT / folder).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unlearning_mock"):
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("unlearning_mock")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each holds an import circle)."""
    order, low, stack, found, counter = {}, {}, [], [], iter(range(10**9))

    def visit(module):
        order[module] = low[module] = next(counter)
        stack.append(module)
        for target in graph[module]:
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in order:
            visit(module)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (``test_*``, also as ``tests.test_*``) that the file at ``path`` imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return sorted({name for name in names if name.split(".")[-1].startswith("test_")
                   and name.removeprefix("tests.").startswith("test_")})


def test_the_checker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_follows_imports_through_other_modules():
    assert reachable({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}, "a") == {"a", "b", "c"}
    assert reachable({"a": set(), "b": {"a"}}, "a") == set()


def test_no_import_circles_in_the_project():
    graph = import_graph(PROJECT_PACKAGES)
    assert "unlearning_mock.starter_kit.settings" in graph and graph["unlearning_mock.starter_kit.cifar10"]
    assert graph["unlearning_mock.mock_evaluator.engine.local"] and graph["unlearning_mock.mock_evaluator.evaluate"]
    assert cycles(graph) == []


def test_the_engine_does_not_import_the_scoring():
    graph = import_graph(PROJECT_PACKAGES)
    engine = [module for module in graph if module.startswith(ENGINE + ".")]
    assert f"{ENGINE}.jobs" in engine and any(module.startswith(SCORING + ".") for module in graph)
    reaching = {module: sorted(t for t in reachable(graph, module) if t.startswith(SCORING + "."))
                for module in engine}
    assert {module: found for module, found in reaching.items() if found} == {}


def test_no_project_module_imports_a_private_name():
    private = []
    for folder in PROJECT_PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            private += [f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                        for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                        and (node.module or "").startswith("unlearning_mock")
                        for alias in node.names if alias.name.startswith("_")]
    assert private == []


def test_the_import_checker_of_the_tests_sees_a_test_module(tmp_path):
    (tmp_path / "test_a.py").write_text("import os\nfrom test_b import fixture\nfrom tests.test_c import helper\n"
                                        "from tests import test_d\nimport literal_metric\nfrom conftest import x\n")
    assert imported_test_modules(tmp_path / "test_a.py") == ["test_b", "tests.test_c", "tests.test_d"]


def test_no_test_module_imports_another_test_module():
    files = sorted(TESTS.glob("*.py"))
    assert TESTS / "conftest.py" in files and __file__ in map(str, files)
    assert {path.name: found for path in files if (found := imported_test_modules(path))} == {}
