"""Similarity-discounted (robust) Shapley: the replication guarantee on toy games by enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.experiments import replicate
from openattrib.rewards import contributor_similarity, robust_shapley, similarity_discount


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
