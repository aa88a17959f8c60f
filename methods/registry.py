"""Every unlearning method the project can score side by side: the challenge's known methods
(``methods/``), the kit baselines and the project's own (``submission/``), found by discovery.

:func:`discover` imports every module of :data:`PACKAGES` and collects the entries its ``unlearning``
declared with :func:`~starter_kit.method_declaration.unlearning_method` (one per name: a method, or each of
its variants). ``METHODS`` maps a short id to its :class:`MethodEntry` (module, fixed keyword options,
private leaderboard rank and score where known -- the sample fine-tune's is the organisers' baseline,
0.0584 --, family, one-line description), in listing order: the methods with a private rank by rank, then
the others by family (:data:`FAMILIES`), their declared ``order``, and name. :func:`load_method` imports the
module and returns ``(unlearning, options)``; call it as ``unlearning(net, retain, forget, validation,
**options)``. ``python -m unlearning_mock.methods.registry`` (``unlearning-mock methods``) prints the list.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from unlearning_mock.starter_kit.method_declaration import FAMILIES, MethodEntry

PACKAGES = ("unlearning_mock.methods", "unlearning_mock.submission")
"""The packages whose modules may declare methods."""

__all__ = ["FAMILIES", "METHODS", "MethodEntry", "discover", "get_entry", "load_method", "method_names"]


def discover(packages=PACKAGES) -> list[MethodEntry]:
    """Import every module of ``packages`` and return the entries their ``unlearning`` functions declared, in
    listing order (module docstring). Two entries of one name are a ``ValueError`` naming both modules."""
    entries: dict[str, MethodEntry] = {}
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__, package_name + "."):
            if info.name == __name__:
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception as error:
                raise ValueError(f"the method registry imports every module of {package_name}: {info.name} failed "
                                 f"to import ({type(error).__name__}: {error}); fix or remove it") from error
            function = getattr(module, "unlearning", None)
            for entry in getattr(function, "method_entries", ()):
                if entry.module != info.name:   # imported from another module, declared there
                    continue
                if entry.name in entries:
                    raise ValueError(f"two methods are named {entry.name!r}: in {entries[entry.name].module} and "
                                     f"{entry.module}; rename one")
                entries[entry.name] = entry
    return sorted(entries.values(), key=_listing_key(list(entries)))


def _listing_key(declared: list[str]):
    def key(entry: MethodEntry):
        return (entry.private_rank is None, entry.private_rank or 0, FAMILIES.index(entry.family),
                entry.order is None, entry.order or 0, entry.module, declared.index(entry.name))
    return key


METHODS: dict[str, MethodEntry] = {entry.name: entry for entry in discover()}


def method_names(family: str | None = None) -> list[str]:
    """Registered ids (of one ``family``, or all), in registry order."""
    return [name for name, entry in METHODS.items() if family is None or entry.family == family]


def get_entry(name: str) -> MethodEntry:
    """The registry entry of ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def load_method(name: str):
    """``(unlearning, options)`` of the registered method ``name``: import its module, take its
    ``unlearning`` and the entry's keyword options (a copy)."""
    entry = get_entry(name)
    module = importlib.import_module(entry.module)
    function = getattr(module, "unlearning", None)
    if not callable(function):
        raise ValueError(f"method {name!r}: module {entry.module} defines no unlearning() function")
    return function, dict(entry.options)


def format_methods() -> str:
    """The registry as a table: name, family, private rank, module and fixed options, description."""
    rows = [(entry.name, entry.family, "" if entry.private_rank is None else str(entry.private_rank),
             entry.module.removeprefix("unlearning_mock.")
             + (" " + " ".join(f"{k}={v!r}" for k, v in entry.options.items()) if entry.options else ""),
             entry.description) for entry in METHODS.values()]
    header = ("method", "family", "rank", "module [options]", "description")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
                     for row in [header, *rows])


def main(argv=None, prog: str = "unlearning-mock methods") -> None:
    parser = argparse.ArgumentParser(prog=prog, description="List every registered method (methods/ and "
                                     "submission/), in the leaderboard's order; --methods of the leaderboard "
                                     "takes these names.")
    parser.parse_args(argv)
    print(format_methods())


if __name__ == "__main__":
    main()
