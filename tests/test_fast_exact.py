"""Exact fast paths (ridge family, naive Bayes, KNN) against the generic refit.

Oracle: ``ModelUtility(..., fast=False)`` refits a scikit-learn clone on every coalition.
The fast path must give the same utilities (to ~1e-9 relative) on random prefix walks, with
and without truncation, and on random batches, for point and contributor players.
"""

from __future__ import annotations

import pickle
import warnings
import zlib

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge, RidgeClassifier
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

import openattrib as oa
from openattrib.games import ModelUtility

RTOL, ATOL = 1e-9, 1e-12


def regression_data(rng, n=22, n_valid=30, d=4):
    X = rng.normal(size=(n + n_valid, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d)
    y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=n + n_valid) + 3.0
    return X[:n], y[:n], X[n:], y[n:]


def class_data(rng, n=22, n_valid=30, d=4, n_classes=3, counts=False):
    labels = rng.integers(0, n_classes, size=n + n_valid)
    centres = rng.normal(scale=1.5, size=(n_classes, d))
    if counts:
        X = rng.poisson(np.exp(centres[labels] * 0.5 + 1.0)).astype(float)
    else:
        X = centres[labels] + rng.normal(size=(n + n_valid, d))
    names = np.array(["ant", "bee", "cat", "dog"])[labels]  # string labels on purpose
    return X[:n], names[:n], X[n:], names[n:]


CASES = {
    "ridge-r2": (lambda: Ridge(alpha=0.5), "reg", "r2"),
    "ridge-nointercept-mse": (
        lambda: Ridge(alpha=2.0, fit_intercept=False),
        "reg",
        "neg_mean_squared_error",
    ),
    "ridge-svd-mae": (lambda: Ridge(alpha=0.1, solver="svd"), "reg", "neg_mean_absolute_error"),
    "ridge-tiny-alpha-rmse": (lambda: Ridge(alpha=1e-6), "reg", "neg_root_mean_squared_error"),
    "linreg-r2": (lambda: LinearRegression(), "reg", "r2"),
    "linreg-nointercept": (
        lambda: LinearRegression(fit_intercept=False),
        "reg",
        "neg_mean_squared_error",
    ),
    "ridgeclf-binary": (lambda: RidgeClassifier(alpha=1.0), "bin", "accuracy"),
    "ridgeclf-3class": (lambda: RidgeClassifier(alpha=0.1), "multi", "accuracy"),
    "ridgeclf-f1": (lambda: RidgeClassifier(), "multi", "f1_macro"),
    "gnb-3class": (lambda: GaussianNB(), "multi", "accuracy"),
    "gnb-smoothing-balanced": (lambda: GaussianNB(var_smoothing=1e-3), "bin", "balanced_accuracy"),
    "mnb-3class": (lambda: MultinomialNB(), "counts", "accuracy"),
    "mnb-uniform-prior": (lambda: MultinomialNB(alpha=0.5, fit_prior=False), "counts", "accuracy"),
    "knn-clf": (lambda: KNeighborsClassifier(n_neighbors=3), "multi", "accuracy"),
    "knn-clf-kd": (
        lambda: KNeighborsClassifier(n_neighbors=4, algorithm="kd_tree"),
        "bin",
        "accuracy",
    ),
    "knn-reg": (lambda: KNeighborsRegressor(n_neighbors=4, metric="euclidean"), "reg", "r2"),
}


def make_data(kind, rng, **kw):
    if kind == "reg":
        return regression_data(rng, **kw)
    if kind == "bin":
        return class_data(rng, n_classes=2, **kw)
    if kind == "counts":
        return class_data(rng, counts=True, **kw)
    return class_data(rng, **kw)


def games(case, seed=0, players="points", data=None):
    make, kind, scorer = CASES[case]
    rng = np.random.default_rng(seed)
    X, y, Xv, yv = data if data is not None else make_data(kind, rng)
    contributors = None
    if players == "contributors":
        contributors = [f"c{i}" for i in rng.integers(0, max(2, len(y) // 3), size=len(y))]
    train, valid = oa.Dataset(X, y, contributors=contributors), oa.Dataset(Xv, yv)
    fast = ModelUtility(make(), train, valid, scorer=scorer, players=players)
    slow = ModelUtility(make(), train, valid, scorer=scorer, players=players, fast=False)
    assert fast._fast_path is not None, f"{case}: fast path not selected"
    assert slow._fast_path is None
    return fast, slow


def check_agreement(fast, slow, rng, n_walks=2, n_masks=15, rtol=RTOL):
    n = fast.n_players
    for _ in range(n_walks):
        perm = rng.permutation(n)
        got, got_n = fast.prefix_walk(perm)
        want, want_n = slow.prefix_walk(perm)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL)
        assert got_n == want_n == n + 1
    # truncation: same questions asked, same stop, same repeated tail
    perm = rng.permutation(n)
    stop_at = int(rng.integers(1, n)) if n > 1 else 0
    asked = {"fast": [], "slow": []}

    def truncation(label):
        def rule(k, value):
            asked[label].append((k, round(value, 9)))
            return k >= stop_at

        return rule

    got, got_n = fast.prefix_walk(perm, truncation("fast"))
    want, want_n = slow.prefix_walk(perm, truncation("slow"))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL)
    assert got_n == want_n == stop_at + 1
    assert asked["fast"] == asked["slow"]
    masks = rng.random((n_masks, n)) < rng.uniform(0.05, 1.0, size=(n_masks, 1))
    masks[0] = False
    masks[1] = True
    masks[2] = np.eye(n, dtype=bool)[0]
    np.testing.assert_allclose(
        fast.evaluate_batch(masks), slow.evaluate_batch(masks), rtol=rtol, atol=ATOL
    )


@pytest.mark.parametrize("players", ["points", "contributors"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_equals_generic_refit(case, players):
    # a stable seed per case (str hash() changes between processes)
    fast, slow = games(case, seed=zlib.crc32(case.encode()) % 1000, players=players)
    # alpha=1e-6 leaves the normal equations ill-conditioned: rounding differences between
    # the incremental and the refit solve are amplified by the condition number
    rtol = 1e-7 if "tiny-alpha" in case else RTOL
    check_agreement(fast, slow, np.random.default_rng(1), rtol=rtol)


@pytest.mark.parametrize(
    "case",
    ["ridge-r2", "linreg-r2", "ridgeclf-3class", "gnb-3class", "mnb-3class", "knn-clf", "knn-reg"],
)
def test_edge_cases_duplicates_constant_feature(case):
    """Duplicate rows (with conflicting labels) and a constant feature."""
    _, kind, _ = CASES[case]
    rng = np.random.default_rng(7)
    X, y, Xv, yv = make_data(kind, rng, n=20)
    X = np.vstack([X, X[:6]])
    y = np.concatenate([y, y[:6][::-1]])
    X[:, 1] = 2.5
    Xv[:, 1] = 2.5
    fast, slow = games(case, players="points", data=(X, y, Xv, yv))
    check_agreement(fast, slow, np.random.default_rng(3), n_walks=2)


@pytest.mark.parametrize(
    "case",
    ["ridge-r2", "ridgeclf-binary", "gnb-3class", "mnb-3class", "knn-clf", "knn-reg", "linreg-r2"],
)
def test_edge_cases_one_point_and_one_class(case):
    _, kind, _ = CASES[case]
    rng = np.random.default_rng(11)
    X, y, Xv, yv = make_data(kind, rng, n=8)
    fast, slow = games(case, data=(X[:1], y[:1], Xv, yv))
    check_agreement(fast, slow, rng, n_walks=1, n_masks=3)
    if kind != "reg":
        one = np.full(8, y[0])
        fast, slow = games(case, data=(X, one, Xv, yv))
        check_agreement(fast, slow, rng, n_walks=1, n_masks=6)


def test_gaussian_nb_all_features_constant_falls_back():
    rng = np.random.default_rng(2)
    X, y, Xv, yv = class_data(rng, n=12)
    X[:] = 1.0
    fast, slow = games("gnb-3class", data=(X, y, Xv, yv))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn divides by zero
        check_agreement(fast, slow, rng, n_walks=1, n_masks=5)
    assert fast.failures["fast_fallback: zero_variance"] > 0


def test_singular_least_squares_is_refitted_and_counted():
    fast, slow = games("linreg-r2")
    perm = np.arange(fast.n_players)
    got, _ = fast.prefix_walk(perm)
    want, _ = slow.prefix_walk(perm)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    d = fast.train.n_features
    # prefixes of <= d points leave the centred least-squares system singular
    assert fast.failures["fast_fallback: singular"] >= d
    assert fast.failures["empty"] == 1
    assert fast.n_fits >= d and slow.n_fits == fast.n_players


def test_knn_distance_ties_fall_back_and_match():
    """Rows at equal distance straddling the K-th neighbour: refit generically, same values."""
    X = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0], [3.0]] * 2)
    y = np.array(["a", "b", "a", "b", "b", "a"] * 2)
    Xv = np.array([[0.0], [0.5], [2.5], [-1.5]])
    yv = np.array(["a", "b", "a", "b"])
    fast, slow = games("knn-clf", data=(X, y, Xv, yv))
    check_agreement(fast, slow, np.random.default_rng(0), n_walks=3, n_masks=20)
    assert fast.failures["fast_fallback: distance_tie"] > 0


def test_knn_without_distance_cache(monkeypatch):
    import openattrib.fast.knn as knn

    monkeypatch.setattr(knn, "DISTANCE_CACHE_CELLS", 0)
    fast, slow = games("knn-reg", seed=5)
    assert fast._fast_path._distances is None
    check_agreement(fast, slow, np.random.default_rng(4), n_walks=2)


def test_failures_counted_like_generic_for_single_class_and_small_knn():
    fast, slow = games("knn-clf", seed=3)
    perm = np.random.default_rng(0).permutation(fast.n_players)
    fast.prefix_walk(perm)
    slow.prefix_walk(perm)
    assert set(fast.failures) - {"fast_fallback: distance_tie"} == set(slow.failures)
    for key in slow.failures:
        assert fast.failures[key] == slow.failures[key], key


def test_truncated_walk_counts_only_used_prefixes():
    fast, _ = games("knn-clf", seed=3)
    perm = np.random.default_rng(0).permutation(fast.n_players)
    fast.prefix_walk(perm, lambda k, v: k >= 1)  # stops after the first point
    assert sum(fast.failures.values()) == 2  # the empty prefix and the 1-point prefix


def test_fast_game_pickles_and_keeps_path():
    fast, slow = games("gnb-3class", players="contributors")
    clone = pickle.loads(pickle.dumps(fast))
    assert type(clone._fast_path) is type(fast._fast_path)
    assert clone._fast_path.utility is clone
    perm = np.random.default_rng(2).permutation(fast.n_players)
    np.testing.assert_allclose(clone.prefix_walk(perm)[0], slow.prefix_walk(perm)[0], rtol=RTOL)
    clone.prefix_walk(perm)
    assert clone.failures["empty"] >= 1 and fast.failures["empty"] == 0


@pytest.mark.slow
def test_exact_shapley_through_fast_batches_matches_generic():
    fast, slow = games("ridge-r2", data=regression_data(np.random.default_rng(9), n=9))
    got = oa.exact_shapley(fast, progress=False).values
    want = oa.exact_shapley(slow, progress=False).values
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "case", ["ridge-r2", "ridge-nointercept-mse", "linreg-r2", "ridgeclf-3class", "ridgeclf-f1"]
)
def test_ridge_family_loo_equals_refits_without_each_row(case):
    # leave-one-out coalitions are downdates of the full sums (one row's terms removed)
    fast, slow = games(case, seed=zlib.crc32(case.encode()) % 1000)
    got = oa.loo(fast, progress=False).values
    want = oa.loo(slow, progress=False).values
    assert fast.n_fits == 0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-10)
