"""Monte Carlo semivalues against closed forms, exact enumeration and the Beta Shapley paper."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy import integrate, stats

import openattrib as oa
from openattrib import stopping as stop
from openattrib import toy_games as tg
from openattrib.estimators.semivalue import (
    banzhaf,
    beta_shapley,
    beta_weights,
    permutation_shapley,
    semivalue,
)

AIRPORT_COSTS = np.random.default_rng(42).uniform(1.0, 10.0, 100).round(3)


class FastAirport(tg.AirportGame):
    """The airport game with a vectorised prefix walk (the override point of fast games)."""

    def prefix_walk(self, permutation, truncation=None):
        if truncation is not None:
            return super().prefix_walk(permutation, truncation)
        prefix_max = np.maximum.accumulate(self.costs[permutation])
        return np.concatenate([[0.0], prefix_max]), self.n_players + 1


TOY_GAMES = {
    "voting7": tg.SymmetricVotingGame(7),
    "weighted_voting": tg.WeightedVotingGame(np.array([4, 3, 2, 1, 1]), quota=6),
    "glove3x4": tg.GloveGame(3, 4),
    "airport100": FastAirport(AIRPORT_COSTS),
}


def within(result, truth, k=4.0):
    err = np.abs(result.values - truth)
    assert np.isfinite(result.stderr).all()
    # a player whose marginals never varied has stderr 0 and must then be exact
    assert (err <= k * result.stderr + 1e-12).all(), (err / np.maximum(result.stderr, 1e-300)).max()


# ---------------------------------------------------------------- closed-form toy games
@pytest.mark.parametrize("name", TOY_GAMES)
@pytest.mark.parametrize("antithetic", [False, True])
def test_permutation_shapley_within_4_stderr_of_closed_form(name, antithetic):
    game = TOY_GAMES[name]
    # the airport game's marginals are very skewed (a player's largest marginal comes when it
    # arrives first, once in 100 permutations): intervals are only trustworthy once such
    # rare events have been seen many times, so it needs many more samples
    n_samples = 20_000 if game.n_players > 20 else 600
    result = permutation_shapley(
        game, stop=stop.MaxSamples(n_samples), antithetic=antithetic, seed=11, progress=False
    )
    within(result, game.shapley_values())
    assert result.counts.tolist() == [n_samples] * game.n_players
    assert result.method == "permutation_shapley"


@pytest.mark.parametrize("name", TOY_GAMES)
def test_msr_banzhaf_within_4_stderr_of_closed_form(name):
    game = TOY_GAMES[name]
    result = banzhaf(game, stop=stop.MaxSamples(4000), seed=5, progress=False)
    within(result, game.banzhaf_values())
    assert result.diagnostics["utility_evaluations"] == 4000  # one evaluation per coalition


def test_msr_banzhaf_matches_exact_banzhaf_on_a_random_game():
    n = 8
    table = np.random.default_rng(0).normal(size=1 << n)
    bits = 1 << np.arange(n)
    game = oa.Game.from_function(lambda m: table[m.astype(np.int64) @ bits], n, batched=True)
    exact = oa.exact_banzhaf(game, progress=False).values
    result = banzhaf(game, stop=stop.MaxSamples(20_000), seed=1, progress=False)
    within(result, exact)
    assert np.abs(result.values - exact).max() < 0.1


@pytest.mark.parametrize("alpha, beta", [(16, 1), (1, 16), (4, 2), (1, 1)])
@pytest.mark.parametrize("name", ["voting7", "weighted_voting", "glove3x4"])
def test_beta_shapley_within_4_stderr_of_exact(name, alpha, beta):
    game = TOY_GAMES[name]
    exact = oa.exact_semivalue(
        game, beta_weights(game.n_players, alpha, beta), progress=False
    ).values
    result = beta_shapley(game, alpha, beta, stop=stop.MaxSamples(1500), seed=3, progress=False)
    within(result, exact)
    assert result.parameters["alpha"] == alpha and result.parameters["beta"] == beta


def test_beta_shapley_on_airport_game():
    game = tg.AirportGame(AIRPORT_COSTS[:14])
    exact = oa.exact_semivalue(game, beta_weights(14, 16, 1), progress=False).values
    within(beta_shapley(game, stop=stop.MaxSamples(3000), seed=0, progress=False), exact)


def test_generic_semivalue_with_custom_weights_and_banzhaf_by_permutations():
    game = TOY_GAMES["weighted_voting"]
    weights = np.array([0.0, 0.1, 0.3, 0.05, 0.2])
    exact = oa.exact_semivalue(game, weights, progress=False).values
    within(semivalue(game, weights, stop=stop.MaxSamples(3000), seed=2, progress=False), exact)
    by_permutation = semivalue(
        game, "banzhaf", sampler="permutation", stop=stop.MaxSamples(3000), seed=2, progress=False
    )
    within(by_permutation, game.banzhaf_values())


# ---------------------------------------------------------------- calibrated uncertainty
COVERAGE_CASES = {
    "permutation": (
        TOY_GAMES["glove3x4"],
        lambda g, s: permutation_shapley(g, stop=stop.MaxSamples(100), seed=s, progress=False),
        "shapley",
    ),
    "antithetic": (
        TOY_GAMES["voting7"],
        lambda g, s: permutation_shapley(
            g, stop=stop.MaxSamples(120), antithetic=True, seed=s, progress=False
        ),
        "shapley",
    ),
    "msr": (
        TOY_GAMES["weighted_voting"],
        lambda g, s: banzhaf(g, stop=stop.MaxSamples(300), seed=s, progress=False),
        "banzhaf",
    ),
    "beta": (
        TOY_GAMES["glove3x4"],
        lambda g, s: beta_shapley(g, 4, 2, stop=stop.MaxSamples(200), seed=s, progress=False),
        "beta",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", COVERAGE_CASES)
def test_95_percent_intervals_cover_the_truth_at_the_nominal_rate(case):
    game, run, kind = COVERAGE_CASES[case]
    if kind == "shapley":
        truth = game.shapley_values()
    elif kind == "banzhaf":
        truth = game.banzhaf_values()
    else:
        truth = oa.exact_semivalue(game, beta_weights(game.n_players, 4, 2), progress=False).values
    n_seeds = 150
    estimates, stderrs = [], []
    for seed in range(n_seeds):
        result = run(game, 1000 + seed)
        estimates.append(result.values)
        stderrs.append(result.stderr)
    estimates, stderrs = np.array(estimates), np.array(stderrs)
    coverage = (np.abs(estimates - truth) <= 1.96 * stderrs).mean()
    # conservative binomial tolerance: players of one run are correlated, so count seeds only
    tolerance = 3 * np.sqrt(0.95 * 0.05 / n_seeds)
    assert abs(coverage - 0.95) <= tolerance, coverage
    # and the reported stderr matches the actual spread of the estimates over seeds
    ratio = estimates.std(axis=0, ddof=1) / np.sqrt((stderrs**2).mean(axis=0))
    assert ((ratio > 0.75) & (ratio < 1.3)).all(), ratio


# ---------------------------------------------------------------- Beta Shapley convention
def paper_weight(n, j, alpha, beta):
    """Kwon & Zou (2022), eq. (5): w_{alpha,beta}^{(n)}(j) = n * int_0^1 t^{j-1} (1-t)^{n-j}
    * t^{beta-1} (1-t)^{alpha-1} / Beta(alpha, beta) dt, by numerical quadrature."""
    density = stats.beta(beta, alpha).pdf  # the prior on t: t^(beta-1) (1-t)^(alpha-1)
    value, _ = integrate.quad(
        lambda t: t ** (j - 1) * (1 - t) ** (n - j) * density(t),
        0,
        1,
        epsabs=0,
        epsrel=1e-12,
        limit=200,
    )
    return n * value


@pytest.mark.parametrize("n", [1, 5, 12])
@pytest.mark.parametrize("alpha, beta", [(16, 1), (1, 16), (4, 2), (1, 1), (0.5, 3.5)])
def test_beta_weights_follow_the_paper(n, alpha, beta):
    # the paper's semivalue is (1/n) sum_j C(n-1, j-1) w(j) Delta_j with Delta_j the average
    # marginal over coalitions of size j-1, so one coalition of size k weighs w(k+1) / n
    ours = beta_weights(n, alpha, beta)
    paper = np.array([paper_weight(n, k + 1, alpha, beta) / n for k in range(n)])
    np.testing.assert_allclose(ours, paper, rtol=1e-8)
    # a probabilistic semivalue: the size distribution sums to one
    assert sum(comb(n - 1, k) * ours[k] for k in range(n)) == pytest.approx(1.0, rel=1e-12)


def test_beta_convention_alpha_up_weights_small_coalitions():
    n = 10
    small_first = beta_weights(n, 16, 1) * np.array([comb(n - 1, k) for k in range(n)])
    large_first = beta_weights(n, 1, 16) * np.array([comb(n - 1, k) for k in range(n)])
    assert (np.diff(small_first) < 0).all()  # Beta(16, 1): mass on small coalitions
    assert (np.diff(large_first) > 0).all()
    np.testing.assert_allclose(
        beta_weights(n, 1, 1), [1 / (n * comb(n - 1, k)) for k in range(n)], rtol=1e-12
    )
    # so on a game where only the first player to arrive matters, Beta(16, 1) values it most
    first_arrival = tg.AirportGame(np.ones(n))  # v(S) = 1 for any non-empty S
    exact_small = oa.exact_semivalue(first_arrival, beta_weights(n, 16, 1), progress=False).values
    exact_large = oa.exact_semivalue(first_arrival, beta_weights(n, 1, 16), progress=False).values
    assert exact_small[0] > 10 * exact_large[0]


# ---------------------------------------------------------------- efficiency and truncation
@pytest.mark.parametrize("antithetic", [False, True])
def test_permutation_values_are_efficient(antithetic):
    game = TOY_GAMES["airport100"]
    result = permutation_shapley(
        game, stop=stop.MaxSamples(50), antithetic=antithetic, seed=0, progress=False
    )
    assert result.values.sum() == pytest.approx(game.grand_value - game.empty_value, rel=1e-12)


def test_truncation_saves_evaluations_and_errs_by_at_most_the_tolerance():
    game = TOY_GAMES["airport100"]
    full = permutation_shapley(game, stop=stop.MaxSamples(100), seed=4, progress=False)
    rtol = 0.05
    truncated = permutation_shapley(
        game, stop=stop.MaxSamples(100), truncation=rtol, seed=4, progress=False
    )
    grand, empty = game.grand_value, game.empty_value
    assert abs(truncated.values.sum() - (grand - empty)) <= rtol * abs(grand) + 1e-9
    assert (
        truncated.diagnostics["utility_evaluations"] < 0.6 * full.diagnostics["utility_evaluations"]
    )
    assert truncated.parameters["truncation"] == "rtol=0.05,atol=0.0,burn_in=0.1,patience=1"


def test_truncation_burn_in_and_patience():
    game = TOY_GAMES["airport100"]
    early = permutation_shapley(
        game,
        stop=stop.MaxSamples(20),
        truncation={"rtol": 0.5, "burn_in": 0.0},
        seed=0,
        progress=False,
    )
    late = permutation_shapley(
        game, stop=stop.MaxSamples(20), truncation="rtol=0.5,burn_in=0.9", seed=0, progress=False
    )
    patient = permutation_shapley(
        game,
        stop=stop.MaxSamples(20),
        truncation="rtol=0.5,burn_in=0,patience=30",
        seed=0,
        progress=False,
    )
    evals = [r.diagnostics["utility_evaluations"] for r in (early, late, patient)]
    assert evals[0] < evals[2] < 20 * 101
    assert evals[1] >= 20 * 91  # nothing truncated before 90% of each permutation


# ---------------------------------------------------------------- a model game
@pytest.fixture(scope="module")
def ten_point_game():
    from sklearn.linear_model import LogisticRegression

    train, valid = oa.datasets.load_demo()
    rows = np.concatenate([np.flatnonzero(train.y == 0)[:5], np.flatnonzero(train.y == 1)[:5]])
    return oa.ModelUtility(LogisticRegression(), train.subset(rows), valid, players="points")


def test_monte_carlo_converges_to_exact_shapley_on_a_model_game(ten_point_game):
    game = ten_point_game
    exact = oa.exact_shapley(game, progress=False).values
    small = permutation_shapley(game, stop=stop.MaxSamples(20), seed=0, progress=False)
    large = permutation_shapley(
        game, stop=stop.MaxSamples(640), continue_from=small, progress=False
    )
    err_small, err_large = np.abs(small.values - exact).max(), np.abs(large.values - exact).max()
    assert err_large < 0.5 * err_small  # 32x the samples: the error should shrink ~5.7x
    within(large, exact)
    assert large.values.sum() == pytest.approx(game.grand_value - game.empty_value, abs=1e-12)
    assert large.level == "points" and large.provenance["model_class"].endswith(
        "LogisticRegression"
    )
    assert "defaulted_coalitions" in large.diagnostics
    assert large.diagnostics["defaulted_coalitions"].get("single_class", 0) >= 0
