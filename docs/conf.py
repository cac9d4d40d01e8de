"""Sphinx configuration for the openattrib documentation site.

Built by ``make docs`` with warnings as errors. The API reference is generated at build time
from the ``__all__`` of the package and of each public subpackage (``_api.py``), so every
public name is documented and a name added to ``__all__`` appears without editing the docs.
The notebooks under ``notebooks/`` are rendered with their committed outputs (never executed
here: the test suite executes them).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import _api  # noqa: E402

import openattrib  # noqa: E402

project = "openattrib"
author = "The openattrib developers"
copyright = "2026, The openattrib developers"
release = openattrib.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"

# Notebooks: rendered from their committed outputs, copied in from ../notebooks at build time.
nb_execution_mode = "off"
nb_execution_raise_on_error = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# API reference: numpydoc renders the numpy-style docstrings; no autosummary stubs.
autodoc_default_options = {"members": True, "undoc-members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"openattrib {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
}
html_static_path: list[str] = []
suppress_warnings = ["mystnb.unknown_mime_type"]

# Every cross-reference must resolve (nitpicky). There is no network for intersphinx, so
# references into other projects' documentation are accepted by name, and only those.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|pandas|scipy|sklearn|torch|transformers|peft|web3|tomllib|hashlib"
        r"|sqlite3|fractions|pathlib|collections|typing)(\..*)?",
    ),
]


def _prepare(app) -> None:
    """Copy the notebooks in and write the API pages before Sphinx reads the sources."""
    target = HERE / "notebooks"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)
    _api.write_pages(HERE / "api")


def _resolve_public_alias(app, env, node, contnode):
    """Resolve ``openattrib.X`` and bare ``X`` to where the public name ``X`` is documented.

    Public names are documented once, on the page of the module that defines them, and
    re-exported elsewhere (``openattrib.ModelUtility`` is ``openattrib.games.ModelUtility``).
    Only names in some public module's ``__all__`` are resolved; anything else stays a
    missing reference, which fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~")
    name = target.rsplit(".", 1)[-1]
    if target not in (name, f"openattrib.{name}"):
        return None
    home = _api.home_of(name)
    if home is None:
        return None
    domain = env.get_domain("py")
    node = node.deepcopy()
    node["reftarget"] = f"{home}.{name}"
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], node, contnode
    )


def setup(app):
    app.connect("builder-inited", _prepare)
    app.connect("missing-reference", _resolve_public_alias)
