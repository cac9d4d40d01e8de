"""Method agreement: do two methods rank the same players the same way?

For every pair of methods valuing the same players: Spearman's rank correlation and
Kendall's tau-b (both in [-1, 1]: 1 = same order, -1 = reversed), and the overlap of the
``top`` highest-valued players (Jaccard index of the two top sets).
"""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ._base import ExperimentResult, as_value_dict

__all__ = ["method_agreement", "rank_correlations"]


def rank_correlations(a: Any, b: Any) -> dict[str, float]:
    """Spearman and Kendall tau-b between two value vectors (NaN when one is constant).

    Examples
    --------
    >>> rank_correlations([1, 2, 3], [30, 20, 10])
    {'spearman': -1.0, 'kendall': -1.0}
    """
    from scipy.stats import kendalltau, spearmanr

    table = as_value_dict({"a": a, "b": b})
    x, y = table["a"], table["b"]
    if x.shape[0] < 2:
        raise ValidationError("rank correlation needs at least 2 players")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman": float("nan"), "kendall": float("nan")}
    return {
        "spearman": float(spearmanr(x, y).statistic),
        "kendall": float(kendalltau(x, y).statistic),
    }


def _top_overlap(x: np.ndarray, y: np.ndarray, top: int) -> float:
    a = set(np.argsort(-x, kind="stable")[:top].tolist())
    b = set(np.argsort(-y, kind="stable")[:top].tolist())
    return len(a & b) / len(a | b)


def method_agreement(values: Any, *, top: int | float = 0.1) -> ExperimentResult:
    """Pairwise rank agreement between methods that value the same players.

    Parameters
    ----------
    values : mapping of method name to Attribution or array-like
        At least two methods, the same players in the same order.
    top : int or float
        Size of the top set for ``top_overlap``: a count, or a fraction of the players.

    Returns
    -------
    ExperimentResult
        ``frame``: one row per ordered pair ``(method_a, method_b)`` (including each method
        with itself) with ``spearman``, ``kendall`` and ``top_overlap``. ``summary``: per
        method, its mean Spearman correlation with the others. ``figure``: heat maps.

    Examples
    --------
    >>> res = method_agreement({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1]})
    >>> res.frame.set_index(["method_a", "method_b"]).loc[("a", "b"), "kendall"]
    np.float64(-1.0)
    """
    table = as_value_dict(values)
    if len(table) < 2:
        raise ValidationError(f"method agreement needs at least two methods, got {list(table)}")
    n = next(iter(table.values())).shape[0]
    k = int(round(top * n)) if isinstance(top, float) else int(top)
    k = min(max(k, 1), n)
    rows = []
    for a, b in product(table, repeat=2):
        row = {"method_a": a, "method_b": b, **rank_correlations(table[a], table[b])}
        row["top_overlap"] = _top_overlap(table[a], table[b], k)
        rows.append(row)
    frame = pd.DataFrame(rows)
    others = frame[frame.method_a != frame.method_b]
    summary = (
        others.groupby("method_a", sort=False)[["spearman", "kendall"]]
        .mean()
        .rename(columns={"spearman": "mean_spearman", "kendall": "mean_kendall"})
    )
    summary.index.name = "method"
    summary["top_k"] = k

    def draw(ax: Any) -> Any:
        from ..plots import plot_agreement

        return plot_agreement(frame, ax=ax)

    return ExperimentResult("method_agreement", frame, summary, draw)
