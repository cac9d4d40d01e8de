"""Similarity-discounted (robust) Shapley: the replication guarantee on toy games by enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.experiments import replicate
from openattrib.rewards import (
    contributor_similarity,
    robust_shapley,
    similarity_discount,
    split_robust,
)


def shapley_by_permutations(value, n):
    """Shapley values from the definition: average marginal over all n! orders."""
    phi = np.zeros(n)
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        members: set[int] = set()
        before = value(frozenset())
        for player in order:
            members.add(player)
            after = value(frozenset(members))
            phi[player] += after - before
            before = after
    return phi / len(orders)


def coverage_game(n, rng, items=8):
    """Monotone submodular: each player covers random items, v(S) = weighted |union|."""
    covers = [set(rng.choice(items, size=rng.integers(1, items), replace=False)) for _ in range(n)]
    weight = rng.uniform(0.5, 2.0, size=items)
    return lambda S: float(sum(weight[j] for j in set().union(*(covers[i] for i in S))))


def monotone_game(n, rng):
    """Monotone, neither sub- nor supermodular: a random increasing set function."""
    table = {}
    for size in range(n + 1):
        for S in itertools.combinations(range(n), size):
            floor = max([table[frozenset(S) - {i}] for i in S], default=0.0)
            table[frozenset(S)] = floor + rng.uniform(0, 1) * (rng.uniform() < 0.6)
    return table.__getitem__


def with_replicas(value, n, i, k):
    """Player i followed by k perfect replicas n..n+k-1: any one of them is i."""

    def replicated(S):
        return value(frozenset(p if p < n else i for p in S))

    return replicated


@pytest.mark.parametrize("make", [coverage_game, monotone_game])
@pytest.mark.parametrize("seed", range(4))
def test_replicating_never_raises_the_total_robust_value(make, seed):
    rng = np.random.default_rng(seed)
    n = 4
    game = make(n, rng)
    honest = shapley_by_permutations(game, n)
    names = [f"p{j}" for j in range(n)]
    for k in (1, 2, 3):
        phi = shapley_by_permutations(with_replicas(game, n, 0, k), n + k)
        ids = [*names, *(f"p0~{j}" for j in range(1, k + 1))]
        copies = [0, *range(n, n + k)]
        sim = np.zeros((n + k, n + k))
        sim[np.ix_(copies, copies)] = 1.0
        similarity = pd.DataFrame(sim, index=ids, columns=ids)
        robust = similarity_discount(dict(zip(ids, phi, strict=True)), similarity)
        plain_total, robust_total = phi[copies].sum(), robust.values[copies].sum()
        slack = 1e-12 * max(1.0, abs(honest[0]))
        # the bound on plain Shapley the guarantee rests on, and the guarantee itself
        assert plain_total <= n * (k + 1) / (n + k) * honest[0] + slack
        assert robust_total <= honest[0] + slack
        # players similar to nobody are not discounted
        assert robust.values[1:n] == pytest.approx(phi[1:n], rel=1e-12, abs=1e-15)


def test_plain_shapley_is_not_replication_robust():
    # v(S) = 1 if S is non-empty (any player is enough): honest phi_0 = 1/n, and the
    # k + 1 copies of player 0 get (k + 1)/(n + k) together -- more than 1/n.
    n, k = 3, 2
    game = lambda S: float(len(S) > 0)  # noqa: E731
    honest = shapley_by_permutations(game, n)
    phi = shapley_by_permutations(with_replicas(game, n, 0, k), n + k)
    assert honest[0] == pytest.approx(1 / 3)
    assert phi[[0, 3, 4]].sum() == pytest.approx(3 / 5) and phi[[0, 3, 4]].sum() > honest[0]
    sim = pd.DataFrame(np.zeros((5, 5)), index=list("abcde"), columns=list("abcde"))
    sim.iloc[[0, 3, 4], [0, 3, 4]] = 1.0
    robust = similarity_discount(dict(zip("abcde", phi, strict=True)), sim)
    assert robust.values[[0, 3, 4]].sum() == pytest.approx(3 / 5 * 2**-2)


def test_similarity_of_replicated_contributors_is_one_and_distinct_data_zero():
    ds = oa.datasets.partition(
        oa.datasets.make_classification(n_samples=40, n_features=3, n_informative=2, seed=0), 3
    )
    sybils, identities = replicate(ds, "c0", 2, "sybil")
    sim = contributor_similarity(sybils)
    assert sim.loc[identities, identities].to_numpy().sum() == pytest.approx(6.0)
    assert sim.loc["c1", "c2"] == 0 and sim.loc["c1", identities].sum() == 0
    values = {name: 1.0 for name in sim.index}
    robust = robust_shapley(values, sybils)
    assert robust["c0"] == pytest.approx(math.exp(-math.log(2) * 2)) and robust["c1"] == 1.0
    assert robust.diagnostics["discount"]["c2"] == 1.0


def test_bad_input_is_refused():
    sim = pd.DataFrame([[0.0, 2.0], [1.0, 0.0]], index=["a", "b"], columns=["a", "b"])
    with pytest.raises(ValidationError, match=r"in \[0, 1\]"):
        similarity_discount({"a": 1.0, "b": 1.0}, sim)
    with pytest.raises(ValidationError, match="no row/column"):
        similarity_discount({"z": 1.0}, sim)
    with pytest.raises(ValidationError, match="strength"):
        similarity_discount({"a": 1.0}, sim, strength=-1)
    with pytest.raises(ValidationError, match="contributor column"):
        contributor_similarity(oa.Dataset([[0.0]], [0]))


# ------------------------------------------------------------------ split_robust
def contributor_game(point_value, groups):
    """The contributor game of a grouping: a coalition of identities holds their rows."""
    return lambda T: point_value(frozenset().union(*(groups[t] for t in T)))


def banzhaf_by_enumeration(value, n):
    """Banzhaf values from the definition: mean marginal over all subsets of the others."""
    beta = np.zeros(n)
    for i in range(n):
        others = [p for p in range(n) if p != i]
        for size in range(n):
            for S in itertools.combinations(others, size):
                beta[i] += value(frozenset(S) | {i}) - value(frozenset(S))
    return beta / 2 ** (n - 1)


def shares(values):
    positive = np.maximum(np.asarray(values, dtype=float), 0)
    return positive / positive.sum()


def points_attribution(phi, owners):
    names = [str(i) for i in range(len(phi))]
    return oa.Attribution(phi, names, players="points", contributors=owners)


def test_split_gain_is_zero_for_point_sums_and_large_for_contributor_shapley():
    # v(rows) = 1 if any row is present: six interchangeable rows. Honest owners A (rows
    # 0-2), B (3-4), C (5); A then splits into A1 = {0, 1} and A2 = {2}. By hand:
    # contributor Shapley pays A 1/3 honestly and A1 + A2 = 1/2 after the split (+50%);
    # every point is worth 1/6, so the point sum pays A 1/2 both times.
    rows = lambda S: float(len(S) > 0)  # noqa: E731
    honest = [frozenset({0, 1, 2}), frozenset({3, 4}), frozenset({5})]
    split = [frozenset({0, 1}), frozenset({2}), frozenset({3, 4}), frozenset({5})]
    phi_honest = shapley_by_permutations(contributor_game(rows, honest), 3)
    phi_split = shapley_by_permutations(contributor_game(rows, split), 4)
    assert phi_honest[0] == pytest.approx(1 / 3) and phi_split[:2].sum() == pytest.approx(1 / 2)
    points = shapley_by_permutations(rows, 6)
    assert points == pytest.approx(np.full(6, 1 / 6))
    before = split_robust(points_attribution(points, ["A", "A", "A", "B", "B", "C"]))
    after = split_robust(points_attribution(points, ["A1", "A1", "A2", "B", "B", "C"]))
    gain_contributors = shares(phi_split)[:2].sum() / shares(phi_honest)[0] - 1
    gain_points = shares(after.values)[:2].sum() / shares(before.values)[0] - 1
    assert gain_contributors == pytest.approx(0.5)
    assert gain_points == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_split_robust_on_random_games_by_enumeration(seed):
    # any game on 6 rows: the point-level Shapley values are computed once (they do not
    # depend on owners); a split of A's rows leaves every share unchanged. Contributor-level
    # Shapley divides the same v(all) (efficiency) but among different players.
    rng = np.random.default_rng(seed)
    game = monotone_game(6, rng)
    points = shapley_by_permutations(game, 6)
    owners = ["A", "A", "A", "A", "B", "C"]
    regrouped = ["A1", "A2", "A1", "A3", "B", "C"]
    before = split_robust(points_attribution(points, owners))
    after = split_robust(points_attribution(points, regrouped))
    assert shares(after.values)[:3].sum() == pytest.approx(shares(before.values)[0], abs=1e-12)
    assert after.values[3:] == pytest.approx(before.values[1:], abs=0)
    honest = shapley_by_permutations(
        contributor_game(game, [frozenset({0, 1, 2, 3}), frozenset({4}), frozenset({5})]), 3
    )
    split = shapley_by_permutations(
        contributor_game(
            game,
            [frozenset({0, 2}), frozenset({1}), frozenset({3}), frozenset({4}), frozenset({5})],
        ),
        5,
    )
    assert honest.sum() == pytest.approx(split.sum())  # efficiency: both share v(all)


@pytest.mark.parametrize("seed", range(3))
def test_banzhaf_keeps_the_sum_of_a_split_in_two_not_in_three(seed):
    # the claim of the module docstring (Lehrer's 2-efficiency), checked by enumeration
    game = monotone_game(5, np.random.default_rng(seed))
    honest = banzhaf_by_enumeration(
        contributor_game(game, [frozenset({0, 1, 2}), frozenset({3}), frozenset({4})]), 3
    )
    two = banzhaf_by_enumeration(
        contributor_game(game, [frozenset({0, 1}), frozenset({2}), frozenset({3}), frozenset({4})]),
        4,
    )
    assert two[:2].sum() == pytest.approx(honest[0], abs=1e-12)


def test_point_values_do_not_read_owners_so_the_split_changes_nothing():
    # a real pipeline: Monte Carlo point-level Shapley of a model utility (same seed) on the
    # data and on the same rows with c0's rows dealt to three identities
    ds = oa.datasets.partition(
        oa.datasets.make_classification(n_samples=60, n_features=3, n_informative=2, seed=1), 3
    )
    train, valid = ds.split(test_size=0.5, seed=0)
    split, identities = replicate(train, "c0", 2, "split")
    from sklearn.neighbors import KNeighborsClassifier

    def point_values(data):
        game = oa.ModelUtility(KNeighborsClassifier(3), data, valid, players="points")
        return oa.permutation_shapley(game, stop=oa.stop.MaxSamples(30), seed=4, progress=False)

    honest, regrouped = point_values(train), point_values(split)
    np.testing.assert_array_equal(honest.values, regrouped.values)
    before, after = split_robust(honest, train), split_robust(regrouped, split)
    total = sum(after[i] for i in identities)
    assert total == pytest.approx(before["c0"], rel=1e-12, abs=1e-15)
    for other in ("c1", "c2"):
        assert after[other] == before[other]
    pool = 10**12
    paid_before = oa.allocate(before, pool).amounts
    paid_after = oa.allocate(after, pool).amounts
    assert abs(sum(paid_after[i] for i in identities) - paid_before["c0"]) <= 1e-9 * pool


@settings(max_examples=40, deadline=None)
@given(
    phi=st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=30),
    data=st.data(),
)
def test_split_robust_is_invariant_under_any_regrouping_of_an_owners_rows(phi, data):
    n = len(phi)
    owners = [data.draw(st.sampled_from("ABC")) for _ in range(n)]
    n_ids = data.draw(st.integers(1, 4))
    regrouped = [
        f"A{data.draw(st.integers(1, n_ids))}" if owner == "A" else owner for owner in owners
    ]
    before = split_robust(points_attribution(phi, owners))
    after = split_robust(points_attribution(phi, regrouped))
    identities = [name for name in after.names if name.startswith("A")]
    total = sum(after[name] for name in identities)
    expected = sum(max(v, 0.0) for v, o in zip(phi, owners, strict=True) if o == "A")
    assert total == pytest.approx(expected, rel=1e-12, abs=1e-12)
    for other in set(owners) - {"A"}:
        assert after[other] == before[other]
    assert all(v >= 0 for v in after.values)


def test_split_robust_discounts_replicated_points_and_refuses_bad_input():
    ds = oa.Dataset([[0.0], [5.0], [0.0], [0.0]], [0, 1, 0, 0], contributors=["a", "a", "b", "c"])
    att = points_attribution([0.4, 0.2, 0.4, 0.4], ["a", "a", "b", "c"])
    robust = split_robust(att, ds)  # row 0 has two exact twins: each copy times 2**-2
    assert robust["a"] == pytest.approx(0.4 / 4 + 0.2) and robust["b"] == pytest.approx(0.1)
    assert robust.diagnostics["discounted_points"] == {"a": 1, "b": 1, "c": 1}
    assert split_robust(att, ds, strength=0)["b"] == 0.4
    with pytest.raises(ValidationError, match="point-level"):
        split_robust(oa.Attribution([1.0], ["a"], players="contributors"))
    with pytest.raises(ValidationError, match="owner of every point"):
        split_robust(oa.Attribution([1.0], ["0"], players="points"))
    with pytest.raises(ValidationError, match="same order"):
        split_robust(att, ds.subset([0, 1]))
    with pytest.raises(ValidationError, match="strength"):
        split_robust(att, strength=-1.0)


def test_recipe_payout_split_robust_sums_point_values_per_owner():
    from openattrib.recipe import compute

    ds = oa.datasets.partition(
        oa.datasets.make_classification(n_samples=40, n_features=3, n_informative=2, seed=2), 3
    )
    train, valid = ds.split(test_size=0.5, seed=0)
    recipe = {"model": "knn", "players": "points", "method": "knn_shapley", "seed": 0}
    points = compute(recipe, train, valid, progress=False)
    paid = compute({**recipe, "payout": "split_robust"}, train, valid, progress=False)
    assert paid.level == "contributors" and paid.provenance["recipe"]["payout"] == "split_robust"
    for name in paid.names:
        mine = np.asarray(points.contributors) == name
        assert paid[name] == pytest.approx(np.maximum(points.values[mine], 0).sum())
    with pytest.raises(ValidationError, match="payout"):
        compute({**recipe, "players": "contributors", "payout": "split_robust"}, train, valid)


def test_split_robust_refuses_a_dataset_other_than_the_valued_one():
    train, valid = oa.datasets.load_demo()
    points = oa.knn_shapley(train, valid, players="points", progress=False)
    assert points.provenance["dataset_hash"] == train.content_hash()
    split_robust(points, train)  # the valued rows: accepted
    # same rows, same count, another order: every value would meet the wrong row's copies
    reordered = train.subset(np.arange(train.n_samples)[::-1])
    with pytest.raises(ValidationError, match="not the data the values were computed on"):
        split_robust(points, reordered)
