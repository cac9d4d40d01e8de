"""No module reads another module's private names (DESIGN: one-way flow, typed contracts).

A name starting with one underscore belongs to the module that defines it. This test
parses every module of the package and fails on ``from x import _name`` of another
module's private name, and on ``obj._name`` where ``_name`` is not defined in the module
doing the reading (``self._x`` / ``cls._x`` and a module's own helpers are fine).
Private *modules* (``_io``, ``_vocab``...) are package-internal and may be imported; their
names without an underscore are their interface.
"""

from __future__ import annotations

import ast
from pathlib import Path

import openattrib

PACKAGE = Path(openattrib.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _defined(tree)
    where = path.relative_to(PACKAGE.parent)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            inside = node.level > 0 or (node.module or "").startswith("openattrib")
            here = path.parent
            for _ in range(max(node.level - 1, 0)):
                here = here.parent
            for alias in node.names:
                submodule = here / (node.module or "").replace(".", "/") / alias.name
                if submodule.with_suffix(".py").exists() or submodule.is_dir():
                    continue  # a private module of the package, not a private name
                if inside and _private(alias.name):
                    found.append(f"{where}:{node.lineno} imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if node.attr not in own:
                found.append(f"{where}:{node.lineno} reads .{node.attr}")
    return found


def test_no_module_reads_another_modules_private_names():
    found = [v for path in sorted(PACKAGE.rglob("*.py")) for v in _violations(path)]
    assert not found, "\n".join(found)


def test_the_check_catches_a_private_read(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .games import _secret\n\ndef f(u):\n    return u._rows\n")
    assert len(_violations_of(bad)) == 2


def _violations_of(path: Path) -> list[str]:
    global PACKAGE
    saved, PACKAGE = PACKAGE, path.parent.parent
    try:
        return _violations(path)
    finally:
        PACKAGE = saved
