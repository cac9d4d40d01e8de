"""Data-OOB: the definition checked by hand-enumerating bags, reproducibility, noisy labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier

import openattrib as oa
from openattrib.errors import UnsupportedError, ValidationError
from openattrib.estimators.oob import bag_sample, data_oob


def by_hand(X, y, n_bags, seed, make_model, classification=True):
    """Data-OOB from its definition, bag by bag, with the documented bootstrap streams."""
    n = len(y)
    streams = np.random.SeedSequence(seed).spawn(n_bags)
    scores = [[] for _ in range(n)]
    for b in range(n_bags):
        drawn = np.random.default_rng(streams[b]).integers(0, n, size=n)
        left_out = sorted(set(range(n)) - set(drawn.tolist()))
        model = make_model().fit(X[drawn], y[drawn])
        for i in left_out:
            prediction = model.predict(X[i : i + 1])[0]
            scores[i].append(
                float(prediction == y[i]) if classification else -((prediction - y[i]) ** 2)
            )
    return scores


def test_bag_sample_follows_the_documented_stream():
    streams = np.random.SeedSequence(42).spawn(10)
    for bag in (0, 3, 9):
        drawn, _ = bag_sample(42, bag, n=50, size=50)
        expected = np.random.default_rng(streams[bag]).integers(0, 50, size=50)
        np.testing.assert_array_equal(drawn, expected)


@pytest.mark.parametrize("classification", [True, False])
def test_matches_hand_enumeration_of_bags(classification):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 2))
    y = rng.integers(0, 2, 9) if classification else rng.normal(size=9)
    make = (lambda: KNeighborsClassifier(1)) if classification else (lambda: KNeighborsRegressor(1))
    result = data_oob(oa.Dataset(X, y), estimator=make(), n_estimators=12, seed=3, progress=False)
    scores = by_hand(X, y, 12, 3, make, classification)
    for i, s in enumerate(scores):
        assert result.counts[i] == len(s)
        if s:
            assert result.values[i] == pytest.approx(np.mean(s), abs=1e-12)
        if len(s) >= 2:
            assert result.stderr[i] == pytest.approx(np.std(s, ddof=1) / np.sqrt(len(s)), abs=1e-12)


def test_known_answer_for_a_planted_mislabel():
    """Two far-apart clusters and one mislabelled point at cluster 0's far edge: out of bag,
    1-NN is always right on the clean points and always wrong on the planted one, whatever
    the bags (each bag holds points of both clusters)."""
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.uniform(-1, 1, size=(15, 2)), rng.uniform(-1, 1, size=(15, 2)) + 100])
    y = np.repeat([0, 1], 15)
    X[4], y[4] = [0.0, 30.0], 1  # nearer to cluster 0 than to cluster 1, labelled 1
    result = data_oob(
        oa.Dataset(X, y), estimator=KNeighborsClassifier(1), n_estimators=40, seed=0, progress=False
    )
    assert (result.counts > 0).all()
    expected = np.ones(30)
    expected[4] = 0.0
    np.testing.assert_array_equal(result.values, expected)


@pytest.mark.slow
def test_same_results_for_every_n_jobs_and_reproducible():
    noisy, _ = oa.datasets.flip_labels(oa.datasets.load_iris(), 0.1, seed=0)
    one = data_oob(noisy, n_estimators=24, seed=7, progress=False)
    two = data_oob(noisy, n_estimators=24, seed=7, n_jobs=2, progress=False)
    again = data_oob(noisy, n_estimators=24, seed=7, progress=False)
    other = data_oob(noisy, n_estimators=24, seed=8, progress=False)
    for res in (two, again):
        assert np.array_equal(res.values, one.values)
        assert np.array_equal(res.counts, one.counts)
        assert np.array_equal(res.stderr, one.stderr, equal_nan=True)
    assert not np.array_equal(other.counts, one.counts)
    assert one.result_hash() == again.result_hash()


@pytest.mark.slow
def test_flipped_labels_rank_low():
    noisy, flipped = oa.datasets.flip_labels(oa.datasets.load_breast_cancer(), 0.1, seed=0)
    result = data_oob(noisy, n_estimators=100, seed=0, progress=False)
    is_flipped = np.isin(np.arange(noisy.n_samples), flipped)
    auc = roc_auc_score(is_flipped, -result.values)
    print(f"Data-OOB noisy-label ROC-AUC on breast_cancer (10% flipped, 100 trees): {auc:.3f}")
    assert auc > 0.85
    assert result.values[flipped].mean() < result.values[~is_flipped].mean() - 0.4


def test_regression_corrupted_targets_rank_low():
    ds = oa.datasets.make_regression(n_samples=300, n_features=5, noise=1.0, seed=0)
    y = ds.y.copy()
    rng = np.random.default_rng(0)
    corrupted = rng.choice(300, size=30, replace=False)
    y[corrupted] += rng.choice([-1, 1], size=30) * 4 * y.std()
    result = data_oob(ds.with_labels(y), n_estimators=100, seed=0, progress=False)
    assert result.parameters["score"] == "negative squared error"
    assert (result.values <= 0).all()
    auc = roc_auc_score(np.isin(np.arange(300), corrupted), -result.values)
    assert auc > 0.9


def test_never_out_of_bag_points_get_a_flagged_value_not_nan():
    ds = oa.datasets.load_iris()
    result = data_oob(ds, n_estimators=2, seed=0, progress=False)
    never = result.diagnostics["never_out_of_bag"]
    assert never, "with 2 bags some of the 150 points are in both"
    rows = [int(name) for name in never]
    assert (result.counts[rows] == 0).all() and np.isfinite(result.values).all()
    scored = result.counts > 0
    assert result.values[rows] == pytest.approx(result.values[scored].mean())
    assert "mean value" in result.diagnostics["never_out_of_bag_rule"]
    assert np.isnan(result.stderr[rows]).all()


def test_contributor_bootstrap():
    """A contributor whose labels are all flipped is the least valuable one."""
    ds = oa.datasets.partition(oa.datasets.load_breast_cancer(), 10, seed=0)
    y = ds.y.copy()
    bad = ds.groups()["c3"]
    y[bad] = 1 - y[bad]
    result = data_oob(
        ds.with_labels(y), players="contributors", n_estimators=60, seed=0, progress=False
    )
    assert result.level == "contributors" and result.names == ds.contributor_ids
    assert result.ranking()[-1] == "c3"
    assert (result.counts > 0).all()


def test_contributor_definition_by_hand():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(12, 2)), rng.integers(0, 2, 12)
    owners = np.array(list("aabbbcddeeff"))
    ds = oa.Dataset(X, y, contributors=owners)
    result = data_oob(
        ds,
        estimator=KNeighborsClassifier(1),
        players="contributors",
        n_estimators=8,
        seed=5,
        progress=False,
    )
    groups = list(ds.groups().values())
    scores = [[] for _ in groups]
    for b in range(8):
        drawn, _ = bag_sample(5, b, len(groups), len(groups))
        rows = np.concatenate([groups[c] for c in drawn])
        model = KNeighborsClassifier(1).fit(X[rows], y[rows])
        for c in sorted(set(range(len(groups))) - set(drawn.tolist())):
            scores[c].append(np.mean(model.predict(X[groups[c]]) == y[groups[c]]))
    for c, s in enumerate(scores):
        assert result.counts[c] == len(s)
        if s:
            assert result.values[c] == pytest.approx(np.mean(s), abs=1e-12)


def test_single_class_bags_predict_that_class():
    X = np.arange(6, dtype=float).reshape(-1, 1)
    y = np.array([0, 0, 0, 0, 0, 1])
    from sklearn.linear_model import LogisticRegression

    result = data_oob(
        oa.Dataset(X, y), estimator=LogisticRegression(), n_estimators=30, seed=0, progress=False
    )
    assert result.diagnostics["bags"].get("single_class", 0) > 0
    assert np.isfinite(result.values).all()


class _Picky(DecisionTreeClassifier):
    """Refuses to fit when the sample holds the point at row 0: fails on some bags only."""

    def fit(self, X, y, sample_weight=None, check_input=True):
        if (X == PICKY_ROW).all(axis=1).any():
            raise ValueError("row 0 is not allowed")
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


PICKY_ROW = oa.datasets.load_iris().X[0]


def test_failing_bags_are_skipped_and_reported():
    ds = oa.datasets.load_iris()
    result = data_oob(ds, estimator=_Picky(), n_estimators=30, seed=0, progress=False)
    failed = result.diagnostics["bags"]["failed"]
    assert 0 < failed < 30 and "row 0 is not allowed" in result.diagnostics["bag_failures"][0]
    assert result.diagnostics["bags"]["fitted"] + failed == 30
    # only the successful bags count: point 0 is always left out when a bag succeeds
    assert result.counts[0] == result.diagnostics["bags"]["fitted"]


class _Broken(DecisionTreeClassifier):
    def fit(self, X, y, sample_weight=None, check_input=True):
        raise ValueError("this model never fits")


def test_estimator_failing_everywhere_is_a_clear_error():
    with pytest.raises(UnsupportedError, match="failed on every bag.*never fits"):
        data_oob(oa.datasets.load_iris(), estimator=_Broken(), n_estimators=5, progress=False)


def test_attribution_fields():
    ds = oa.datasets.partition(oa.datasets.load_wine(), 3, seed=0)
    result = data_oob(ds, n_estimators=20, seed=1, progress=False)
    assert result.level == "points" and result.seed == 1
    assert result.names == [str(i) for i in range(ds.n_samples)]
    assert result.stderr is not None and result.counts is not None
    assert result.provenance["dataset_hash"] == ds.content_hash()
    assert result.by_contributor().level == "contributors"


def test_bad_input():
    ds = oa.datasets.load_iris()
    with pytest.raises(ValidationError, match="n_estimators must be"):
        data_oob(ds, n_estimators=0, progress=False)
    with pytest.raises(ValidationError, match="bag_fraction"):
        data_oob(ds, bag_fraction=1.5, progress=False)
    with pytest.raises(ValidationError, match="bag_fraction"):
        data_oob(ds, bag_fraction=1000, progress=False)
    with pytest.raises(ValidationError, match="players must be"):
        data_oob(ds, players="groups", progress=False)
    with pytest.raises(ValidationError, match="no contributors"):
        data_oob(ds, players="contributors", progress=False)
    with pytest.raises(ValidationError, match="Dataset"):
        data_oob((ds.X, ds.y), progress=False)
    with pytest.raises(UnsupportedError, match="fit"):
        data_oob(ds, estimator="tree", progress=False)
    regression = oa.Dataset(ds.X, ds.X[:, 0] * 1.37)
    with pytest.raises(ValidationError, match="regression target"):
        data_oob(regression, task="classification", progress=False)
    with pytest.raises(UnsupportedError, match="classifier but the task is regression"):
        data_oob(regression, estimator=DecisionTreeClassifier(), task="regression", progress=False)
    text = oa.Dataset(ds.X, np.where(ds.y == 0, "setosa", "other"))
    with pytest.raises(ValidationError, match="numeric targets"):
        data_oob(text, task="regression", progress=False)
    with pytest.raises(ValidationError, match="seed"):
        data_oob(ds, seed=-1, progress=False)
    with pytest.raises(ValidationError, match="n_jobs"):
        data_oob(ds, n_jobs=0, progress=False)


def test_old_spellings_warn_and_give_the_same_result():
    ds = oa.datasets.load_iris()
    new = data_oob(ds, n_estimators=6, bag_fraction=0.5, seed=4, progress=False)
    with pytest.warns(DeprecationWarning, match="max_samples= is deprecated.*use bag_fraction="):
        old = data_oob(ds, n_estimators=6, max_samples=0.5, seed=4, progress=False)
    assert old.values.tobytes() == new.values.tobytes()
    assert old.result_hash() == new.result_hash()
    with pytest.warns(
        DeprecationWarning, match="positionally.*n_estimators=, bag_fraction=, seed="
    ):
        positional = data_oob(ds, None, 6, 0.5, 4, progress=False)
    assert positional.values.tobytes() == new.values.tobytes()
    with pytest.raises(ValidationError, match="both max_samples= .*and bag_fraction="):
        data_oob(ds, max_samples=0.5, bag_fraction=0.5, progress=False)
    with pytest.raises(TypeError, match="positional"):
        data_oob(ds, None, 6, 0.5, 4, 1, "extra")
