"""ModelUtility against direct scikit-learn fits; game construction and validation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier

import openattrib as oa


def test_point_utility_equals_direct_fit_and_score(cancer_split):
    train, valid = cancer_split
    model = LogisticRegression(max_iter=2000)
    game = oa.ModelUtility(model, train, valid, scorer="accuracy")
    rng = np.random.default_rng(1)
    for _ in range(5):
        mask = rng.random(game.n_players) < 0.5
        rows = np.flatnonzero(mask)
        direct = LogisticRegression(max_iter=2000).fit(train.X[rows], train.y[rows])
        expected = np.mean(direct.predict(valid.X) == valid.y)
        assert game(mask) == pytest.approx(expected, abs=0)
    assert not hasattr(model, "coef_"), "the user's estimator must stay untouched"


def test_contributor_utility_uses_every_row_of_the_coalition(cancer_split):
    train, valid = cancer_split
    game = oa.ModelUtility(
        KNeighborsClassifier(3), train, valid, scorer="f1", players="contributors"
    )
    assert game.player_names == train.contributor_ids
    groups = train.groups()
    mask = np.array([i % 2 == 0 for i in range(game.n_players)])
    rows = np.sort(
        np.concatenate([groups[n] for n, m in zip(game.player_names, mask, strict=True) if m])
    )
    direct = KNeighborsClassifier(3).fit(train.X[rows], train.y[rows])
    assert game(mask) == pytest.approx(f1_score(valid.y, direct.predict(valid.X)))


def test_callable_scorer(cancer_split):
    train, valid = cancer_split

    def balanced(model, X, y):
        return float(np.mean(model.predict(X) == y))

    game = oa.ModelUtility(LogisticRegression(max_iter=2000), train, valid, scorer=balanced)
    assert game.grand_value == pytest.approx(
        oa.ModelUtility(LogisticRegression(max_iter=2000), train, valid).grand_value
    )


def test_empty_and_single_class_coalitions_are_defined_and_counted(cancer_split):
    train, valid = cancer_split
    game = oa.ModelUtility(LogisticRegression(), train, valid, empty_value=0.25)
    assert game(np.zeros(game.n_players, bool)) == 0.25
    label = train.y[0]
    one_class = train.y == label
    # any classifier trained on one class predicts it everywhere
    assert game(one_class) == pytest.approx(np.mean(valid.y == label))
    game_default = oa.ModelUtility(LogisticRegression(), train, valid, single_class="default")
    assert game_default(one_class) == 0.0
    assert game.failure_report() == {"empty": 1, "single_class": 1}


def test_fit_errors_use_empty_value_and_are_reported(cancer_split):
    train, valid = cancer_split
    game = oa.ModelUtility(KNeighborsClassifier(5), train, valid, empty_value=0.0)
    mask = np.zeros(game.n_players, bool)
    mask[[0, 1, 2]] = True
    if np.unique(train.y[:3]).size < 2:  # make sure it is a two-class coalition
        mask[np.flatnonzero(train.y != train.y[0])[0]] = True
    assert game(mask) == 0.0
    (key,) = [k for k in game.failure_report() if k.startswith("model_error")]
    assert "n_neighbors" in key or "n_samples" in key


def test_cache_returns_same_value_without_refitting(cancer_split):
    train, valid = cancer_split
    game = oa.ModelUtility(LogisticRegression(max_iter=2000), train, valid, cache_size=10)
    mask = np.ones(game.n_players, bool)
    first = game(mask)
    fits = game.n_fits
    assert game(mask) == first and game.n_fits == fits


def test_model_utility_validation_messages(cancer_split):
    train, valid = cancer_split
    with pytest.raises(oa.ValidationError, match="unknown scorer 'acuracy'"):
        oa.ModelUtility(LogisticRegression(), train, valid, scorer="acuracy")
    with pytest.raises(oa.ValidationError, match="players must be"):
        oa.ModelUtility(LogisticRegression(), train, valid, players="rows")
    with pytest.raises(oa.ValidationError, match="train has 30 features but valid has 2"):
        oa.ModelUtility(LogisticRegression(), train, oa.Dataset(np.ones((3, 2)), [0, 1, 0]))
    with pytest.raises(oa.UnsupportedError, match="fit"):
        oa.ModelUtility(object(), train, valid)
    with pytest.raises(oa.ValidationError, match="must be an openattrib Dataset"):
        oa.ModelUtility(LogisticRegression(), train.X, valid)


def test_function_game_validation():
    with pytest.raises(oa.ValidationError, match="n_players must be >= 1"):
        oa.Game.from_function(lambda m: 0.0, 0)
    with pytest.raises(oa.ValidationError, match="got 2 names for 3 players"):
        oa.Game.from_function(lambda m: 0.0, 3, names=["a", "b"])
    game = oa.Game.from_function(lambda m: float("nan"), 2)
    with pytest.raises(oa.ValidationError, match="NaN"):
        game([True, False])
    with pytest.raises(oa.ValidationError, match=r"shape \(n_coalitions, 2\)"):
        game.evaluate_batch(np.ones((2, 3), bool))
    batched = oa.Game.from_function(lambda ms: ms.sum(axis=1), 3, batched=True)
    np.testing.assert_array_equal(batched.evaluate_batch(np.eye(3, dtype=bool)), [1, 1, 1])


def test_prefix_walk_and_truncation():
    game = oa.toy_games.AdditiveGame([1.0, 2.0, 3.0, 4.0])
    values, evaluated = game.prefix_walk(np.array([3, 1, 0, 2]))
    np.testing.assert_array_equal(values, [0, 4, 6, 7, 10])
    assert evaluated == 5
    values, evaluated = game.prefix_walk(np.array([3, 1, 0, 2]), truncation=lambda k, v: v >= 6)
    np.testing.assert_array_equal(values, [0, 4, 6, 6, 6])
    assert evaluated == 3


def test_exact_values_on_model_game_by_contributor(cancer_split):
    train, valid = cancer_split
    game = oa.ModelUtility(LogisticRegression(max_iter=2000), train, valid, players="contributors")
    result = oa.exact_shapley(game, progress=False)
    assert result.level == "contributors"
    assert result.values.sum() == pytest.approx(game.grand_value - game.empty_value)
    assert result.provenance["dataset_hash"] == train.content_hash()
    assert result.diagnostics["utility_evaluations"] == 2**6


def test_scorer_that_does_not_fit_the_task_is_refused(cancer_split):
    from sklearn.linear_model import LinearRegression

    train, valid = cancer_split
    with pytest.raises(
        oa.ValidationError, match="scorer .accuracy. cannot score LinearRegression .regression."
    ):
        oa.ModelUtility(LinearRegression(), train, valid, scorer="accuracy")


def test_auto_empty_value_is_a_baseline_for_negative_error_scorers():
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error

    train, valid = oa.datasets.load_diabetes().split(test_size=0.3, seed=0)
    game = oa.ModelUtility(Ridge(), train, valid, scorer="neg_mean_squared_error")
    baseline = np.full(valid.n_samples, train.y.mean())
    assert game.empty_value == pytest.approx(-mean_squared_error(valid.y, baseline))
    assert game.grand_value > game.empty_value  # the model beats predicting the mean
    assert DummyRegressor().fit(train.X, train.y).predict(valid.X[:1])[0] == pytest.approx(
        baseline[0]
    )
    r2 = oa.ModelUtility(Ridge(), train, valid, scorer="r2")
    assert r2.empty_value == 0.0


def test_unseeded_random_estimators_are_seeded_per_clone(cancer_split):
    from sklearn.ensemble import RandomForestClassifier

    train, valid = cancer_split
    runs = [
        oa.permutation_shapley(
            oa.ModelUtility(
                RandomForestClassifier(n_estimators=5), train, valid, players="contributors"
            ),
            stop=oa.stop.MaxSamples(3),
            seed=0,
            progress=False,
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].values, runs[1].values)
    explicit = oa.ModelUtility(
        RandomForestClassifier(n_estimators=5, random_state=0), train, valid, players="contributors"
    )
    mask = np.ones(explicit.n_players, bool)
    mask[0] = False
    seeded = oa.ModelUtility(
        RandomForestClassifier(n_estimators=5), train, valid, players="contributors"
    )
    assert seeded(mask) == explicit(mask)
    assert seeded.describe()["model_seed"] == 0
