"""Logistic-regression fast path: equal to scikit-learn's fit within its tolerance.

Oracles: fresh scikit-learn fits (the generic refit, ``fast=False``) for the validation
accuracy of random coalitions, and scikit-learn with a very tight tolerance for the
coefficients (the Newton path solves the same objective exactly).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import openattrib as oa
from openattrib.games import ModelUtility


def data(n=40, n_valid=120, seed=0, contributors=False):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:, :12]
    order = np.random.default_rng(seed).permutation(len(y))
    tr, va = order[:n], order[n : n + n_valid]
    owners = [f"c{i % 13}" for i in range(n)] if contributors else None
    return oa.Dataset(X[tr], y[tr], contributors=owners), oa.Dataset(X[va], y[va])


def pair(model=LogisticRegression, players="points", **kw):
    train, valid = data(contributors=players == "contributors")
    fast = ModelUtility(model(**kw), train, valid, players=players)
    slow = ModelUtility(model(**kw), train, valid, players=players, fast=False)
    assert type(fast._fast_path).__name__ == "LogisticFastPath"
    return fast, slow


@pytest.mark.slow
def test_accuracy_equals_fresh_fit_on_99_percent_of_coalitions():
    rng = np.random.default_rng(0)
    got, want = [], []
    for players, n_masks in (("points", 200), ("contributors", 100)):
        fast, slow = pair(players=players)
        n = fast.n_players
        perm = rng.permutation(n)
        got.append(fast.prefix_walk(perm)[0])
        want.append(slow.prefix_walk(perm)[0])
        masks = rng.random((n_masks, n)) < rng.uniform(0.1, 1.0, size=(n_masks, 1))
        got.append(fast.evaluate_batch(masks))
        want.append(slow.evaluate_batch(masks))
    got, want = np.concatenate(got), np.concatenate(want)
    assert got.size > 340
    assert np.mean(got == want) >= 0.99
    assert np.max(np.abs(got - want)) <= 2.0 / 120  # any disagreement is a point or two


def test_coefficients_solve_sklearn_objective():
    fast, _ = pair(C=0.5)
    path = fast._fast_path
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(fast.n_players, size=25, replace=False))
    W, classes = path.fit_coefficients(rows)
    assert classes == (0, 1) and W.shape == (1, fast.train.n_features + 1)
    tight = LogisticRegression(C=0.5, tol=1e-12, max_iter=100_000)
    tight.fit(fast.train.X[rows], fast.train.y[rows])
    reference = np.r_[tight.coef_[0], tight.intercept_]
    np.testing.assert_allclose(W[0], reference, atol=1e-5)


def test_no_intercept_variant_matches():
    fast, slow = pair(fit_intercept=False, C=2.0)
    perm = np.random.default_rng(3).permutation(fast.n_players)
    got, want = fast.prefix_walk(perm)[0], slow.prefix_walk(perm)[0]
    assert np.mean(got == want) >= 0.95


@pytest.mark.slow
def test_permutation_shapley_values_agree_within_monte_carlo_noise():
    """Same permutations through both paths: the estimates agree within the MC error."""
    fast, slow = pair()
    rng = np.random.default_rng(5)
    n = fast.n_players
    marginals = {"fast": [], "slow": []}
    for _ in range(4):
        perm = rng.permutation(n)
        for label, game in (("fast", fast), ("slow", slow)):
            values = game.prefix_walk(perm)[0]
            out = np.empty(n)
            out[perm] = np.diff(values)
            marginals[label].append(out)
    a, b = np.array(marginals["fast"]), np.array(marginals["slow"])
    stderr = a.std(axis=0, ddof=1) / np.sqrt(len(a))
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    noise = np.sqrt(np.mean(stderr**2))  # typical Monte Carlo error of one player's value
    assert noise > 0
    assert np.max(gap) <= 3 * noise
    assert np.mean(gap) <= 0.25 * noise


def test_nonconvergence_falls_back_to_refit(monkeypatch):
    import openattrib.fast.logistic as logistic

    monkeypatch.setattr(logistic, "MAX_NEWTON_ITER", 1)
    fast, slow = pair()
    perm = np.random.default_rng(2).permutation(fast.n_players)
    got, want = fast.prefix_walk(perm)[0], slow.prefix_walk(perm)[0]
    np.testing.assert_array_equal(got, want)  # every coalition refitted generically
    assert fast.failures["fast_fallback: not_converged"] > 0


def test_binary_walk_coefficients_equal_tight_fits_at_every_prefix():
    """Each prefix of a walk is solved to the optimum, not one step short of it."""
    from openattrib.fast.binary_walk import BinaryWalker
    from openattrib.fast.logistic import MAX_NEWTON_ITER, STEP_TOL

    train, valid = data(n=40)
    X = np.hstack([train.X, np.ones((train.n_samples, 1))])
    y = train.y.astype(np.float64)
    penalty = np.r_[np.ones(train.X.shape[1]), 0.0]  # C = 1, intercept unpenalised
    walker = BinaryWalker(penalty, valid.X, MAX_NEWTON_ITER, STEP_TOL)
    first = int(np.flatnonzero(y != y[0])[0]) + 1  # the first prefix with both classes
    for k in range(first, train.n_samples + 1):
        assert walker.solve(X[:k], y[:k])
        model = LogisticRegression(tol=1e-12, max_iter=100_000, solver="newton-cg")
        model.fit(train.X[:k], train.y[:k])
        np.testing.assert_allclose(walker.w[:-1], model.coef_[0], atol=1e-5)
        np.testing.assert_allclose(walker.w[-1], model.intercept_[0], atol=1e-5)


@pytest.mark.slow  # generic refits
@pytest.mark.parametrize("scorer", ["accuracy", "f1"])
def test_truncated_binary_walk_equals_refits(scorer):
    """The lean two-class walk: same truncation questions, stop and values as refits."""
    train, valid = data()
    fast = ModelUtility(LogisticRegression(), train, valid, scorer=scorer)
    slow = ModelUtility(LogisticRegression(), train, valid, scorer=scorer, fast=False)
    assert fast.fast_path._sequential
    rng = np.random.default_rng(7)
    agree = []
    for stop_at in (0, 1, 17, 40):
        perm = rng.permutation(fast.n_players)
        asked = {"fast": [], "slow": []}

        def rule(label, stop_at=stop_at, asked=asked):
            def truncation(k, value):
                asked[label].append(k)
                return k >= stop_at

            return truncation

        got, got_n = fast.prefix_walk(perm, rule("fast"))
        want, want_n = slow.prefix_walk(perm, rule("slow"))
        assert got_n == want_n == min(stop_at, fast.n_players) + 1
        assert asked["fast"] == asked["slow"]
        assert np.all(got[got_n:] == got[got_n - 1])
        agree.append(got == want)
    assert fast.n_fits == 0 or fast.failures["single_class"] > 0
    assert np.mean(np.concatenate(agree)) >= 0.99
