"""Matplotlib figures. All plotting code of the package lives here.

Every plot is drawn from a table (a pandas DataFrame), so this module imports no result
type and sits at the consumer end of the one-way flow. Attribution and allocation plots
take ``to_frame()`` tables and return the Axes they drew on; experiment plots take the
tidy frame of an evaluation (see :mod:`openattrib.experiments`) and return the Figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "plot_agreement",
    "plot_allocation",
    "plot_attribution",
    "plot_benchmark",
    "plot_convergence",
    "plot_detection",
    "plot_lds",
    "plot_lds_per_test",
    "plot_removal",
]


def _axes(ax: Any, width: float = 6.4, height: float = 4.2, ncols: int = 1) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=ncols == 1)
    return axes if ncols == 1 else list(axes[0])


def _colours(names: list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def plot_attribution(
    frame: pd.DataFrame,
    ax: Any = None,
    top: int | None = 30,
    sort: bool = True,
    *,
    title: str | None = None,
) -> Any:
    """Bar chart of values, with 95% intervals when a ``stderr`` column is present.

    ``frame`` is a table with one row per player, a ``value`` and optionally a ``stderr``
    column, indexed by player name (``Attribution.to_frame``).
    """
    values = frame["value"].to_numpy(dtype=float)
    names = [str(n) for n in frame.index]
    order = np.argsort(-values, kind="stable") if sort else np.arange(len(values))
    if top is not None:
        order = order[:top]
    ax = _axes(ax, height=max(2.0, 0.28 * len(order) + 1.0))
    xerr = None
    if "stderr" in frame.columns:
        stderr = frame["stderr"].to_numpy(dtype=float)
        xerr = np.nan_to_num(1.96 * stderr[order], nan=0.0)
    colors = ["tab:blue" if v >= 0 else "tab:red" for v in values[order]]
    y = np.arange(len(order))
    ax.barh(y, values[order], xerr=xerr, color=colors, capsize=2 if xerr is not None else 0)
    ax.set_yticks(y, [names[i] for i in order])
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.8)
    label = "value" + (" (95% interval)" if xerr is not None else "")
    ax.set_xlabel(label)
    if title is not None:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def plot_allocation(
    frame: pd.DataFrame, ax: Any = None, top: int | None = 30, *, title: str | None = None
) -> Any:
    """Horizontal bars of each contributor's share of the pool (grey: paid nothing).

    ``frame`` has one row per contributor with ``share_of_pool`` and ``status`` columns
    (``Allocation.to_frame``).
    """
    names = [str(n) for n in frame.index]
    shares = frame["share_of_pool"].to_numpy(dtype=float)
    status = frame["status"].tolist()
    order = np.argsort(-shares, kind="stable")
    if top is not None:
        order = order[:top]
    ax = _axes(ax, height=max(2.0, 0.28 * len(order) + 1.0))
    colors = ["tab:green" if shares[i] > 0 else "lightgrey" for i in order]
    y = np.arange(len(order))
    ax.barh(y, 100 * shares[order], color=colors)
    ax.set_yticks(y, [names[i] for i in order])
    ax.invert_yaxis()
    for row, i in enumerate(order):
        label = status[i] if shares[i] == 0 else f"{100 * shares[i]:.3g}%"
        ax.annotate(
            label,
            (100 * shares[i], row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(1e-9, 100 * float(shares.max(initial=0.0))) * 1.18)
    ax.set_xlabel("share of the pool (%)")
    if title is not None:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def plot_detection(
    frame: pd.DataFrame, noise_fraction: float, summary: pd.DataFrame | None = None, ax: Any = None
) -> Any:
    """Discovery curves: fraction of flipped rows found vs fraction inspected (lowest first)."""
    ax = _axes(ax)
    methods = list(dict.fromkeys(frame["method"]))
    colours = _colours(methods)
    for method in methods:
        part = frame[frame["method"] == method]
        label = method
        if summary is not None and method in summary.index:
            row = summary.loc[method]
            label = f"{method} (AUC {row['auc']:.2f}, F1 {row['kmeans_f1']:.2f})"
        ax.plot(
            part["fraction_inspected"], part["fraction_found"], color=colours[method], label=label
        )
    grid = np.linspace(0.0, 1.0, 101)
    ax.plot(grid, np.minimum(grid / max(noise_fraction, 1e-12), 1.0), "k--", lw=1, label="optimal")
    ax.plot(grid, grid, "k:", lw=1, label="random")
    ax.set_xlabel("fraction of training data inspected (lowest values first)")
    ax.set_ylabel("fraction of flipped labels found")
    ax.set_title(f"Noisy-label detection ({noise_fraction:.0%} flipped)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    ax.figure.tight_layout()
    return ax.figure


def plot_removal(
    frame: pd.DataFrame, mode: str = "remove", summary: pd.DataFrame | None = None, ax: Any = None
) -> Any:
    """Score after removing (adding) players in value order: solid = high first, dashed = low first."""
    from matplotlib.lines import Line2D

    ax = _axes(ax, width=7.6)
    methods = list(dict.fromkeys(frame["method"]))
    colours = _colours(methods)
    verb = "removed" if mode == "remove" else "added"
    handles = []
    for method in methods:
        for order, style in (("high_first", "-"), ("low_first", "--")):
            part = frame[(frame["method"] == method) & (frame["order"] == order)]
            ax.plot(part["fraction"], part["score"], style, marker="o", ms=3, color=colours[method])
        label = method
        if summary is not None and method in summary.index:
            label = f"{method} (area {summary.loc[method, 'area_between']:+.3f})"
        handles.append(Line2D([], [], color=colours[method], label=label))
    handles.append(Line2D([], [], color="black", ls="-", label="highest values first"))
    handles.append(Line2D([], [], color="black", ls="--", label="lowest values first"))
    ax.set_xlabel(f"fraction of players {verb}")
    ax.set_ylabel("score of the retrained model")
    ax.set_title(f"Point {'removal' if mode == 'remove' else 'addition'} in value order")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax.figure


def plot_agreement(frame: pd.DataFrame, ax: Any = None) -> Any:
    """Heat maps of pairwise Spearman and Kendall rank correlations between methods."""
    axes = ax if ax is not None else _axes(None, width=4.8, height=4.2, ncols=2)
    if not isinstance(axes, (list, tuple, np.ndarray)):
        axes = [axes]
    methods = list(dict.fromkeys(frame["method_a"]))
    image = None
    for axis, statistic in zip(axes, ("spearman", "kendall"), strict=False):
        matrix = frame.pivot(index="method_a", columns="method_b", values=statistic).loc[
            methods, methods
        ]
        image = axis.imshow(matrix.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
        axis.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        axis.set_yticks(range(len(methods)), methods if axis is axes[0] else [], fontsize=8)
        for i in range(len(methods)):
            for j in range(len(methods)):
                value = matrix.iat[i, j]
                text = "" if not np.isfinite(value) else f"{value:.2f}"
                colour = "white" if np.isfinite(value) and abs(value) > 0.6 else "black"
                axis.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        axis.set_title(f"{statistic.capitalize()} rank correlation")
    fig = axes[0].figure
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8)
    return fig


def plot_convergence(frame: pd.DataFrame, ax: Any = None, metric: str = "max_abs_error") -> Any:
    """Error against utility evaluations and against wall time (log-log)."""
    axes = ax if ax is not None else _axes(None, width=5.2, height=4.0, ncols=2)
    if not isinstance(axes, (list, tuple, np.ndarray)):
        axes = [axes]
    methods = list(dict.fromkeys(frame["method"]))
    colours = _colours(methods)
    for axis, x, xlabel in zip(
        axes,
        ("evaluations", "elapsed_seconds"),
        ("utility evaluations", "wall time (s)"),
        strict=False,
    ):
        for method in methods:
            part = frame[frame["method"] == method].sort_values(x)
            ok = np.isfinite(part[metric]) & (part[metric] > 0) & (part[x] > 0)
            axis.plot(
                part.loc[ok, x],
                part.loc[ok, metric],
                marker="o",
                ms=3,
                color=colours[method],
                label=method,
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_title("Convergence to the reference")
    axes[0].legend(fontsize=8)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_lds(frame: pd.DataFrame, summary: pd.DataFrame, ax: Any = None) -> Any:
    """Predicted (sum of values) against actual utility over random subsets, per method."""
    ax = _axes(ax)
    methods = list(dict.fromkeys(frame["method"]))
    colours = _colours(methods)
    for method in methods:
        part = frame[frame["method"] == method]
        pred = part["predicted"].to_numpy()
        spread = np.ptp(pred)
        scaled = (pred - pred.min()) / spread if spread > 0 else np.zeros_like(pred)
        ax.scatter(
            scaled,
            part["actual"],
            s=12,
            color=colours[method],
            alpha=0.7,
            label=f"{method} (LDS {summary.loc[method, 'lds']:.2f})",
        )
    ax.set_xlabel("predicted: sum of values of the subset (rescaled to [0, 1])")
    ax.set_ylabel("actual utility of the subset")
    ax.set_title("Linear datamodeling score")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_lds_per_test(frame: pd.DataFrame, summary: pd.DataFrame, ax: Any = None) -> Any:
    """Histogram of the per-test-point LDS of each method."""
    ax = _axes(ax)
    methods = list(dict.fromkeys(frame["method"]))
    colours = _colours(methods)
    bins = np.linspace(-1, 1, 21)
    for method in methods:
        values = frame.loc[frame["method"] == method, "lds"].dropna()
        ax.hist(
            values,
            bins=bins,
            alpha=0.6,
            color=colours[method],
            label=f"{method} (mean {summary.loc[method, 'lds']:.2f})",
        )
    ax.set_xlabel("Spearman correlation per test point")
    ax.set_ylabel("test points")
    ax.set_title("Linear datamodeling score")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_benchmark(table: pd.DataFrame, metric: str, ax: Any = None) -> Any:
    """Grouped bars of ``metric`` (mean with std error bars over seeds): datasets x methods.

    ``table`` has columns ``dataset, method, <metric>_mean, <metric>_std``.
    """
    ax = _axes(ax, width=8.5, height=4.0)
    datasets = list(dict.fromkeys(table["dataset"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = _colours(methods)
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        part = table[table["method"] == method].set_index("dataset").reindex(datasets)
        x = np.arange(len(datasets)) + (j - (len(methods) - 1) / 2) * width
        err = part.get(f"{metric}_std")
        ax.bar(
            x,
            part[f"{metric}_mean"],
            width,
            yerr=None if err is None else err.fillna(0.0),
            color=colours[method],
            label=method,
            capsize=2,
        )
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')} by data set and method")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax.figure
