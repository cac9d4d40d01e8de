"""Matplotlib figures. All plotting code of the package lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .result import Attribution
    from .rewards import Allocation

__all__ = ["plot_allocation", "plot_attribution"]


def _axes(ax: Any, height: float = 4.0, width: float = 6.0) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(width, height))
    return ax


def plot_attribution(
    attribution: Attribution, ax: Any = None, top: int | None = 30, sort: bool = True
) -> Any:
    """Bar chart of an attribution's values, with 95% intervals when stderr is known."""
    values = attribution.values
    order = np.argsort(-values, kind="stable") if sort else np.arange(len(values))
    if top is not None:
        order = order[:top]
    ax = _axes(ax, height=max(2.0, 0.28 * len(order) + 1.0))
    names = [attribution.names[i] for i in order]
    xerr = None
    if attribution.stderr is not None:
        xerr = np.nan_to_num(1.96 * attribution.stderr[order], nan=0.0)
    colors = ["tab:blue" if v >= 0 else "tab:red" for v in values[order]]
    y = np.arange(len(order))
    ax.barh(y, values[order], xerr=xerr, color=colors, capsize=2 if xerr is not None else 0)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.8)
    label = "value" + (" (95% interval)" if xerr is not None else "")
    ax.set_xlabel(label)
    ax.set_title(f"{attribution.method} - {attribution.level}")
    ax.figure.tight_layout()
    return ax


def plot_allocation(allocation: Allocation, ax: Any = None, top: int | None = 30) -> Any:
    """Horizontal bars of each contributor's share of the pool (grey: paid nothing)."""
    from fractions import Fraction

    names = allocation.names
    amounts = [allocation.amounts[n] for n in names]
    shares = np.array([float(Fraction(a, allocation.pool or 1)) for a in amounts])
    order = np.argsort(-shares, kind="stable")
    if top is not None:
        order = order[:top]
    ax = _axes(ax, height=max(2.0, 0.28 * len(order) + 1.0))
    status = allocation.status
    colors = ["tab:green" if shares[i] > 0 else "lightgrey" for i in order]
    y = np.arange(len(order))
    ax.barh(y, 100 * shares[order], color=colors)
    ax.set_yticks(y, [names[i] for i in order])
    ax.invert_yaxis()
    for row, i in enumerate(order):
        label = status[names[i]] if shares[i] == 0 else f"{100 * shares[i]:.3g}%"
        ax.annotate(
            label,
            (100 * shares[i], row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(1e-9, 100 * float(shares.max())) * 1.18)
    ax.set_xlabel("share of the pool (%)")
    pool = f"{allocation.pool:.4g}" if allocation.pool >= 10**6 else str(allocation.pool)
    ax.set_title(f"allocation: {allocation.policy} (pool {pool} base units)")
    ax.figure.tight_layout()
    return ax
