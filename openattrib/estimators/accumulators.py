"""Exact, resumable accumulators of the Monte Carlo estimators.

Per-player running means and variances are updated one sample at a time (Welford 1962),
so the result depends only on the order of the samples, never on how they were grouped
into batches or workers. :class:`SamplingState` holds everything needed to continue a run
bit for bit (counts, means, sums of squared deviations, the next draw, counters) and
round-trips through JSON exactly (Python's float repr is the shortest exact one).

On a point-level game whose points have contributors, a kernel may also keep, under
:data:`CONTRIBUTOR_KEY`, a running mean and variance of the per-draw *sums* of the point
estimates over each contributor's points (one entry per contributor, in the order of
:func:`contributor_groups`). Points of one draw are correlated, so the standard error of a
contributor's total must come from these per-draw sums, not from the per-point errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import ValidationError
from ..games import Game

__all__ = [
    "Welford",
    "Chunk",
    "Kernel",
    "SamplingState",
    "batch_rng",
    "contributor_groups",
    "CONTRIBUTOR_KEY",
    "failure_counts",
    "failures_since",
]

STATE_FORMAT = "openattrib.sampling_state/1"
CONTRIBUTOR_KEY = "contributor_sum"


def contributor_groups(game: Game) -> tuple[list[str], np.ndarray] | None:
    """``(names, codes)`` of the contributors of a game's points, or ``None`` when it has none.

    Names are in order of first appearance (as in ``Attribution.by_contributor``) and
    ``codes[i]`` is the index in ``names`` of the contributor of point ``i``.
    """
    contributors = getattr(game, "point_contributors", None)
    if contributors is None:
        return None
    labels = [str(c) for c in np.asarray(contributors, dtype=object).reshape(-1)]
    if len(labels) != game.n_players:
        return None
    names = list(dict.fromkeys(labels))
    index = {name: i for i, name in enumerate(names)}
    return names, np.array([index[c] for c in labels], dtype=np.intp)


def batch_rng(seed: int, batch: int) -> np.random.Generator:
    """The random stream of batch ``batch``: a function of the seed and the batch index only."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(batch,)))


class Welford:
    """Per-player running count, mean and sum of squared deviations (Welford 1962).

    Updates are applied one sample at a time, so the result depends only on the order of
    the samples, never on how they were grouped.
    """

    def __init__(self, n: int) -> None:
        self.count = np.zeros(n, dtype=np.int64)
        self.mean = np.zeros(n, dtype=np.float64)
        self.m2 = np.zeros(n, dtype=np.float64)

    def add(self, x: np.ndarray) -> None:
        """Add one sample for every player."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    def add_where(self, x: float, where: np.ndarray) -> None:
        """Add the sample ``x`` to the players where ``where`` is True (others unchanged)."""
        self.count += where
        delta = x - self.mean
        self.mean += np.where(where, delta / np.maximum(self.count, 1), 0.0)
        self.m2 += np.where(where, delta * (x - self.mean), 0.0)

    def variance_of_mean(self) -> np.ndarray:
        """Sample variance divided by the count (NaN with fewer than two samples)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.m2 / (self.count - 1) / self.count
        return np.where(self.count >= 2, out, np.nan)

    def copy(self) -> Welford:
        new = Welford.__new__(Welford)
        new.count, new.mean, new.m2 = self.count.copy(), self.mean.copy(), self.m2.copy()
        return new

    def to_json(self) -> dict[str, list]:
        return {"count": self.count.tolist(), "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], n: int) -> Welford:
        new = cls(n)
        new.count = np.asarray(data["count"], dtype=np.int64)
        new.mean = np.asarray(data["mean"], dtype=np.float64)
        new.m2 = np.asarray(data["m2"], dtype=np.float64)
        if not new.count.shape == new.mean.shape == new.m2.shape == (n,):
            raise ValidationError(
                f"sampling state has accumulators of the wrong length (expected {n} players)"
            )
        return new


@dataclass
class Chunk:
    """What a worker returns for a range of draws."""

    data: Any
    count: int
    evaluations: int
    failures: dict[str, int] = field(default_factory=dict)


class Kernel(Protocol):
    """A sampling method: draws, and how draws update the accumulators."""

    name: str
    seed: int
    samples_per_draw: int

    def fingerprint(self) -> dict[str, Any]: ...
    def prepare(self, game: Game) -> tuple[Kernel, int]: ...
    def max_evaluations_per_draw(self, n_players: int) -> int: ...
    def new_accumulators(self, n_players: int) -> dict[str, Welford]: ...
    def merge(self, acc: dict[str, Welford], chunk: Chunk) -> None: ...
    def estimate(self, acc: dict[str, Welford]) -> tuple[np.ndarray, np.ndarray]: ...
    def __call__(self, game: Game, task: tuple[int, int, int]) -> Chunk: ...


def failure_counts(game: Game) -> dict[str, int] | None:
    report = getattr(game, "failure_report", None)
    return dict(report()) if callable(report) else None


def failures_since(game: Game, before: dict[str, int] | None) -> dict[str, int]:
    """Defaulted-coalition counts added to ``game.failure_report()`` since ``before``."""
    if before is None:
        return {}
    after = failure_counts(game) or {}
    return {
        k: int(v) - int(before.get(k, 0))
        for k, v in after.items()
        if int(v) != int(before.get(k, 0))
    }


@dataclass
class SamplingState:
    """Everything needed to continue a run exactly: accumulators, next draw, counters."""

    kernel: str
    fingerprint: dict[str, Any]
    seed: int
    n_players: int
    accumulators: dict[str, Welford]
    next_draw: int = 0
    evaluations: int = 0
    failures: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    contributor_names: list[str] | None = None

    def merged(self, kernel: Kernel, chunk: Chunk) -> SamplingState:
        """A new state with ``chunk`` folded in (the old state is left untouched, so an
        interrupt during the merge cannot leave a half-updated state)."""
        acc = {k: w.copy() for k, w in self.accumulators.items()}
        kernel.merge(acc, chunk)
        failures = Counter(self.failures)
        failures.update(chunk.failures)
        return SamplingState(
            self.kernel,
            self.fingerprint,
            self.seed,
            self.n_players,
            acc,
            self.next_draw + chunk.count,
            self.evaluations + chunk.evaluations,
            failures,
            self.elapsed,
            self.contributor_names,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": STATE_FORMAT,
            "kernel": self.kernel,
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "n_players": self.n_players,
            "next_draw": self.next_draw,
            "evaluations": self.evaluations,
            "failures": dict(self.failures),
            "elapsed": self.elapsed,
            "accumulators": {k: w.to_json() for k, w in self.accumulators.items()},
        }
        if self.contributor_names is not None:
            out["contributor_names"] = list(self.contributor_names)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SamplingState:
        if not isinstance(data, Mapping) or data.get("format") != STATE_FORMAT:
            raise ValidationError(
                "continue_from has no sampling state to continue (diagnostics['state'] is missing or "
                "not a sampling state); pass a result of a Monte Carlo estimator or its checkpoint file"
            )
        n = int(data["n_players"])
        names = data.get("contributor_names")
        names = None if names is None else [str(c) for c in names]
        accumulators = {}
        for key, value in data["accumulators"].items():
            if key == CONTRIBUTOR_KEY:
                if names is None:
                    raise ValidationError(
                        "sampling state has contributor sums but no contributor names; "
                        "the saved result is damaged, start a new run"
                    )
                accumulators[key] = Welford.from_json(value, len(names))
            else:
                accumulators[key] = Welford.from_json(value, n)
        return cls(
            kernel=str(data["kernel"]),
            fingerprint=dict(data["fingerprint"]),
            seed=int(data["seed"]),
            n_players=n,
            accumulators=accumulators,
            next_draw=int(data["next_draw"]),
            evaluations=int(data["evaluations"]),
            failures=Counter({str(k): int(v) for k, v in dict(data.get("failures", {})).items()}),
            elapsed=float(data.get("elapsed", 0.0)),
            contributor_names=names,
        )
