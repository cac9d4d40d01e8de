"""The one sampling loop shared by every Monte Carlo estimator.

Work is a sequence of *draws* (a permutation, an antithetic pair, a coalition) numbered
0, 1, 2, ... Draw ``d`` belongs to batch ``b = d // batch_size``, whose random stream is
``default_rng(SeedSequence(seed, spawn_key=(b,)))``; a batch's draws are taken from its
stream in order. Workers return the per-draw results of contiguous ranges of draws, and
the parent folds them into per-player running means and variances (Welford 1962) one
draw at a time in draw order. Nothing therefore depends on how the draws were split
between workers, on ``n_jobs``, or on whether the run was interrupted and continued: the
same seed and the same number of draws give bit-identical results.

The accumulator state (counts, means, sums of squared deviations, the next draw) is
stored in ``diagnostics["state"]`` of every result, as JSON numbers, which round-trip
float64 exactly; ``continue_from=`` resumes from it.

On a point-level game whose points have contributors, the permutation kernel also folds
in, per draw, the sum of the point estimates over each contributor's points (same order,
same state, same exactness). The mean of these sums is the contributor's total and their
sample standard error accounts for the correlation between points sharing a draw; both go
into ``diagnostics["by_contributor"]``, which ``Attribution.by_contributor()`` uses. MSR
Banzhaf has no per-draw estimate to sum (each coalition feeds the "in" and "out" means
of different players), so it keeps the plain sums without error bars.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import stopping
from ..errors import BudgetError, ValidationError
from ..games import Game
from ..parallel import Executor
from ..result import Attribution, ContributorSums, make_provenance
from .accumulators import (
    CONTRIBUTOR_KEY,
    Kernel,
    SamplingState,
    contributor_groups,
    failure_counts,
)

__all__ = ["run_sampling", "check_seed", "resolve_stop"]

log = logging.getLogger("openattrib")


def check_seed(seed: Any) -> int:
    """A non-negative int seed; ``None`` draws a fresh one (recorded in the result)."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError(
            f"seed must be a non-negative int (or None for a fresh one), got {seed!r}"
        )
    return int(seed)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def resolve_stop(stop: Any) -> stopping.StoppingRule:
    """Validate ``stop=``: a rule (or its text form) that is certain to end the run."""
    if stop is None:
        raise ValidationError(
            "no stopping rule: a Monte Carlo estimator needs stop=, e.g. "
            "stop=oa.stop.MaxSamples(1000) or stop=oa.stop.StdErr(atol=0.01) | oa.stop.MaxTime(600)"
        )
    rule = stopping.parse(stop) if isinstance(stop, str) else stop
    if not isinstance(rule, stopping.StoppingRule):
        raise ValidationError(
            f"stop must be an oa.stop rule or its text form, got {type(stop).__name__}"
        )
    if not rule.is_bounded():
        raise ValidationError(
            f"stop={rule} could run forever (it holds no budget); combine it with one, "
            f"e.g. stop=({rule}) | oa.stop.MaxSamples(10_000) or | oa.stop.MaxTime(600)"
        )
    return rule.fresh()


def _load_previous(continue_from: Any) -> Attribution:
    if isinstance(continue_from, (str, Path)):
        return Attribution.load(continue_from)
    if isinstance(continue_from, Attribution):
        return continue_from
    raise ValidationError(
        f"continue_from must be an Attribution or the path of a saved one, got {type(continue_from).__name__}"
    )


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def run_sampling(
    game: Game,
    kernel: Kernel,
    *,
    method: str,
    parameters: dict[str, Any],
    stop: Any,
    seed: Any,
    batch_size: int,
    batches_per_round: int,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = True,
    continue_from: Any = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
) -> Attribution:
    """Run ``kernel`` on ``game`` until ``stop`` fires; see the module docstring."""
    if not isinstance(game, Game):
        raise ValidationError(
            f"expected an openattrib Game, got {type(game).__name__}; "
            "wrap a function with oa.Game.from_function(fn, n_players)"
        )
    rule = resolve_stop(stop)
    batch_size = _check_positive_int("batch_size", batch_size)
    batches_per_round = _check_positive_int("batches_per_round", batches_per_round)
    checkpoint_every = float(checkpoint_every)
    if not checkpoint_every > 0:
        raise ValidationError(
            f"checkpoint_every must be a positive number of seconds, got {checkpoint_every!r}"
        )
    n = game.n_players
    fingerprint = {**kernel.fingerprint(), "batch_size": batch_size}
    history: list[dict[str, Any]] = []
    if continue_from is not None:
        previous = _load_previous(continue_from)
        state = SamplingState.from_json(previous.diagnostics.get("state"))
        _check_continuation(previous, state, game, kernel, fingerprint, method, seed)
        seed = state.seed
        history = list(previous.diagnostics.get("history", []))
    else:
        seed = check_seed(seed)
    kernel = replace(kernel, seed=seed)  # type: ignore[type-var]
    executor = Executor(n_jobs=n_jobs, backend=backend, client=client, scheduler=scheduler)
    with executor:
        executor.check_shareable(game)
        kernel, setup_evaluations = kernel.prepare(game)
        if continue_from is None:
            accumulators = kernel.new_accumulators(n)
            groups = contributor_groups(game)
            state = SamplingState(
                kernel.name,
                fingerprint,
                seed,
                n,
                accumulators,
                evaluations=setup_evaluations,
                contributor_names=(
                    groups[0] if groups is not None and CONTRIBUTOR_KEY in accumulators else None
                ),
            )
        run = _Run(
            game,
            kernel,
            rule,
            state,
            history,
            batch_size,
            batches_per_round,
            method,
            parameters,
            executor,
        )
        return run.execute(progress, checkpoint, checkpoint_every)


def _check_continuation(
    previous: Attribution,
    state: SamplingState,
    game: Game,
    kernel: Kernel,
    fingerprint: dict[str, Any],
    method: str,
    seed: Any,
) -> None:
    if previous.method != method:
        raise ValidationError(
            f"continue_from is a {previous.method!r} result; it cannot be continued by {method}"
        )
    if list(previous.names) != list(game.player_names) or state.n_players != game.n_players:
        raise ValidationError(
            "continue_from was computed on a game with different players; pass the same game"
        )
    described = {k: v for k, v in game.describe().items() if k in previous.provenance}
    changed = sorted(k for k, v in described.items() if previous.provenance[k] != v)
    if changed:
        raise ValidationError(
            f"continue_from was computed on a different game ({', '.join(changed)} differ); "
            "continue with the same game and data, or start a new run"
        )
    if state.kernel != kernel.name or state.fingerprint != fingerprint:
        raise ValidationError(
            f"continue_from used different sampling parameters {state.fingerprint}; continue with the same "
            f"ones (now {fingerprint}) or start a new run"
        )
    if state.contributor_names is not None:
        groups = contributor_groups(game)
        if groups is None or groups[0] != state.contributor_names:
            raise ValidationError(
                "continue_from was computed on points with different contributors; continue with "
                "the same game and data, or start a new run"
            )
    # the default seed (0) and None mean "the saved one"; any other seed must match it
    if seed not in (None, 0) and check_seed(seed) != state.seed:
        raise ValidationError(
            f"continue_from was run with seed={state.seed}, not {seed}; omit seed= (or pass the same one) to continue"
        )


class _Run:
    """One session of sampling: rounds of batches until the stopping rule fires."""

    def __init__(
        self,
        game: Game,
        kernel: Kernel,
        rule: stopping.StoppingRule,
        state: SamplingState,
        history: list[dict[str, Any]],
        batch_size: int,
        batches_per_round: int,
        method: str,
        parameters: dict[str, Any],
        executor: Executor,
    ) -> None:
        self.game, self.kernel, self.rule, self.state = game, kernel, rule, state
        self.history, self.batch_size, self.batches_per_round = (
            history,
            batch_size,
            batches_per_round,
        )
        self.method, self.parameters, self.executor = method, parameters, executor
        self.started = time.perf_counter()
        self.per_draw = kernel.max_evaluations_per_draw(game.n_players)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def progress(self) -> stopping.Progress:
        values, stderr = self.kernel.estimate(self.state.accumulators)
        return stopping.Progress(
            samples=self.state.next_draw * self.kernel.samples_per_draw,
            evaluations=self.state.evaluations,
            elapsed=self.elapsed(),
            values=values,
            stderr=stderr,
            samples_per_draw=self.kernel.samples_per_draw,
            max_evaluations_per_draw=self.per_draw,
        )

    def tasks(self, n_draws: int) -> list[tuple[int, int, int]]:
        """Split draws [next, next + n_draws) at batch boundaries: (batch, offset, count)."""
        out, start, end = [], self.state.next_draw, self.state.next_draw + n_draws
        while start < end:
            batch, offset = divmod(start, self.batch_size)
            count = min(self.batch_size - offset, end - start)
            out.append((batch, offset, count))
            start += count
        return out

    def execute(
        self, show: bool, checkpoint: str | Path | None, checkpoint_every: float
    ) -> Attribution:
        round_draws = self.batch_size * self.batches_per_round
        reason: str | None = None
        interrupted = False
        last_write = time.perf_counter()
        bound = self.rule.draws_left(self.progress())
        total = (
            None
            if bound is None
            else self.progress().samples + bound * self.kernel.samples_per_draw
        )
        unit = "perm" if self.kernel.name == "permutation" else "coalition"
        bar = tqdm(
            total=total,
            initial=self.progress().samples,
            desc=self.method,
            unit=unit,
            disable=not show,
        )
        try:
            while True:
                current = self.progress()
                reason = self.rule.check(current) if current.samples > 0 else None
                if reason is not None:
                    break
                left = self.rule.draws_left(current)
                n_draws = round_draws if left is None else min(round_draws, left)
                if n_draws == 0:
                    raise BudgetError(
                        f"stop={self.rule} allows no sample: one draw can cost up to {self.per_draw} utility "
                        f"evaluations for {self.game.n_players} players; raise the budget"
                    )
                for chunk in self.executor.imap(self.kernel, self.tasks(n_draws), shared=self.game):
                    self.state = self.state.merged(self.kernel, chunk)
                    bar.update(chunk.count * self.kernel.samples_per_draw)
                current = self.progress()
                if show:
                    finite = current.stderr[np.isfinite(current.stderr)]
                    bar.set_postfix(max_stderr=f"{finite.max():.3g}" if finite.size else "n/a")
                self._record(current)
                if checkpoint is not None and time.perf_counter() - last_write >= checkpoint_every:
                    self.result(reason=None, interrupted=False).save(checkpoint)
                    last_write = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True
            reason = "KeyboardInterrupt"
            log.warning(
                "interrupted: returning the partial result after %d samples",
                self.progress().samples,
            )
        finally:
            bar.close()
        self._record(self.progress(), final=True)
        result = self.result(reason=reason, interrupted=interrupted)
        if checkpoint is not None:
            result.save(checkpoint)
        return result

    def _record(self, current: stopping.Progress, final: bool = False) -> None:
        """Keep the values at geometrically spaced checkpoints (and the last one)."""
        if self.history and self.history[-1]["samples"] == current.samples:
            return
        last = self.history[-1]["samples"] if self.history else 0
        if not final and last and current.samples < 1.25 * last:
            return
        finite = current.stderr[np.isfinite(current.stderr)]
        self.history.append(
            {
                "samples": current.samples,
                "evaluations": current.evaluations,
                "elapsed": round(self.state.elapsed + current.elapsed, 6),
                "values": _finite_or_none(current.values),
                "max_stderr": float(finite.max()) if finite.size else None,
            }
        )

    def result(self, reason: str | None, interrupted: bool) -> Attribution:
        game, state = self.game, self.state
        snapshot = SamplingState(**{**state.__dict__, "elapsed": state.elapsed + self.elapsed()})
        values, stderr = self.kernel.estimate(state.accumulators)
        samples = state.next_draw * self.kernel.samples_per_draw
        diagnostics: dict[str, Any] = {
            "utility_evaluations": state.evaluations,
            "samples": samples,
            "stopped_by": reason,
            "interrupted": interrupted,
            "history": list(self.history),
            "elapsed_seconds": round(snapshot.elapsed, 6),
            "execution": self.executor.describe(),
            "state": snapshot.to_json(),
        }
        if failure_counts(game) is not None:
            diagnostics["defaulted_coalitions"] = dict(state.failures)
        sums = state.accumulators.get(CONTRIBUTOR_KEY)
        contributor_sums = None
        if sums is not None and state.contributor_names is not None:
            contributor_sums = ContributorSums(
                list(state.contributor_names),
                np.where(sums.count > 0, sums.mean, np.nan),
                np.sqrt(sums.variance_of_mean()),
                np.asarray(sums.count * self.kernel.samples_per_draw, dtype=np.int64),
                "mean and sample standard error of the per-draw sums of the point "
                "estimates over each contributor's points",
            )
        return Attribution(
            values,
            game.player_names,
            stderr=stderr,
            counts=np.full(game.n_players, samples, dtype=np.int64),
            method=self.method,
            parameters={**self.parameters, "stop": str(self.rule), "batch_size": self.batch_size},
            seed=state.seed,
            provenance=make_provenance(**game.describe()),
            players=game.level,
            contributors=game.point_contributors,
            contributor_sums=contributor_sums,
            diagnostics=diagnostics,
        )
