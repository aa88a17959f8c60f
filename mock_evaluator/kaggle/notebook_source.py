"""A Jupyter (Kaggle) notebook as a submission: the code that defines things, without the driver around it.

An entrant's notebook holds, beside ``unlearning``, what runs it on Kaggle: ``!pip`` lines, the "add an
accelerator" ``raise``, the dataset loading, the loop that saves 512 checkpoints. :func:`read_notebook` keeps,
from the code cells in order, what defines things:

* imports, functions and classes;
* top-level assignments -- and ``if`` / ``try`` blocks made of nothing else -- that read no file, call no
  function or class of the notebook that reads one (itself or through the notebook's other functions) and use
  no name left out before them (``DEVICE = ...``, constants, ``PROFILE = Profile(...)``);

and leaves out the rest: shell and magic lines (``!pip ...``, ``%matplotlib``, a ``%%capture`` cell), calls and
other expressions, loops, ``with`` blocks, ``raise``, and assignments that load data. Nothing is run to decide.
The kept code stays at its lines in its cell (a traceback names the cell and the line), and it alone makes the
submission's fingerprint: editing a markdown cell or a left-out cell keeps the cached runs.

When ``unlearning`` -- or a function or class it uses, transitively -- reads a global name that only left-out
code defines, :func:`read_notebook` raises, naming the name and its cell. Cells are numbered from 1 in the
notebook's order, markdown cells included. A notebook written by ``unlearning-mock package`` carries its
options and batch format in ``UNLEARNING_OPTIONS`` and ``UNLEARNING_BATCHES``.
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import symtable
from dataclasses import dataclass, replace
from pathlib import Path

from unlearning_mock.starter_kit.batch_format import check_format

ENTRY = "unlearning"
OPTIONS_NAME = "UNLEARNING_OPTIONS"
BATCHES_NAME = "UNLEARNING_BATCHES"
MAGIC_LINE = re.compile(r"^\s*(?:[!%]|[A-Za-z_][\w.]*\s*=\s*[!%])")
FILE_READERS = frozenset({
    "open", "load", "loadtxt", "genfromtxt", "fromfile", "read_csv", "read_table", "read_json", "read_parquet",
    "read_pickle", "read_excel", "read_image", "decode_image", "read_file", "imread", "read_text", "read_bytes",
    "listdir", "scandir", "glob", "iglob", "walk", "ImageFolder"})
LEFT_OUT_KINDS = {ast.Expr: "a call or expression", ast.For: "a loop", ast.AsyncFor: "a loop", ast.While: "a loop",
                  ast.With: "a with block", ast.AsyncWith: "a with block", ast.Raise: "raises",
                  ast.Assert: "an assert", ast.Delete: "a del"}


@dataclass(frozen=True)
class Part:
    """One top-level statement (or shell/magic line) of a code cell."""

    cell: int          # the cell's position in the notebook, from 1 (markdown cells count)
    line: int          # its first line in the cell
    text: str          # the statement's first line, shortened
    defines: tuple     # the names it binds
    why: str = ""      # why it is left out; "" when kept


@dataclass(frozen=True)
class NotebookSource:
    """What a notebook submits: its kept code per cell, what was kept and left out, its own options."""

    path: Path
    cells: tuple       # ((file name for tracebacks, kept code at its lines), ...), one per cell with kept code
    kept: tuple        # Parts
    left_out: tuple    # Parts
    options: tuple     # sorted (key, value) pairs of UNLEARNING_OPTIONS
    batches: str | None

    @property
    def code(self) -> str:
        """The kept code as one module, cell after cell."""
        return "\n\n\n".join(code.strip("\n") for _, code in self.cells) + "\n"

    @property
    def statements(self) -> str:
        """The kept code's lines less the blank ones: what the fingerprint hashes (so the lines where left-out
        statements stood do not count)."""
        return "\n".join(line for _, code in self.cells for line in code.splitlines() if line.strip()) + "\n"

    def summary(self, most: int = 6) -> str:
        """One line: which cells' statements are kept and which are left out (``most`` named per cell)."""
        def cells(parts, show):
            grouped: dict[int, list[str]] = {}
            for part in parts:
                grouped.setdefault(part.cell, []).append(show(part))
            named = {cell: list(dict.fromkeys(items)) for cell, items in grouped.items()}
            return ", ".join(f"cell {cell} ({', '.join(items[:most])}{f', +{len(items) - most} more' * (len(items) > most)})"
                             for cell, items in named.items())

        kept = cells(self.kept, lambda p: "imports" if p.text.startswith(("import ", "from "))
                     else ", ".join(p.defines) or f"`{p.text}`")
        left_out = cells(self.left_out, lambda p: f"`{p.text}`")
        return f"{self.path.name}: kept {kept or 'nothing'}; left out {left_out or 'nothing'}"


def read_notebook(path) -> NotebookSource:
    """The submission in the notebook at ``path`` (see the module's doc). ValueError when a cell does not parse,
    when no kept cell defines ``unlearning``, or when it needs a name that only left-out code defines."""
    path = Path(path)
    cells = _code_cells(path)
    parts: list[Part] = []
    parsed = []   # (cell number, its lines, its statements)
    for number, text in cells:
        if text.lstrip().startswith("%%"):
            parts.append(Part(number, 1, _short(text.lstrip().splitlines()[0]), (), "a cell magic"))
            continue
        lines, tree = _parse(path, number, text, parts)
        parsed.append((number, lines, tree.body))
    scan = _Scan(_callables(parsed))
    for part in parts:   # the magic lines: `files = !ls` binds a name too
        scan.record(part)
    kept_cells = []
    for number, lines, body in parsed:
        text, dropped = "\n".join(lines), []
        for node in body:
            if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
                dropped.append(node)   # a docstring or `pass`: does nothing, not worth a line
                continue
            shown = _short(ast.get_source_segment(text, node).split("\n")[0])
            part = Part(number, _first_line(node), shown, tuple(_bound(node)), scan.why(node))
            scan.record(part)
            parts.append(part)
            if part.why:
                dropped.append(node)
        for node in sorted(dropped, key=lambda n: (n.lineno, n.col_offset), reverse=True):
            _blank(lines, node)
        code = "\n".join(lines)
        if code.strip():
            kept_cells.append((f"{path} (cell {number})", code + "\n"))
    parts.sort(key=lambda p: (p.cell, p.line))
    source = NotebookSource(path=path, cells=tuple(kept_cells), kept=tuple(p for p in parts if not p.why),
                            left_out=tuple(p for p in parts if p.why), options=(), batches=None)
    scan.check_entry(source)
    return _with_own_settings(source)


def run_cells(cells, namespace: dict) -> None:
    """Run kept code (``NotebookSource.cells``) in ``namespace``, cell by cell, each under its own file name
    (registered with ``linecache``, so a traceback shows the cell's lines)."""
    for filename, code in cells:
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        exec(compile(code, filename, "exec"), namespace)  # noqa: S102 -- the submission, in its own process


# -- reading the cells -------------------------------------------------------------------------------------
def _code_cells(path: Path) -> list[tuple[int, str]]:
    """``[(cell number, source)]`` of the code cells (numbered among all cells, from 1)."""
    if not path.is_file():
        raise FileNotFoundError(f"submission notebook {path} does not exist")
    try:
        cells = [cell for cell in json.loads(path.read_text())["cells"]]
        sources = {number: cell.get("source", "") for number, cell in enumerate(cells, start=1)
                   if cell.get("cell_type") == "code"}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a Jupyter notebook (JSON with a 'cells' list): {error}") from None
    return [(number, ("".join(text) if isinstance(text, list) else str(text)).replace("\r\n", "\n"))
            for number, text in sources.items()]


def _parse(path: Path, number: int, text: str, parts: list) -> tuple[list[str], ast.Module]:
    """The cell's lines and statements; shell and magic lines become ``pass`` (recorded in ``parts``)."""
    lines = text.split("\n")
    try:
        return lines, ast.parse(text)
    except SyntaxError:
        pass
    for index, line in enumerate(lines):
        if MAGIC_LINE.match(line):
            name = line.split("=")[0].strip() if re.match(r"^\s*[A-Za-z_][\w.]*\s*=", line) else None
            parts.append(Part(number, index + 1, _short(line), (name,) if name else (), "a shell or magic line"))
            lines[index] = line[:len(line) - len(line.lstrip())] + "pass"
    try:
        return lines, ast.parse("\n".join(lines))
    except SyntaxError as error:
        raise ValueError(f"{path}: cell {number} does not parse at its line {error.lineno}: {error.msg}") from None


def _short(line: str, width: int = 48) -> str:
    line = line.strip()
    return line if len(line) <= width else line[:width - 3].rstrip() + "..."


def _first_line(node: ast.stmt) -> int:
    """A statement's first line (a decorated one's: its first decorator's)."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _blank(lines: list[str], node: ast.stmt) -> None:
    """Take ``node`` out of ``lines``, keeping every other statement at its line (``pass`` where it shares one)."""
    first, last = _first_line(node) - 1, node.end_lineno - 1
    before = lines[first][:node.col_offset] if first == node.lineno - 1 else ""
    after = lines[last][node.end_col_offset:]
    shared = before.strip() or (after.strip() and not after.strip().startswith("#"))
    lines[first:last + 1] = [before + "pass" + after if shared else ""] + [""] * (last - first)


# -- what a statement binds and evaluates -------------------------------------------------------------------
def _bound(node: ast.stmt) -> list[str]:
    """Names a top-level statement binds (not those local to a function, class or comprehension)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name != "*"]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    names, queue = [], list(ast.iter_child_nodes(node))
    while queue:
        child = queue.pop(0)
        if isinstance(child, ast.stmt):
            names += _bound(child)
        elif isinstance(child, ast.ExceptHandler):
            names += ([child.name] if child.name else []) + [name for s in child.body for name in _bound(s)]
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.append(child.id)
        elif isinstance(child, ast.comprehension):
            queue.append(child.iter)
        elif not isinstance(child, ast.Lambda):
            queue += list(ast.iter_child_nodes(child))
    return list(dict.fromkeys(names))


def _evaluated(nodes):
    """Every node of ``nodes`` that runs when they are evaluated (a lambda's body does not)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.Lambda):
            stack += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        else:
            stack += list(ast.iter_child_nodes(node))


def _definition_time(node) -> list[ast.AST]:
    """What runs when a function or class is defined: decorators, defaults, bases, a class body's statements."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    found = [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    for statement in node.body:
        found += (_definition_time(statement) if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                        ast.ClassDef)) else [statement])
    return found


def _callables(parsed) -> dict[str, tuple[list[str], str]]:
    """The notebook's top-level functions and classes: ``name -> (global names it reads, a file-reading call it
    makes, or "")``."""
    found = {}
    for number, lines, body in parsed:
        tables = {table.get_name(): table for table in symtable.symtable("\n".join(lines), f"cell {number}",
                                                                         "exec").get_children()}
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                reader = next((f"{ast.unparse(call.func)}()" for call in ast.walk(node)
                               if isinstance(call, ast.Call) and _callee(call) in FILE_READERS), "")
                found[node.name] = (_globals_read(tables[node.name]), reader)
    return found


def _callee(call: ast.Call) -> str:
    """The called name: ``f`` of ``f(...)`` and of ``a.b.f(...)``."""
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


class _Scan:
    """Decides, statement by statement in the notebook's order, what is kept; remembers who bound which name."""

    def __init__(self, callables: dict[str, tuple[list[str], str]]):
        self.callables = callables
        self.kept: set[str] = set()           # names a kept statement binds
        self.left_out: dict[str, Part] = {}   # names only a left-out statement binds, and that statement

    def why(self, node: ast.stmt) -> str:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return ""
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return self._uses(_definition_time(node), notebook_calls=True)
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return self._uses([node])
        if isinstance(node, (ast.If, ast.Try)):
            kind = "an if block" if isinstance(node, ast.If) else "a try block"
            tests = [node.test] if isinstance(node, ast.If) else [h.type for h in node.handlers if h.type]
            inner = [s for block in (node.body, node.orelse, getattr(node, "finalbody", []),
                                     *(h.body for h in getattr(node, "handlers", []))) for s in block]
            reasons = [self._uses(tests)] + [self.why(s) for s in inner if not isinstance(s, ast.Pass)]
            return next((f"{kind}: {reason}" for reason in reasons if reason), "")
        return LEFT_OUT_KINDS.get(type(node), "not a definition")

    def _uses(self, nodes, notebook_calls: bool = False) -> str:
        """Why evaluating ``nodes`` at the top level would run the notebook's driver: "" when it would not."""
        for node in _evaluated(nodes):
            if isinstance(node, ast.Call):
                name = _callee(node)
                if not notebook_calls and isinstance(node.func, ast.Name) and name in self.callables:
                    problem = self._runs_driver(name)
                    if problem:
                        return f"calls {name}(), which {problem}"
                if name in FILE_READERS:
                    return f"reads a file ({ast.unparse(node.func)}())"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in self.left_out:
                return f"uses {node.id}, left out in cell {self.left_out[node.id].cell}"
        return ""

    def _runs_driver(self, name: str) -> str:
        """What makes calling the notebook's function or class ``name`` part of the driver: it reads a file or a
        left-out name, itself or through the notebook's other functions; "" when nothing does."""
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            reads, reader = self.callables[current]
            through = "" if current == name else f" through {current}()"
            if reader:
                return f"reads a file{through} ({reader})"
            for global_name in reads:
                if global_name in self.left_out:
                    return f"uses {global_name}{through}, left out in cell {self.left_out[global_name].cell}"
                if global_name in self.callables:
                    todo.append(global_name)
        return ""

    def record(self, part: Part) -> None:
        for name in part.defines:
            if not part.why:
                self.kept.add(name)
                self.left_out.pop(name, None)
            elif name not in self.kept:
                self.left_out[name] = part

    def check_entry(self, source: NotebookSource) -> None:
        """``unlearning`` is kept, and every global name it needs (transitively) has a kept definition."""
        where = source.path.name
        if ENTRY not in self.kept:
            if ENTRY in self.left_out:
                part = self.left_out[ENTRY]
                raise ValueError(f"{where}: cell {part.cell} defines {ENTRY}() but is left out ({part.why})")
            raise ValueError(f"{where} defines no function `{ENTRY}(net, retain_loader, forget_loader, "
                             "validation_loader)` in a code cell")
        missing = [name for name in _needed(source.cells, ENTRY) if name not in self.kept and name in self.left_out]
        if missing:
            said = "; ".join(f"`{name}` is bound in cell {self.left_out[name].cell} by "
                             f"`{self.left_out[name].text}`, which is left out ({self.left_out[name].why})"
                             for name in missing)
            raise ValueError(f"{where}: {ENTRY}() needs {', '.join(missing)}, which only left-out code defines: {said}. "
                             "Only imports, functions, classes and assignments that read no file (nor call a function "
                             "of the notebook that does) are kept: define it that way, or build it inside "
                             "unlearning() (from its loaders)")


def _needed(cells, entry: str) -> list[str]:
    """Global names that ``entry`` reads, with those of every kept function or class it reaches (in order)."""
    tables = {}
    for filename, code in cells:
        for table in symtable.symtable(code, filename, "exec").get_children():
            if table.get_type() in ("function", "class"):
                tables[table.get_name()] = table
    needed, todo = [], [entry] if entry in tables else []
    while todo:
        for name in _globals_read(tables[todo.pop()]):
            if name not in needed:
                needed.append(name)
                if name in tables:
                    todo.append(name)
    return needed


def _globals_read(table) -> list[str]:
    names = [s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced() and not s.is_assigned()]
    for child in table.get_children():
        names += _globals_read(child)
    return names


def _with_own_settings(source: NotebookSource) -> NotebookSource:
    """``source`` with the options and batch format a packaged notebook carries (literal assignments)."""
    found = {}
    for filename, code in source.cells:
        for node in ast.parse(code).body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in (OPTIONS_NAME, BATCHES_NAME)):
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    raise ValueError(f"{filename}: {node.targets[0].id} must be a Python literal") from None
    options = found.get(OPTIONS_NAME, {})
    if not isinstance(options, dict) or not all(isinstance(k, str) and k.isidentifier() for k in options):
        raise ValueError(f"{source.path.name}: {OPTIONS_NAME} must be a dict of keyword options")
    return replace(source, options=tuple(sorted(options.items())), batches=check_format(found.get(BATCHES_NAME)))
