"""Permutation sampling of marginal contributions, with truncation and antithetic pairs.

For a uniformly random permutation, the player at position k joins a uniformly random
coalition of size k, so its marginal contribution is an unbiased sample of the Shapley
value (Castro, Gomez & Tejada 2009). A semivalue with coalition weights ``w(k)`` is the
same expectation reweighted by ``n * C(n-1, k) * w(k)`` (importance weights; exactly 1 for
Shapley). Truncation (TMC-Shapley, Ghorbani & Zou 2019) stops walking a permutation once
the prefix value is close to the grand-coalition value; antithetic sampling pairs each
permutation with its reverse (Mitchell, Cooper, Frank & Holmes 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..games import Game
from .accumulators import (
    CONTRIBUTOR_KEY,
    Chunk,
    Welford,
    batch_rng,
    contributor_groups,
    failure_counts,
    failures_since,
)

__all__ = ["Truncation", "parse_truncation", "PermutationKernel"]


@dataclass(frozen=True)
class Truncation:
    """TMC truncation rule: stop a permutation once ``|v(prefix) - v(N)| <= atol + rtol * |v(N)|``.

    The check starts after ``burn_in * n_players`` players (at least one) have joined, and
    the walk stops after ``patience`` consecutive prefixes within the tolerance. Players
    after the stop get a marginal contribution of zero, so truncation trades a small bias
    (at most the tolerance per permutation, summed over the truncated tail) for far fewer
    utility evaluations. Defaults: ``burn_in=0.1``, ``patience=1``, ``atol=0``.
    """

    rtol: float = 0.0
    atol: float = 0.0
    burn_in: float = 0.1
    patience: int = 1

    def __str__(self) -> str:
        return f"rtol={self.rtol!r},atol={self.atol!r},burn_in={self.burn_in!r},patience={self.patience}"

    def make(self, n_players: int, grand_value: float) -> Callable[[int, float], bool]:
        """The callable ``(prefix_size, prefix_value) -> stop?`` for one permutation walk."""
        start = max(1, math.ceil(self.burn_in * n_players))
        tolerance = self.atol + self.rtol * abs(grand_value)
        patience = self.patience
        hits = 0

        def truncate(k: int, value: float) -> bool:
            nonlocal hits
            if k < start:
                return False
            hits = hits + 1 if abs(value - grand_value) <= tolerance else 0
            return hits >= patience

        return truncate


_TRUNCATION_KEYS = ("rtol", "atol", "burn_in", "patience")


def parse_truncation(spec: Any) -> Truncation | None:
    """Read ``truncation=``: ``None``/``False``/``"none"`` (off), a number (relative tolerance
    ``rtol``), a :class:`Truncation`, a dict, or text like ``"rtol=0.01,burn_in=0.2"``."""
    if (
        spec is None
        or spec is False
        or (isinstance(spec, str) and spec.strip().lower() in ("", "none", "off", "false"))
    ):
        return None
    if isinstance(spec, Truncation):
        fields = {k: getattr(spec, k) for k in _TRUNCATION_KEYS}
    elif isinstance(spec, (int, float, np.integer, np.floating)) and not isinstance(
        spec, (bool, np.bool_)
    ):
        fields = {"rtol": float(spec)}
    elif isinstance(spec, str):
        text = spec.strip()
        try:
            fields = {"rtol": float(text)}
        except ValueError:
            fields = {}
            for part in text.split(","):
                key, sep, value = part.partition("=")
                if not sep:
                    raise _bad_truncation(spec) from None
                fields[key.strip()] = value.strip()
    elif isinstance(spec, Mapping):
        fields = dict(spec)
    else:
        raise _bad_truncation(spec)
    unknown = set(fields) - set(_TRUNCATION_KEYS)
    if unknown:
        raise _bad_truncation(spec, f"unknown key(s) {sorted(unknown)}")
    try:
        rtol = float(fields.get("rtol", 0.0))
        atol = float(fields.get("atol", 0.0))
        burn_in = float(fields.get("burn_in", 0.1))
        patience_value = float(fields.get("patience", 1))
    except (TypeError, ValueError):
        raise _bad_truncation(spec, "values must be numbers") from None
    if (
        not (math.isfinite(rtol) and math.isfinite(atol) and rtol >= 0 and atol >= 0)
        or rtol + atol == 0
    ):
        raise _bad_truncation(spec, "rtol and atol must be non-negative and not both zero")
    if not 0.0 <= burn_in <= 1.0:
        raise _bad_truncation(spec, "burn_in is a fraction of the players in [0, 1]")
    if not (patience_value >= 1 and patience_value.is_integer()):
        raise _bad_truncation(spec, "patience must be a positive integer")
    return Truncation(rtol=rtol, atol=atol, burn_in=burn_in, patience=int(patience_value))


def _bad_truncation(spec: Any, why: str = "") -> ValidationError:
    detail = f" ({why})" if why else ""
    return ValidationError(
        f"unknown truncation spec {spec!r}{detail}; use None (no truncation), a relative tolerance "
        "such as 0.01, or 'rtol=0.01,atol=0,burn_in=0.1,patience=1'"
    )


@dataclass(frozen=True, eq=False)
class PermutationKernel:
    """Draws permutations (or antithetic pairs) and returns per-player reweighted marginals.

    ``factors[k]`` is the importance weight of the marginal at position k (``None`` for
    Shapley, where it is exactly 1). ``group_codes`` (set by :meth:`prepare` when the game's
    points have contributors) maps each point to its contributor: :meth:`merge` then also
    accumulates, per draw, the sum of the point estimates over each contributor's points.
    """

    seed: int
    weights_id: str
    factors: np.ndarray | None = None
    antithetic: bool = False
    truncation: Truncation | None = None
    grand_value: float | None = None
    group_codes: np.ndarray | None = None
    n_groups: int = 0

    name = "permutation"

    @property
    def samples_per_draw(self) -> int:
        return 2 if self.antithetic else 1

    def fingerprint(self) -> dict[str, Any]:
        return {
            "sampler": "permutation",
            "weights": self.weights_id,
            "antithetic": self.antithetic,
            "truncation": None if self.truncation is None else str(self.truncation),
        }

    def prepare(self, game: Game) -> tuple[PermutationKernel, int]:
        """Read the contributors of the points; evaluate v(N) once when truncation needs it."""
        groups = contributor_groups(game)
        kernel = self
        if groups is not None:
            kernel = replace(kernel, group_codes=groups[1], n_groups=len(groups[0]))
        if self.truncation is None:
            return kernel, 0
        return replace(kernel, grand_value=float(game.grand_value)), 1

    def max_evaluations_per_draw(self, n_players: int) -> int:
        return (n_players + 1) * self.samples_per_draw

    def new_accumulators(self, n_players: int) -> dict[str, Welford]:
        acc = {"marginal": Welford(n_players)}
        if self.group_codes is not None:
            acc[CONTRIBUTOR_KEY] = Welford(self.n_groups)
        return acc

    def merge(self, acc: dict[str, Welford], chunk: Chunk) -> None:
        welford = acc["marginal"]
        for row in chunk.data:
            welford.add(row)
        groups = acc.get(CONTRIBUTOR_KEY)
        if groups is not None and self.group_codes is not None:
            for row in chunk.data:  # per-draw contributor totals, in draw order
                groups.add(np.bincount(self.group_codes, weights=row, minlength=self.n_groups))

    def estimate(self, acc: dict[str, Welford]) -> tuple[np.ndarray, np.ndarray]:
        welford = acc["marginal"]
        values = np.where(welford.count > 0, welford.mean, np.nan)
        return values, np.sqrt(welford.variance_of_mean())

    def _walk(self, game: Game, permutation: np.ndarray) -> tuple[np.ndarray, int]:
        n = game.n_players
        truncate = None
        if self.truncation is not None:
            truncate = self.truncation.make(n, float(self.grand_value))  # type: ignore[arg-type]
        values, evaluated = game.prefix_walk(permutation, truncation=truncate)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n + 1,) or not np.isfinite(values).all():
            raise ValidationError(
                f"{type(game).__name__}.prefix_walk returned {values.shape} values (expected {n + 1} finite "
                "numbers: v of each prefix of the permutation)"
            )
        marginals = np.diff(values)
        if self.factors is not None:
            marginals = marginals * self.factors
        out = np.empty(n, dtype=np.float64)
        out[permutation] = marginals
        return out, int(evaluated)

    def __call__(self, game: Game, task: tuple[int, int, int]) -> Chunk:
        batch, offset, count = task
        rng = batch_rng(self.seed, batch)
        n = game.n_players
        before = failure_counts(game)
        out = np.empty((count, n), dtype=np.float64)
        evaluations = 0
        for j in range(offset + count):
            permutation = rng.permutation(n)
            if j < offset:
                continue  # draws of this batch that an earlier task already took
            estimate, evaluated = self._walk(game, permutation)
            if self.antithetic:
                mirror, evaluated_mirror = self._walk(game, permutation[::-1].copy())
                estimate = (estimate + mirror) * 0.5
                evaluated += evaluated_mirror
            out[j - offset] = estimate
            evaluations += evaluated
        return Chunk(out, count, evaluations, failures_since(game, before))
