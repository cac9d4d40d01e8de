"""Plots are drawn from tables: the bars show the table's numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

import openattrib as oa
from openattrib.plots import plot_allocation, plot_attribution


def test_attribution_plot_draws_the_frame_values_in_order():
    frame = pd.DataFrame(
        {"value": [0.1, -0.3, 0.5], "stderr": [0.01, 0.02, 0.03]},
        index=pd.Index(["a", "b", "c"], name="points"),
    )
    ax = plot_attribution(frame, title="t")
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == [0.5, 0.1, -0.3]  # sorted high to low
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    assert ax.get_title() == "t" and "95%" in ax.get_xlabel()


def test_result_and_allocation_plot_through_their_frames():
    att = oa.Attribution(np.array([3.0, 1.0]), ["x", "y"], method="m", players="contributors")
    ax = att.plot()
    assert [bar.get_width() for bar in ax.patches] == [3.0, 1.0]
    assert ax.get_title() == "m - contributors"
    alloc = oa.allocate(att, 100)
    ax = alloc.plot()
    # shares of the pool in percent, from the allocation's own table
    expected = sorted((100 * alloc.to_frame()["share_of_pool"]).tolist(), reverse=True)
    assert [bar.get_width() for bar in ax.patches] == expected
    assert "proportional" in ax.get_title()
    frame_ax = plot_allocation(alloc.to_frame())
    assert [b.get_width() for b in frame_ax.patches] == expected
