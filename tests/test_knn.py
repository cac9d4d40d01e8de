"""KNN-Shapley against brute-force Shapley values of the paper's KNN utility, and more oracles."""

from __future__ import annotations

import numpy as np
import pytest

import openattrib as oa
from openattrib.errors import BudgetError, ValidationError
from openattrib.estimators import _knn_core
from openattrib.estimators.exact import exact_shapley
from openattrib.estimators.knn import KNNShapleyPerTest, knn_shapley, knn_shapley_per_test
from openattrib.games import Game


# ----------------------------------------------------------------------------- oracles
def exact_distance(X: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    """The documented distances, written independently of the library."""
    if metric == "euclidean":
        return np.array([sum((a - b) ** 2 for a, b in zip(row, x, strict=True)) for row in X])
    if metric == "manhattan":
        return np.array([sum(abs(a - b) for a, b in zip(row, x, strict=True)) for row in X])
    out = []
    for row in X:
        dot = sum(a * b for a, b in zip(row, x, strict=True))
        norms = np.sqrt(sum(a * a for a in row)) * np.sqrt(sum(b * b for b in x))
        out.append(1.0 - (dot / norms if norms > 0 else 0.0))
    return np.array(out)


def brute_force(X, y, x, y_test, k, task, metric="euclidean"):
    """Shapley values of the KNN utility by enumerating all coalitions (oa.exact_shapley)."""
    distance = exact_distance(X, x, metric)
    order = np.lexsort((np.arange(len(X)), distance))  # ties: lower index is nearer
    rank = np.empty(len(X), dtype=int)
    rank[order] = np.arange(len(X))

    def utility(mask):
        members = np.flatnonzero(mask)
        if members.size == 0:
            return 0.0 if task == "classification" else -(y_test**2)
        nearest = members[np.argsort(rank[members])][:k]
        if task == "classification":
            return float(np.sum(y[nearest] == y_test)) / k
        return -((np.sum(y[nearest]) / k - y_test) ** 2)

    return exact_shapley(Game.from_function(utility, len(X)), progress=False).values


def tied_data(rng, n, n_test, task):
    """Integer grid points: many duplicates and equal distances."""
    X = rng.integers(0, 3, size=(n, 2)).astype(float)
    Xt = rng.integers(0, 3, size=(n_test, 2)).astype(float)
    if task == "classification":
        return X, rng.integers(0, 3, n), Xt, rng.integers(0, 3, n_test)
    return X, rng.normal(size=n), Xt, rng.normal(size=n_test)


# ----------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize(
    "n,k", [(1, 1), (2, 1), (4, 2), (7, 3), (9, 1), (9, 4), (10, 5), (6, 6), (5, 9), (8, 12)]
)
def test_matches_brute_force_shapley_with_ties(task, n, k):
    rng = np.random.default_rng(100 * n + k)
    X, y, Xt, yt = tied_data(rng, n, 3, task)
    train, test = oa.Dataset(X, y), oa.Dataset(Xt, yt)
    per_test = knn_shapley_per_test(train, test, k=k, task=task, progress=False)
    expected = np.array([brute_force(X, y, Xt[i], yt[i], k, task) for i in range(3)])
    np.testing.assert_allclose(per_test.to_array(), expected, rtol=0, atol=1e-12)
    mean = knn_shapley(train, test, k=k, task=task, progress=False)
    np.testing.assert_allclose(mean.values, expected.mean(axis=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("metric", ["cosine", "manhattan"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_other_metrics_match_brute_force(metric, task):
    rng = np.random.default_rng(7)
    X, y, Xt, yt = tied_data(rng, 9, 2, task)
    X[0] = 0.0  # a zero vector: cosine distance 1 by definition
    X[1] = 2 * X[2]  # same direction: cosine tie
    train, test = oa.Dataset(X, y), oa.Dataset(Xt, yt)
    got = knn_shapley_per_test(train, test, k=3, metric=metric, task=task, progress=False)
    for i in range(2):
        want = brute_force(X, y, Xt[i], yt[i], 3, task, metric)
        np.testing.assert_allclose(got.for_test(i).values, want, rtol=0, atol=1e-12)


def test_continuous_data_brute_force_regression():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(11, 4)), rng.normal(size=11) * 3
    Xt, yt = rng.normal(size=(2, 4)), rng.normal(size=2)
    got = knn_shapley(oa.Dataset(X, y), oa.Dataset(Xt, yt), k=4, progress=False)
    want = np.mean([brute_force(X, y, Xt[i], yt[i], 4, "regression") for i in range(2)], axis=0)
    np.testing.assert_allclose(got.values, want, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- large-n oracles
def test_efficiency_against_sklearn_neighbours():
    """Sum of a test point's values = U(all) - U(empty), with U(all) from scikit-learn."""
    from sklearn.neighbors import NearestNeighbors

    ds = oa.datasets.make_classification(
        n_samples=700, n_features=6, n_classes=3, n_informative=4, seed=1
    )
    train, test = ds.subset(np.arange(600)), ds.subset(np.arange(600, 700))
    k = 7
    rows = knn_shapley_per_test(train, test, k=k, progress=False).to_array()
    neighbours = NearestNeighbors(n_neighbors=k).fit(train.X).kneighbors(test.X)[1]
    utility_all = (train.y[neighbours] == test.y[:, None]).sum(axis=1) / k
    np.testing.assert_allclose(rows.sum(axis=1), utility_all, rtol=0, atol=1e-12)


def test_regression_efficiency_against_sklearn_regressor():
    from sklearn.neighbors import KNeighborsRegressor

    ds = oa.datasets.make_regression(n_samples=400, n_features=5, seed=2)
    train, test = ds.subset(np.arange(350)), ds.subset(np.arange(350, 400))
    k = 5
    rows = knn_shapley_per_test(train, test, k=k, progress=False).to_array()
    prediction = KNeighborsRegressor(n_neighbors=k).fit(train.X, train.y).predict(test.X)
    gain = -((prediction - test.y) ** 2) + test.y**2  # U(all) - U(empty)
    np.testing.assert_allclose(rows.sum(axis=1), gain, rtol=1e-10, atol=1e-9)


def test_k_at_least_n_is_additive():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    Xt, yt = rng.normal(size=(4, 3)), rng.integers(0, 2, 4)
    rows = knn_shapley_per_test(
        oa.Dataset(X, y), oa.Dataset(Xt, yt), k=50, progress=False
    ).to_array()
    np.testing.assert_allclose(rows, (y[None, :] == yt[:, None]) / 50, rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- exact order
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_neighbour_order_is_exact_distance_then_index(metric):
    rng = np.random.default_rng(5)
    base = rng.normal(size=(300, 5)) * 1e3 + 1e4  # far from the origin: cancellation
    X = np.concatenate([base, base[:100], base[:50] * 1.0000000000000002])
    X = X[rng.permutation(len(X))]
    Xt = np.concatenate([rng.normal(size=(5, 5)) * 1e3 + 1e4, X[:3]])
    order = _knn_core.NeighbourOrder(X, metric).order(Xt)
    for i, x in enumerate(Xt):
        distance = exact_distance(X, x, metric)
        np.testing.assert_array_equal(order[i], np.lexsort((np.arange(len(X)), distance)))


def test_equal_distances_from_different_points_rank_by_index():
    offsets = np.array([[5, 0], [3, 4], [0, 5], [-4, 3], [-5, 0], [0, -5], [4, -3], [1, 1]])
    X = offsets.astype(float) + 10.0  # all but the last at squared distance 25 from (10, 10)
    order = _knn_core.NeighbourOrder(X, "euclidean").order(np.array([[10.0, 10.0]]))
    np.testing.assert_array_equal(order[0], [7, 0, 1, 2, 3, 4, 5, 6])


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_bit_identical_for_every_batch_size_and_n_jobs(task):
    rng = np.random.default_rng(9)
    X = np.round(rng.normal(size=(500, 4)), 1)  # rounding creates exact ties
    y = rng.integers(0, 3, 500) if task == "classification" else rng.normal(size=500)
    train, test = oa.Dataset(X[:300], y[:300]), oa.Dataset(X[300:], y[300:])
    reference = knn_shapley(train, test, k=5, progress=False).values
    for batch_size in (1, 3, 64, 1000):
        again = knn_shapley(train, test, k=5, batch_size=batch_size, progress=False).values
        assert np.array_equal(again, reference), batch_size
    parallel = knn_shapley(train, test, k=5, n_jobs=2, batch_size=7, progress=False).values
    assert np.array_equal(parallel, reference)
    rows = knn_shapley_per_test(train, test, k=5, batch_size=16, progress=False)
    assert np.array_equal(rows.block(10, 40), rows.to_array()[10:40])
    assert np.array_equal(rows.for_test(17).values, rows.block(0, 200)[17])


# ----------------------------------------------------------------------------- per-test object
def test_per_test_object(monkeypatch):
    ds = oa.datasets.partition(oa.datasets.load_iris(), 3, seed=0)
    train, test = ds.split(test_size=0.2, seed=0)
    per_test = knn_shapley_per_test(train, test, k=3, progress=False)
    assert isinstance(per_test, KNNShapleyPerTest)
    assert len(per_test) == 30 and per_test.shape == (30, 120)
    mean = per_test.aggregate()
    np.testing.assert_allclose(mean.values, per_test.to_array().mean(axis=0), atol=1e-15)
    assert mean.values.tolist() == knn_shapley(train, test, k=3, progress=False).values.tolist()
    one = per_test.for_test(4)
    assert one.parameters["test_index"] == 4 and one.level == "points"
    assert one.names[:3] == ["0", "1", "2"]
    with pytest.raises(BudgetError, match="for_test"):
        per_test.to_array(memory_budget=1000)
    with pytest.raises(ValidationError, match="out of range"):
        per_test.for_test(30)
    with pytest.raises(ValidationError, match="out of range"):
        per_test.block(5, 31)
    # a single query computes a single row
    seen = []
    original = _knn_core.NeighbourOrder.order
    monkeypatch.setattr(
        _knn_core.NeighbourOrder, "order", lambda self, x: seen.append(len(x)) or original(self, x)
    )
    per_test.for_test(11)
    assert seen == [1]


def test_result_metadata_and_contributors():
    ds = oa.datasets.partition(oa.datasets.load_wine(), 4, seed=1)
    train, test = ds.split(test_size=0.25, seed=0)
    result = knn_shapley(train, test, k=5, progress=False)
    assert result.stderr is None and result.level == "points"
    assert result.names == [str(i) for i in range(train.n_samples)]
    assert result.parameters["k"] == 5 and result.provenance["dataset_hash"] == train.content_hash()
    grouped = result.by_contributor()
    assert grouped.level == "contributors" and "sum over points" in grouped.method
    for cid, rows in train.groups().items():
        assert grouped[cid] == pytest.approx(result.values[rows].sum(), abs=1e-15)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("k", [0, -1, 2.5, True, "5"])
def test_bad_k(tiny_pair, k):
    with pytest.raises(ValidationError, match="k must be"):
        knn_shapley(*tiny_pair, k=k, progress=False)


def test_bad_inputs_name_the_problem(tiny_pair):
    train, test = tiny_pair
    other = oa.Dataset(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValidationError, match="valid has 2 features but train has 3"):
        knn_shapley(train, other, progress=False)
    with pytest.raises(ValidationError, match="test has 2 features but train has 3"):
        knn_shapley_per_test(train, other, progress=False)
    with pytest.raises(ValidationError, match="supported metrics: euclidean, cosine, manhattan"):
        knn_shapley(train, test, metric="chebyshev", progress=False)
    with pytest.raises(ValidationError, match="must be an openattrib Dataset"):
        knn_shapley((train.X, train.y), test, progress=False)
    regression = oa.Dataset(train.X, np.linspace(0.1, 3.3, 20))
    with pytest.raises(ValidationError, match="regression target"):
        knn_shapley(regression, test, task="classification", progress=False)
    text = oa.Dataset(train.X, ["a", "b"] * 10)
    with pytest.raises(ValidationError, match="numeric targets"):
        knn_shapley(text, test, task="regression", progress=False)
    with pytest.raises(ValidationError, match="same kind"):
        knn_shapley(text, test, progress=False)
    with pytest.raises(ValidationError, match="task must be"):
        knn_shapley(train, test, task="ranking", progress=False)
    with pytest.raises(ValidationError, match="batch_size"):
        knn_shapley(train, test, batch_size=0, progress=False)
    with pytest.raises(ValidationError, match="n_jobs"):
        knn_shapley(train, test, n_jobs=0, progress=False)
    with pytest.raises(ValidationError, match="memory_budget"):
        knn_shapley(train, test, memory_budget="lots", progress=False)
    with pytest.raises(ValidationError, match="missing"):
        oa.Dataset(train.X[:3], [0, None, 1])  # missing labels never reach knn_shapley


def test_string_labels_and_integral_float_labels(tiny_pair):
    train, test = tiny_pair
    as_text = knn_shapley(
        oa.Dataset(train.X, np.where(train.y == 1, "yes", "no")),
        oa.Dataset(test.X, np.where(test.y == 1, "yes", "no")),
        progress=False,
    )
    as_float = knn_shapley(
        oa.Dataset(train.X, train.y.astype(float)),
        oa.Dataset(test.X, test.y.astype(float)),
        task="classification",
        progress=False,
    )
    reference = knn_shapley(train, test, progress=False).values
    assert np.array_equal(as_text.values, reference) and np.array_equal(as_float.values, reference)
    text_test = oa.Dataset(test.X, np.where(test.y == 1, "yes", "no"))
    one = knn_shapley_per_test(
        oa.Dataset(train.X, np.where(train.y == 1, "yes", "no")), text_test
    ).for_test(2)
    assert one.diagnostics["test_label"] == text_test.y[2]


# ----------------------------------------------------------------------------- vocabulary
def test_old_spellings_warn_and_return_the_same_values(tiny_pair):
    train, valid = tiny_pair
    reference = knn_shapley(train, valid, k=3, progress=False)
    with pytest.warns(DeprecationWarning, match=r"passing k, metric positionally.*k=, metric="):
        positional = knn_shapley(train, valid, 3, "euclidean", progress=False)
    assert positional.values.tobytes() == reference.values.tobytes()
    with pytest.warns(DeprecationWarning, match="test= is deprecated.*use valid="):
        renamed = knn_shapley(train, test=valid, k=3, progress=False)
    assert renamed.values.tobytes() == reference.values.tobytes()
    with pytest.warns(
        DeprecationWarning, match=r"per_test=True\) is deprecated.*knn_shapley_per_test"
    ):
        rows = knn_shapley(train, valid, k=3, per_test=True, progress=False)
    assert isinstance(rows, KNNShapleyPerTest)
    assert rows.aggregate().values.tobytes() == reference.values.tobytes()
    with pytest.warns(DeprecationWarning, match="max_bytes= is deprecated.*use memory_budget="):
        dense = rows.to_array(max_bytes=10**6)
    np.testing.assert_array_equal(dense.mean(axis=0), reference.values)


def test_knn_shapley_always_returns_an_attribution_and_players_contributors_sums():
    ds = oa.datasets.partition(oa.datasets.load_wine(), 4, seed=1)
    train, valid = ds.split(test_size=0.25, seed=0)
    points = knn_shapley(train, valid, k=5, progress=False)
    grouped = knn_shapley(train, valid, k=5, players="contributors", progress=False)
    assert isinstance(points, oa.Attribution) and grouped.level == "contributors"
    for cid, rows in train.groups().items():  # independent: sum the point values by hand
        assert grouped[cid] == pytest.approx(points.values[rows].sum(), abs=1e-15)
    with pytest.raises(ValidationError, match="players must be"):
        knn_shapley(train, valid, players="groups", progress=False)


def test_per_test_protocol_matches_the_dense_matrix():
    ds = oa.datasets.partition(oa.datasets.load_iris(), 3, seed=0)
    train, test = ds.split(test_size=0.2, seed=0)
    rows = knn_shapley_per_test(train, test, k=3, progress=False)
    assert isinstance(rows, oa.PerTestResult)
    dense = rows.to_array()
    weights = np.linspace(0.0, 1.0, len(rows))
    np.testing.assert_allclose(rows.aggregate(weights).values, weights @ dense, atol=1e-13)
    top = rows.top(4, k=5)
    order = np.argsort(-dense[4], kind="stable")[:5]
    assert top["train_index"].tolist() == order.tolist()
    assert top["value"].tolist() == dense[4, order].tolist()
    harmful = rows.top(4, k=2, order="harmful")
    assert harmful["value"].iloc[0] == dense[4].min()
    grouped = rows.by_contributor(4)
    for cid, members in train.groups().items():
        assert grouped[cid] == pytest.approx(dense[4, members].sum(), abs=1e-15)
    np.testing.assert_allclose(
        rows.by_contributor().values, rows.aggregate().by_contributor().values, atol=0
    )
    with pytest.raises(ValidationError, match="test_weights"):
        rows.aggregate([1.0, 2.0])
