"""Exact semivalues by enumerating every coalition, and leave-one-out.

A semivalue of player i is ``sum over S not containing i of w(|S|) * (v(S + i) - v(S))``
where ``w(k)`` is the weight of a coalition of size k (Shapley: ``1 / (n * C(n-1, k))``;
Banzhaf: ``2 ** -(n-1)``). Enumeration evaluates all ``2**n`` coalitions once, in
vectorised batches, and then forms every player's marginals from the table of values.
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import BudgetError, ValidationError
from ..games import Game
from ..result import Attribution, make_provenance

__all__ = ["exact_shapley", "exact_banzhaf", "exact_semivalue", "loo", "coalition_values"]

DEFAULT_MAX_PLAYERS = 20
_CHUNK = 1 << 14


def _check_game(game: Any) -> Game:
    if not isinstance(game, Game):
        raise ValidationError(
            f"expected an openattrib Game, got {type(game).__name__}; "
            "wrap a function with oa.Game.from_function(fn, n_players)"
        )
    return game


def coalition_values(
    game: Game, *, max_players: int = DEFAULT_MAX_PLAYERS, progress: bool = True
) -> np.ndarray:
    """Values of all ``2**n`` coalitions; entry ``c`` is the coalition whose bit i is player i."""
    n = game.n_players
    if n > max_players:
        raise BudgetError(
            f"exact enumeration of {n} players needs 2**{n} = {2**n:,} coalition evaluations, "
            f"above the limit of {max_players} players; use oa.permutation_shapley, "
            "oa.beta_shapley or oa.banzhaf (Monte Carlo) instead, or raise max_players"
        )
    total = 1 << n
    values = np.empty(total, dtype=np.float64)
    bits = np.arange(n, dtype=np.int64)
    starts = range(0, total, _CHUNK)
    bar = tqdm(
        starts, desc="exact: coalitions", unit="chunk", disable=not progress or total <= _CHUNK * 4
    )
    for start in bar:
        codes = np.arange(start, min(start + _CHUNK, total), dtype=np.int64)
        masks = ((codes[:, None] >> bits[None, :]) & 1).astype(bool)
        values[codes] = game.evaluate_batch(masks)
    return values


def _popcount(codes: np.ndarray) -> np.ndarray:
    counts = np.zeros(codes.shape, dtype=np.int64)
    c = codes.copy()
    while c.any():
        counts += c & 1
        c >>= 1
    return counts


def exact_semivalue(
    game: Game,
    weights: Any,
    *,
    method: str = "exact_semivalue",
    parameters: dict | None = None,
    max_players: int = DEFAULT_MAX_PLAYERS,
    progress: bool = True,
) -> Attribution:
    """Exact semivalue with coalition-size weights ``weights[k]``, k = 0 .. n-1.

    ``weights[k]`` multiplies each marginal contribution ``v(S + i) - v(S)`` with
    ``|S| = k``. Shapley weights are ``1 / (n * C(n-1, k))``, Banzhaf ``2 ** -(n-1)``.
    """
    game = _check_game(game)
    n = game.n_players
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValidationError(
            f"weights must have one entry per coalition size 0..{n - 1}, got {weights.shape[0]}"
        )
    table = coalition_values(game, max_players=max_players, progress=progress)
    codes = np.arange(1 << n, dtype=np.int64)
    sizes = _popcount(codes)
    result = np.empty(n)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        marginals = table[without | (1 << i)] - table[without]
        result[i] = np.dot(weights[sizes[without]], marginals)
    return Attribution(
        result,
        game.player_names,
        method=method,
        parameters=dict(parameters or {}),
        provenance=make_provenance(**game.describe()),
        players=game.level,
        contributors=game.point_contributors,
        diagnostics=_game_diagnostics(game, evaluations=1 << n),
    )


def _game_diagnostics(game: Game, evaluations: int) -> dict[str, Any]:
    out: dict[str, Any] = {"utility_evaluations": int(evaluations)}
    report = getattr(game, "failure_report", None)
    if report is not None:
        out["defaulted_coalitions"] = report()
    return out


def shapley_weights(n: int) -> np.ndarray:
    """Shapley's weight of a coalition of size k = 0..n-1: ``1 / (n * C(n-1, k))``."""
    return np.array([1.0 / (n * comb(n - 1, k)) for k in range(n)])


def exact_shapley(
    game: Game, *, max_players: int = DEFAULT_MAX_PLAYERS, progress: bool = True
) -> Attribution:
    """Exact Shapley values (Shapley 1953) by enumerating all ``2**n`` coalitions.

    Practical up to about 20 players (the limit is ``max_players``); above it the
    function refuses and suggests the Monte Carlo estimators.

    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.GloveGame(1, 2)
    >>> oa.exact_shapley(game).values.round(4).tolist()
    [0.6667, 0.1667, 0.1667]
    """
    game = _check_game(game)
    return exact_semivalue(
        game,
        shapley_weights(game.n_players),
        method="exact_shapley",
        max_players=max_players,
        progress=progress,
    )


def exact_banzhaf(
    game: Game, *, max_players: int = DEFAULT_MAX_PLAYERS, progress: bool = True
) -> Attribution:
    """Exact Banzhaf values (Banzhaf 1965): the average marginal over all coalitions.

    Examples
    --------
    >>> import openattrib as oa
    >>> oa.exact_banzhaf(oa.toy_games.UnanimityGame(3, [0, 1])).values.tolist()
    [0.5, 0.5, 0.0]
    """
    game = _check_game(game)
    n = game.n_players
    return exact_semivalue(
        game,
        np.full(n, 0.5 ** (n - 1)),
        method="exact_banzhaf",
        max_players=max_players,
        progress=progress,
    )


def loo(game: Game, *, progress: bool = True) -> Attribution:
    """Leave-one-out values: ``v(N) - v(N without i)`` (n + 1 evaluations).

    Examples
    --------
    >>> import openattrib as oa
    >>> oa.loo(oa.toy_games.AdditiveGame([1.0, 2.0])).values.tolist()
    [1.0, 2.0]
    """
    game = _check_game(game)
    n = game.n_players
    masks = ~np.eye(n, dtype=bool)
    full = game.grand_value
    values = np.empty(n)
    step = 256
    bar = tqdm(range(0, n, step), desc="loo", unit="batch", disable=not progress or n <= step)
    for start in bar:
        values[start : start + step] = full - game.evaluate_batch(masks[start : start + step])
    return Attribution(
        values,
        game.player_names,
        method="loo",
        provenance=make_provenance(**game.describe()),
        players=game.level,
        contributors=game.point_contributors,
        diagnostics=_game_diagnostics(game, evaluations=n + 1),
    )
