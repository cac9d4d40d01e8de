"""The package's import structure: no cycles, the one-way flow of DESIGN.md, a light import.

The imports are read from the source with :mod:`ast` (nothing is imported), so a test fails
on the structure itself, whatever happens to be loaded already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import openattrib

PACKAGE = Path(openattrib.__file__).parent


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported package module
    module_level: bool  # executed when the source is imported (not in a function, not type-only)
    line: int
    type_only: bool = False  # under ``if TYPE_CHECKING:``


def module_name(path: Path) -> str:
    parts = ["openattrib", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(source: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import statement loads (``from .x import y``: x.y if a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = source if MODULES[source].name == "__init__.py" else source.rpartition(".")[0]
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [
            f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names
        ]
    found = []
    for name in names:
        while name and name not in MODULES:  # ``import openattrib.x.y`` loads a module of it
            name = name.rpartition(".")[0]
        if name.startswith("openattrib"):
            found.append(name)
    return found


def _walk(
    source: str,
    body: list[ast.stmt],
    module_level: bool,
    edges: list[Edge],
    type_only: bool = False,
) -> None:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(source, node):
                if target != source:
                    edges.append(Edge(source, target, module_level, node.lineno, type_only))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _walk(source, node.body, False, edges)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            _walk(source, node.body, False, edges, type_only=module_level)
            _walk(source, node.orelse, module_level, edges)
        else:  # class bodies, if/try/with/for blocks and except handlers run where they stand
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    nodes = [c for c in children if isinstance(c, ast.AST)]
                    _walk(source, nodes, module_level, edges, type_only)


def import_edges() -> list[Edge]:
    edges: list[Edge] = []
    for name, path in MODULES.items():
        _walk(name, ast.parse(path.read_text(encoding="utf-8")).body, True, edges)
    return edges


EDGES = import_edges()


def component(module: str) -> str:
    """``openattrib.rewards.fees`` -> ``rewards``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_parser_sees_the_imports_it_should():
    """The edge finder itself, on imports known to exist (module level, lazy, type-only)."""
    by_pair = {(e.source, e.target): e for e in EDGES}
    assert by_pair[("openattrib.recipe", "openattrib.data")].module_level
    assert not by_pair[("openattrib.result", "openattrib.plots")].module_level  # in plot()
    assert not by_pair[("openattrib.methods", "openattrib.estimators")].module_level
    assert by_pair[("openattrib.experiments.runner", "openattrib.methods")].module_level
    assert ("openattrib.cli", "openattrib.cli.ledger") in by_pair
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import data\n"
    )
    found: list[Edge] = []
    _walk("openattrib.recipe", tree.body, True, found)
    assert found == [Edge("openattrib.recipe", "openattrib.data", False, 3, True)]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_cycle_among_module_level_imports():
    """Imports run at import time, and type-only ones (a cycle for the reader all the same)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for edge in EDGES:
        if edge.module_level or edge.type_only:
            graph[edge.source].add(edge.target)
    cycle = find_cycle(graph)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


#: lazy imports that point right, against the flow, each with its reason
ALLOWED_BACK_EDGES = {
    ("result", "plots"): "Attribution.plot() draws its to_frame() table lazily",
    ("rewards", "plots"): "Allocation.plot() draws its to_frame() table lazily",
    ("rewards", "experiments"): "deprecated rewards.replication_experiment re-export (1 release)",
}


def test_no_cycle_between_parts_of_the_package_even_through_lazy_imports():
    """result -> plots -> rewards -> plots was such a cycle: plots now take frames."""
    graph: dict[str, set[str]] = {}
    for edge in EDGES:
        pair = (component(edge.source), component(edge.target))
        if pair[0] != pair[1] and pair[0] and pair != ("rewards", "experiments"):
            graph.setdefault(pair[0], set()).add(pair[1])
    cycle = find_cycle(graph)
    assert cycle is None, "cycle between parts of the package: " + " -> ".join(cycle)


# The one straight line of DESIGN.md, as ranks: a module imports only parts of lower or
# equal rank (data -> games -> estimators -> Attribution -> rewards -> ledger; consumers last).
RANK = {
    "errors": 0,
    "_vocab": 0,  # issue 12a: shared parameter parsing and deprecation helpers
    "_io": 0,
    "_data_checks": 0,
    "_csv": 0,  # issue 13: the one checked CSV reader
    "_ids": 0,  # issue 13: the payee-identity rule
    "parallel": 0,
    "stopping": 0,
    "data": 1,
    "datasets": 2,
    "toy_games": 2,
    "games": 2,
    "fast": 2,
    "result": 2,
    "per_test": 2,  # issue 12a: the per-test result protocol
    "estimators": 3,
    "influence": 3,
    "text": 3,  # issue 14: corpus, span index, span attribution (produces Attribution)
    "methods": 4,
    "recipe": 5.5,  # issue 16: a recipe's payout step calls rewards.split_robust; only consumers import it
    "rewards": 5,
    "ledger": 6,
    "plots": 7,
    "report": 7,
    "experiments": 8,
    "demo": 8,
    "cli": 9,
    "": 10,
}


def test_every_part_of_the_package_has_a_rank():
    missing = sorted({component(m) for m in MODULES} - set(RANK))
    assert not missing, f"add {missing} to RANK in tests/test_imports.py (where in the flow?)"


def test_imports_follow_the_one_way_flow():
    wrong = []
    for edge in EDGES:
        source, target = component(edge.source), component(edge.target)
        if source == target or RANK[target] <= RANK[source]:
            continue
        if (source, target) in ALLOWED_BACK_EDGES and not edge.module_level:
            continue
        wrong.append(f"{edge.source}:{edge.line} imports {edge.target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("ledger", {"estimators", "games", "rewards", "influence", "fast", "methods", "recipe"}),
        ("rewards", {"estimators", "games", "influence", "fast", "methods", "recipe"}),
        (
            "estimators",
            {"rewards", "ledger", "plots", "report", "experiments", "cli", "demo", "methods"},
        ),
        ("influence", {"rewards", "ledger", "plots", "report", "experiments", "cli", "demo"}),
        ("plots", {"result", "rewards", "estimators", "influence", "games", "ledger"}),
    ],
)
def test_design_md_layering(source, forbidden):
    """The rules DESIGN.md states in words (the ledger knows nothing of Shapley, ...)."""
    found = sorted(
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if component(e.source) == source and component(e.target) in forbidden
    )
    assert not found, found


def test_no_import_error_guard_around_the_packages_own_modules():
    """A missing module of the package is a bug to see, not a feature to skip quietly."""
    guarded = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Try):
                continue
            catches = {
                getattr(h.type, "id", None)
                for h in node.handlers
                for h_type in [h.type]
                if h_type is not None
            } | {
                getattr(elt, "id", None)
                for h in node.handlers
                if isinstance(h.type, ast.Tuple)
                for elt in h.type.elts
            }
            if not catches & {"ImportError", "ModuleNotFoundError"}:
                continue
            for stmt in node.body:
                for inner in ast.walk(stmt):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)) and _targets(name, inner):
                        guarded.append(f"{name}:{inner.lineno}")
    assert not guarded, guarded


HEAVY = (
    "torch",
    "shap",
    "matplotlib",
    "dask",
    "distributed",
    "scipy.stats",
    "transformers",
    "web3",
)


def test_import_openattrib_loads_no_heavy_library():
    """``import openattrib`` stays light: heavy libraries load inside the functions using them."""
    code = (
        "import json, sys, openattrib; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_names_resolve_lazily_and_dir_is_complete():
    code = (
        "import json, sys, openattrib as oa; "
        "before = sorted(m for m in sys.modules if m.startswith('openattrib')); "
        "missing = [n for n in oa.__all__ if n not in dir(oa)]; "
        "objects = {n: getattr(oa, n) is not None for n in oa.__all__}; "
        f"heavy = [m for m in {list(HEAVY[:4])!r} if m in sys.modules]; "
        "print(json.dumps([before, missing, all(objects.values()), heavy]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    )
    before, missing, resolved, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert missing == [] and resolved
    # nothing beyond the errors and the lazy table is loaded by the bare import
    assert set(before) <= {"openattrib", "openattrib.errors"}, before
    assert heavy == []  # even with every public name resolved


def test_unknown_attribute_is_a_clear_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        openattrib.not_a_name  # noqa: B018


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE.parent), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def test_a_public_function_named_like_a_subpackage_stays_the_function():
    code = (
        "import openattrib as oa, openattrib.influence.glm, json; "
        "print(json.dumps([callable(oa.influence), oa.influence.__module__]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env()
    )
    is_callable, module = json.loads(out.stdout.strip().splitlines()[-1])
    assert is_callable and module.startswith("openattrib.influence")


def test_all_is_the_lazy_table_plus_the_errors():
    lazy = set(openattrib._LAZY)
    errors = {n for n in openattrib.__all__ if n.endswith("Error")}
    assert set(openattrib.__all__) == lazy | errors | {"__version__"}
    assert openattrib.__all__ == sorted(openattrib.__all__)
    for name in errors:
        assert issubclass(getattr(openattrib, name), openattrib.OpenAttribError)
