"""Tests of the replication experiment (openattrib.experiments.replication)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.estimators.exact import exact_banzhaf, exact_shapley
from openattrib.experiments import replicate, replication_experiment
from openattrib.games import Game, ModelUtility
from openattrib.rewards import audit


def test_audit_catches_replication_under_own_name_and_as_sybils(partitioned_split):
    train, _ = partitioned_split
    assert audit(train).flagged == []
    own, _ = replicate(train, "c1", 1, "own_name")
    report = audit(own)
    assert report.flagged == ["c1"]
    assert report.contributors.loc["c1", "self_copies"] == train.groups()["c1"].size
    assert report.n_cross_exact == 0
    sybil, _ = replicate(train, "c1", 2, "sybil")
    assert audit(sybil).flagged == ["c1~sybil1", "c1~sybil2"]


def test_replicate_builds_the_copies(partitioned_split):
    train, _ = partitioned_split
    rows = train.groups()["c1"]
    own, ids = replicate(train, "c1", 2, "own_name")
    assert ids == ["c1"] and own.n_samples == train.n_samples + 2 * rows.size
    assert own.groups()["c1"].size == 3 * rows.size
    sybil, ids = replicate(train, "c1", 2, "sybil")
    assert ids == ["c1", "c1~sybil1", "c1~sybil2"]
    np.testing.assert_array_equal(sybil.X[sybil.groups()["c1~sybil2"]], train.X[rows])


def substitute_game(game: Game, copier: int, extra: int) -> Game:
    """Oracle: the copier's sybils as perfect substitutes in the original game."""
    n = game.n_players

    def value(mask):
        original = mask[:n].copy()
        original[copier] = original[copier] or mask[n:].any()
        return game(original)

    return Game.from_function(value, n + extra)


@pytest.mark.slow
def test_replication_with_one_nearest_neighbour_matches_theory(partitioned_split):
    train, valid = partitioned_split
    model = KNeighborsClassifier(n_neighbors=1)  # duplicated rows never change its predictions
    table = replication_experiment(
        train,
        valid,
        "c1",
        model=model,
        copies=(0, 1, 2),
        methods=("exact_shapley", "exact_banzhaf", "loo"),
    )
    # own name: the data set is unchanged as far as 1-NN is concerned
    own = table.loc["own_name"]
    assert (own["share_change"] == 0).all()
    # sybils are perfect substitutes: LOO pays each identity nothing
    loo = table.loc[("sybil", "loo")]
    assert (loo.loc[[1, 2], "copier_value"] == 0).all()
    # Shapley / Banzhaf equal the substitute-game oracle built from the original game
    game = ModelUtility(model, train, valid, players="contributors")
    copier = game.player_names.index("c1")
    for k in (1, 2):
        oracle = substitute_game(game, copier, k)
        identities = [copier, *range(game.n_players, game.n_players + k)]
        for method, estimator in (
            ("exact_shapley", exact_shapley),
            ("exact_banzhaf", exact_banzhaf),
        ):
            values = estimator(oracle, progress=False).values
            expected = values[identities].sum()
            assert table.loc[("sybil", method, k), "copier_value"] == pytest.approx(expected)
    shares = table["copier_share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_replication_table_shape_and_knn_column(partitioned_split):
    train, valid = partitioned_split
    table = replication_experiment(
        train,
        valid,
        "c2",
        model=KNeighborsClassifier(n_neighbors=3),
        copies=(0, 1),
        methods=("loo", "knn_shapley"),
    )
    assert table.index.names == ["mode", "method", "copies"]
    assert {"copier_value", "copier_share", "copier_amount", "share_change"} <= set(table)
    knn = table.xs("knn_shapley", level="method")
    # the copied points are the same points whatever name they carry
    assert knn.loc[("own_name", 1), "copier_value"] == pytest.approx(
        knn.loc[("sybil", 1), "copier_value"]
    )


def test_replication_experiment_validates_inputs(partitioned_split):
    train, valid = partitioned_split
    with pytest.raises(ValidationError, match="not in the training data"):
        replication_experiment(train, valid, "nobody", methods=("loo",))
    with pytest.raises(ValidationError, match="unknown method"):
        replication_experiment(train, valid, "c1", methods=("magic",))
    with pytest.raises(ValidationError, match="max_players"):
        replication_experiment(train, valid, "c1", copies=(0, 20), methods=("loo",))


def test_old_method_names_and_old_location_warn_and_give_the_same_table(partitioned_split):
    train, valid = partitioned_split
    model = KNeighborsClassifier(n_neighbors=1)
    new = replication_experiment(
        train, valid, "c1", model=model, copies=(0, 1), methods=("exact_banzhaf",)
    )
    with pytest.warns(DeprecationWarning, match="exact_banzhaf"):
        old = replication_experiment(
            train, valid, "c1", model=model, copies=(0, 1), methods=("banzhaf",)
        )
    np.testing.assert_array_equal(old["copier_value"], new["copier_value"])
    with pytest.warns(DeprecationWarning, match="openattrib.experiments.replication_experiment"):
        moved = oa.rewards.replication_experiment
    assert moved is replication_experiment
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "replication_experiment" not in oa.rewards.__all__


def test_replication_runs_a_monte_carlo_method_through_the_registry(partitioned_split):
    train, valid = partitioned_split
    model = KNeighborsClassifier(n_neighbors=1)
    table = replication_experiment(
        train,
        valid,
        "c1",
        model=model,
        copies=(0,),
        modes=("own_name",),
        methods=("permutation_shapley",),
    )
    # permutation Shapley is efficient: the contributors' values sum to v(N) - v(empty)
    game = ModelUtility(model, train, valid, players="contributors")
    total = game(np.ones(game.n_players, bool)) - game(np.zeros(game.n_players, bool))
    assert table["total_value"].iloc[0] == pytest.approx(total, abs=1e-12)


# ------------------------------------------------------------------ registry and split
def test_split_deals_the_rows_to_the_identities(partitioned_split):
    train, _ = partitioned_split
    rows = train.groups()["c1"]
    split, ids = replicate(train, "c1", 2, "split")
    assert ids == ["c1", "c1~sybil1", "c1~sybil2"] and split.n_samples == train.n_samples
    np.testing.assert_array_equal(split.X, train.X)
    sizes = [split.groups()[i].size for i in ids]
    assert sum(sizes) == rows.size and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValidationError, match="cannot split"):
        replicate(train, "c1", rows.size, "split")


def test_registry_makes_copies_worthless_for_every_method(partitioned_split):
    # with the registry, the copies belong to c1 and are dropped: the owned data is the
    # honest data, so every value and share equals the honest one exactly
    train, valid = partitioned_split
    table = replication_experiment(
        train,
        valid,
        "c1",
        copies=(0, 2),
        methods=("exact_shapley", "loo", "knn_shapley", "robust_shapley"),
        modes=("own_name", "sybil"),
        registry=True,
    )
    assert table.attrs["registry"] is True
    assert (table["share_change"].abs() <= 1e-12).all()
    assert (table["identities"].xs(2, level="copies").xs("sybil", level="mode") == 3).all()


def test_robust_shapley_discounts_sybil_copies_without_the_registry(partitioned_split):
    train, valid = partitioned_split
    table = replication_experiment(
        train,
        valid,
        "c1",
        copies=(0, 2),
        methods=("exact_shapley", "robust_shapley"),
        modes=("sybil",),
    )
    plain = table.loc[("sybil", "exact_shapley", 2), "copier_value"]
    robust = table.loc[("sybil", "robust_shapley", 2), "copier_value"]
    honest = table.loc[("sybil", "exact_shapley", 0), "copier_value"]
    assert robust == pytest.approx(plain / 4)  # each of 3 perfect replicas: exp(-ln2 * 2)
    if honest > 0:
        assert robust <= honest + 1e-12


def test_split_robust_gains_nothing_from_splitting_or_registered_resubmission(partitioned_split):
    train, valid = partitioned_split
    kwargs = dict(
        model=KNeighborsClassifier(n_neighbors=3),
        copies=(0, 2),
        methods=("split_robust",),
        point_budget=10,
    )
    split = replication_experiment(train, valid, "c1", modes=("split",), **kwargs)
    robust = split.xs("split_robust", level="method")
    # splitting: the point values are the same, so is the owner's total (up to rounding)
    assert (robust["share_change"].abs() <= 1e-12).all()
    assert robust["copier_value"].to_numpy() == pytest.approx(robust["copier_value"].iloc[0])
    registered = replication_experiment(
        train, valid, "c1", modes=("own_name", "sybil"), registry=True, **kwargs
    )
    assert (registered.xs("split_robust", level="method")["share_change"].abs() <= 1e-12).all()
    with pytest.raises(ValidationError, match="point_budget"):
        replication_experiment(train, valid, "c1", methods=("split_robust",), point_budget=0)
