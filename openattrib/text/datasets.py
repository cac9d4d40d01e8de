"""A real English corpus that is always available offline: the Python standard library's
docstrings.

Each docstring of a module, class or function (at least ``min_chars`` long) of the stdlib
source files is one document; its contributor is the top-level module or package it comes
from (``"email"``, ``"asyncio"``, ...), so contributors are the library's areas and their
authors. The text is parsed from the ``.py`` files with :mod:`ast` (nothing is imported or
downloaded). Licence: the Python Software Foundation License Version 2 (the same as the
interpreter's); see ``LICENSE.txt`` in the stdlib folder.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from .corpus import Corpus

__all__ = ["stdlib_docstrings"]


def stdlib_docstrings(
    packages: Sequence[str] | None = None, *, min_chars: int = 200, max_documents: int | None = None
) -> Corpus:
    """A :class:`Corpus` of stdlib docstrings, contributor = top-level module or package.

    Parameters
    ----------
    packages : sequence of str, optional
        Top-level modules/packages to read (default: all, tests and ``site-packages`` excluded).
    min_chars : int
        Shortest docstring kept.
    max_documents : int, optional
        Stop after this many documents (files are read in sorted order).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    records = []
    if packages is None:
        paths = sorted(root.rglob("*.py"))
    else:
        paths = sorted(
            p
            for name in packages
            for p in [root / f"{name}.py", *(root / name).rglob("*.py")]
            if p.is_file()
        )
    for path in paths:
        parts = path.relative_to(root).parts
        top = parts[0].removesuffix(".py")
        if packages is not None and top not in packages:
            continue
        if packages is None and (
            "site-packages" in parts or "test" in parts or "tests" in parts or "idle_test" in parts
        ):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc and len(doc) >= min_chars:
                name = getattr(node, "name", "")
                ident = f"{module}:{name}:{getattr(node, 'lineno', 0)}"
                records.append({"text": doc, "contributor": top, "id": ident})
                if max_documents is not None and len(records) >= max_documents:
                    return Corpus.from_records(records, doc_id="id")
    return Corpus.from_records(records, doc_id="id")
