"""The shape of src/: who imports whom, and where names are spelt."""

from __future__ import annotations

import ast
from pathlib import Path

from multihome_hook.modes import MODES

SRC = Path(__file__).resolve().parents[2] / "src" / "multihome_hook"
MODE_NAMES = {m.name for m in MODES}


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(SRC.glob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def run_time_imports(tree: ast.Module) -> set[str]:
    """Our modules imported when this one loads (not for type checking only,
    not inside a function: those are the lazy imports of the hook's path)."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module)
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_imports_form_no_circle() -> None:
    graph = {name: run_time_imports(tree) for name, tree in modules().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import circle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for imported in graph.get(name, ()):
            visit(imported, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_the_vocabulary_imports_nothing_of_ours_but_records() -> None:
    assert run_time_imports(modules()["kernel"]) == {"records"}


def test_pyroute2_is_imported_by_lean_import_only() -> None:
    for name, tree in modules().items():
        imports = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for alias in node.names}
        imports |= {node.module or "" for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 0}
        strings = {node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        touches = {i for i in imports | strings if i.split(".")[0] in ("pyroute2", "pr2modules")}
        assert name == "lean_import" or not touches, f"{name}.py uses {sorted(touches)}"


def test_mode_names_are_spelt_in_modes_only() -> None:
    for name, tree in modules().items():
        spelt = {node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and node.value in MODE_NAMES}
        assert name == "modes" or not spelt, f"{name}.py spells {sorted(spelt)}"


# The modes, and the routing protocol each one marks its work with.
MODE_CONSTANTS = {"LOOSE", "ONE_DEFAULT", "SOURCE_ROUTING", "OFF", "RECOMMENDED",
                  "RTPROT_ONE_DEFAULT", "RTPROT_SOURCE_ROUTING"}


def _named(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def test_only_the_mode_table_asks_which_mode_it_is() -> None:
    """Everything a mode means is in its entry in modes.py: no other module
    compares with a mode or its protocol, or imports a mode by name."""
    for name, tree in modules().items():
        if name == "modes":
            continue
        compared = [f"line {node.lineno}" for node in ast.walk(tree)
                    if isinstance(node, ast.Compare)
                    and any(_named(o) in MODE_CONSTANTS for o in (node.left, *node.comparators))]
        imported = [alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module == "modes"
                    for alias in node.names if alias.name in MODE_CONSTANTS]
        assert not compared and not imported, f"{name}.py: {compared or imported}"
