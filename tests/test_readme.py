"""The README's quick look stays executable, and its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


@pytest.mark.slow  # runs the whole quick look
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    blocks = python_blocks(README)
    assert blocks, "the README has no Python block"
    monkeypatch.chdir(tmp_path)  # the quick look writes run.json and ledger.sqlite
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102


def test_readme_relative_links_exist():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    relative = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert relative, "the README links no project file (docs, notebooks, data card)"
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.parametrize("command", ["make demo", "make test", "make docs"])
def test_readme_shows_the_commands(command):
    assert command in README
