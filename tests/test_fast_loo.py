"""Leave-one-out fits of the logistic fast path, all solved together from the full fit.

Oracles, independent of the code under test: scikit-learn refitted without each row with a
very tight tolerance (coefficients), and scikit-learn's default fit without each row
(validation accuracy, through the generic ``fast=False`` utility).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import openattrib as oa
from openattrib.games import ModelUtility

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TIGHT = {"tol": 1e-10, "max_iter": 100_000, "solver": "newton-cg"}


def task(which: str):
    if which == "binary":  # 13 coefficients: dense Newton problems
        X, y = load_breast_cancer(return_X_y=True)
        X, n = StandardScaler().fit_transform(X)[:, :12], 70
    elif which == "wine":  # 3 classes x 14: dense multinomial problems
        X, y = load_wine(return_X_y=True)
        X, n = StandardScaler().fit_transform(X), 60
    else:  # 10 classes x 65 = 650 coefficients: Hessian-free problems
        X, y = load_digits(return_X_y=True)
        X, n = X / 16.0, 120
    order = np.random.default_rng(0).permutation(len(y))
    tr, va = order[:n], order[n : n + 150]
    return oa.Dataset(X[tr], y[tr]), oa.Dataset(X[va], y[va])


def tight_fit(X, y, C):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=C, **TIGHT).fit(X, y)


def most_influential(train, C, k):
    """The ``k`` rows the full fit predicts worst (largest leave-one-out moves) plus 3 more."""
    model = tight_fit(train.X, train.y, C)
    proba = model.predict_proba(train.X)[
        np.arange(train.n_samples), np.searchsorted(model.classes_, train.y)
    ]
    worst = np.argsort(proba)[:k]
    return np.unique(np.r_[worst, [0, train.n_samples // 2, train.n_samples - 1]])


@pytest.mark.parametrize("which", ["binary", "wine", "digits"])
def test_leave_one_out_coefficients_equal_tight_refits(which):
    train, valid = task(which)
    C = 0.5
    game = ModelUtility(LogisticRegression(C=C), train, valid)
    path = game.fast_path
    rows = most_influential(train, C, 6)
    W, converged = path.leave_one_out_coefficients(rows)
    assert converged.all()
    # (the most influential rows may be finished by Newton: either way the exact optimum)
    m = 1 if len(game.classes_) == 2 else len(game.classes_)
    for position, i in enumerate(rows):
        keep = np.arange(train.n_samples) != i
        model = tight_fit(train.X[keep], train.y[keep], C)
        coef = W[position].reshape(m, -1)
        np.testing.assert_allclose(coef[:, :-1], model.coef_, atol=1e-5)
        np.testing.assert_allclose(coef[:, -1], model.intercept_, atol=1e-5)


# digits: tests/test_fast_newton_cg.py::test_loo_equals_retraining
@pytest.mark.slow  # generic refits
@pytest.mark.parametrize("which", ["binary", "wine"])
def test_loo_accuracy_equals_refits_without_each_row(which):
    train, valid = task(which)
    fast = ModelUtility(LogisticRegression(), train, valid)
    slow = ModelUtility(LogisticRegression(), train, valid, fast=False)
    got = oa.loo(fast, progress=False).values
    want = oa.loo(slow, progress=False).values
    assert fast.n_fits == 0 and fast.fast_path.loo_passes > 0
    assert not any(k.startswith("fast_fallback") for k in fast.failures)
    # the chord iteration alone solves nearly every problem (the rest by Newton, counted)
    assert fast.failures["fast_loo_newton"] <= 0.05 * train.n_samples
    # scikit-learn's default fits stop at tol=1e-4: a validation point within that distance
    # of a decision boundary may flip, nothing more
    assert np.mean(np.isclose(got, want)) >= 0.95
    assert np.max(np.abs(got - want)) <= 2.0 / valid.n_samples + 1e-12


def test_unconverged_chord_falls_back_to_newton_and_is_counted(monkeypatch):
    import openattrib.fast.logistic as logistic

    train, valid = task("wine")
    reference = ModelUtility(LogisticRegression(), train, valid)
    want = oa.loo(reference, progress=False).values
    chord = functools.partial(logistic.leave_one_out_chord, max_iter=1)
    monkeypatch.setattr(logistic, "leave_one_out_chord", chord)
    game = ModelUtility(LogisticRegression(), train, valid)
    got = oa.loo(game, progress=False).values
    # one step from the full fit is only the approximate leave-one-out: every row is
    # finished by Newton, counted, and the values are those of the exact fits
    assert game.failures["fast_loo_newton"] == train.n_samples
    np.testing.assert_allclose(got, want, atol=1e-12)
