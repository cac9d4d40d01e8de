"""Provenance: first-registrant ownership of rows, evidence, and valuation on owned data."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openattrib as oa
from openattrib.datasets import DATA_DIR
from openattrib.errors import ValidationError
from openattrib.ledger import Ledger
from openattrib.rewards import provenance


def register_all(led, dataset, order=None):
    groups = dataset.groups()
    for name in order or list(groups):
        led.append_contribution(name, dataset.subset(groups[name]))


@pytest.fixture(scope="module")
def demo_provenance(tmp_path_factory):
    train, valid = oa.datasets.load_demo()
    truth = json.loads((DATA_DIR / "demo_truth.json").read_text())["contributors"]
    with Ledger(tmp_path_factory.mktemp("prov") / "l.sqlite") as led:
        register_all(led, train, truth and list(truth))  # the data card's submission order
        return train, valid, truth, provenance(train, led)


def test_planted_demo_copies_are_all_attributed_to_their_originals(demo_provenance):
    train, _, truth, prov = demo_provenance
    planted = {
        (copy, original, kind)
        for name, kind in (("dave", "exact"), ("erin", "near"))
        for copy, original in truth[name][f"{kind}_duplicate_of"]
    }
    found = {(r.row, r.original_row, r.kind) for r in prov.copies.itertuples()}
    assert found == planted and len(planted) == 60
    assert sorted(prov.dropped) == sorted(c for c, _, _ in planted)
    assert set(prov.owner[prov.dropped]) == {"alice"}
    # nobody else's ownership changed
    untouched = np.setdiff1d(np.arange(train.n_samples), prov.dropped)
    assert (prov.owner[untouched] == train.contributors[untouched]).all()
    evidence = prov.copies.set_index("row")
    assert (evidence.loc[evidence["kind"] == "exact", "distance"] == 0).all()
    assert evidence.loc[evidence["kind"] == "near", "rms_distance"].between(0, 0.05).all()
    assert set(evidence["owner_registration"]) == {0}  # alice registered first
    assert set(evidence.loc[evidence["contributor"] == "dave", "registration"]) == {3}
    table = prov.contributors
    assert table.loc["dave", "owned"] == 0 and table.loc["erin", "owned"] == 0
    assert table.loc["alice", "owned"] == 60 and table.loc["dave", "copied_from"] == "alice: 30"
    pairs = prov.who_copied_whom()
    assert set(zip(pairs["copier"], pairs["owner"], pairs["rows"], strict=True)) == {
        ("dave", "alice", 30),
        ("erin", "alice", 30),
    }


def test_no_false_owner_changes_on_a_clean_dataset(tmp_path):
    from sklearn.datasets import load_wine

    wine = load_wine()
    ds = oa.datasets.partition(oa.Dataset(wine.data, wine.target), 5, seed=0)
    with Ledger(tmp_path / "l.sqlite") as led:
        register_all(led, ds)
        prov = provenance(ds, led)
    assert prov.copies.empty and prov.kept.all()
    assert (prov.owner == ds.contributors).all()


def test_unregistered_rows_are_a_clear_error_or_the_submitters_own(tmp_path):
    ds = oa.Dataset([[0.0], [1.0], [2.0]], [0, 1, 0], contributors=["a", "a", "b"])
    with Ledger(tmp_path / "l.sqlite") as led:
        led.append_contribution("a", ds.subset([0, 1]))
        with pytest.raises(ValidationError, match=r"never registered.*rows \[2\].*\['b'\]"):
            provenance(ds, led)
        prov = provenance(ds, led, unregistered="own")
        assert prov.owner.tolist() == ["a", "a", "b"] and prov.registration.tolist() == [0, 0, -1]
        with pytest.raises(ValidationError, match="unregistered must be"):
            provenance(ds, led, unregistered="maybe")
    with pytest.raises(ValidationError, match="Ledger"):
        provenance(ds, "ledger.sqlite")


def test_a_copy_whose_original_is_not_in_the_data_is_credited_to_the_original(tmp_path):
    full = oa.Dataset([[0.0], [1.0], [5.0]], [0, 1, 1], contributors=["a", "a", "b"])
    with Ledger(tmp_path / "l.sqlite") as led:
        led.append_contribution("a", full.subset([0, 1]))
        copy = oa.Dataset([[1.0], [5.0]], [1, 1], contributors=["b", "b"])
        led.append_contribution("b", copy)
        prov = provenance(copy, led)
    assert prov.owner.tolist() == ["a", "b"] and prov.kept.all()
    assert prov.copies[["row", "original_row", "owner", "owner_registration"]].values.tolist() == [
        [0, -1, "a", 0]
    ]
    assert prov.owned().contributors.tolist() == ["a", "b"]


def test_valuation_on_owned_data_pays_copiers_nothing(demo_provenance):
    train, valid, _, prov = demo_provenance
    owned = prov.owned()
    assert owned.n_samples == train.n_samples - 60 and "dave" not in owned.contributor_ids
    knn = oa.knn_shapley(owned, valid, k=5, progress=False)
    points = prov.credit(knn)
    assert len(points) == train.n_samples and (points.values[prov.dropped] == 0).all()
    assert points.provenance["ownership"]["dropped_rows"] == prov.dropped
    by_owner = points.by_contributor()
    assert by_owner["alice"] == pytest.approx(knn.by_contributor(owned)["alice"])
    contributors = prov.credit(knn.by_contributor(owned))
    assert contributors["dave"] == 0 and contributors["erin"] == 0
    alloc = oa.allocate(contributors, 10**6, policy="proportional")
    assert alloc.amounts["dave"] == alloc.amounts["erin"] == 0
    with pytest.raises(ValidationError, match="owned data has"):
        prov.credit(oa.knn_shapley(train, valid, k=5, progress=False))


# ------------------------------------------------------------------ property tests
def _dataset(contents, owners):
    X = np.array([[c, c % 3] for c in contents], dtype=float)
    return oa.Dataset(X, np.array([c % 2 for c in contents]), contributors=owners)


registrations = st.lists(
    st.lists(st.integers(0, 9), min_size=1, max_size=5, unique=True), min_size=2, max_size=4
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regs=registrations, seed=st.integers(0, 2**16))
def test_provenance_is_invariant_to_row_order_and_the_earliest_registration_owns(regs, seed):
    names = [f"c{j}" for j in range(len(regs))]
    contents = [c for r in regs for c in r]
    owners = [n for n, r in zip(names, regs, strict=True) for _ in r]
    rng = np.random.default_rng(seed)
    # within each registration: a random order, both when registering and in the data set
    shuffled = [list(rng.permutation(r)) for r in regs]
    results = []
    for order in (regs, shuffled):
        ds = _dataset([c for r in order for c in r], owners)
        with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "l.sqlite") as led:
            for name, r in zip(names, order, strict=True):
                led.append_contribution(name, _dataset(r, [name] * len(r)))
            prov = provenance(ds, led, near_threshold=0)
        flat = [c for r in order for c in r]
        results.append(
            {
                (int(c), who): (owner, bool(kept))
                for c, who, owner, kept in zip(flat, owners, prov.owner, prov.kept, strict=True)
            }
        )
    assert results[0] == results[1]
    first = {}
    for name, r in zip(names, regs, strict=True):
        for c in r:
            first.setdefault(c, name)
    assert all(owner == first[c] for (c, _), (owner, _) in results[0].items())
    # each content is kept exactly once
    kept = [c for (c, _), (_, k) in results[0].items() if k]
    assert sorted(kept) == sorted(set(contents))


# ------------------------------------------------------------------ every method, both levels
@pytest.fixture(scope="module")
def copied_small(tmp_path_factory):
    ds = oa.datasets.make_classification(
        n_samples=40, n_features=3, n_informative=2, class_sep=1.5, seed=1
    )
    train, valid = oa.datasets.partition(ds, 3, seed=1).split(test_size=0.4, seed=0)
    rows = train.groups()["c0"][:4]
    copy = oa.Dataset(train.X[rows], train.y[rows], contributors=["copier"] * rows.size)
    data = oa.Dataset(
        np.vstack([train.X, copy.X]),
        np.concatenate([train.y, copy.y]),
        np.concatenate([train.contributors, copy.contributors]),
    )
    with Ledger(tmp_path_factory.mktemp("small") / "l.sqlite") as led:
        register_all(led, data)
        return data, valid, provenance(data, led)


@pytest.mark.parametrize("players", ["points", "contributors"])
def test_every_registry_method_values_owned_data(copied_small, players):
    from openattrib import methods
    from openattrib.recipe import compute

    data, valid, prov = copied_small
    copied = np.flatnonzero(data.contributors == "copier")
    assert prov.dropped == copied.tolist()
    for name in methods.names(aliases=False):
        method = methods.get(name)
        params = {"budget": 3} if method.monte_carlo else {}
        if "n_estimators" in method.defaults:
            params["n_estimators"] = 20
        recipe = {"method": name, "players": players, "params": params, "model": "logistic"}
        if players not in method.levels and players == "points":
            with pytest.raises(ValidationError):
                compute(recipe, data, valid, progress=False, ownership=prov)
            continue
        if method.kind == "game" and players == "points" and not method.monte_carlo:
            continue  # exact enumeration over 28 points is refused by design
        result = compute(recipe, data, valid, progress=False, ownership=prov)
        assert result.provenance["ownership"]["dropped_rows"] == prov.dropped, name
        assert result.provenance["recipe"]["ownership"] == prov.recipe()
        if players == "points":
            assert len(result) == data.n_samples and np.all(result.values[copied] == 0), name
        else:
            assert result["copier"] == 0, name


def test_subset_keeps_a_copy_whose_original_left_and_credits_the_original(demo_provenance):
    train, _, truth, prov = demo_provenance
    copy, original = truth["erin"]["near_duplicate_of"][0]
    other_copy, other_original = truth["dave"]["exact_duplicate_of"][0]
    rows = [r for r in range(train.n_samples) if r != original]  # erin's original is gone
    part = prov.subset(rows)
    at = rows.index(copy)
    assert part.kept[at] and part.owner[at] == "alice" and part.original[at] == -1
    assert not part.kept[rows.index(other_copy)]
    assert part.original[rows.index(other_copy)] == rows.index(other_original)
    evidence = part.copies.set_index("row").loc[at]
    assert evidence["kind"] == "near" and evidence["original_row"] == -1 and evidence["kept"]
    assert part.owned().n_samples == prov.owned().n_samples  # one original out, its copy in
    with pytest.raises(ValidationError, match="positions"):
        prov.subset([train.n_samples])
