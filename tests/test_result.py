"""Attribution: persistence, tables, aggregation by contributor, display."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import openattrib as oa

matplotlib.use("Agg")


def _example(with_stderr: bool = True) -> oa.Attribution:
    rng = np.random.default_rng(3)
    values = rng.normal(size=7)
    values[2] = 1 / 3  # a value whose decimal form is not short
    return oa.Attribution(
        values,
        [str(i) for i in range(7)],
        stderr=rng.random(7) if with_stderr else None,
        counts=rng.integers(1, 100, 7) if with_stderr else None,
        method="permutation_shapley",
        parameters={"truncation": 0.01},
        seed=4,
        provenance={"dataset_hash": "ab" * 32, "created": "2026-01-01T00:00:00+00:00"},
        players="points",
        contributors=["a", "b", "a", "c", "b", "a", "c"],
        diagnostics={"stopped_by": "MaxSamples(10)"},
    )


def test_save_load_round_trips_exactly(tmp_path):
    original = _example()
    original.stderr[4] = np.nan  # e.g. a player sampled once
    path = original.save(tmp_path / "sub" / "run.json")
    loaded = oa.Attribution.load(path)
    np.testing.assert_array_equal(loaded.values, original.values)  # bit-exact floats
    np.testing.assert_array_equal(loaded.stderr, original.stderr)
    np.testing.assert_array_equal(loaded.counts, original.counts)
    assert loaded.to_dict() == original.to_dict()
    assert loaded.result_hash() == original.result_hash()
    # canonical JSON: sorted keys, no NaN token
    text = path.read_text()
    assert "NaN" not in text
    assert text == json.dumps(
        json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert not list(tmp_path.glob("sub/.*tmp")), "no temporary file left behind"


def test_result_hash_ignores_wall_clock_but_not_values():
    a, b = _example(), _example()
    b.provenance["created"] = "2030-01-01T00:00:00+00:00"
    b.diagnostics["elapsed_seconds"] = 12.0
    assert a.result_hash() == b.result_hash()
    b.values[0] = np.nextafter(b.values[0], 1.0)
    assert a.result_hash() != b.result_hash()


def test_by_contributor_sums_points_and_says_so():
    point = _example()
    frame = pd.DataFrame({"c": point.contributors, "v": point.values})
    expected = frame.groupby("c", sort=False).sum()
    grouped = point.by_contributor()
    assert grouped.level == "contributors"
    assert "sum over points by contributor" in grouped.method
    assert grouped.names == ["a", "b", "c"]  # order of first appearance
    np.testing.assert_allclose(grouped.values, expected["v"].to_numpy())
    # correlated point estimates: no error bar is better than a wrong one
    assert grouped.stderr is None and "players='contributors'" in grouped.diagnostics["stderr"]
    assert grouped.diagnostics["n_points"] == {"a": 3, "b": 2, "c": 2}


def test_by_contributor_needs_contributors():
    plain = oa.Attribution([1.0, 2.0], ["x", "y"], players="points")
    with pytest.raises(oa.ValidationError, match="no contributor per point"):
        plain.by_contributor()
    assert plain.by_contributor(["k", "k"]).values.tolist() == [3.0]


def test_frame_ranking_and_lookup():
    result = _example()
    frame = result.to_frame()
    assert list(frame.columns) == [
        "contributor",
        "value",
        "stderr",
        "ci_low",
        "ci_high",
        "counts",
        "rank",
    ]
    np.testing.assert_allclose(frame["ci_high"] - frame["ci_low"], 2 * 1.96 * result.stderr)
    ranking = result.ranking()
    assert [result[name] for name in ranking] == sorted(result.values, reverse=True)
    assert frame.loc[ranking[0], "rank"] == 1
    with pytest.raises(KeyError, match="no player named 'zz'"):
        result["zz"]


def test_validation_messages():
    with pytest.raises(oa.ValidationError, match="'a' appears twice"):
        oa.Attribution([1, 2], ["a", "a"])
    with pytest.raises(oa.ValidationError, match="values has length 3 but there are 2 names"):
        oa.Attribution([1, 2, 3], ["a", "b"])
    with pytest.raises(oa.ValidationError, match="not an openattrib attribution"):
        oa.Attribution.from_dict({"format": "other"})


def test_load_errors(tmp_path):
    with pytest.raises(oa.ValidationError, match="not found"):
        oa.Attribution.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(oa.ValidationError, match="not valid JSON"):
        oa.Attribution.load(bad)


def test_plot_and_html():
    result = _example()
    ax = result.plot()
    assert len(ax.patches) == 7
    assert ax.get_xlabel() == "value (95% interval)"
    html = result._repr_html_()
    assert "permutation_shapley" in html and "<table" in html
    no_err = _example(with_stderr=False).plot()
    assert no_err.get_xlabel() == "value"


# ------------------------------------------------------------------------------- reindex
def test_reindex_moves_every_per_player_array_together():
    original = _example()
    names = ["3", "0", "6", "1", "5", "2", "4"]
    moved = original.reindex(names)
    assert moved.names == names
    for j, name in enumerate(names):
        i = original.names.index(name)  # independent lookup, one player at a time
        assert moved.values[j] == original.values[i]
        assert moved.stderr[j] == original.stderr[i]
        assert moved.counts[j] == original.counts[i]
        assert moved.contributors[j] == original.contributors[i]
        assert moved[name] == original[name]
    assert moved.seed == original.seed and moved.parameters == original.parameters
    back = moved.reindex(original.names)
    assert back.to_dict() == original.to_dict()
    assert back.result_hash() == original.result_hash()
    # the sum per contributor does not depend on the order of the points
    np.testing.assert_allclose(
        moved.by_contributor().reindex(["a", "b", "c"]).values,
        original.by_contributor().reindex(["a", "b", "c"]).values,
        rtol=1e-15,
    )


@pytest.mark.parametrize(
    "names,message",
    [
        (["0", "1", "2", "3", "4", "5", "x"], "'x' is not a player"),
        (["0", "1", "2"], "every player exactly once; 3 names given for 7 players"),
        (["0", "0", "1", "2", "3", "4", "5"], "missing '6'"),
    ],
)
def test_reindex_refuses_anything_but_a_permutation(names, message):
    with pytest.raises(oa.ValidationError, match=message):
        _example().reindex(names)


# ------------------------------------------------------------------------------- vocabulary
def test_players_is_the_canonical_keyword_and_level_still_works_with_a_warning():
    new = oa.Attribution([1.0], ["a"], players="contributors")
    assert new.level == "contributors" and new.players == "contributors"
    with pytest.warns(DeprecationWarning, match="level= is deprecated.*use players="):
        old = oa.Attribution([1.0], ["a"], level="contributors")
    assert old.to_dict() == new.to_dict()
    with pytest.raises(oa.ValidationError, match="players must be one of"):
        oa.Attribution([1.0], ["a"], players="groups")
    with pytest.raises(oa.ValidationError, match="contributor_sums must be a ContributorSums"):
        oa.Attribution([1.0], ["a"], contributor_sums={"names": ["a"]})
