"""The self-contained HTML report: structure, embedding, and rendering in headless Chromium."""

from __future__ import annotations

import base64
import re
import subprocess

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import chromium, chromium_args

from openattrib.errors import ValidationError
from openattrib.report import Report, figure_to_png, write_report

HEADINGS = ["Detection results", "Removal curves", "Notes & caveats"]


def build_report() -> Report:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.linspace(0, 1, 50)
    ax.plot(x, np.sqrt(x), color="tab:blue", lw=3, label="high first")
    ax.plot(x, x**2, color="tab:red", lw=3, label="low first")
    ax.fill_between(x, x**2, np.sqrt(x), color="tab:green", alpha=0.3)
    ax.legend()
    table = pd.DataFrame(
        {"auc": [0.91, 0.55], "kmeans_f1": [0.8, 0.2]},
        index=pd.Index(["tmc", "random"], name="method"),
    )
    report = Report("Noisy-label experiment", subtitle="test report")
    report.add_heading(HEADINGS[0]).add_text("AUC of -value.\n\nSecond <paragraph>.")
    report.add_table(table, caption="Detection metrics")
    report.add_heading(HEADINGS[1]).add_figure(fig, caption="value-ordered removal")
    report.add_heading(HEADINGS[2]).add_key_values({"seed": 0, "model": "logistic"})
    report.add_code("openattrib experiment quick.toml")
    return report


def test_html_structure_and_embedding(tmp_path):
    report = build_report()
    path = report.write(tmp_path / "sub" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<h1>Noisy-label experiment</h1>" in text
    assert '<h2 id="detection-results">Detection results</h2>' in text
    assert "Notes &amp; caveats" in text and "Second &lt;paragraph&gt;." in text  # escaped
    assert "<caption>Detection metrics</caption>" in text and "0.91" in text
    assert 'href="#removal-curves"' in text  # table of contents
    # self-contained: no external resources, the figure is an embedded PNG
    assert not re.search(r'(src|href)="(https?:|//|file:)', text)
    payload = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text).group(1)
    assert base64.b64decode(payload).startswith(b"\x89PNG\r\n\x1a\n")
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temporary file


def test_write_report_sections_and_add_dispatch(tmp_path):
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    path = write_report(
        tmp_path / "r.html",
        "Sections",
        [
            ("A table", pd.DataFrame({"x": [1, 2]})),
            ("Figure and text", [ax, "some text", {"k": "v"}]),
        ],
    )
    text = path.read_text()
    assert '<h2 id="a-table">A table</h2>' in text and "data:image/png;base64," in text
    assert "<p>some text</p>" in text and "<dt>k</dt>" in text


def test_report_errors_name_the_problem():
    with pytest.raises(ValidationError, match="title"):
        Report("  ")
    with pytest.raises(ValidationError, match="level"):
        Report("t").add_heading("x", level=1)
    with pytest.raises(ValidationError, match="PNG"):
        Report("t").add_png(b"GIF89a....")
    with pytest.raises(ValidationError, match="DataFrame"):
        Report("t").add_table([1, 2])
    with pytest.raises(ValidationError, match="cannot add"):
        Report("t").add(object())
    with pytest.raises(ValidationError, match="heading, content"):
        write_report("unused.html", "t", ["just a string"])
    with pytest.raises(ValidationError, match="Figure"):
        figure_to_png("not a figure")


def test_duplicate_headings_get_distinct_anchors():
    text = Report("t").add_heading("Same").add_heading("Same").to_html()
    assert 'id="same"' in text and 'id="same-2"' in text


@pytest.mark.slow  # starts a browser
# --------------------------------------------------------------------------- browser
def test_report_renders_in_headless_chromium(tmp_path):
    from matplotlib.image import imread

    browser = chromium()
    path = build_report().write(tmp_path / "report.html")
    url = path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    args = chromium_args(browser, tmp_path / "profile")
    done = subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,2000", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    non_white = np.any(pixels < 0.95, axis=-1).mean()
    assert non_white > 0.03, f"screenshot is nearly blank ({non_white:.1%} non-white pixels)"
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 300  # text, table shading and the figure (a blank page: under 100)
    # the figure is drawn: its blue and red lines appear in the screenshot
    r, g, b = (pixels[..., i] for i in range(3))
    assert ((b > 0.6) & (r < 0.3)).sum() > 200 and ((r > 0.7) & (g < 0.3) & (b < 0.3)).sum() > 200

    dom = subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, timeout=120
    ).stdout.decode()
    assert "<h1>Noisy-label experiment</h1>" in dom
    for heading in HEADINGS:
        assert heading.replace("&", "&amp;") in dom
    assert len(re.findall(r"<h2 ", dom)) == 3 and "<table" in dom and "data:image/png;base64" in dom
