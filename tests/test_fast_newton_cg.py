"""Hessian-free logistic fast path (any number of classes and features), weighted bags, LOO.

Oracles, all independent of the code under test: fresh scikit-learn fits of the same
coalitions (accuracy), scikit-learn fits with a very tight tolerance (coefficients), fits on
the bootstrap bag's drawn rows (Data-OOB bags, given to the fast path as sample weights),
and actual retraining without each point (leave-one-out).

Digits with all 64 pixels and 10 classes is a multinomial problem of 650 coefficients,
above the dense Newton limit, so it takes the Newton-CG solver; 300 generated features make
a binary problem of 301 coefficients that takes it too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import openattrib as oa
from openattrib.estimators import oob
from openattrib.games import ModelUtility

# scikit-learn's own Newton-CG run to tol=1e-10 is the reference optimum: its L-BFGS stops on
# the relative decrease of the objective (ftol) first and leaves intercepts ~1e-5 away on
# the 64-pixel digits problem
# the refitted side of a comparison may stop at max_iter on noisy labels: that is the
# comparison's point, not a test failure
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TIGHT = {"tol": 1e-10, "max_iter": 100_000, "solver": "newton-cg"}


def digits(n, n_valid=150, seed=0):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels in [0, 1]: scikit-learn's L-BFGS converges well within max_iter
    order = np.random.default_rng(seed).permutation(len(y))
    tr, va = order[:n], order[n : n + n_valid]
    return oa.Dataset(X[tr], y[tr]), oa.Dataset(X[va], y[va])


def wide_binary(n, n_valid=100):
    X, y = make_classification(
        n + n_valid, n_features=300, n_informative=20, random_state=0, class_sep=0.8
    )
    return oa.Dataset(X[:n], y[:n]), oa.Dataset(X[n:], y[n:])


def tight_fit(X, y, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(**params, **TIGHT).fit(X, y, sample_weight=sample_weight)


@pytest.mark.slow
def test_digits_uses_newton_cg_and_equals_fresh_fits_on_99_percent_of_coalitions():
    train, valid = digits(200)
    fast = ModelUtility(LogisticRegression(tol=1e-6), train, valid)
    slow = ModelUtility(LogisticRegression(tol=1e-6), train, valid, fast=False)
    path = fast.fast_path
    assert type(path).__name__ == "LogisticFastPath" and path._hessian_free(10)
    rng = np.random.default_rng(0)
    perm = rng.permutation(fast.n_players)
    walk = fast.prefix_walk(perm)[0]
    ks = np.r_[rng.choice(np.arange(3, 40), 6, replace=False), rng.choice(np.arange(40, 201), 6)]
    prefixes = np.zeros((len(ks), fast.n_players), dtype=bool)
    for i, k in enumerate(ks):
        prefixes[i, perm[:k]] = True
    sizes = np.r_[rng.uniform(0.05, 0.2, 8), rng.uniform(0.3, 1.0, 16)]
    masks = rng.random((len(sizes), fast.n_players)) < sizes[:, None]
    got = np.r_[walk[ks], fast.evaluate_batch(masks)]
    want = np.r_[slow.evaluate_batch(prefixes), slow.evaluate_batch(masks)]
    present = [np.unique(train.y[m]).size for m in np.r_[prefixes, masks]]
    assert min(present) < 10  # some coalitions fit a subset of the classes
    assert np.mean(got == want) >= 0.99
    assert fast.n_fits == 0 and not any(k.startswith("fast_fallback") for k in fast.failures)


@pytest.mark.parametrize("which", ["digits", "wide_binary"])
def test_newton_cg_coefficients_equal_a_tight_fit(which):
    train, _ = digits(150) if which == "digits" else wide_binary(120)
    C = 0.5
    game = ModelUtility(LogisticRegression(C=C), train, train)
    path = game.fast_path
    assert path._hessian_free(10 if which == "digits" else 1)
    rng = np.random.default_rng(1)
    subsets = [np.arange(train.n_samples), np.sort(rng.choice(train.n_samples, 70, replace=False))]
    if which == "digits":
        subsets.append(np.flatnonzero(np.isin(train.y, [0, 3, 5, 8])))  # 4 of 10 classes
    for rows in subsets:
        W, classes = path.fit_coefficients(rows)
        model = tight_fit(train.X[rows], train.y[rows], C=C)
        np.testing.assert_array_equal(game.classes_[list(classes)], model.classes_)
        np.testing.assert_allclose(W[:, :-1], model.coef_, atol=1e-5)
        np.testing.assert_allclose(W[:, -1], model.intercept_, atol=1e-5)


def test_weighted_bags_equal_fits_on_the_drawn_rows():
    """A bootstrap bag as integer sample weights = scikit-learn fitted on the drawn rows."""
    train, _ = digits(200)
    game = ModelUtility(LogisticRegression(tol=1e-6), train, train)
    rng = np.random.default_rng(2)
    counts = np.array([np.bincount(rng.integers(0, 200, 200), minlength=200) for _ in range(16)])
    outputs, troubles = game.fast_path.weighted_outputs(counts.astype(np.float64))
    assert troubles == [None] * 16
    same_accuracy, same_predictions = [], []
    for count, output in zip(counts, outputs, strict=True):
        rows = np.repeat(np.arange(200), count)
        model = LogisticRegression(tol=1e-6).fit(train.X[rows], train.y[rows])
        out = count == 0
        ours, theirs = game.classes_[output[out]], model.predict(train.X[out])
        truth = train.y[out]
        same_accuracy.append(np.mean(ours == truth) == np.mean(theirs == truth))
        same_predictions.append(np.mean(ours == theirs))
    assert np.mean(same_accuracy) >= 0.99
    assert np.mean(same_predictions) >= 0.99


def test_data_oob_fast_bags_agree_with_refitted_bags(monkeypatch):
    train, _ = digits(150)
    noisy, flipped = oa.datasets.flip_labels(train, 0.1, seed=0)
    fast = oa.data_oob(
        noisy, estimator=LogisticRegression(), n_estimators=24, seed=3, progress=False
    )
    monkeypatch.setattr(oob._Bagger, "_fast_path", lambda self: None)
    slow = oa.data_oob(
        noisy, estimator=LogisticRegression(), n_estimators=24, seed=3, progress=False
    )
    assert fast.diagnostics["bags"] == slow.diagnostics["bags"] == {"fitted": 24}
    np.testing.assert_array_equal(fast.counts, slow.counts)
    # a point's value is its mean correctness over its out-of-bag fits: fits that disagree
    # on it at all are rare (scikit-learn stops at tol=1e-4, the fast path at the optimum)
    assert np.mean(fast.values == slow.values) >= 0.97
    assert np.max(np.abs(fast.values - slow.values)) <= 1.0 / 3


def test_data_oob_contributor_bags_use_row_weights(monkeypatch):
    X, y = load_digits(return_X_y=True)
    X, y = X[:120] / 16.0, y[:120]
    owners = [f"c{i % 40}" for i in range(120)]
    ds = oa.Dataset(X, y, contributors=owners)
    kwargs = {"n_estimators": 12, "seed": 1, "players": "contributors", "progress": False}
    fast = oa.data_oob(ds, estimator=LogisticRegression(tol=1e-6), **kwargs)
    monkeypatch.setattr(oob._Bagger, "_fast_path", lambda self: None)
    slow = oa.data_oob(ds, estimator=LogisticRegression(tol=1e-6), **kwargs)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    np.testing.assert_allclose(fast.values, slow.values, atol=1.0 / 3)
    assert np.mean(np.isclose(fast.values, slow.values)) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("which", ["digits", "binary"])
def test_loo_equals_retraining(which):
    if which == "digits":
        train, valid = digits(90, n_valid=200)
    else:
        X, y = make_classification(260, n_features=8, random_state=3, flip_y=0.1)
        train, valid = oa.Dataset(X[:60], y[:60]), oa.Dataset(X[60:], y[60:])
    game = ModelUtility(LogisticRegression(), train, valid)
    values = oa.loo(game, progress=False).values
    assert game.n_fits == 0
    full = tight_fit(train.X, train.y)
    full_score = full.score(valid.X, valid.y)
    want = np.empty(train.n_samples)
    for i in range(train.n_samples):
        keep = np.arange(train.n_samples) != i
        want[i] = full_score - tight_fit(train.X[keep], train.y[keep]).score(valid.X, valid.y)
    assert np.mean(np.isclose(values, want)) >= 0.99


def test_newton_cg_nonconvergence_falls_back_to_refit(monkeypatch):
    import openattrib.fast.logistic as logistic

    train, valid = digits(80, n_valid=60)
    fast = ModelUtility(LogisticRegression(), train, valid)
    fast.fast_path._full_solution()  # a converged start; then every coalition gets 1 step
    monkeypatch.setattr(logistic, "MAX_NEWTON_ITER", 1)
    slow = ModelUtility(LogisticRegression(), train, valid, fast=False)
    masks = np.random.default_rng(3).random((4, fast.n_players)) < 0.6
    np.testing.assert_array_equal(fast.evaluate_batch(masks), slow.evaluate_batch(masks))
    assert fast.failures["fast_fallback: not_converged"] == 4


def test_binary_truncated_walk_equals_full_walk_and_fresh_fits():
    X, y = make_classification(200, n_features=10, random_state=5, flip_y=0.05)
    train, valid = oa.Dataset(X[:60], y[:60]), oa.Dataset(X[60:], y[60:])
    fast = ModelUtility(LogisticRegression(tol=1e-6), train, valid)
    slow = ModelUtility(LogisticRegression(tol=1e-6), train, valid, fast=False)
    assert fast.fast_path._sequential
    perm = np.random.default_rng(4).permutation(60)
    full = fast.prefix_walk(perm)[0]
    np.testing.assert_array_equal(full, fast.prefix_walk(perm, truncation=lambda k, v: False)[0])
    want = slow.prefix_walk(perm)[0]
    assert np.mean(full == want) >= 0.98


def test_raw_pixel_bags_are_the_exact_optimum():
    """Raw pixels (0-16): 256x weaker effective penalty, nearly separable, ill-conditioned.

    scikit-learn's default L-BFGS stops at max_iter there; the fast path still solves each
    bootstrap bag (integer sample weights) to the optimum: coefficients equal to a tight
    scikit-learn Newton-CG fit on the drawn rows to 1e-5 of their scale, and out-of-bag
    predictions equal on at least 99% of the points.
    """
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(y))[:300]
    train = oa.Dataset(X[order], y[order])
    game = ModelUtility(LogisticRegression(), train, train)
    path = game.fast_path
    assert path._hessian_free(10)
    n = train.n_samples
    rng = np.random.default_rng(4)
    counts = np.array([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(6)])
    counts = counts[[np.unique(train.y[c > 0]).size == 10 for c in counts]]
    everything = tuple(range(10))
    start = np.broadcast_to(path._full_solution(), (len(counts), 10 * 65))
    W, converged = path._solve(np.arange(n), counts.T.astype(np.float64), start, everything)
    assert converged.all()
    outputs, troubles = path.weighted_outputs(counts.astype(np.float64))
    assert troubles == [None] * len(counts)
    agree = []
    for count, w, output in zip(counts, W, outputs, strict=True):
        model = tight_fit(train.X, train.y, sample_weight=count.astype(np.float64))
        coef = np.hstack([model.coef_, model.intercept_[:, None]])
        scale = np.max(np.abs(coef))
        assert scale > 5.0  # far larger than pixels/16 fits: the ill-conditioned regime
        np.testing.assert_allclose(w.reshape(10, 65), coef, rtol=0, atol=1e-5 * scale)
        out = count == 0
        agree.append(np.mean(game.classes_[output[out]] == model.predict(train.X[out])))
    assert np.mean(agree) >= 0.99
