"""Point removal and addition: retrain without (or with only) the points in value order.

The evaluation of Ghorbani & Zou (2019, "Data Shapley", section 4.1) and OpenDataVal's
``remove_high_low``: sort the players by value, remove them in bins of a fixed fraction of
the players - highest values first and, separately, lowest values first - and score the
model retrained on what is left. Good values make performance collapse when high-value
points are removed and hold (or improve) when low-value points are removed. The addition
variant starts from nothing and adds the players in value order.

The utility is any :class:`~openattrib.games.Game`: for a
:class:`~openattrib.games.ModelUtility` each point on a curve is one model retrained on
the remaining rows (or contributors) and scored on the validation set.

Headline number (``summary["area_between"]``): the area between the two curves over the
fraction of players moved, oriented so that **positive = the values order the players
well**: ``integral(low_first - high_first)`` for removal and ``integral(high_first -
low_first)`` for addition (trapezoid rule on the actual fractions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..games import Game
from ._base import ExperimentResult, as_value_dict

__all__ = ["point_removal", "point_addition", "removal_steps"]

_ORDERS = ("high_first", "low_first")


def removal_steps(n_players: int, fraction: float, max_fraction: float) -> np.ndarray:
    """Numbers of players moved at each step: ``round(j * fraction * n)`` for ``j = 0, 1, ...``
    while ``j * fraction <= max_fraction`` (duplicates dropped, capped at ``n``).

    Examples
    --------
    >>> removal_steps(20, 0.1, 0.5).tolist()
    [0, 2, 4, 6, 8, 10]
    """
    for name, value in (("fraction", fraction), ("max_fraction", max_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValidationError(f"{name} must be a number in (0, 1], got {value!r}")
        if not 0.0 < float(value) <= 1.0:
            raise ValidationError(f"{name} must be in (0, 1], got {value}")
    if fraction > max_fraction:
        raise ValidationError(
            f"fraction={fraction} is larger than max_fraction={max_fraction}: no step would be taken"
        )
    n_steps = int(np.floor(max_fraction / fraction + 1e-9))
    counts = np.rint(np.arange(n_steps + 1) * fraction * n_players).astype(np.int64)
    counts = np.unique(np.minimum(counts, n_players))
    if counts.size < 2:
        raise ValidationError(
            f"fraction={fraction} of {n_players} players rounds to 0 players per step; use a "
            f"fraction of at least {1 / n_players:.3g}"
        )
    return counts


def _curves(vals: np.ndarray, game: Game, counts: np.ndarray, mode: str) -> dict[str, np.ndarray]:
    n = vals.shape[0]
    orders = {
        "high_first": np.argsort(-vals, kind="stable"),
        "low_first": np.argsort(vals, kind="stable"),
    }
    masks = []
    for order in _ORDERS:
        for c in counts:
            mask = np.full(n, mode == "remove")
            mask[orders[order][:c]] = mode != "remove"
            masks.append(mask)
    scores = np.asarray(game.evaluate_batch(np.array(masks)), dtype=np.float64)
    return {
        order: scores[i * counts.size : (i + 1) * counts.size] for i, order in enumerate(_ORDERS)
    }


def point_removal(
    values: Any,
    game: Game,
    *,
    fraction: float = 0.05,
    max_fraction: float = 0.5,
    mode: str = "remove",
) -> ExperimentResult:
    """Remove (or add) players in value order and score the retrained model at each step.

    Parameters
    ----------
    values : Attribution, array-like, or mapping of method name to either
        One value per player of ``game``.
    game : Game
        The utility, typically ``oa.ModelUtility(model, train, valid)`` over the same players.
    fraction : float
        Bin size: the fraction of players removed (added) per step.
    max_fraction : float
        Stop after moving this fraction of the players.
    mode : {"remove", "add"}
        ``"remove"`` starts from all players, ``"add"`` from none.

    Returns
    -------
    ExperimentResult
        ``frame``: ``method, order, step, n_moved, fraction, n_players, score`` (``order`` is
        ``"high_first"`` or ``"low_first"``). ``summary``: ``area_between`` per method (see
        the module docstring), plus the score before any step. ``figure``: the two curves of
        every method.

    Examples
    --------
    >>> import numpy as np, openattrib as oa
    >>> weights = np.array([3.0, 1.0, 2.0, 0.5])
    >>> game = oa.Game.from_function(lambda m: float(weights[m].sum()), 4)
    >>> res = point_removal({"true": weights}, game, fraction=0.25, max_fraction=1.0)
    >>> res.frame.query("order == 'high_first'")["score"].tolist()
    [6.5, 3.5, 1.5, 0.5, 0.0]
    """
    if mode not in ("remove", "add"):
        raise ValidationError(f"mode must be 'remove' or 'add', got {mode!r}")
    if not isinstance(game, Game):
        raise ValidationError(
            f"game must be an openattrib Game (e.g. oa.ModelUtility), got {type(game).__name__}"
        )
    table = as_value_dict(values, n=game.n_players)
    n = game.n_players
    counts = removal_steps(n, fraction, max_fraction)
    x = counts / n
    rows, summary = [], []
    for method, vals in table.items():
        curves = _curves(vals, game, counts, mode)
        for order in _ORDERS:
            rows.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "order": order,
                        "step": np.arange(counts.size),
                        "n_moved": counts,
                        "fraction": x,
                        "n_players": n - counts if mode == "remove" else counts,
                        "score": curves[order],
                    }
                )
            )
        good, bad = ("low_first", "high_first") if mode == "remove" else ("high_first", "low_first")
        gap = curves[good] - curves[bad]
        area = float(np.sum((gap[1:] + gap[:-1]) * np.diff(x)) / 2.0)
        summary.append(
            {
                "method": method,
                "mode": mode,
                "area_between": area,
                "start_score": float(curves["high_first"][0]),
                "n_steps": int(counts.size - 1),
                "max_fraction": float(x[-1]),
            }
        )
    frame = pd.concat(rows, ignore_index=True)
    summary_frame = pd.DataFrame(summary).set_index("method")

    def draw(ax: Any) -> Any:
        from ..plots import plot_removal

        return plot_removal(frame, mode=mode, summary=summary_frame, ax=ax)

    return ExperimentResult(
        f"point_{'removal' if mode == 'remove' else 'addition'}", frame, summary_frame, draw
    )


def point_addition(
    values: Any, game: Game, *, fraction: float = 0.05, max_fraction: float = 0.5
) -> ExperimentResult:
    """:func:`point_removal` with ``mode="add"``: grow the training set in value order."""
    return point_removal(values, game, fraction=fraction, max_fraction=max_fraction, mode="add")
