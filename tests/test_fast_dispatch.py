"""Choosing a fast path: only for estimators and parameters it models exactly."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import openattrib as oa
from openattrib.fast import select_fast_path
from openattrib.games import ModelUtility

rng = np.random.default_rng(0)
X = np.abs(rng.normal(size=(30, 3)))
Y_CLASS = rng.integers(0, 2, size=30)
Y_REG = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=30)
MULTI = rng.integers(0, 3, size=30)


def game(estimator, y=Y_CLASS, scorer=None, **kw):
    regression = y.dtype.kind == "f"
    scorer = scorer or ("r2" if regression else "accuracy")
    return ModelUtility(estimator, oa.Dataset(X, y), oa.Dataset(X, y), scorer=scorer, **kw)


SUPPORTED = [
    (Ridge(), Y_REG, "LinearFastPath"),
    (Ridge(solver="cholesky", fit_intercept=False), Y_REG, "LinearFastPath"),
    (LinearRegression(), Y_REG, "LinearFastPath"),
    (RidgeClassifier(), MULTI, "LinearFastPath"),
    (GaussianNB(), MULTI, "GaussianNBFastPath"),
    (MultinomialNB(), Y_CLASS, "MultinomialNBFastPath"),
    (KNeighborsClassifier(), Y_CLASS, "KNNFastPath"),
    (KNeighborsRegressor(metric="euclidean"), Y_REG, "KNNFastPath"),
    (LogisticRegression(C=3.0, solver="newton-cholesky"), Y_CLASS, "LogisticFastPath"),
    (LogisticRegression(), MULTI, "LogisticFastPath"),  # multinomial (<= 256 coefficients)
    # L-BFGS stopped short: scikit-learn's fit replayed (.lbfgs_replay)
    (LogisticRegression(max_iter=10), Y_CLASS, "LogisticFastPath"),
    (LogisticRegression(tol=1e-2), Y_CLASS, "LogisticFastPath"),
]


@pytest.mark.parametrize("estimator, y, name", SUPPORTED)
def test_supported_estimators_get_their_path(estimator, y, name):
    g = game(estimator, y)
    assert type(g._fast_path).__name__ == name
    assert g.describe()["fast_path"] == name
    assert game(estimator, y, fast=False)._fast_path is None


UNSUPPORTED = [
    (Ridge(solver="sag"), Y_REG),
    (Ridge(solver="lsqr"), Y_REG),
    (Ridge(positive=True), Y_REG),
    (Ridge(alpha=np.array([1.0])), Y_REG),
    (LinearRegression(positive=True), Y_REG),
    (RidgeClassifier(class_weight="balanced"), Y_CLASS),
    (GaussianNB(priors=[0.5, 0.5]), Y_CLASS),
    (MultinomialNB(class_prior=[0.5, 0.5]), Y_CLASS),
    (MultinomialNB(alpha=0.0), Y_CLASS),
    (KNeighborsClassifier(weights="distance"), Y_CLASS),
    (KNeighborsClassifier(p=1), Y_CLASS),
    (KNeighborsClassifier(metric="manhattan"), Y_CLASS),
    (KNeighborsRegressor(metric="minkowski", p=3), Y_REG),
    (LogisticRegression(l1_ratio=1.0, solver="saga"), Y_CLASS),
    (LogisticRegression(solver="liblinear"), Y_CLASS),
    (LogisticRegression(class_weight="balanced"), Y_CLASS),
    (LogisticRegression(C=np.inf), Y_CLASS),
    (LogisticRegression(solver="newton-cg", max_iter=10), Y_CLASS),
    (LogisticRegression(solver="newton-cholesky", tol=1e-2), Y_CLASS),
    (make_pipeline(StandardScaler(), Ridge()), Y_REG),
    (DecisionTreeClassifier(), Y_CLASS),
]


@pytest.mark.parametrize("estimator, y", UNSUPPORTED)
def test_unmodelled_parameters_use_generic_path(estimator, y, caplog):
    with caplog.at_level(logging.DEBUG, logger="openattrib"):
        g = game(estimator, y)
    assert g._fast_path is None
    assert any("generic refit" in r.getMessage() for r in caplog.records)


def test_subclass_is_not_trusted():
    class MyRidge(Ridge):
        pass

    assert game(MyRidge(), Y_REG)._fast_path is None


def test_multinomial_nb_with_negative_features_is_generic():
    g = ModelUtility(MultinomialNB(), oa.Dataset(-X, Y_CLASS), oa.Dataset(X, Y_CLASS))
    assert g._fast_path is None


@pytest.mark.parametrize(
    "scorer, fast",
    [
        ("accuracy", True),
        ("f1", True),
        ("balanced_accuracy", True),
        ("roc_auc", False),
        ("neg_log_loss", False),
    ],
)
def test_scorers_needing_probabilities_use_generic_path(scorer, fast):
    g = game(GaussianNB(), Y_CLASS, scorer=scorer)
    assert (g._fast_path is not None) == fast


def test_custom_callable_scorer_uses_generic_path():
    def accuracy(model, X_valid, y_valid):  # same name as a direct scorer, but custom
        return float(np.mean(model.predict(X_valid) == y_valid))

    assert game(GaussianNB(), Y_CLASS, scorer=accuracy)._fast_path is None


def test_select_fast_path_returns_none_for_unknown_estimator():
    g = game(DecisionTreeClassifier(), Y_CLASS)
    assert select_fast_path(g) is None


def test_game_batch_and_walk_go_through_the_fast_path():
    g = game(Ridge(), Y_REG)
    values, evaluated = g.prefix_walk(np.arange(g.n_players))
    assert evaluated == g.n_players + 1 and g.n_fits == 0  # no refit at all
    g.evaluate_batch(np.ones((2, g.n_players), dtype=bool))
    assert g.n_fits == 0
