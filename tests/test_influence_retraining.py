"""Influence functions against actual retraining: leave-one-out, LDS, planted label noise.

The oracle is scikit-learn refitting the model without the point (or on random half
subsets); nothing here compares the code with its own earlier output.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import standardised
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.influence import (
    attribute_prediction,
    influence,
    lds,
    retrained_outputs,
    subset_masks,
)


@pytest.fixture(scope="module")
def cancer():
    ds = standardised(oa.datasets.load_breast_cancer())
    return ds.split(test_size=169, seed=0)  # 400 training points


def _logistic(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000)


@pytest.mark.slow
def test_predicted_loss_change_matches_leave_one_out_refits(cancer):
    """Koh & Liang (2017) fig. 2: predicted vs actual change in test loss on removal."""
    train, test = cancer
    model = _logistic(0.2).fit(train.X, train.y)
    result = influence(model, train, test)
    proba = model.predict_proba(test.X)[np.arange(test.n_samples), test.y]
    losses = -np.log(proba)
    order = np.argsort(-losses)
    chosen = [int(t) for t in order[[0, 1, 2, 40, 80]]]  # high-loss and typical test points
    pooled_predicted, pooled_actual = [], []
    for t in chosen:
        scores = result.for_test(t).values
        top = np.argsort(-np.abs(scores), kind="stable")[:50]
        actual = []
        for i in top:
            keep = np.ones(train.n_samples, dtype=bool)
            keep[i] = False
            refit = _logistic(0.2).fit(train.X[keep], train.y[keep])
            p = refit.predict_proba(test.X[t : t + 1])[0, test.y[t]]
            actual.append(-np.log(p) - losses[t])
        pearson = np.corrcoef(scores[top], actual)[0, 1]
        assert pearson >= 0.95, (t, pearson)
        # sign convention: positive influence = removing the point raises the test loss
        assert np.mean(np.sign(scores[top]) == np.sign(actual)) > 0.9
        pooled_predicted += list(scores[top])
        pooled_actual += actual
    assert np.corrcoef(pooled_predicted, pooled_actual)[0, 1] >= 0.95


def test_ridge_prediction_attribution_matches_refits():
    """Without a label, a regression prediction is explained: f(x) - f_{-i}(x)."""
    ds = standardised(oa.datasets.load_diabetes())
    ds = oa.Dataset(ds.X, oa.datasets.load_diabetes().y.astype(float))
    train = oa.datasets.partition(ds.subset(np.arange(300)), 30, seed=0)  # 10 rows each
    x = ds.X[350]
    model = Ridge(alpha=10.0).fit(train.X, train.y)
    points = attribute_prediction(model, train, x, players="points")
    assert points.parameters["target"] == "prediction"
    base = model.predict(x[None])[0]
    actual = []
    for i in range(train.n_samples):
        keep = np.ones(train.n_samples, dtype=bool)
        keep[i] = False
        actual.append(
            base - Ridge(alpha=10.0).fit(train.X[keep], train.y[keep]).predict(x[None])[0]
        )
    assert np.corrcoef(points.values, actual)[0, 1] > 0.99
    # contributor level: the sum over a contributor's points tracks removing all of them
    by = attribute_prediction(model, train, x)
    assert by.level == "contributors" and len(by) == 30
    removed = []
    for rows in train.groups().values():
        keep = np.ones(train.n_samples, dtype=bool)
        keep[rows] = False
        refit = Ridge(alpha=10.0).fit(train.X[keep], train.y[keep])
        removed.append(base - refit.predict(x[None])[0])
    assert np.corrcoef(by.values, removed)[0, 1] > 0.95


@pytest.mark.slow  # 50 real retrainings
def test_lds_of_influence_on_digits_is_high():
    """LDS (Park et al. 2023): alpha = 0.5, 50 random half subsets, Spearman per test point."""
    digits = oa.datasets.load_digits()
    ds = oa.Dataset(digits.X / 16.0, digits.y)
    rest, test = ds.split(test_size=100, seed=0)
    train = rest.subset(np.arange(600))
    estimator = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-8, max_iter=1000)
    model = estimator.fit(train.X, train.y)
    result = influence(model, train, test)
    masks = subset_masks(train.n_samples, n_subsets=50, alpha=0.5, seed=0)
    actual = retrained_outputs(estimator, train, test, masks, output="neg_loss", progress=False)
    score = lds(result, masks, actual)
    assert score.n_subsets == 50 and score.alpha == 0.5
    assert score.mean >= 0.8, score
    # the same from the dense matrix; and a random attribution scores near zero
    assert lds(result.to_array(), masks, actual).mean == pytest.approx(score.mean)
    noise = np.random.default_rng(0).standard_normal(result.shape)
    assert abs(lds(noise, masks, actual).mean) < 0.15


def test_self_influence_flags_flipped_labels(cancer):
    train, valid = cancer
    noisy, flipped = oa.datasets.flip_labels(train, 0.1, seed=0)
    model = _logistic(1.0).fit(noisy.X, noisy.y)
    result = influence(model, noisy, valid)
    is_flipped = np.zeros(noisy.n_samples, dtype=bool)
    is_flipped[flipped] = True
    self_influence = result.self_influence()
    assert (self_influence.values >= 0).all()
    assert self_influence.diagnostics["higher_is_more_suspicious"]
    assert roc_auc_score(is_flipped, self_influence.values) > 0.85
    # the aggregate influence on clean validation data ranks flipped points low
    assert roc_auc_score(is_flipped, -result.aggregate().values) > 0.75


# ----------------------------------------------------------------------------- the LDS helper
def test_lds_helper_against_scipy_spearman():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((4, 30))
    masks = subset_masks(30, n_subsets=60, alpha=0.5, seed=3)
    assert masks.shape == (60, 30) and (masks.sum(axis=1) == 15).all()
    actual = masks @ scores.T + 0.5 * rng.standard_normal((60, 4))
    result = lds(scores, masks, actual)
    predicted = masks.astype(float) @ scores.T
    expected = [spearmanr(predicted[:, t], actual[:, t]).statistic for t in range(4)]
    np.testing.assert_allclose(result.per_test, expected, rtol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected))
    exact = lds(scores, masks, masks @ scores.T)
    assert exact.mean == pytest.approx(1.0)
    np.testing.assert_array_equal(subset_masks(30, 60, 0.5, seed=3), masks)


def test_lds_helper_rejects_bad_shapes():
    masks = subset_masks(10, n_subsets=5, seed=0)
    with pytest.raises(ValidationError, match="scores must have shape"):
        lds(np.zeros((2, 9)), masks, np.zeros((5, 2)))
    with pytest.raises(ValidationError, match="actual must have shape"):
        lds(np.zeros((2, 10)), masks, np.zeros((4, 2)))
    with pytest.raises(ValidationError, match="alpha"):
        subset_masks(10, alpha=1.5)
    with pytest.raises(ValidationError, match="constant"):
        lds(np.zeros((2, 10)), masks, np.zeros((5, 2)))
