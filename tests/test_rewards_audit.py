"""Tests of the gaming check: the duplicate audit (replication: test_replication.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

import openattrib as oa
from openattrib.datasets import DATA_DIR
from openattrib.errors import ValidationError
from openattrib.rewards import audit


@pytest.fixture(scope="module")
def demo():
    train, valid = oa.datasets.load_demo()
    truth = json.loads((DATA_DIR / "demo_truth.json").read_text())["contributors"]
    return train, valid, truth


@pytest.fixture(scope="module")
def demo_report(demo):
    return audit(demo[0])


def planted(truth, key):
    return {tuple(pair) for c in truth.values() for pair in c[key]}


# ------------------------------------------------------------------------------- audit
def test_audit_finds_every_planted_duplicate_in_the_demo(demo, demo_report):
    _, _, truth = demo
    exact, near = planted(truth, "exact_duplicate_of"), planted(truth, "near_duplicate_of")
    assert exact and near
    assert demo_report.pairs("exact") == exact  # all of them, and nothing else
    assert demo_report.pairs("near") == near
    assert demo_report.flagged == ["dave", "erin"]
    table = demo_report.contributors
    assert table.loc["dave", "exact_copies"] == 30 and table.loc["erin", "near_copies"] == 30
    assert table.loc["alice", "copied_fraction"] == 0.0
    assert set(demo_report.exact_duplicates["original_contributor"]) == {"alice"}


def test_audit_reports_nothing_in_clean_data():
    wine = oa.datasets.load_wine()
    for data in (wine, oa.datasets.partition(wine, 6, seed=1)):
        report = audit(data)
        assert report.clean and report.flagged == []
        assert report.exact_duplicates.empty and report.near_duplicates.empty


def brute_force(data, threshold, include_label=True):
    """Independent oracle: all pairs by full comparison (fine for small data)."""
    X = data.X + 0.0
    owner = data.contributors
    same_row = (X[:, None, :] == X[None, :, :]).all(axis=2)
    if include_label:
        same_row &= data.y[:, None] == data.y[None, :]
    std = X.std(axis=0)
    std[std == 0] = 1.0
    rms = squareform(pdist((X - X.mean(axis=0)) / std)) / np.sqrt(X.shape[1])
    exact, near = set(), set()
    for i in range(len(X)):
        for j in range(i):
            if same_row[i, j]:
                first = int(np.flatnonzero(same_row[i])[0])  # earliest identical row
                if first == j:
                    exact.add((i, j))
            elif rms[i, j] < threshold and owner[i] != owner[j]:
                near.add((i, j))
    return exact, near


def test_audit_matches_a_brute_force_oracle():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 5))
    y = rng.integers(0, 2, 120)
    X[100:110] = X[0:10]  # exact copies (same labels below)
    y[100:110] = y[0:10]
    X[110:115] = X[20:25] + rng.normal(0, 0.01, (5, 5))  # near copies
    X[115] = X[30]  # same features, different label: a near duplicate at distance 0
    y[115] = 1 - y[30]
    X[116, 0], X[117, 0] = 0.0, -0.0  # -0.0 and 0.0 are the same number
    X[117, 1:], y[117] = X[116, 1:], y[116]
    owners = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 20 + ["d"] * 20, dtype=object)
    data = oa.Dataset(X, y, owners)
    report = audit(data, near_threshold=0.05)
    exact, near = brute_force(data, 0.05)
    assert report.pairs("exact") == exact
    assert {(i, j) for i, j in exact if i >= 100 and j < 10} == {(100 + i, i) for i in range(10)}
    assert (117, 116) in exact
    assert report.pairs("near") == near
    assert {(110 + i, 20 + i) for i in range(5)} | {(115, 30)} <= near
    assert report.flagged == ["d"]  # rows 100-119 belong to d
    assert report.contributors.loc["d", "exact_copies"] == 10  # (117, 116) is within d


def test_audit_with_attribution_and_submission_order(demo):
    train, _, _ = demo
    values = {c: float(i) for i, c in enumerate(train.contributor_ids)}
    report = audit(
        train, values, order=["dave", "erin", "alice", "bob", "carol", "frank", "grace", "heidi"]
    )
    assert report.contributors.loc["dave", "value"] == values["dave"]
    # with dave and erin presumed first, alice becomes the copier of both
    assert report.flagged == ["alice"]
    assert report.contributors.loc["alice", "exact_copies"] == 30
    assert "Audit" in report._repr_html_()
    with pytest.raises(ValidationError, match="does not list"):
        audit(train, order=["alice"])
    with pytest.raises(ValidationError, match="near_threshold"):
        audit(train, near_threshold=-1)
    with pytest.raises(ValidationError, match="Dataset"):
        audit(train.X)
