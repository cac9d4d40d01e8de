"""Multinomial logistic-regression fast path: equal to scikit-learn's fit within tolerance.

Oracles: fresh scikit-learn fits (the generic refit, ``fast=False``) of every sampled
coalition, and scikit-learn with a very tight tolerance for the coefficients. scikit-learn
fits each coalition on the classes present in it (two classes: a binary fit), so the samples
deliberately include coalitions with missing classes. Agreement is checked against
``tol=1e-6`` fits, for which scikit-learn stops close to the optimum; with the default
``tol=1e-4`` its L-BFGS stops early enough to flip a validation point on a few percent of
coalitions, and the test with default parameters compares with a tight fit instead.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import openattrib as oa
from openattrib.games import ModelUtility

TIGHT = {"tol": 1e-10, "max_iter": 100_000}


def data(name, n, n_valid=120, seed=0, contributors=False, string_labels=False):
    """Standardised train/valid split; digits keeps its 16 most variable pixels."""
    loader = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    if name == "digits":
        X = X[:, np.argsort(-X.var(axis=0), kind="stable")[:16]]
    X = StandardScaler().fit_transform(X)
    order = np.random.default_rng(seed).permutation(len(y))
    tr, va = order[:n], order[n : n + n_valid]
    if string_labels:
        y = np.array([f"class-{label}" for label in y])
    owners = [f"c{i % (n // 3)}" for i in range(n)] if contributors else None
    return oa.Dataset(X[tr], y[tr], contributors=owners), oa.Dataset(X[va], y[va])


def pair(name, n, players="points", slow_params=None, scorer="accuracy", **params):
    train, valid = data(name, n, contributors=players == "contributors")
    fast = ModelUtility(LogisticRegression(**params), train, valid, scorer=scorer, players=players)
    slow_model = LogisticRegression(**(params if slow_params is None else slow_params))
    slow = ModelUtility(slow_model, train, valid, scorer=scorer, players=players, fast=False)
    assert type(fast._fast_path).__name__ == "LogisticFastPath"
    return fast, slow


def sampled_coalitions(fast, slow, rng, n_perms=2, n_prefixes=12, n_masks=40):
    """(fast values, fresh-fit values, class counts) on random prefixes and random batches.

    Prefixes are valued by the fast path's prefix walk (the incremental machinery) and
    compared at random positions with fresh fits of the same coalitions.
    """
    n = fast.n_players
    got, want, masks_all = [], [], []
    for _ in range(n_perms):
        perm = rng.permutation(n)
        walk = fast.prefix_walk(perm)[0]
        # half of the prefixes short, where classes are often missing
        pool = np.arange(2, max(n // 5, 9))
        short = rng.choice(pool, size=min(len(pool), n_prefixes // 2), replace=False)
        ks = np.union1d(short, rng.choice(np.arange(1, n + 1), size=n_prefixes // 2))
        masks = np.zeros((len(ks), n), dtype=bool)
        for i, k in enumerate(ks):
            masks[i, perm[:k]] = True
        got.append(walk[ks])
        want.append(slow.evaluate_batch(masks))
        masks_all.append(masks)
    sizes = np.r_[rng.uniform(0.02, 0.12, n_masks // 2), rng.uniform(0.1, 1.0, n_masks // 2)]
    masks = rng.random((len(sizes), n)) < sizes[:, None]
    got.append(fast.evaluate_batch(masks))
    want.append(slow.evaluate_batch(masks))
    masks_all.append(masks)
    n_present = [
        np.unique(fast.train.y[fast.rows(mask)]).size for mask in np.concatenate(masks_all)
    ]
    return np.concatenate(got), np.concatenate(want), np.array(n_present)


@pytest.mark.slow
@pytest.mark.parametrize("name, n", [("iris", 45), ("wine", 60), ("digits", 80)])
def test_accuracy_equals_fresh_fit_on_99_percent_of_coalitions(name, n):
    rng = np.random.default_rng(0)
    got, want, n_present = [], [], []
    for players in ("points", "contributors"):
        fast, slow = pair(name, n, players=players, tol=1e-6)
        g, w, c = sampled_coalitions(fast, slow, rng)
        got.append(g), want.append(w), n_present.append(c)
        assert fast.n_fits < 3  # only one-class coalitions or fallbacks may refit
    got, want, n_present = map(np.concatenate, (got, want, n_present))
    n_classes = np.unique(fast.train.y).size
    missing = (n_present >= 2) & (n_present < n_classes)
    assert got.size >= 100 and missing.sum() >= 10  # many fits on a subset of the classes
    assert np.mean(got == want) >= 0.99
    assert np.mean(got[missing] == want[missing]) >= 0.99
    assert np.max(np.abs(got - want)) <= 2.0 / 120  # any disagreement is a point or two


def test_default_parameters_equal_a_tight_fit():
    """Default tol=1e-4: the fast path is the optimum that a tight scikit-learn fit reaches."""
    rng = np.random.default_rng(4)
    fast, slow = pair("wine", 60, players="points", slow_params=TIGHT)
    got, want, _ = sampled_coalitions(fast, slow, rng, n_perms=1, n_masks=30)
    assert np.mean(got == want) >= 0.99


def test_class_set_grows_along_the_walk():
    """Points ordered by class: single-class, then binary, then three-class prefixes."""
    fast, slow = pair("iris", 45, tol=1e-6)
    y = fast.train.y
    rng = np.random.default_rng(2)
    by_class = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in (2, 0, 1)])
    # a second order where each new class appears in the middle of a block
    interleaved = np.r_[by_class[:3], by_class[-3:], by_class[3:-3]]
    for perm in (by_class, interleaved):
        fast.failures.clear(), slow.failures.clear(), slow._cache.clear()
        got, want = fast.prefix_walk(perm)[0], slow.prefix_walk(perm)[0]
        assert np.mean(got == want) >= 0.97  # at most one flip in 46 prefixes
        assert fast.failures == slow.failures  # same single-class and empty counts


def test_truncated_walk_equals_full_walk():
    fast, _ = pair("wine", 60)
    perm = np.random.default_rng(3).permutation(fast.n_players)
    full = fast.prefix_walk(perm)[0]
    small_blocks = fast.prefix_walk(perm, truncation=lambda k, value: False)[0]
    np.testing.assert_array_equal(full, small_blocks)


def test_string_labels_and_per_coalition_scorer():
    train, valid = data("iris", 36, contributors=True, string_labels=True)
    model = LogisticRegression(tol=1e-6)
    fast = ModelUtility(model, train, valid, scorer="f1_macro", players="contributors")
    slow = ModelUtility(model, train, valid, scorer="f1_macro", players="contributors", fast=False)
    assert fast._fast_path is not None
    masks = np.random.default_rng(5).random((40, fast.n_players)) < 0.4
    np.testing.assert_allclose(fast.evaluate_batch(masks), slow.evaluate_batch(masks))


def _tight_reference(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(**params, **TIGHT).fit(X, y)
    return model


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coefficients_solve_sklearn_multinomial_objective(fit_intercept):
    train, _ = data("digits", 150)
    fast = ModelUtility(
        LogisticRegression(C=0.3, fit_intercept=fit_intercept), train, train, scorer="accuracy"
    )
    path = fast._fast_path
    rng = np.random.default_rng(1)
    # all ten classes, then four of the ten (classes_ = the four present), then two (binary)
    subsets = [np.arange(train.n_samples)]
    for chosen in ([1, 4, 7, 9], [3, 8]):
        subsets.append(np.flatnonzero(np.isin(train.y, chosen)))
    subsets.append(np.sort(rng.choice(train.n_samples, size=40, replace=False)))
    for rows in subsets:
        W, classes = path.fit_coefficients(rows)
        model = _tight_reference(train.X[rows], train.y[rows], C=0.3, fit_intercept=fit_intercept)
        np.testing.assert_array_equal(fast.classes_[list(classes)], model.classes_)
        assert W.shape[0] == (1 if len(classes) == 2 else len(classes))
        coef = W[:, :-1] if fit_intercept else W
        np.testing.assert_allclose(coef, model.coef_, atol=1e-5)
        if fit_intercept:
            # both minimise with intercepts fixed up to a common shift; both sum to zero
            np.testing.assert_allclose(W[:, -1], model.intercept_, atol=1e-5)
            if len(classes) > 2:
                assert abs(W[:, -1].sum()) < 1e-8


def test_nonconvergence_falls_back_to_refit(monkeypatch):
    import openattrib.fast.logistic as logistic

    monkeypatch.setattr(logistic, "MAX_NEWTON_ITER", 1)
    fast, slow = pair("iris", 30)
    perm = np.random.default_rng(2).permutation(fast.n_players)
    got, want = fast.prefix_walk(perm)[0], slow.prefix_walk(perm)[0]
    np.testing.assert_array_equal(got, want)  # every coalition refitted generically
    assert fast.failures["fast_fallback: not_converged"] > 0
    masks = np.random.default_rng(3).random((10, fast.n_players)) < 0.5
    np.testing.assert_array_equal(fast.evaluate_batch(masks), slow.evaluate_batch(masks))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params, features, supported",
    [
        ({}, 16, True),
        ({"solver": "newton-cholesky", "C": 10.0}, 16, True),
        ({"solver": "newton-cg", "fit_intercept": False}, 16, True),
        ({"solver": "sag"}, 16, False),
        ({"solver": "saga"}, 16, False),
        ({"l1_ratio": 0.5, "solver": "saga"}, 16, False),
        ({"class_weight": "balanced"}, 16, False),
        ({"C": np.inf}, 16, False),
        ({"tol": 1e-3}, 16, True),  # stops short: scikit-learn's fit replayed
        ({"tol": 1e-3, "solver": "newton-cg"}, 16, False),
        ({}, 64, True),  # 10 classes x 65 coefficients: Hessian-free Newton-CG
    ],
)
def test_dispatch_is_strict(params, features, supported, caplog):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:200, :features])
    ds = oa.Dataset(X, y[:200])
    with caplog.at_level(logging.DEBUG, logger="openattrib"):
        game = ModelUtility(LogisticRegression(**params), ds, ds)
    assert (game._fast_path is not None) == supported
    if not supported:
        assert any("generic refit" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # generic refits
def test_permutation_shapley_fast_and_generic_agree_within_monte_carlo_noise():
    train, valid = data("iris", 24, n_valid=100)
    values = {}
    for fast in (True, False):
        game = ModelUtility(LogisticRegression(), train, valid, fast=fast)
        values[fast] = oa.permutation_shapley(
            game, stop=oa.stop.MaxSamples(40), seed=7, progress=False
        )
    a, b = values[True], values[False]
    noise = np.sqrt(np.mean(b.stderr**2))  # typical Monte Carlo error of one value
    assert noise > 0
    gap = np.abs(a.values - b.values)
    assert np.max(gap) <= 3 * noise
    assert np.mean(gap) <= 0.25 * noise
