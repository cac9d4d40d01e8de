"""The documentation site: builds with warnings as errors, documents every public name, has
no broken internal link, and renders in a real browser (headless Chromium)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import chromium, chromium_args

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import _api  # noqa: E402

pytestmark = pytest.mark.slow  # a full Sphinx build


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-j", "1",
         str(DOCS), str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"sphinx failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") == "preconnect"):
                self.links.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_resolves(site):
    # pages only: the theme copies a Jinja template (webpack-macros.html) into _static/
    pages = {
        path: _parse(path)
        for path in site.rglob("*.html")
        if "_static" not in path.relative_to(site).parts
    }
    assert len(pages) > 20
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not checked (no network here)
            target_path, fragment = parts.path, parts.fragment  # "?v=..." is not part of a file
            target = (page.parent / unquote(target_path)).resolve() if target_path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link} (no such file)")
            elif fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(fragment) not in ids:
                    broken.append(f"{page.relative_to(site)} -> {link} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken))[:40])


def test_build_refuses_unresolved_references():
    """Nitpicky mode: a docstring that references a missing name is a warning, so -W fails."""
    import runpy

    conf = runpy.run_path(str(DOCS / "conf.py"))
    assert conf["nitpicky"] is True
    ignored = [pattern for _, pattern in conf["nitpick_ignore_regex"]]
    assert not any(re.fullmatch(p, "openattrib.Nope") for p in ignored)
    assert _api.home_of("ModelUtility") == "openattrib.games"
    assert _api.home_of("no_such_name") is None


def test_link_checker_finds_a_broken_link(tmp_path):
    """The checker above can fail: a page with a dangling link and anchor is reported."""
    (tmp_path / "a.html").write_text('<a href="b.html">b</a><a href="#nope">x</a><p id="yes"></p>')
    parsed = _parse(tmp_path / "a.html")
    assert parsed.links == ["b.html", "#nope"] and parsed.ids == {"yes"}
    assert not (tmp_path / "b.html").exists() and "nope" not in parsed.ids


def test_every_public_name_has_an_api_entry(site):
    ids: set[str] = set()
    for page in (site / "api").glob("*.html"):
        ids |= _parse(page).ids
    missing = []
    for page_name in _api.MODULES:
        module = _api._module(page_name)
        if module is None:
            continue
        for name in _api.public_names(module):
            obj = getattr(module, name)
            if _api._kind(obj) is None:
                assert f"module-{page_name}.{name}" in ids or importlib.util.find_spec(obj.__name__)
                continue
            home = _api._home(name, obj, {p: _api._module(p) for p in _api.MODULES}) or page_name
            if f"{home}.{name}" not in ids and f"{page_name}.{name}" not in ids:
                missing.append(f"{page_name}.{name}")
    assert not missing, f"public names without an API entry: {missing}"


def _dom(browser: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [*chromium_args(browser, profile), "--dump-dom", url], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def test_pages_render_in_headless_chromium(site, tmp_path):
    browser = chromium()
    home = _dom(browser, (site / "index.html").as_uri(), tmp_path / "p1")
    assert re.search(r"<h1[^>]*>openattrib", home)
    for caption in ("User guide", "Notebooks", "Reference"):
        assert caption in home

    api = _dom(browser, (site / "api" / "openattrib.html").as_uri(), tmp_path / "p2")
    assert re.search(r"<h1[^>]*>openattrib", api)
    assert 'id="openattrib.Attribution"' in api and 'id="openattrib.Dataset"' in api
    assert "highlight" in api and "<pre" in api  # docstring examples as code blocks

    notebook = sorted((site / "notebooks").glob("01_*.html"))
    assert notebook, "the quickstart notebook was not rendered"
    page = _dom(browser, notebook[0].as_uri(), tmp_path / "p3")
    assert re.search(r"<h1[^>]*>", page)
    assert "<pre" in page  # code cells
    figures = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert figures, "the rendered notebook shows no figure"
    for src in figures:
        if not src.startswith("data:"):
            assert (notebook[0].parent / unquote(src)).resolve().is_file(), src

    shot = tmp_path / "home.png"
    subprocess.run(
        [*chromium_args(browser, tmp_path / "p4"), f"--screenshot={shot}",
         "--window-size=1200,900", (site / "index.html").as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    from matplotlib.image import imread

    pixels = imread(str(shot))[..., :3]
    assert (pixels < 0.9).any(axis=-1).mean() > 0.01, "the home page renders blank"
