"""Influence functions of scikit-learn linear models: objective, derivatives, solvers, API.

Oracles: scikit-learn's fitted coefficients (they must be a stationary point of the
objective we differentiate), central finite differences (gradients, Hessians, and an
end-to-end influence matrix built only from finite differences of the loss), the
pseudo-inverse for the multinomial null space, and shap's additivity.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from conftest import standardised
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import openattrib as oa
from openattrib.errors import BudgetError, UnsupportedError, ValidationError
from openattrib.influence import (
    attribute_prediction,
    explain_prediction,
    influence,
    prepared,
    tracin,
    trak,
)
from openattrib.influence.sklearn_models import glm_from_estimator, sample_weights

BINARY = standardised(
    oa.datasets.make_classification(
        n_samples=120, n_features=5, n_informative=3, flip_y=0.1, seed=0
    )
)
MULTI = standardised(
    oa.datasets.make_classification(
        n_samples=150, n_features=4, n_informative=3, n_classes=3, flip_y=0.1, seed=1
    )
)
# Targets are standardised too: the finite-difference oracle below differentiates the loss
# twice, and its rounding error grows with the loss's scale (about eps * loss / h**2). With raw
# targets of size ~200 the loss is ~1e4 and that error alone reaches 1e-3 relative, which
# decided pass or fail by the machine's BLAS kernel; at unit scale it is ~1e-7.
REGRESSION = standardised(
    oa.datasets.make_regression(n_samples=80, n_features=4, noise=5.0, seed=2),
    target=True,
)
NOISY = standardised(
    oa.datasets.make_classification(
        n_samples=300, n_features=3, n_informative=2, flip_y=0.4, seed=3
    )
)

TIGHT = {"tol": 1e-12, "max_iter": 100_000}
CASES = {
    "logistic": (lambda: LogisticRegression(C=0.7, **TIGHT), BINARY),
    "logistic-no-intercept": (
        lambda: LogisticRegression(C=0.7, fit_intercept=False, **TIGHT),
        BINARY,
    ),
    "logistic-liblinear": (
        lambda: LogisticRegression(C=0.7, solver="liblinear", intercept_scaling=2.0, **TIGHT),
        BINARY,
    ),
    "logistic-balanced": (
        lambda: LogisticRegression(
            C=0.7, solver="newton-cholesky", class_weight="balanced", **TIGHT
        ),
        BINARY,
    ),
    "logistic-unpenalised": (lambda: LogisticRegression(C=np.inf, **TIGHT), NOISY),
    "multinomial": (lambda: LogisticRegression(C=0.5, **TIGHT), MULTI),
    "multinomial-no-intercept": (
        lambda: LogisticRegression(C=0.5, fit_intercept=False, **TIGHT),
        MULTI,
    ),
    "ridge": (lambda: Ridge(alpha=3.0), REGRESSION),
    "ridge-no-intercept": (lambda: Ridge(alpha=3.0, fit_intercept=False), REGRESSION),
    "ols": (lambda: LinearRegression(), REGRESSION),
}


def _fit(case: str):
    factory, ds = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # C=inf warning of scikit-learn
        model = factory().fit(ds.X, ds.y)
    glm, _ = glm_from_estimator(model)
    Xa = glm.design(ds.X)
    y = glm.encode(ds.y)
    weights = sample_weights(glm, ds.y)
    return model, ds, glm, Xa, y, weights


def _central(f, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Jacobian of ``f`` at ``theta`` by central differences; rows = parameters."""
    rows = []
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = h
        rows.append((np.asarray(f(theta + step)) - np.asarray(f(theta - step))) / (2 * h))
    return np.array(rows)


# ----------------------------------------------------------------------------- the objective
@pytest.mark.parametrize("case", list(CASES))
def test_sklearn_fit_is_stationary_point_of_our_objective(case):
    """Finite differences of F at scikit-learn's solution vanish: F is what sklearn minimised."""
    _, _, glm, Xa, y, w = _fit(case)
    theta = glm.theta.reshape(-1)
    fd = _central(lambda t: glm.with_theta(t).objective(Xa, y, w), theta)
    scale = np.abs(glm.gradients(Xa, glm.residuals(Xa, y) * w[:, None])).sum()
    assert np.abs(fd).max() / scale < 1e-6
    # the closed-form gradient is the finite-difference gradient
    np.testing.assert_allclose(glm.objective_gradient(Xa, y, w), fd, atol=1e-6 * scale)
    # and a wrongly scaled penalty would not be stationary (the test can fail)
    if glm.penalty.any():
        wrong = glm.with_theta(theta)
        object.__setattr__(wrong, "penalty", glm.penalty * 2)
        assert np.abs(wrong.objective_gradient(Xa, y, w)).max() / scale > 1e-4


@pytest.mark.parametrize("case", list(CASES))
def test_per_sample_gradients_and_hessian_match_finite_differences(case):
    _, _, glm, Xa, y, w = _fit(case)
    theta = glm.theta.reshape(-1)
    per_sample_fd = _central(lambda t: glm.with_theta(t).losses(Xa, y), theta).T
    closed = glm.gradients(Xa, glm.residuals(Xa, y))
    np.testing.assert_allclose(closed, per_sample_fd, rtol=1e-6, atol=1e-8)
    total = w.sum()
    hess_fd = _central(lambda t: glm.with_theta(t).objective_gradient(Xa, y, w) / total, theta)
    dense = glm.hessian(Xa, w, fix_null=False)
    np.testing.assert_allclose(dense, hess_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)


@pytest.mark.parametrize("case", ["logistic", "multinomial", "multinomial-no-intercept", "ridge"])
@pytest.mark.parametrize("damping", [0.0, 0.01])
def test_matrix_free_products_equal_dense_hessian(case, damping):
    _, _, glm, Xa, _, w = _fit(case)
    dense = glm.hessian(Xa, w, damping)
    V = np.random.default_rng(0).standard_normal((glm.n_params, 3))
    np.testing.assert_allclose(glm.hvp_operator(Xa, w, damping).matmat(V), dense @ V, rtol=1e-10)
    np.testing.assert_allclose(glm.hessian_diagonal(Xa, w, damping), np.diag(dense), rtol=1e-10)


def test_multinomial_null_space_lift_equals_pseudo_inverse():
    """Unpenalised intercepts make the softmax Hessian singular; influences are unaffected."""
    _, ds, glm, Xa, y, w = _fit("multinomial")
    raw = glm.hessian(Xa, w, fix_null=False)
    assert np.linalg.matrix_rank(raw) == glm.n_params - 1
    G = glm.gradients(Xa, glm.residuals(Xa, y))[:10].T
    lifted = np.linalg.solve(glm.hessian(Xa, w), G)
    np.testing.assert_allclose(lifted, np.linalg.pinv(raw) @ G, rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------- influence values
def _reference_influence(case: str, n_test: int = 6):
    """S[t, i] = grad loss_t . H_sum^{-1} w_i grad loss_i from finite differences only."""
    model, ds, glm, Xa, y, w = _fit(case)
    theta = glm.theta.reshape(-1)
    grads = _central(lambda t: glm.with_theta(t).losses(Xa, y), theta).T  # (n, P)
    hess = _central(
        lambda t: (
            (w[:, None] * _central(lambda u: glm.with_theta(u).losses(Xa, y), t).T).sum(0)
            + glm.penalty * t
        ),
        theta,
        h=1e-4,
    )
    solve = np.linalg.pinv(hess, rcond=1e-10)
    S = grads[:n_test] @ solve @ (w[:, None] * grads).T
    self_infl = np.einsum("ij,jk,ik->i", grads, solve, grads) * w
    return model, ds, S, self_infl


@pytest.mark.parametrize("case", ["logistic", "logistic-balanced", "multinomial", "ridge", "ols"])
def test_influence_equals_finite_difference_formula(case):
    model, ds, S_ref, self_ref = _reference_influence(case)
    test = ds.subset(np.arange(6))
    result = influence(model, ds, test)
    np.testing.assert_allclose(result.to_array(), S_ref, rtol=1e-4, atol=1e-6 * np.abs(S_ref).max())
    np.testing.assert_allclose(result.self_influence().values, self_ref, rtol=1e-4, atol=1e-9)
    # tiny blocks give the same numbers
    small = influence(model, ds, test, memory_budget=2048)
    np.testing.assert_allclose(small.to_array(), result.to_array(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        small.self_influence().values, result.self_influence().values, rtol=1e-10
    )


@pytest.mark.parametrize("case", ["logistic", "multinomial", "ridge"])
def test_cg_and_lissa_agree_with_direct(case):
    model, ds, *_ = _fit(case)
    test = ds.subset(np.arange(15))
    direct = influence(model, ds, test, method="direct").to_array()
    for method in ("cg", "lissa"):
        other = influence(model, ds, test, method=method).to_array()
        assert np.abs(other - direct).max() <= 1e-4 * np.abs(direct).max(), method


def test_minibatch_lissa_is_seeded_and_close():
    model, ds, *_ = _fit("logistic")
    test = ds.subset(np.arange(5))
    direct = influence(model, ds, test).to_array()
    options = {"lissa_batch_size": 60, "lissa_depth": 400, "lissa_repeats": 4}
    runs = [
        influence(model, ds, test, method="lissa", seed=s, **options).to_array() for s in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert np.corrcoef(runs[0].ravel(), direct.ravel())[0, 1] > 0.95


def test_pipeline_equals_model_on_transformed_features():
    raw = oa.datasets.make_classification(n_samples=100, n_features=4, n_informative=2, seed=4)
    raw = oa.Dataset(raw.X * [1, 10, 100, 0.1] + 5, raw.y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, **TIGHT)).fit(raw.X, raw.y)
    transformed = oa.Dataset(pipe[0].transform(raw.X), raw.y)
    plain = LogisticRegression(C=0.5, **TIGHT).fit(transformed.X, transformed.y)
    a = influence(pipe, raw, raw.subset(np.arange(5))).to_array()
    b = influence(plain, transformed, transformed.subset(np.arange(5))).to_array()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------- result object
def test_result_views_are_consistent():
    model, ds, *_ = _fit("multinomial")
    train = oa.datasets.partition(ds, 4, seed=0)
    test = ds.subset(np.arange(7))
    result = influence(model, train, test)
    dense = result.to_array()
    assert result.shape == (7, train.n_samples)
    one = result.for_test(3)
    assert one.level == "points" and one.names[:3] == ["0", "1", "2"]
    np.testing.assert_allclose(one.values, dense[3])
    assert list(one.contributors) == list(train.contributors)
    by = one.by_contributor()
    for cid, rows in train.groups().items():
        assert by[cid] == pytest.approx(dense[3, rows].sum())
    np.testing.assert_allclose(result.aggregate().values, dense.mean(axis=0), atol=1e-15)
    weights = np.arange(7.0)
    np.testing.assert_allclose(result.aggregate(weights).values, weights @ dense, rtol=1e-12)
    top = result.top(3, k=5)
    assert top["train_index"].tolist() == list(np.argsort(-dense[3], kind="stable")[:5])
    assert (np.diff(top["influence"].to_numpy()) <= 0).all()
    harmful = result.top(3, k=2, order="harmful")
    assert harmful["influence"].iloc[0] == pytest.approx(dense[3].min())
    np.testing.assert_allclose(result.values([1, 3]), dense[[1, 3]])
    assert "contributor" in top.columns
    # results are JSON-serialisable Attributions (save/load round trip)
    for attribution in (one, result.aggregate(), result.self_influence()):
        again = oa.Attribution.from_dict(attribution.to_dict())
        np.testing.assert_array_equal(again.values, attribution.values)
        assert again.result_hash() == attribution.result_hash()


def test_to_array_refuses_above_budget():
    model, ds, *_ = _fit("logistic")
    result = influence(model, ds, ds)
    with pytest.raises(BudgetError, match="for_test"):
        result.to_array(max_bytes=1000)
    with pytest.raises(ValidationError, match="out of range"):
        result.for_test(10_000)


# ----------------------------------------------------------------------------- per-request API
def test_attribute_prediction_matches_full_result_and_caches():
    model, ds, *_ = _fit("logistic")
    train = oa.datasets.partition(ds, 5, seed=1)
    prepared.clear_cache()
    x = ds.X[3]
    contributors = attribute_prediction(model, train, x)
    assert contributors.level == "contributors" and len(contributors) == 5
    assert len(prepared._CACHE) == 1
    points = attribute_prediction(model, train, x, players="points")
    assert len(prepared._CACHE) == 1  # the factorisation was reused
    # y=None explains the loss of the predicted class
    predicted = model.predict(x[None])[0]
    labelled = influence(model, train, oa.Dataset(x[None], [predicted])).for_test(0)
    np.testing.assert_allclose(points.values, labelled.values, rtol=1e-10)
    np.testing.assert_allclose(contributors.values, labelled.by_contributor().values, rtol=1e-10)
    # a refitted model is a new cache entry
    refit = LogisticRegression(C=0.1, **TIGHT).fit(ds.X, ds.y)
    attribute_prediction(refit, train, x)
    assert len(prepared._CACHE) == 2
    with pytest.raises(ValidationError, match="no contributors"):
        attribute_prediction(model, ds, x)


def test_explain_prediction_combines_shap_and_influence():
    model, ds, *_ = _fit("logistic")
    train = oa.datasets.partition(ds, 3, seed=2)
    x = ds.X[5]
    explanation = explain_prediction(model, train, x, background_size=1000)
    predicted = model.predict(x[None])[0]
    assert explanation.prediction == predicted
    sign = 1.0 if predicted == model.classes_[1] else -1.0
    expected = sign * model.coef_[0] * (x - ds.X.mean(axis=0))
    np.testing.assert_allclose(explanation.features.values, expected, rtol=1e-8, atol=1e-10)
    margin = sign * model.decision_function(x[None])[0]
    total = explanation.features.values.sum() + explanation.features.diagnostics["base_value"]
    assert total == pytest.approx(margin)
    np.testing.assert_allclose(
        explanation.points.values,
        attribute_prediction(model, train, x, players="points").values,
    )
    html = explanation._repr_html_()
    assert "Features behind it" in html and "Contributors behind it" in html
    multi_model, multi, *_ = _fit("multinomial")
    multi_expl = explain_prediction(multi_model, multi, multi.X[0], y=multi.y[0])
    k = list(multi_model.classes_).index(multi.y[0])
    base = multi_expl.features.diagnostics["base_value"]
    assert multi_expl.features.values.sum() + base == pytest.approx(
        multi_model.decision_function(multi.X[:1])[0, k]
    )
    assert multi_expl.contributors is None


# ----------------------------------------------------------------------------- bad input
def test_unfitted_model_is_refused():
    with pytest.raises(ValidationError, match="not fitted"):
        influence(LogisticRegression(), BINARY, BINARY)


def test_unsupported_estimators_and_penalties_say_what_is_supported():
    forest = RandomForestClassifier(n_estimators=2).fit(BINARY.X, BINARY.y)
    with pytest.raises(UnsupportedError, match="supported: LogisticRegression"):
        influence(forest, BINARY, BINARY)
    lasso_like = LogisticRegression(l1_ratio=1.0, solver="saga", max_iter=200).fit(
        BINARY.X, BINARY.y
    )
    with pytest.raises(UnsupportedError, match="L2 penalty"):
        influence(lasso_like, BINARY, BINARY)
    with pytest.raises(UnsupportedError, match="positive=False"):
        influence(Ridge(positive=True).fit(REGRESSION.X, REGRESSION.y), REGRESSION, REGRESSION)


def test_feature_count_and_label_mismatch():
    model, ds, *_ = _fit("logistic")
    narrow = oa.Dataset(ds.X[:, :3], ds.y)
    with pytest.raises(ValidationError, match="has 3 features but the model was fitted on 5"):
        influence(model, ds, narrow)
    with pytest.raises(ValidationError, match="has 3 features"):
        attribute_prediction(model, ds, ds.X[0, :3], players="points")
    with pytest.raises(ValidationError, match="not one of the model's classes"):
        influence(model, ds, oa.Dataset(ds.X[:2], [0, 7]))
    with pytest.raises(ValidationError, match="method must be one of"):
        influence(model, ds, ds, method="exact")
    with pytest.raises(ValidationError, match="damping"):
        influence(model, ds, ds, damping=-1.0)


def test_singular_hessian_suggests_damping():
    X = np.hstack([REGRESSION.X, REGRESSION.X[:, :1]])  # duplicated column
    ds = oa.Dataset(X, REGRESSION.y)
    model = LinearRegression().fit(ds.X, ds.y)
    with pytest.raises(ValidationError, match="damping=1e-3"):
        influence(model, ds, ds.subset([0, 1]))
    with pytest.raises(ValidationError, match="damping=1e-3"):
        attribute_prediction(model, ds, ds.X[0], players="points")
    damped = influence(model, ds, ds.subset([0, 1]), damping=1e-3).to_array()
    assert np.all(np.isfinite(damped))


def test_matrix_free_solvers_give_the_pseudo_inverse_on_a_consistent_singular_system():
    """Duplicated columns: gradients lie in the range of H, where CG/LiSSA are well defined."""
    X = np.hstack([REGRESSION.X, REGRESSION.X[:, :1]])
    ds = oa.Dataset(X, REGRESSION.y)
    model = LinearRegression().fit(ds.X, ds.y)
    glm, _ = glm_from_estimator(model)
    Xa = glm.design(ds.X)
    y = glm.encode(ds.y)
    grads = glm.gradients(Xa, glm.residuals(Xa, y))
    hess_sum = glm.hessian(Xa, np.ones(ds.n_samples)) * ds.n_samples
    reference = grads[:2] @ np.linalg.pinv(hess_sum) @ grads.T
    for method in ("cg", "lissa"):
        values = influence(model, ds, ds.subset([0, 1]), method=method).to_array()
        np.testing.assert_allclose(
            values, reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max()
        )


def test_unconverged_cg_is_an_error_not_a_wrong_number():
    model, ds, *_ = _fit("logistic")
    with pytest.raises(ValidationError, match="did not converge"):
        influence(model, ds, ds.subset([0]), method="cg", cg_maxiter=1)
    with pytest.raises(ValidationError, match="did not converge"):
        influence(model, ds, ds.subset([0]), method="lissa", lissa_depth=2)


def test_torch_methods_name_the_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    for method in (tracin, trak):
        with pytest.raises(UnsupportedError, match=r"openattrib\[torch\]"):
            method(object(), BINARY, BINARY)
