"""Write the API reference pages from the package's ``__all__`` lists.

One page per public module: the top-level ``openattrib`` namespace and each public
subpackage. A name is documented once, on the page of the module that defines it
(its ``__module__``'s public parent); pages of other modules that re-export it link to it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

#: Public modules with an API page, in the order of the data flow.
MODULES = [
    "openattrib",
    "openattrib.datasets",
    "openattrib.games",
    "openattrib.toy_games",
    "openattrib.estimators",
    "openattrib.stop",
    "openattrib.influence",
    "openattrib.text",
    "openattrib.methods",
    "openattrib.rewards",
    "openattrib.ledger",
    "openattrib.ledger.merkle",
    "openattrib.ledger.evm",
    "openattrib.ledger.chain",
    "openattrib.experiments",
    "openattrib.parallel",
    "openattrib.plots",
    "openattrib.report",
    "openattrib.recipe",
]

ALIASES = {"openattrib.stop": "openattrib.stopping"}


def _module(name: str):
    try:
        return importlib.import_module(ALIASES.get(name, name))
    except ModuleNotFoundError as exc:  # a page for a module that has not landed yet
        if exc.name == ALIASES.get(name, name):
            return None
        raise


def _kind(obj) -> str | None:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    if inspect.ismodule(obj):
        return None
    return "autodata"


def public_names(module) -> list[str]:
    return [n for n in getattr(module, "__all__", []) if not n.startswith("__")]


def _home(name: str, obj, modules: dict) -> str | None:
    """The documented module of ``obj``: the deepest public module that exports it."""
    defined = getattr(obj, "__module__", "") or ""
    candidates = [
        page
        for page, module in modules.items()
        if module is not None
        and name in public_names(module)
        and (
            defined == ALIASES.get(page, page) or defined.startswith(ALIASES.get(page, page) + ".")
        )
    ]
    if not candidates:
        return None
    return max(candidates, key=len)


def write_pages(out: Path) -> None:
    out.mkdir(exist_ok=True)
    for old in out.glob("*.rst"):
        old.unlink()
    modules = {name: _module(name) for name in MODULES}
    pages = []
    for page, module in modules.items():
        if module is None:
            continue
        pages.append(page)
        doc = inspect.getdoc(module) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        lines = [page, "=" * len(page), "", f".. module:: {page}", ""]
        if summary:
            lines += [summary, ""]
        documented, linked = [], []
        for name in public_names(module):
            obj = getattr(module, name)
            kind = _kind(obj)
            if kind is None:
                linked.append(f"- :mod:`{page}.{name}` (module)")
                continue
            home = _home(name, obj, modules) or page
            if home == page or kind == "autodata":
                documented.append((name, kind))
            else:
                role = "class" if kind == "autoclass" else "func"
                linked.append(f"- :{role}:`{home}.{name}`")
        if linked:
            lines += ["Re-exported here", "-" * 16, "", *linked, ""]
        for name, kind in documented:
            lines += [name, "-" * len(name), "", f".. {kind}:: {page}.{name}", ""]
        (out / f"{page}.rst").write_text("\n".join(lines), encoding="utf-8")
    index = [
        "API reference",
        "=============",
        "",
        "Every public name, generated from the ``__all__`` of each module.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    index += [f"   {page}" for page in pages]
    (out / "index.rst").write_text("\n".join(index) + "\n", encoding="utf-8")


def home_of(name: str) -> str | None:
    """The API page on which the public name ``name`` is documented, if any."""
    modules = {page: _module(page) for page in MODULES}
    for page, module in modules.items():
        if module is not None and name in public_names(module):
            obj = getattr(module, name)
            if _kind(obj) is None:
                return None
            return _home(name, obj, modules) or page
    return None
