"""Evaluations of openattrib.experiments on cases whose answers are known independently."""

from __future__ import annotations

from itertools import combinations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.estimators import banzhaf, permutation_shapley
from openattrib.experiments import (
    convergence,
    convergence_by_budget,
    detection_scores,
    method_agreement,
    noisy_label_detection,
    point_addition,
    point_removal,
    rank_correlations,
    two_means_split,
    utility_lds,
)
from openattrib.experiments.removal import removal_steps
from openattrib.influence import influence
from openattrib.stopping import MaxSamples


def additive_game(weights: np.ndarray) -> oa.Game:
    w = np.asarray(weights, dtype=float)
    return oa.Game.from_function(lambda m: float(w[m].sum()), len(w))


# --------------------------------------------------------------------------- detection
def test_detection_perfect_when_values_are_negated_noise_indicator():
    rng = np.random.default_rng(0)
    flipped = np.sort(rng.choice(50, size=5, replace=False))
    indicator = np.isin(np.arange(50), flipped).astype(float)
    res = noisy_label_detection({"oracle": -indicator}, flipped)
    row = res.summary.loc["oracle"]
    assert row["auc"] == 1.0
    assert row["kmeans_f1"] == 1.0
    assert row["precision_at_k"] == 1.0 and row["recall_at_k"] == 1.0
    assert row["k"] == 5 and row["n_flipped"] == 5 and row["kmeans_n_low"] == 5
    # reversed ranking: every flipped row valued above every clean row
    worst = noisy_label_detection({"anti": indicator}, flipped).summary.loc["anti"]
    assert worst["auc"] == 0.0 and worst["precision_at_k"] == 0.0


def test_precision_recall_at_k_on_a_constructed_ranking():
    # lowest values, in order: rows 7, 0, 4, 9, 1, ... ; flipped rows: 0, 1, 2
    values = np.array([0.1, 0.5, 0.9, 0.8, 0.2, 0.7, 0.6, 0.0, 0.95, 0.3])
    flipped = [0, 1, 2]
    s = detection_scores(values, flipped)  # k = 3: rows {7, 0, 4} hold one flipped row
    assert s["precision_at_k"] == pytest.approx(1 / 3) and s["recall_at_k"] == pytest.approx(1 / 3)
    s5 = detection_scores(values, flipped, k=5)  # rows {7, 0, 4, 9, 1}: two flipped
    assert s5["precision_at_k"] == pytest.approx(2 / 5) and s5["recall_at_k"] == pytest.approx(
        2 / 3
    )


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, size=40).astype(float)  # many ties
    flipped = rng.choice(40, size=8, replace=False)
    noisy = np.isin(np.arange(40), flipped)
    pairs = [(a, b) for a in values[noisy] for b in values[~noisy]]
    expected = np.mean([1.0 if a < b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert detection_scores(values, flipped)["auc"] == pytest.approx(expected, abs=1e-12)


def test_two_cluster_f1_on_a_constructed_case():
    # low cluster {0, 1, 5}, flipped {0, 1, 2}: tp=2, fp=1, fn=1 -> F1 = 4/6
    values = np.array([0.0, 0.1, 5.0, 5.1, 5.2, 0.05])
    assert two_means_split(values).tolist() == [True, True, False, False, False, True]
    assert detection_scores(values, [0, 1, 2])["kmeans_f1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(6))
def test_two_means_split_is_the_optimal_split_and_matches_sklearn_kmeans(seed):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(-1, 0.4, 15), rng.normal(1.5, 0.6, 45)])
    rng.shuffle(values)
    low = two_means_split(values)
    # brute force over every threshold split, SSE computed directly
    ordered = np.sort(values)
    costs = [
        ordered[:s].var() * s + ordered[s:].var() * (len(values) - s) for s in range(1, len(values))
    ]
    best = int(np.argmin(costs)) + 1
    assert low.sum() == best
    assert values[low].max() < values[~low].min()
    labels = KMeans(n_clusters=2, n_init=10, random_state=0).fit(values.reshape(-1, 1)).labels_
    sk_low = labels == labels[np.argmin(values)]
    assert np.array_equal(sk_low, low)


def test_detection_discovery_curve_and_unpacking():
    flipped = [1, 3]
    res = noisy_label_detection(np.array([0.5, -1.0, 0.7, -0.9, 0.2]), flipped)
    curve = res.frame
    assert curve["fraction_found"].iloc[0] == 0 and curve["fraction_found"].iloc[-1] == 1
    assert curve["fraction_found"].tolist()[:3] == [0.0, 0.5, 1.0]
    frame, fig = res
    assert frame is res.frame and fig.axes
    matplotlib.pyplot.close(fig)


def test_detection_errors_name_the_problem():
    with pytest.raises(ValidationError, match="flipped and clean"):
        detection_scores([0.1, 0.2, 0.3], [])
    with pytest.raises(ValidationError, match="NaN"):
        detection_scores([0.1, np.nan, 0.3], [1])
    with pytest.raises(ValidationError, match="out of range"):
        detection_scores([0.1, 0.2, 0.3], [5])
    with pytest.raises(ValidationError, match="same players"):
        noisy_label_detection({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, [0])


# --------------------------------------------------------------------------- removal
def test_removal_on_additive_game_with_true_loo_ordering():
    weights = np.array([3.0, 0.5, 2.0, 5.0, 1.0, 4.0, 0.25, 1.5, 2.5, 0.75])
    game = additive_game(weights)
    loo_values = oa.loo(game, progress=False)  # for an additive game LOO = the weights
    res = point_removal({"loo": loo_values}, game, fraction=0.1, max_fraction=1.0)
    frame = res.frame
    high = frame[frame.order == "high_first"]["score"].to_numpy()
    low = frame[frame.order == "low_first"]["score"].to_numpy()
    assert np.all(np.diff(high) < 0)  # removing high-to-low decreases monotonically
    # independent oracle: remaining weight after removing the j largest / smallest
    desc, asc = np.sort(weights)[::-1], np.sort(weights)
    assert np.allclose(high, [weights.sum() - desc[:j].sum() for j in range(11)])
    assert np.allclose(low, [weights.sum() - asc[:j].sum() for j in range(11)])
    x = np.arange(11) / 10
    gap = low - high
    expected_area = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(x)))
    area = res.summary.loc["loo", "area_between"]
    assert area > 0 and area == pytest.approx(expected_area)
    reversed_res = point_removal({"rev": -weights}, game, fraction=0.1, max_fraction=1.0)
    assert reversed_res.summary.loc["rev", "area_between"] == pytest.approx(-expected_area)


def test_addition_on_additive_game():
    weights = np.array([1.0, 4.0, 2.0, 3.0])
    res = point_addition({"true": weights}, additive_game(weights), fraction=0.25, max_fraction=1.0)
    high = res.frame.query("order == 'high_first'")["score"].tolist()
    assert high == [0.0, 4.0, 7.0, 9.0, 10.0]
    assert res.summary.loc["true", "area_between"] > 0
    assert res.name == "point_addition"


def test_removal_scores_are_actual_retrained_models():
    from sklearn.linear_model import LogisticRegression

    ds = oa.datasets.load_breast_cancer().subset(np.arange(0, 569, 7))
    train, valid = ds.split(test_size=0.3, seed=0)
    game = oa.ModelUtility(LogisticRegression(max_iter=5000, tol=1e-10), train, valid)
    values = np.random.default_rng(1).normal(size=train.n_samples)
    res = point_removal({"v": values}, game, fraction=0.25, max_fraction=0.5)
    row = res.frame.query("order == 'high_first' and step == 1").iloc[0]
    keep = np.argsort(-values, kind="stable")[int(row["n_moved"]) :]
    model = LogisticRegression(max_iter=5000, tol=1e-10).fit(train.X[keep], train.y[keep])
    assert row["score"] == pytest.approx(model.score(valid.X, valid.y), abs=1e-12)


def test_removal_steps_and_errors():
    assert removal_steps(10, 0.25, 1.0).tolist() == [0, 2, 5, 8, 10]
    with pytest.raises(ValidationError, match="fraction"):
        removal_steps(10, 0.0, 0.5)
    with pytest.raises(ValidationError, match="rounds to 0"):
        removal_steps(10, 0.01, 0.04)
    with pytest.raises(ValidationError, match="mode"):
        point_removal([1.0, 2.0], additive_game([1.0, 2.0]), mode="drop")
    with pytest.raises(ValidationError, match="players"):
        point_removal([1.0, 2.0, 3.0], additive_game([1.0, 2.0]))


# --------------------------------------------------------------------------- agreement
def test_agreement_identical_and_reversed():
    v = np.array([0.3, -1.0, 2.0, 0.7, 0.1])
    res = method_agreement({"a": v, "same": 3 * v + 1, "rev": -v})
    table = res.frame.set_index(["method_a", "method_b"])
    for stat in ("spearman", "kendall"):
        assert table.loc[("a", "same"), stat] == pytest.approx(1.0)
        assert table.loc[("a", "rev"), stat] == pytest.approx(-1.0)
        assert table.loc[("rev", "rev"), stat] == pytest.approx(1.0)
    assert table.loc[("a", "rev"), "top_overlap"] == 0.0
    assert len(res.frame) == 9


def test_kendall_matches_pair_counting():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=12), rng.normal(size=12)
    concordant = sum(
        np.sign(a[i] - a[j]) == np.sign(b[i] - b[j]) for i, j in combinations(range(12), 2)
    )
    pairs = 12 * 11 / 2
    expected = (2 * concordant - pairs) / pairs
    assert rank_correlations(a, b)["kendall"] == pytest.approx(expected)


def test_agreement_needs_two_methods():
    with pytest.raises(ValidationError, match="at least two"):
        method_agreement({"a": [1.0, 2.0]})


# --------------------------------------------------------------------------- convergence
def test_convergence_errors_from_a_constructed_history():
    reference = np.array([1.0, 2.0, 3.0])
    history = [
        {
            "samples": s,
            "evaluations": 10 * s,
            "elapsed": 0.1 * s,
            "values": (reference + d).tolist(),
            "max_stderr": None,
        }
        for s, d in ((1, np.array([0.5, -0.5, 0.0])), (4, np.array([0.1, 0.0, -0.2])))
    ]
    history[0]["values"][2] = None  # a player not yet sampled
    fake = oa.Attribution(
        [1.1, 2.0, 2.8], ["a", "b", "c"], method="mc", diagnostics={"history": history}
    )
    frame = convergence({"mc": fake}, reference).frame
    assert frame["evaluations"].tolist() == [10, 40]
    assert frame["max_abs_error"].tolist() == pytest.approx([0.5, 0.2])
    assert frame["n_missing"].tolist() == [1, 0]
    assert frame["rmse"].iloc[1] == pytest.approx(np.sqrt((0.01 + 0.04) / 3))
    assert frame["relative_error"].iloc[1] == pytest.approx(np.sqrt(0.05) / np.sqrt(14))


def test_convergence_of_permutation_sampling_to_exact_shapley():
    game = oa.toy_games.GloveGame(2, 3)
    exact = oa.exact_shapley(game, progress=False)
    assert np.allclose(exact.values, game.shapley_values())
    run = permutation_shapley(game, stop=MaxSamples(2000), seed=0, progress=False)
    res = convergence({"permutation": run}, exact)
    frame = res.frame
    assert frame["evaluations"].is_monotonic_increasing and len(frame) >= 5
    assert frame["rmse"].iloc[-1] < frame["rmse"].iloc[0]
    assert res.summary.loc["permutation", "final_max_abs_error"] < 0.05


def test_convergence_by_budget_and_missing_history():
    weights = np.array([1.0, 2.0, 3.0])
    game = additive_game(weights)
    res = convergence_by_budget(
        {"banzhaf": lambda b: banzhaf(game, stop=MaxSamples(b), seed=0, progress=False)},
        [50, 400],
        weights,
    )
    assert res.frame["samples"].tolist() == [50, 400]
    assert res.frame["evaluations"].tolist() == [50, 400]
    with pytest.raises(ValidationError, match="history"):
        convergence({"loo": oa.loo(game, progress=False)}, weights)
    with pytest.raises(ValidationError, match="increasing"):
        convergence_by_budget({"x": lambda b: None}, [5, 2], weights)


# --------------------------------------------------------------------------- LDS
def test_utility_lds_is_one_for_true_values_of_an_additive_game():
    weights = np.random.default_rng(2).uniform(0.1, 1.0, size=12)
    game = additive_game(weights)
    res = utility_lds({"true": weights, "reversed": -weights}, game, n_subsets=25, seed=0)
    assert res.summary.loc["true", "lds"] == pytest.approx(1.0)
    assert res.summary.loc["reversed", "lds"] == pytest.approx(-1.0)
    assert (res.frame.groupby("method").size() == 25).all()


def test_linear_datamodeling_score_of_influence_beats_random_scores():
    from sklearn.linear_model import LogisticRegression

    from openattrib.experiments import linear_datamodeling_score

    ds = oa.datasets.load_breast_cancer().subset(np.arange(0, 569, 5))
    X = (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0)
    train, test = oa.Dataset(X, ds.y).split(test_size=0.2, seed=0)
    model = LogisticRegression(C=0.1, max_iter=5000).fit(train.X, train.y)
    scores = influence(model, train, test)
    noise = np.random.default_rng(0).normal(size=scores.shape)
    res = linear_datamodeling_score(
        {"influence": scores, "random": noise},
        LogisticRegression(C=0.1, max_iter=5000),
        train,
        test,
        n_subsets=20,
        seed=0,
    )
    assert res.summary.loc["influence", "lds"] > 0.3
    assert abs(res.summary.loc["random", "lds"]) < 0.2
    assert (res.frame.groupby("method").size() == test.n_samples).all()
