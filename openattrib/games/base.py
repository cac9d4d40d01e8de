"""Cooperative games: the protocol every estimator uses, and games from plain functions.

A game has ``n_players`` players named ``player_names``; its value function maps a
coalition, given as a boolean mask of length ``n_players``, to a float. Estimators only
call :meth:`Game.__call__`, :meth:`Game.evaluate_batch` and :meth:`Game.prefix_walk`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["Game", "FunctionGame", "check_masks"]


def check_masks(masks: Any, n_players: int) -> np.ndarray:
    """Validate coalitions given as a 2-D boolean array (one row per coalition)."""
    masks = np.asarray(masks)
    if masks.ndim == 1:
        masks = masks[None, :]
    if masks.ndim != 2 or masks.shape[1] != n_players:
        raise ValidationError(
            f"coalition masks must have shape (n_coalitions, {n_players}), got {masks.shape}"
        )
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise ValidationError("coalition masks must be boolean (or 0/1)")
        masks = masks.astype(bool)
    return masks


class Game:
    """Base class of cooperative games.

    Subclasses set ``n_players`` and ``player_names`` and implement :meth:`value` (one
    coalition) and/or :meth:`evaluate_batch` (many). ``level`` says what the players are
    (``"points"``, ``"contributors"`` or ``"players"``) and ``point_contributors`` gives,
    for point-level games, each point's contributor.
    """

    n_players: int
    player_names: list[str]
    level: str = "players"
    point_contributors: np.ndarray | None = None

    # -- to implement ---------------------------------------------------------
    def value(self, mask: np.ndarray) -> float:
        """Value of one coalition (boolean mask of length ``n_players``)."""
        return float(self.evaluate_batch(mask[None, :])[0])

    def evaluate_batch(self, masks: np.ndarray) -> np.ndarray:
        """Values of many coalitions, one row of ``masks`` each."""
        return np.array([self.value(m) for m in masks], dtype=np.float64)

    # -- provided -------------------------------------------------------------
    def __call__(self, mask: Any) -> float:
        masks = check_masks(mask, self.n_players)
        if masks.shape[0] != 1:
            raise ValidationError("Game(...) takes one coalition; use evaluate_batch for many")
        return float(self.value(masks[0]))

    def prefix_walk(
        self,
        permutation: np.ndarray,
        truncation: Callable[[int, float], bool] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Values of the prefixes of ``permutation``, the evaluation shape of permutation sampling.

        Returns ``(values, n_evaluated)`` where ``values[k]`` is v(first k players of the
        permutation), k = 0 .. n. ``truncation(k, values[k])`` is asked after each prefix; when
        it returns True the walk stops and the remaining entries repeat ``values[k]`` (so their
        marginal contributions are zero, as in truncated Monte Carlo). ``n_evaluated`` counts
        the prefixes actually evaluated. Games with an incremental model override this.
        """
        permutation = np.asarray(permutation)
        n = self.n_players
        if truncation is None:  # every prefix is needed: one batch of n + 1 nested coalitions
            masks = np.arange(n + 1)[:, None] > np.arange(n)[None, :]  # row k: first k positions
            ordered = np.empty_like(masks)
            ordered[:, permutation] = masks
            return self.evaluate_batch(ordered), n + 1
        values = np.empty(n + 1, dtype=np.float64)
        mask = np.zeros(n, dtype=bool)
        values[0] = self.value(mask)
        evaluated = 1
        for k in range(1, n + 1):
            if truncation is not None and truncation(k - 1, values[k - 1]):
                values[k:] = values[k - 1]
                return values, evaluated
            mask[permutation[k - 1]] = True
            values[k] = self.value(mask)
            evaluated += 1
        return values, evaluated

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the game, recorded in result provenance."""
        return {"game": type(self).__name__, "n_players": self.n_players}

    @property
    def grand_value(self) -> float:
        """v(N), the value of the coalition of all players."""
        return float(self.evaluate_batch(np.ones((1, self.n_players), dtype=bool))[0])

    @property
    def empty_value(self) -> float:
        """v(empty), the value of the empty coalition."""
        return float(self.evaluate_batch(np.zeros((1, self.n_players), dtype=bool))[0])

    @staticmethod
    def from_function(
        fn: Callable[[np.ndarray], Any],
        n_players: int,
        names: Sequence[str] | None = None,
        batched: bool = False,
    ) -> FunctionGame:
        """Make a game from a Python function of a boolean mask.

        Examples
        --------
        >>> g = Game.from_function(lambda m: float(m.sum() ** 2), 3)
        >>> g([True, True, False])
        4.0
        """
        return FunctionGame(fn, n_players, names=names, batched=batched)


def _player_names(names: Sequence[str] | None, n_players: int) -> list[str]:
    if names is None:
        return [f"p{i}" for i in range(n_players)]
    names = [str(x) for x in names]
    if len(names) != n_players:
        raise ValidationError(f"got {len(names)} names for {n_players} players")
    if len(set(names)) != n_players:
        raise ValidationError("player names must be unique")
    return names


class FunctionGame(Game):
    """A game whose value function is any Python callable (see :meth:`Game.from_function`)."""

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        n_players: int,
        names: Sequence[str] | None = None,
        batched: bool = False,
    ) -> None:
        if not callable(fn):
            raise ValidationError(f"fn must be callable, got {type(fn).__name__}")
        if int(n_players) < 1:
            raise ValidationError(f"n_players must be >= 1, got {n_players}")
        self.fn = fn
        self.n_players = int(n_players)
        self.player_names = _player_names(names, self.n_players)
        self.batched = bool(batched)

    def _check_output(self, out: Any, expected: int) -> np.ndarray:
        arr = np.asarray(out, dtype=np.float64).reshape(-1)
        if arr.shape[0] != expected:
            raise ValidationError(
                f"game function returned {arr.shape[0]} values for {expected} coalitions"
            )
        if not np.isfinite(arr).all():
            raise ValidationError("game function returned NaN or infinity")
        return arr

    def evaluate_batch(self, masks: np.ndarray) -> np.ndarray:
        masks = check_masks(masks, self.n_players)
        if self.batched:
            return self._check_output(self.fn(masks), masks.shape[0])
        return self._check_output([self.fn(m) for m in masks], masks.shape[0])

    def value(self, mask: np.ndarray) -> float:
        return float(self.evaluate_batch(mask[None, :])[0])

    def describe(self) -> dict[str, Any]:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return {"game": "FunctionGame", "function": name, "n_players": self.n_players}
