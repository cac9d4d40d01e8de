"""Packaging: licence, citation metadata, changelog, and a wheel that works without the
source tree (demo data and other package files included)."""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_file_is_the_licence_pyproject_names():
    declared = PYPROJECT["project"]["license"]
    declared = declared["text"] if isinstance(declared, dict) else declared
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    # all nine sections of the licence are there
    for number in range(1, 10):
        assert re.search(rf"^\s*{number}\. [A-Z]", text, re.M), f"section {number} missing"


def test_citation_file_is_valid_citation_file_format():
    import jsonschema  # its format checkers take over a second to import: only here

    schema = json.loads((ROOT / "tests/data/citation-file-format-1.2.0.schema.json").read_text())
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(citation)
    assert citation["version"] == PYPROJECT["project"]["version"]
    assert citation["license"] == "Apache-2.0"
    # the validator can fail: a record without authors is refused
    broken = {k: v for k, v in citation.items() if k != "authors"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_changelog_keeps_a_changelog_shape():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert releases[0][0] == "Unreleased"
    versions = [name for name, _ in releases[1:]]
    assert PYPROJECT["project"]["version"] in versions and "0.1.0" in versions
    assert all(date for _, date in releases[1:]), "every release carries its date"
    sections = set(re.findall(r"^### (\w+)$", text, re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_py_typed_marker_ships():
    assert (ROOT / "openattrib" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["openattrib"]


@pytest.mark.slow
def test_wheel_installs_and_runs_without_the_source_tree(tmp_path):
    """Build sdist and wheel, install the wheel in a fresh venv, run the demo from elsewhere.

    The fresh venv sees the project venv's site-packages for the *dependencies* (through a
    ``.pth`` line, which does not run that venv's editable-install hook), so nothing is
    downloaded; openattrib itself comes only from the wheel.
    """
    dist = tmp_path / "dist"
    done = subprocess.run(
        # no --sdist/--wheel flags: the wheel is built from the sdist, so both are checked
        [sys.executable, "-m", "build", "--no-isolation",
         "--outdir", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = list(dist.glob("openattrib-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("openattrib-*.tar.gz"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--ignore-installed", "--disable-pip-version-check", str(wheels[0])],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    assert Path(purelib, "openattrib", "__init__.py").is_file(), install.stdout[-2000:]
    # only now the dependencies (pip would otherwise see the project's editable install)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "_project_deps.pth").write_text("\n".join(deps) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [python, "-c", "import openattrib, sys; print(openattrib.__file__); print(sys.prefix)"],
        capture_output=True, text=True, cwd=work, env=env, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, prefix = where.stdout.split()
    assert Path(module_file).is_relative_to(venv), f"imported from {module_file}, not the wheel"
    assert Path(prefix) == venv
    for shipped in ("py.typed",):
        assert (Path(module_file).parent / shipped).is_file(), shipped

    out = tmp_path / "demo-out"
    demo = subprocess.run(
        [venv / "bin" / "openattrib", "demo", "--out", str(out)],
        capture_output=True, text=True, cwd=work, env=env, timeout=600,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (out / "ledger.sqlite").is_file() and (out / "report.html").is_file()
