"""Contributor-level error bars of permutation sampling on point-level games.

The oracle is exact enumeration: over all 7! permutations of a glove game, the per-draw
marginal vectors give the exact covariance of the per-draw contributor sums, so the true
standard error of a contributor's total after N draws is known without sampling.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import stats

import openattrib as oa
from openattrib import stopping as stop
from openattrib import toy_games as tg
from openattrib.estimators.semivalue import banzhaf, beta_shapley, permutation_shapley, semivalue

# points 0-2 hold left gloves, 3-6 right gloves; every contributor owns both kinds, whose
# marginals are negatively correlated within a permutation (enumeration: the old error bar
# sqrt(sum of point stderr^2) is 35-44% too wide for every contributor here)
OWNERS = ["ann", "cy", "bob", "bob", "cy", "bob", "ann"]
GROUP_NAMES = ["ann", "cy", "bob"]
DRAWS = 100
SEEDS = range(100)


class OwnedGloves(tg.GloveGame):
    """GloveGame(3, 4) whose players are training points owned by contributors."""

    level = "points"

    def __init__(self, owners=OWNERS):
        super().__init__(3, 4)
        self.point_contributors = np.array(owners, dtype=object)


def _indicator(names=GROUP_NAMES, owners=OWNERS):
    return np.array([[owner == name for owner in owners] for name in names], dtype=float)


def _exact_group_sd():
    """Standard deviation of one permutation's contributor sums, by enumerating all 7!."""
    game = tg.GloveGame(3, 4)
    rows = []
    for order in itertools.permutations(range(game.n_players)):
        values, _ = game.prefix_walk(np.array(order))
        marginal = np.empty(game.n_players)
        marginal[list(order)] = np.diff(values)
        rows.append(marginal)
    return (np.array(rows) @ _indicator().T).std(axis=0)


@pytest.fixture(scope="module")
def runs():
    game = OwnedGloves()
    return [
        permutation_shapley(game, stop=stop.MaxSamples(DRAWS), seed=seed, progress=False)
        for seed in SEEDS
    ]


def test_contributor_values_are_the_sums_of_the_point_values(runs):
    for result in runs[:5]:  # same contributors, same values as the plain sums
        grouped = result.by_contributor()
        assert grouped.names == GROUP_NAMES
        assert grouped.method == "permutation_shapley (sum over points by contributor)"
        np.testing.assert_allclose(grouped.values, _indicator() @ result.values, rtol=1e-12)
        assert grouped.counts.tolist() == [DRAWS] * 3
        assert grouped.stderr is not None and np.isfinite(grouped.stderr).all()


def test_stderr_matches_the_spread_over_seeds_and_the_exact_variance(runs):
    grouped = [r.by_contributor() for r in runs]
    totals = np.array([g.values for g in grouped])
    reported = np.array([g.stderr for g in grouped]).mean(axis=0)
    empirical = totals.std(axis=0, ddof=1)
    ratio = reported / empirical
    assert ((ratio > 0.75) & (ratio < 1.33)).all(), ratio
    # the mean reported variance is unbiased for the exact per-draw variance / DRAWS
    group_sd = _exact_group_sd()
    reported_var = np.array([g.stderr**2 for g in grouped]).mean(axis=0)
    np.testing.assert_allclose(reported_var, group_sd**2 / DRAWS, rtol=0.1)
    # the old error bar, sqrt(sum of point stderr^2), ignores the correlation within a draw:
    # against the exact variance it is far too wide, and the same spread check rejects it
    old = np.array([np.sqrt(_indicator() @ r.stderr**2) for r in runs]).mean(axis=0)
    assert (old / (group_sd / np.sqrt(DRAWS)) > 1.3).all()
    old_ratio = old / empirical
    assert not ((old_ratio > 0.75) & (old_ratio < 1.33)).all(), old_ratio


def test_95_percent_intervals_cover_the_exact_contributor_totals(runs):
    truth = _indicator() @ OwnedGloves().shapley_values()
    covered = np.array(
        [np.abs(g.values - truth) <= 1.96 * g.stderr for g in (r.by_contributor() for r in runs)]
    )
    n = covered.shape[0]
    # per group, misses of a 95% interval over n independent seeds are Binomial(n, 0.05)
    limit = stats.binom.ppf(0.999, n, 0.05)
    misses = n - covered.sum(axis=0)
    assert (misses <= limit).all(), misses
    assert covered.mean() >= 0.85


@pytest.mark.slow
def test_bit_identical_for_n_jobs_and_resume(tmp_path):
    game = OwnedGloves()
    kwargs = {"truncation": 0.05, "antithetic": True, "seed": 3, "progress": False}
    once = permutation_shapley(game, stop=stop.MaxSamples(96), **kwargs)
    parallel = permutation_shapley(game, stop=stop.MaxSamples(96), n_jobs=2, **kwargs)
    part = permutation_shapley(game, stop=stop.MaxSamples(26), **kwargs)
    part.save(tmp_path / "part.json")
    resumed = permutation_shapley(
        game,
        stop=stop.MaxSamples(96),
        continue_from=tmp_path / "part.json",
        progress=False,
        truncation=0.05,
        antithetic=True,
    )
    reference = once.by_contributor()
    for other in (parallel, resumed):
        assert other.values.tobytes() == once.values.tobytes()
        grouped = other.by_contributor()
        assert grouped.names == reference.names
        assert grouped.values.tobytes() == reference.values.tobytes()
        assert grouped.stderr.tobytes() == reference.stderr.tobytes()
        assert grouped.counts.tolist() == reference.counts.tolist() == [96] * 3
        state_once = dict(once.diagnostics["state"], elapsed=0)
        state_other = dict(other.diagnostics["state"], elapsed=0)
        assert json.dumps(state_once, sort_keys=True) == json.dumps(state_other, sort_keys=True)


def test_point_results_unchanged_by_the_contributor_accumulator():
    plain = permutation_shapley(
        tg.GloveGame(3, 4), stop=stop.MaxSamples(50), seed=11, progress=False
    )
    owned = permutation_shapley(OwnedGloves(), stop=stop.MaxSamples(50), seed=11, progress=False)
    assert owned.values.tobytes() == plain.values.tobytes()
    assert owned.stderr.tobytes() == plain.stderr.tobytes()
    assert owned.counts.tolist() == plain.counts.tolist()
    assert "by_contributor" not in plain.diagnostics and plain.contributor_sums is None
    assert "by_contributor" not in owned.diagnostics  # a typed field, not a diagnostics key
    assert owned.contributor_sums.names == GROUP_NAMES
    assert "contributor_names" not in plain.diagnostics["state"]


def test_save_load_round_trip_keeps_contributor_stderr(tmp_path):
    result = beta_shapley(OwnedGloves(), 4, 1, stop=stop.MaxSamples(40), seed=5, progress=False)
    result.save(tmp_path / "beta.json")
    loaded = oa.Attribution.load(tmp_path / "beta.json")
    before, after = result.by_contributor(), loaded.by_contributor()
    assert after.values.tobytes() == before.values.tobytes()
    assert after.stderr.tobytes() == before.stderr.tobytes()
    assert after.counts.tolist() == before.counts.tolist()
    np.testing.assert_allclose(after.values, _indicator() @ result.values, rtol=1e-12)


def test_other_contributors_and_msr_fall_back_to_plain_sums():
    game = OwnedGloves()
    result = semivalue(
        game, "shapley", sampler="permutation", stop=stop.MaxSamples(30), seed=1, progress=False
    )
    assert result.by_contributor(OWNERS).stderr is not None  # the same contributors
    other = ["a", "a", "b", "b", "b", "b", "b"]
    regrouped = result.by_contributor(other)
    assert regrouped.stderr is None and "players='contributors'" in regrouped.diagnostics["stderr"]
    np.testing.assert_allclose(regrouped.values, _indicator(["a", "b"], other) @ result.values)
    # MSR has no per-draw estimate to sum: no contributor error bar rather than a wrong one
    msr = banzhaf(game, stop=stop.MaxSamples(64), seed=1, progress=False)
    assert "by_contributor" not in msr.diagnostics and msr.contributor_sums is None
    assert msr.by_contributor().stderr is None


def test_continuing_with_other_contributors_is_refused(tmp_path):
    part = permutation_shapley(OwnedGloves(), stop=stop.MaxSamples(8), seed=2, progress=False)
    renamed = OwnedGloves(["x"] * 7)
    with pytest.raises(oa.ValidationError, match="different contributors"):
        permutation_shapley(renamed, stop=stop.MaxSamples(16), continue_from=part, progress=False)


def test_model_utility_over_points_reports_contributor_stderr():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=16) > 0).astype(int)
    owners = np.array(["ann", "bob", "cy", "dee"] * 4, dtype=object)
    data = oa.Dataset(X, y, contributors=owners)
    train, valid = data.subset(np.arange(10)), data.subset(np.arange(10, 16))
    game = oa.ModelUtility(KNeighborsClassifier(3), train, valid, scorer="accuracy")
    result = permutation_shapley(game, stop=stop.MaxSamples(12), seed=0, progress=False)
    grouped = result.by_contributor()
    ids = list(dict.fromkeys(train.contributors.tolist()))
    assert grouped.names == ids and np.isfinite(grouped.stderr).all()
    codes = np.array([ids.index(c) for c in train.contributors])
    np.testing.assert_allclose(
        grouped.values, np.bincount(codes, weights=result.values), rtol=1e-12, atol=1e-15
    )


def test_contributor_sums_field_round_trips_bit_for_bit_and_stays_out_of_the_hash(tmp_path):
    result = permutation_shapley(OwnedGloves(), stop=stop.MaxSamples(40), seed=5, progress=False)
    sums = result.contributor_sums
    assert isinstance(sums, oa.result.ContributorSums)
    np.testing.assert_allclose(sums.values, _indicator() @ result.values, rtol=1e-12)
    path = result.save(tmp_path / "a.json")
    loaded = oa.Attribution.load(path)
    assert loaded.contributor_sums.stderr.tobytes() == sums.stderr.tobytes()
    assert loaded.contributor_sums.counts.tolist() == sums.counts.tolist()
    again = loaded.save(tmp_path / "b.json")
    assert again.read_bytes() == path.read_bytes()
    assert loaded.result_hash() == result.result_hash()
    # the hash covers the reproducible core only: dropping the by-product keeps it
    data = result.to_dict()
    data["contributor_sums"] = None
    assert oa.Attribution.from_dict(data).result_hash() == result.result_hash()


def test_files_written_with_the_old_diagnostics_key_still_load(tmp_path):
    result = permutation_shapley(OwnedGloves(), stop=stop.MaxSamples(40), seed=5, progress=False)
    old = result.to_dict()
    block = old.pop("contributor_sums")
    old["diagnostics"] = {**old["diagnostics"], "by_contributor": block}
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = oa.Attribution.load(tmp_path / "old.json")
    assert "by_contributor" not in loaded.diagnostics
    assert loaded.by_contributor().stderr.tobytes() == result.by_contributor().stderr.tobytes()
    assert loaded.result_hash() == result.result_hash()
