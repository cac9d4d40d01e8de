"""Maximum-sample-reuse (MSR) sampling for the Banzhaf value (Wang & Jia 2023, "Data Banzhaf").

The Banzhaf value of player i is ``E[v(S) | i in S] - E[v(S) | i not in S]`` for a
uniformly random coalition S (every player in with probability 1/2). MSR draws such
coalitions and lets every draw update every player: ``v(S)`` joins the "in" average of the
players in S and the "out" average of the others. The standard error combines the two
independent group means: ``sqrt(var_in / n_in + var_out / n_out)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..games import Game
from .accumulators import Chunk, Welford, batch_rng, failure_counts, failures_since

__all__ = ["MSRKernel"]


@dataclass(frozen=True, eq=False)
class MSRKernel:
    """Draws uniform random coalitions and returns them with their values."""

    seed: int

    name = "msr"
    samples_per_draw = 1

    def fingerprint(self) -> dict[str, Any]:
        return {"sampler": "msr", "weights": "banzhaf"}

    def prepare(self, game: Game) -> tuple[MSRKernel, int]:
        return self, 0

    def max_evaluations_per_draw(self, n_players: int) -> int:
        return 1

    def new_accumulators(self, n_players: int) -> dict[str, Welford]:
        return {"in": Welford(n_players), "out": Welford(n_players)}

    def merge(self, acc: dict[str, Welford], chunk: Chunk) -> None:
        masks, values = chunk.data
        inside, outside = acc["in"], acc["out"]
        for mask, value in zip(masks, values, strict=True):
            inside.add_where(float(value), mask)
            outside.add_where(float(value), ~mask)

    def estimate(self, acc: dict[str, Welford]) -> tuple[np.ndarray, np.ndarray]:
        inside, outside = acc["in"], acc["out"]
        seen = (inside.count > 0) & (outside.count > 0)
        values = np.where(seen, inside.mean - outside.mean, np.nan)
        return values, np.sqrt(inside.variance_of_mean() + outside.variance_of_mean())

    def __call__(self, game: Game, task: tuple[int, int, int]) -> Chunk:
        batch, offset, count = task
        rng = batch_rng(self.seed, batch)
        n = game.n_players
        before = failure_counts(game)
        # one uniform double per player and draw, taken in order: the first `offset` rows are
        # the draws of this batch that an earlier task already took
        masks = rng.random((offset + count, n))[offset:] < 0.5
        values = np.asarray(game.evaluate_batch(masks), dtype=np.float64).reshape(-1)
        if values.shape != (count,) or not np.isfinite(values).all():
            raise ValidationError(
                f"{type(game).__name__}.evaluate_batch returned {values.shape} values for {count} "
                "coalitions (expected one finite number per coalition)"
            )
        return Chunk((masks, values), count, count, failures_since(game, before))
