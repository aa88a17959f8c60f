"""No import circles: no project module imports, directly or through others, a module that imports it back.

Read from the sources (every ``from unlearning_mock.X import ...`` / ``import unlearning_mock.X``, also
those inside functions). Checked for the starter kit, the submissions and the methods; the evaluator's
engine has its own pending fix (``engine/local.py`` <-> ``engine/ray_engine.py``).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("starter_kit", "submission", "methods")


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


def test_the_checker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_the_kit_the_submissions_and_the_methods():
    graph = import_graph(CHECKED)
    assert "unlearning_mock.starter_kit.settings" in graph and graph["unlearning_mock.starter_kit.cifar10"]
    assert cycles(graph) == []
