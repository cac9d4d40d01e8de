"""Stopping rules: semantics, composition, text form, bad budgets, and their effect on runs."""

from __future__ import annotations

import time

import numpy as np
import pytest

import openattrib as oa
from openattrib import stopping as stop
from openattrib import toy_games as tg
from openattrib.estimators.semivalue import banzhaf, permutation_shapley


def progress(
    samples=0, evaluations=0, elapsed=0.0, values=(0.0, 1.0), stderr=(0.1, 0.1), per_draw=1, evals=1
):
    return stop.Progress(
        samples=samples,
        evaluations=evaluations,
        elapsed=elapsed,
        values=np.asarray(values, dtype=float),
        stderr=np.asarray(stderr, dtype=float),
        samples_per_draw=per_draw,
        max_evaluations_per_draw=evals,
    )


def test_max_samples_and_draws_left():
    rule = stop.MaxSamples(10)
    assert rule.check(progress(samples=9)) is None
    assert rule.check(progress(samples=10)) == "MaxSamples(10)"
    assert rule.draws_left(progress(samples=4)) == 6
    # antithetic pairs: 7 permutations left -> 4 pairs (rounded up)
    assert rule.draws_left(progress(samples=3, per_draw=2)) == 4


def test_max_evaluations_never_starts_an_unaffordable_draw():
    rule = stop.MaxEvaluations(100)
    assert rule.draws_left(progress(evaluations=10, evals=11)) == 8
    assert rule.check(progress(evaluations=90, evals=11)) == "MaxEvaluations(100)"
    assert rule.check(progress(evaluations=89, evals=11)) is None


def test_max_time():
    assert stop.MaxTime(1.5).check(progress(elapsed=1.0)) is None
    assert stop.MaxTime(1.5).check(progress(elapsed=1.6)) == "MaxTime(1.5)"


def test_stderr_absolute_relative_and_min_samples():
    p = progress(samples=100, values=[0.0, 2.0], stderr=[0.05, 0.15])
    assert stop.StdErr(atol=0.1).check(p) is None
    assert stop.StdErr(atol=0.2).check(p) == "StdErr(atol=0.2)"
    # rtol is relative to the range of the values (2.0): 0.1 * 2 = 0.2 >= 0.15
    assert stop.StdErr(rtol=0.1).check(p) is not None
    assert stop.StdErr(rtol=0.05).check(p) is None
    # too few samples: a stderr from a handful of samples is not trusted
    assert stop.StdErr(atol=1.0).check(progress(samples=5, stderr=[0.0, 0.0])) is None
    assert (
        stop.StdErr(atol=1.0, min_samples=2).check(progress(samples=5, stderr=[0.0, 0.0]))
        is not None
    )
    # unknown stderr (NaN) never counts as converged
    assert stop.StdErr(atol=1.0).check(progress(samples=100, stderr=[np.nan, 0.0])) is None


def test_rank_stable_compares_successive_checkpoints():
    rule = stop.RankStable(rho=0.9, every=10)
    assert rule.check(progress(samples=10, values=[1, 2, 3, 4])) is None  # first checkpoint
    assert rule.check(progress(samples=15, values=[4, 3, 2, 1])) is None  # not yet `every` later
    assert rule.check(progress(samples=20, values=[4, 3, 2, 1])) is None  # reversed ranking
    reason = rule.check(progress(samples=30, values=[4.1, 3.2, 2.0, 0.5]))
    assert reason is not None and "RankStable" in reason


def test_composition_any_all():
    p = progress(samples=50, elapsed=5.0)
    either = stop.MaxSamples(50) | stop.MaxTime(100)
    both = stop.MaxSamples(50) & stop.MaxTime(100)
    assert either.check(p) == "MaxSamples(50)"
    assert both.check(p) is None
    assert (stop.MaxSamples(50) & stop.MaxTime(1)).check(p) == "MaxSamples(50) & MaxTime(1)"
    assert either.draws_left(progress(samples=10)) == 40
    assert (stop.MaxSamples(50) | stop.MaxSamples(20)).draws_left(progress(samples=10)) == 10
    assert (stop.MaxSamples(50) & stop.MaxSamples(20)).draws_left(progress(samples=10)) == 40
    assert (stop.MaxSamples(50) & stop.StdErr(atol=0.1)).draws_left(progress()) is None


def test_boundedness():
    assert stop.MaxSamples(5).is_bounded()
    assert not stop.StdErr(atol=0.1).is_bounded()
    assert (stop.StdErr(atol=0.1) | stop.MaxTime(5)).is_bounded()
    assert not (stop.StdErr(atol=0.1) & stop.MaxTime(5)).is_bounded()


@pytest.mark.parametrize(
    "rule",
    [
        stop.MaxSamples(500) | stop.MaxTime(60),
        stop.StdErr(atol=0.01, rtol=0.05, min_samples=10) & stop.MaxEvaluations(10_000),
        (stop.RankStable(0.95, every=50) | stop.MaxSamples(10)) & stop.MaxTime(2.5),
    ],
    ids=str,
)
def test_text_form_round_trips(rule):
    assert stop.parse(str(rule)) == rule
    assert str(stop.parse(str(rule))) == str(rule)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: stop.MaxSamples(0), "positive integer"),
        (lambda: stop.MaxSamples(-3), "positive integer"),
        (lambda: stop.MaxSamples(2.5), "positive integer"),
        (lambda: stop.MaxEvaluations(0), "positive integer"),
        (lambda: stop.MaxTime(0), "positive"),
        (lambda: stop.MaxTime(-1), "positive"),
        (lambda: stop.StdErr(), "atol"),
        (lambda: stop.StdErr(atol=-0.1), "atol"),
        (lambda: stop.RankStable(rho=1.5), "rho"),
        (lambda: stop.RankStable(every=0), "every"),
        (lambda: stop.MaxSamples(10) | 5, "combine only with other rules"),
        (lambda: stop.parse("MaxSamples(10) + 3"), "cannot read stopping rule"),
        (lambda: stop.parse("Forever()"), "cannot read stopping rule"),
        (lambda: stop.parse("MaxSamples('a')"), "numbers"),
    ],
)
def test_bad_rules_have_clear_messages(make, message):
    with pytest.raises(oa.ValidationError, match=message):
        make()


def test_estimator_without_stopping_rule_refuses_before_any_work():
    calls = []
    game = oa.Game.from_function(lambda m: calls.append(1) or float(m.sum()), 3)
    with pytest.raises(oa.ValidationError, match="no stopping rule"):
        permutation_shapley(game, seed=0, progress=False)
    with pytest.raises(oa.ValidationError, match="could run forever"):
        permutation_shapley(game, stop=stop.StdErr(atol=0.01), seed=0, progress=False)
    with pytest.raises(oa.ValidationError, match="could run forever"):
        banzhaf(game, stop=stop.StdErr(atol=0.01) & stop.MaxSamples(5), seed=0, progress=False)
    assert calls == []


def test_text_stop_is_accepted_by_estimators():
    game = tg.GloveGame(2, 3)
    result = permutation_shapley(game, stop="MaxSamples(40) | MaxTime(60)", seed=0, progress=False)
    assert result.counts.tolist() == [40] * 5
    assert result.parameters["stop"] == "MaxSamples(40) | MaxTime(60)"
    assert result.diagnostics["stopped_by"] == "MaxSamples(40)"


def test_max_samples_is_exact_even_across_rounds():
    game = tg.GloveGame(2, 3)
    result = permutation_shapley(
        game, stop=stop.MaxSamples(101), seed=0, progress=False, batch_size=7
    )
    assert result.counts[0] == 101
    assert result.diagnostics["utility_evaluations"] == 101 * 6


def test_max_evaluations_is_never_exceeded():
    game = tg.AirportGame(np.linspace(1.0, 2.0, 9))
    for truncation in (None, 0.05):
        result = permutation_shapley(
            game, stop=stop.MaxEvaluations(333), truncation=truncation, seed=1, progress=False
        )
        used = result.diagnostics["utility_evaluations"]
        assert used <= 333
        assert used > 333 - 10  # it used (almost) all of the budget
        assert result.diagnostics["stopped_by"] == "MaxEvaluations(333)"


def test_too_small_evaluation_budget_is_a_budget_error():
    with pytest.raises(oa.BudgetError, match="allows no sample"):
        permutation_shapley(tg.GloveGame(5, 5), stop=stop.MaxEvaluations(5), seed=0, progress=False)


def test_stderr_rule_stops_when_reached_and_records_it():
    game = tg.GloveGame(2, 3)
    rule = stop.StdErr(atol=0.02) | stop.MaxSamples(100_000)
    result = permutation_shapley(game, stop=rule, seed=0, progress=False)
    assert result.diagnostics["stopped_by"] == "StdErr(atol=0.02)"
    assert result.stderr.max() <= 0.02
    assert result.counts[0] < 100_000
    # it stopped at the first round boundary where the rule held: one round earlier it did not
    history = result.diagnostics["history"]
    assert history[-1]["samples"] == result.counts[0]


def test_max_time_stops_a_slow_game():
    def slow(mask):
        time.sleep(0.002)
        return float(mask.sum())

    game = oa.Game.from_function(slow, 4)
    started = time.perf_counter()
    result = permutation_shapley(
        game, stop=stop.MaxTime(0.3) | stop.MaxSamples(10**6), seed=0, progress=False
    )
    assert result.diagnostics["stopped_by"] == "MaxTime(0.3)"
    assert time.perf_counter() - started < 5.0
    np.testing.assert_allclose(result.values, 1.0)  # additive game: every marginal is 1


def test_rank_stable_stops_a_run():
    game = tg.AirportGame([1.0, 2.0, 4.0, 8.0, 16.0])
    rule = stop.RankStable(rho=0.99, every=64) | stop.MaxSamples(50_000)
    result = permutation_shapley(game, stop=rule, seed=0, progress=False)
    assert result.diagnostics["stopped_by"].startswith("RankStable(rho=0.99, every=64)")
    assert result.ranking() == ["p4", "p3", "p2", "p1", "p0"]
