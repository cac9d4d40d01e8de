"""Games with known Shapley and Banzhaf values, for testing estimators.

Each class computes its values by a formula or counting argument that is independent of
enumerating coalitions, so the estimators can be checked against them.

References
----------
- Littlechild & Owen (1973), "A simple expression for the Shapley value in a special case"
  (the airport game).
- Shapley & Shubik (1954) for voting games; pseudo-polynomial counting of weighted voting
  games by dynamic programming over (size, weight), e.g. Matsui & Matsui (2000).
"""

from __future__ import annotations

from math import comb, factorial
from typing import Any

import numpy as np

from .errors import ValidationError
from .games import Game, check_masks

__all__ = [
    "AdditiveGame",
    "AirportGame",
    "GloveGame",
    "SymmetricVotingGame",
    "UnanimityGame",
    "WeightedVotingGame",
]


class _ToyGame(Game):
    def __init__(self, n_players: int) -> None:
        if n_players < 1:
            raise ValidationError(f"n_players must be >= 1, got {n_players}")
        self.n_players = int(n_players)
        self.player_names = [f"p{i}" for i in range(self.n_players)]

    def evaluate_batch(self, masks: np.ndarray) -> np.ndarray:
        return self._values(check_masks(masks, self.n_players)).astype(np.float64)

    def _values(self, masks: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def shapley_values(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def banzhaf_values(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"game": type(self).__name__, "n_players": self.n_players}


class AdditiveGame(_ToyGame):
    """v(S) = sum of the weights of S; every semivalue equals the weights."""

    def __init__(self, weights: Any) -> None:
        self.weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        super().__init__(self.weights.size)

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return masks @ self.weights

    def shapley_values(self) -> np.ndarray:
        return self.weights.copy()

    banzhaf_values = shapley_values


class UnanimityGame(_ToyGame):
    """v(S) = 1 if S contains every player of ``carrier``, else 0."""

    def __init__(self, n_players: int, carrier: Any) -> None:
        super().__init__(n_players)
        self.carrier = np.zeros(n_players, dtype=bool)
        self.carrier[np.asarray(carrier, dtype=int)] = True
        if not self.carrier.any():
            raise ValidationError("carrier must contain at least one player")

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return (masks[:, self.carrier].all(axis=1)).astype(float)

    def shapley_values(self) -> np.ndarray:
        return self.carrier / self.carrier.sum()

    def banzhaf_values(self) -> np.ndarray:
        return self.carrier / 2.0 ** (self.carrier.sum() - 1)


class SymmetricVotingGame(_ToyGame):
    """``v(S) = 1`` if ``|S| > n/2`` (a strict majority), else 0. Shapley value 1/n each."""

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return (masks.sum(axis=1) > self.n_players / 2).astype(float)

    def shapley_values(self) -> np.ndarray:
        return np.full(self.n_players, 1.0 / self.n_players)

    def banzhaf_values(self) -> np.ndarray:
        # a player swings exactly when the other players number floor(n/2) exactly
        # (then adding it makes a strict majority).
        n = self.n_players
        k = n // 2
        return np.full(n, comb(n - 1, k) / 2.0 ** (n - 1))


class WeightedVotingGame(_ToyGame):
    """v(S) = 1 if the integer weights of S reach ``quota``, else 0.

    Values by dynamic programming over the number and total weight of the other players
    (pseudo-polynomial, no enumeration of coalitions).
    """

    def __init__(self, weights: Any, quota: int) -> None:
        self.weights = np.asarray(weights).reshape(-1)
        if not np.issubdtype(self.weights.dtype, np.integer) or (self.weights < 0).any():
            raise ValidationError("weights must be non-negative integers")
        super().__init__(self.weights.size)
        self.quota = int(quota)

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return (masks @ self.weights >= self.quota).astype(float)

    def _swing_counts(self, i: int) -> np.ndarray:
        """counts[s] = number of coalitions of size s without i for which i is a swing."""
        others = np.delete(self.weights, i)
        total = int(others.sum())
        table = np.zeros((others.size + 1, total + 1), dtype=object)  # exact integers
        table[0, 0] = 1
        for w in others:
            w = int(w)
            shifted = np.zeros_like(table)
            shifted[1:, w:] = table[:-1, : total + 1 - w]
            table = table + shifted
        lo = max(self.quota - int(self.weights[i]), 0)
        hi = self.quota  # weight in [quota - w_i, quota) swings
        return (
            table[:, lo : min(hi, total + 1)].sum(axis=1)
            if hi > lo
            else np.zeros(others.size + 1, dtype=object)
        )

    def shapley_values(self) -> np.ndarray:
        n = self.n_players
        out = np.zeros(n)
        for i in range(n):
            counts = self._swing_counts(i)
            out[i] = float(
                sum(int(c) * factorial(s) * factorial(n - s - 1) for s, c in enumerate(counts))
                / factorial(n)
            )
        return out

    def banzhaf_values(self) -> np.ndarray:
        n = self.n_players
        return np.array([int(self._swing_counts(i).sum()) / 2.0 ** (n - 1) for i in range(n)])


class GloveGame(_ToyGame):
    """Glove game: the first ``n_left`` players hold a left glove, the rest a right glove;
    v(S) = number of matched pairs in S = min(#left, #right).

    Values by counting coalitions by their numbers of left and right gloves.
    """

    def __init__(self, n_left: int, n_right: int) -> None:
        super().__init__(n_left + n_right)
        self.n_left, self.n_right = int(n_left), int(n_right)

    def _values(self, masks: np.ndarray) -> np.ndarray:
        left = masks[:, : self.n_left].sum(axis=1)
        right = masks[:, self.n_left :].sum(axis=1)
        return np.minimum(left, right).astype(float)

    def _value_of_side(self, own: int, other: int, weight: Any) -> float:
        # a player adds a pair iff its coalition has fewer of its own kind than the other kind
        total = 0.0
        for a in range(own):  # other players of the same side
            for b in range(other + 1):
                if a < b:
                    total += comb(own - 1, a) * comb(other, b) * weight(a + b)
        return total

    def shapley_values(self) -> np.ndarray:
        n = self.n_players

        def w(s: int) -> float:
            return factorial(s) * factorial(n - s - 1) / factorial(n)

        left = self._value_of_side(self.n_left, self.n_right, w)
        right = self._value_of_side(self.n_right, self.n_left, w)
        return np.array([left] * self.n_left + [right] * self.n_right)

    def banzhaf_values(self) -> np.ndarray:
        n = self.n_players

        def w(s: int) -> float:
            return 1.0 / 2.0 ** (n - 1)

        left = self._value_of_side(self.n_left, self.n_right, w)
        right = self._value_of_side(self.n_right, self.n_left, w)
        return np.array([left] * self.n_left + [right] * self.n_right)


class AirportGame(_ToyGame):
    """Airport game: v(S) = the largest runway cost needed by a player of S (0 if empty).

    Shapley values by Littlechild & Owen's formula: with costs sorted ascending,
    phi_(i) = sum_{j <= i} (c_(j) - c_(j-1)) / (n - j + 1).
    """

    def __init__(self, costs: Any) -> None:
        self.costs = np.asarray(costs, dtype=np.float64).reshape(-1)
        if (self.costs < 0).any():
            raise ValidationError("airport costs must be non-negative")
        super().__init__(self.costs.size)

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return np.where(masks, self.costs[None, :], 0.0).max(axis=1, initial=0.0)

    def _by_increment(self, share: Any) -> np.ndarray:
        order = np.argsort(self.costs, kind="stable")
        sorted_costs = self.costs[order]
        increments = np.diff(sorted_costs, prepend=0.0)
        n = self.n_players
        sorted_values = np.cumsum([increments[j] * share(n - j) for j in range(n)])
        out = np.empty(n)
        out[order] = sorted_values
        return out

    def shapley_values(self) -> np.ndarray:
        # segment j is needed by the n - j players at or above position j: split equally
        return self._by_increment(lambda users: 1.0 / users)

    def banzhaf_values(self) -> np.ndarray:
        # a user of segment j swings it iff none of the other users is present
        return self._by_increment(lambda users: 0.5 ** (users - 1))
