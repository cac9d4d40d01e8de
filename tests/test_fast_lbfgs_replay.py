"""Replayed L-BFGS: the model a fresh scikit-learn fit returns, where it stops short.

Oracle: scikit-learn itself (``LogisticRegression(...).fit`` on the same rows, a bootstrap
bag's rows repeated as drawn), compared by iteration count, coefficients and validation
predictions. The replay computes the same iterates with the floating-point operations in
another order; on digits with raw 0-16 pixels (ill-conditioned, stopped at ``max_iter``)
L-BFGS amplifies those rounding differences along 100 iterations to about 1e-5 of the
largest coefficient (measured), so coefficients are compared to 1e-3 of it there and to
1e-8 on the well-conditioned standardised problems; the model's predictions, which are
what a utility scores, must be identical.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import openattrib as oa
from openattrib.fast.lbfgs_replay import lbfgs_fit
from openattrib.games import ModelUtility


def raw_digits(n: int, n_valid: int = 150, seed: int = 0):
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    train, valid = order[:n], order[n : n + n_valid]
    return X[train], y[train], X[valid], y[valid]


def sklearn_fit(X, y, **params) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(**params).fit(X, y)


def replay(X, y, weights, *, C=1.0, fit_intercept=True, max_iter=100, tol=1e-4):
    classes = np.unique(y)
    labels = np.searchsorted(classes, y)
    Xa = np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X
    m = 1 if len(classes) == 2 else len(classes)
    fit = lbfgs_fit(
        Xa, labels, m, weights, C=C, intercept=fit_intercept, max_iter=max_iter, tol=tol
    )
    return fit, classes


def predictions(W, classes, X, fit_intercept=True):
    Xa = np.hstack([X, np.ones((len(X), 1))]) if fit_intercept else X
    if len(W) == 1:
        return classes[(Xa @ W[0] > 0).astype(int)]
    return classes[np.argmax(Xa @ W.T, axis=1)]


def assert_same_model(fit, classes, model, X_valid, rtol, fit_intercept=True):
    assert fit.n_iter == model.n_iter_[0]
    reference = (
        np.hstack([model.coef_, model.intercept_[:, None]]) if fit_intercept else model.coef_
    )
    scale = np.abs(reference).max()
    np.testing.assert_allclose(fit.W, reference, rtol=0, atol=rtol * scale)
    np.testing.assert_array_equal(
        predictions(fit.W, classes, X_valid, fit_intercept), model.predict(X_valid)
    )


def test_bootstrap_bags_on_raw_pixels_are_sklearns_unconverged_fit():
    """Counts on distinct rows = rows repeated, including fits stopped at max_iter=100."""
    X, y, Xv, _ = raw_digits(1000)
    rng = np.random.default_rng(0)
    statuses = set()
    for _ in range(4):
        drawn = rng.integers(0, len(y), len(y))
        counts = np.bincount(drawn, minlength=len(y))
        rows = np.flatnonzero(counts)
        model = sklearn_fit(X[drawn], y[drawn])
        fit, classes = replay(X[rows], y[rows], counts[rows].astype(float))
        statuses.add(fit.status)
        assert_same_model(fit, classes, model, Xv, rtol=1e-3)
    assert "max_iter" in statuses  # bags scikit-learn leaves unconverged are among them


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"C": 0.05, "fit_intercept": False},
        {"max_iter": 4},
        {"tol": 1e-2},
        {"tol": 1e-10},  # stops by the relative-reduction test (64 eps), not the gradient's
    ],
)
def test_binary_fits_equal_sklearn(params):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(1)
    fit_intercept = params.get("fit_intercept", True)
    for size in (6, 40, 200):
        rows = np.sort(rng.choice(len(y), size, replace=False))
        if np.unique(y[rows]).size < 2:
            continue
        model = sklearn_fit(X[rows], y[rows], **params)
        fit, classes = replay(X[rows], y[rows], np.ones(size), **params)
        assert_same_model(fit, classes, model, X, rtol=1e-8, fit_intercept=fit_intercept)


def test_multinomial_class_subsets_equal_sklearn():
    """Standardised digits: all ten classes, then three of them, with a short max_iter."""
    X, y, Xv, _ = raw_digits(300)
    scaler = StandardScaler().fit(X)
    X, Xv = scaler.transform(X), scaler.transform(Xv)
    for rows, max_iter in ((np.arange(len(y)), 100), (np.flatnonzero(np.isin(y, [2, 5, 7])), 9)):
        model = sklearn_fit(X[rows], y[rows], max_iter=max_iter)
        fit, classes = replay(X[rows], y[rows], np.ones(len(rows)), max_iter=max_iter)
        assert_same_model(fit, classes, model, Xv, rtol=1e-6)


def test_zero_gradient_start_stops_at_once():
    """Balanced classes and no features: the gradient at zero vanishes (0 iterations)."""
    X = np.zeros((6, 2))
    y = np.array([0, 1, 0, 1, 0, 1])
    fit, _ = replay(X, y, np.ones(6))
    assert fit.n_iter == 0 and fit.status == "gradient"
    assert sklearn_fit(X, y).n_iter_[0] == 0


# -- the utility on raw pixels ---------------------------------------------------------
@pytest.fixture(scope="module")
def raw_games():
    """Raw pixels and max_iter=40: every coalition's fit stops at max_iter, far from the
    optimum (a smaller, faster stand-in for the 100-iteration fits on 1,000 rows)."""
    X, y, Xv, yv = raw_digits(200)
    train, valid = oa.Dataset(X, y), oa.Dataset(Xv, yv)
    model = LogisticRegression(max_iter=40)
    fast = ModelUtility(model, train, valid, scorer="accuracy")
    slow = ModelUtility(model, train, valid, scorer="accuracy", fast=False)
    return fast, slow


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_utility_on_raw_pixels_equals_fresh_fits(raw_games):
    fast, slow = raw_games
    assert fast.fast_path.game == "fit"
    rng = np.random.default_rng(2)
    sizes = rng.uniform(0.1, 1.0, 10)
    masks = rng.random((10, fast.n_players)) < sizes[:, None]
    np.testing.assert_array_equal(fast.evaluate_batch(masks), slow.evaluate_batch(masks))
    assert fast.failures["lbfgs_replay"] == 10
    perm = rng.permutation(fast.n_players)
    walk = fast.prefix_walk(perm)[0]
    ks = np.array([3, 17, 60, 140, fast.n_players])
    prefixes = np.zeros((len(ks), fast.n_players), dtype=bool)
    for i, k in enumerate(ks):
        prefixes[i, perm[:k]] = True
    np.testing.assert_array_equal(walk[ks], slow.evaluate_batch(prefixes))
    assert not any(key.startswith("fast_fallback") for key in fast.failures)  # no refits


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_data_oob_on_raw_pixels_equals_generic_bags(monkeypatch):
    """Bags as draw counts through the replay = scikit-learn fits of the drawn rows."""
    import openattrib.estimators.oob as oob

    X, y, _, _ = raw_digits(600)
    train = oa.Dataset(X, y)

    def run():
        return oa.data_oob(
            train, estimator=LogisticRegression(), n_estimators=6, seed=3, progress=False
        )

    fast = run()
    monkeypatch.setattr(oob._Bagger, "_fast_path", lambda self: None)
    generic = run()
    np.testing.assert_array_equal(fast.values, generic.values)
    np.testing.assert_array_equal(fast.counts, generic.counts)


@pytest.mark.parametrize(
    "params, game",
    [
        ({}, "optimum"),  # converges on standardised data: the optimum is its model
        ({"max_iter": 50}, "fit"),
        ({"tol": 1e-3}, "fit"),
        ({"solver": "newton-cg"}, "optimum"),
    ],
)
def test_game_choice(params, game):
    X, y, Xv, yv = raw_digits(200)
    X = StandardScaler().fit_transform(X)
    ds = oa.Dataset(X[:, :16], y)
    utility = ModelUtility(LogisticRegression(**params), ds, ds)
    assert utility.fast_path.game == game


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_replay_that_drifts_from_sklearn_is_not_trusted(monkeypatch, caplog):
    """A replay that no longer reproduces scikit-learn's full-data fit (here: a shorter
    memory, as a change in scikit-learn's settings would cause) hands every coalition to
    scikit-learn, counted, instead of valuing another model."""
    import openattrib.fast.lbfgs_replay as replay_module

    monkeypatch.setattr(replay_module, "_MEMORY", 3)
    X, y, Xv, yv = raw_digits(100)
    train, valid = oa.Dataset(X, y), oa.Dataset(Xv, yv)
    model = LogisticRegression(max_iter=40)
    fast = ModelUtility(model, train, valid, scorer="accuracy")
    slow = ModelUtility(model, train, valid, scorer="accuracy", fast=False)
    with caplog.at_level("WARNING", logger="openattrib"):
        assert fast.fast_path.game == "generic"
    assert any("does not reproduce" in r.getMessage() for r in caplog.records)
    masks = np.random.default_rng(4).random((4, fast.n_players)) < 0.6
    np.testing.assert_array_equal(fast.evaluate_batch(masks), slow.evaluate_batch(masks))
    assert fast.failures["fast_fallback: lbfgs_replay_mismatch"] == 4
    perm = np.random.default_rng(5).permutation(fast.n_players)
    ks = np.array([5, 50, 100])
    walk = fast.prefix_walk(perm)[0]
    prefixes = np.zeros((len(ks), fast.n_players), dtype=bool)
    for i, k in enumerate(ks):
        prefixes[i, perm[:k]] = True
    np.testing.assert_array_equal(walk[ks], slow.evaluate_batch(prefixes))
