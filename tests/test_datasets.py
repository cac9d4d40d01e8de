"""Tests for openattrib.datasets: loaders, generators, label flips, partitions, demo files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets as skd

from openattrib import datasets
from openattrib.data import Dataset
from openattrib.errors import ValidationError

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


# ---------------------------------------------------------------------------- loaders
@pytest.mark.parametrize(
    "name, sk_loader, task",
    [
        ("breast_cancer", skd.load_breast_cancer, "classification"),
        ("digits", skd.load_digits, "classification"),
        ("wine", skd.load_wine, "classification"),
        ("iris", skd.load_iris, "classification"),
        ("diabetes", skd.load_diabetes, "regression"),
    ],
)
def test_loaders_match_sklearn(name, sk_loader, task):
    bunch = sk_loader()
    for ds in (datasets.load(name), getattr(datasets, f"load_{name}")()):
        np.testing.assert_array_equal(ds.X, bunch.data)
        np.testing.assert_array_equal(ds.y, bunch.target)
        assert ds.feature_names == [str(f) for f in bunch.feature_names]
        assert ds.task == task and ds.contributors is None


def test_load_unknown_name_lists_valid_ones():
    with pytest.raises(ValidationError, match=r"unknown data set 'mnist'.*breast_cancer.*wine"):
        datasets.load("mnist")
    assert datasets.load("Breast-Cancer").n_samples == 569


# ---------------------------------------------------------------------------- generators
def test_generators_reproducible_and_seeded():
    a = datasets.make_classification(n_samples=60, n_features=5, n_informative=3, seed=3)
    b = datasets.make_classification(n_samples=60, n_features=5, n_informative=3, seed=3)
    c = datasets.make_classification(n_samples=60, n_features=5, n_informative=3, seed=4)
    assert a == b and a != c
    assert a.X.shape == (60, 5) and set(a.y.tolist()) == {0, 1}
    r = datasets.make_regression(n_samples=40, n_features=3, n_informative=2, seed=1)
    assert r.task == "regression" and r.X.shape == (40, 3)
    assert r == datasets.make_regression(n_samples=40, n_features=3, n_informative=2, seed=1)


def test_generator_bad_parameters_and_seed():
    with pytest.raises(ValidationError, match="make_classification: invalid parameters"):
        datasets.make_classification(n_features=2, n_informative=5)
    with pytest.raises(ValidationError, match="seed must be a non-negative int"):
        datasets.make_regression(seed=-1)
    with pytest.raises(ValidationError, match="seed must be a non-negative int"):
        datasets.make_regression(seed=1.5)


# ---------------------------------------------------------------------------- flip_labels
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.1, 1 / 3, 0.5, 1.0])
def test_flip_labels_exact_count_and_all_changed(fraction):
    ds = datasets.load_wine()
    noisy, flipped = datasets.flip_labels(ds, fraction, seed=7)
    expected = int(np.floor(fraction * ds.n_samples + 0.5))
    assert flipped.dtype == np.int64 and flipped.size == expected
    assert np.all(np.diff(flipped) > 0)  # sorted, distinct
    changed = np.flatnonzero(noisy.y != ds.y)
    np.testing.assert_array_equal(changed, flipped)
    assert set(noisy.y.tolist()) <= set(ds.y.tolist())
    np.testing.assert_array_equal(noisy.X, ds.X)


def test_flip_labels_reproducible_and_seed_dependent():
    ds = datasets.load_iris()
    n1, f1 = datasets.flip_labels(ds, 0.2, seed=1)
    n2, f2 = datasets.flip_labels(ds, 0.2, seed=1)
    n3, f3 = datasets.flip_labels(ds, 0.2, seed=2)
    assert n1 == n2 and np.array_equal(f1, f2)
    assert not np.array_equal(f1, f3)


def test_flip_labels_new_class_uniform_over_other_classes():
    ds = datasets.load_digits()  # 10 classes
    noisy, flipped = datasets.flip_labels(ds, 1.0, seed=0)
    assert flipped.size == ds.n_samples
    offsets = (noisy.y - ds.y) % 10
    counts = np.bincount(offsets, minlength=10)
    assert counts[0] == 0
    expected = ds.n_samples / 9
    chi2 = float(((counts[1:] - expected) ** 2 / expected).sum())
    assert chi2 < 27.9  # chi-square(8) 99.95% quantile is about 27.9


def test_flip_labels_string_labels_and_contributors_kept():
    X = np.arange(20.0).reshape(10, 2)
    ds = Dataset(X, ["cat", "dog", "cow"] * 3 + ["dog"], contributors=list("aabbccddee"))
    noisy, flipped = datasets.flip_labels(ds, 0.5, seed=0)
    assert flipped.size == 5
    assert all(noisy.y[i] != ds.y[i] for i in flipped)
    assert list(noisy.contributors) == list(ds.contributors)


def test_flip_labels_errors():
    with pytest.raises(ValidationError, match="classification.*regression"):
        datasets.flip_labels(datasets.load_diabetes(), 0.1)
    with pytest.raises(ValidationError, match="at least 2 classes"):
        datasets.flip_labels(Dataset(np.zeros((3, 1)), [1, 1, 1]), 0.1)
    for bad in (-0.1, 1.5, "0.1"):
        with pytest.raises(ValidationError, match="fraction"):
            datasets.flip_labels(datasets.load_iris(), bad)


# ---------------------------------------------------------------------------- partition
def check_partition(ds, k, prefix="c"):
    assert ds.contributors is not None and len(ds.contributors) == ds.n_samples
    assert sorted(ds.contributor_ids) == sorted(f"{prefix}{i}" for i in range(k))
    groups = ds.groups()
    rows = np.sort(np.concatenate(list(groups.values())))
    np.testing.assert_array_equal(rows, np.arange(ds.n_samples))  # every row exactly once
    assert min(len(g) for g in groups.values()) >= 1
    return {cid: len(g) for cid, g in groups.items()}


def test_partition_equal_keeps_rows_and_balances():
    base = datasets.load_iris()
    ds = datasets.partition(base, 7, seed=0)
    sizes = check_partition(ds, 7)
    assert max(sizes.values()) - min(sizes.values()) <= 1
    np.testing.assert_array_equal(ds.X, base.X)
    np.testing.assert_array_equal(ds.y, base.y)
    assert ds == datasets.partition(base, 7, seed=0)
    assert ds != datasets.partition(base, 7, seed=1)


def test_partition_dirichlet_and_explicit_sizes():
    base = datasets.load_wine()
    sizes = check_partition(datasets.partition(base, 10, sizes="dirichlet", alpha=0.2, seed=3), 10)
    assert sum(sizes.values()) == base.n_samples
    assert max(sizes.values()) > 2 * min(sizes.values())  # small alpha gives unequal sizes
    explicit = datasets.partition(base, 3, sizes=[100, 70, 8], prefix="p", seed=0)
    assert check_partition(explicit, 3, prefix="p") == {"p0": 100, "p1": 70, "p2": 8}


def test_partition_by_label():
    base = datasets.load_iris()  # 3 classes of 50
    ds = datasets.partition(base, 3, by_label=True, seed=0)
    check_partition(ds, 3)
    for rows in ds.groups().values():
        assert np.unique(base.y[rows]).size == 1  # one class per contributor
    skewed = datasets.partition(base, 30, sizes="dirichlet", by_label=True, alpha=0.05, seed=0)
    check_partition(skewed, 30)
    n_classes = [np.unique(base.y[rows]).size for rows in skewed.groups().values()]
    assert np.mean(n_classes) < 2.0
    tight = datasets.partition(
        base.subset(np.arange(0, 150, 5)), 25, sizes="dirichlet", by_label=True, alpha=0.1, seed=4
    )
    check_partition(tight, 25)


def test_partition_errors():
    ds = Dataset(np.zeros((5, 1)), [0, 1, 0, 1, 0])
    with pytest.raises(ValidationError, match=r"n_contributors=6 is invalid.*5 rows"):
        datasets.partition(ds, 6)
    with pytest.raises(ValidationError, match=r"n_contributors=0"):
        datasets.partition(ds, 0)
    with pytest.raises(ValidationError, match="sizes must be 2 positive ints summing to"):
        datasets.partition(ds, 2, sizes=[4, 4])
    with pytest.raises(ValidationError, match="sizes='uneven' is not understood"):
        datasets.partition(ds, 2, sizes="uneven")
    with pytest.raises(ValidationError, match="alpha must be a positive"):
        datasets.partition(ds, 2, sizes="dirichlet", alpha=0)
    with pytest.raises(ValidationError, match="needs class labels"):
        datasets.partition(datasets.load_diabetes(), 3, sizes="dirichlet", by_label=True)


# ---------------------------------------------------------------------------- demo
def test_load_demo_matches_truth_file():
    train, valid = datasets.load_demo()
    truth = json.loads((DATA / "demo_truth.json").read_text())
    people = truth["contributors"]
    assert train.contributor_ids == list(people)
    assert (
        train.n_samples == truth["n_train_rows"] and valid.n_samples == truth["n_validation_rows"]
    )
    assert valid.contributors is None and train.feature_names == truth["features"]
    assert train.feature_names == valid.feature_names
    groups = train.groups()
    for name, info in people.items():
        first, last = info["rows"]
        np.testing.assert_array_equal(groups[name], np.arange(first, last + 1))

    # independent oracle: the source data set and the recorded source rows
    bunch = skd.load_breast_cancer()
    source_y = (bunch.target == 0).astype(int)
    for name, info in people.items():
        if not info["source_rows"]:
            continue
        first, _ = info["rows"]
        flipped = set(info["flipped_label_rows"])
        for offset, src in enumerate(info["source_rows"]):
            row = first + offset
            assert (train.y[row] != source_y[src]) == (row in flipped), (name, row)
    assert len(people["carol"]["flipped_label_rows"]) == 20  # 40% of 50
    assert all(source_y[src] == 1 for src in people["frank"]["source_rows"])
    assert not set(truth["validation_source_rows"]) & {
        s for info in people.values() for s in info["source_rows"]
    }

    for copy_row, original in people["dave"]["exact_duplicate_of"]:
        np.testing.assert_array_equal(train.X[copy_row], train.X[original])
        assert train.y[copy_row] == train.y[original]
        assert train.contributors[original] == "alice"
    near = people["erin"]["near_duplicate_of"]
    diffs = np.array([np.abs(train.X[c] - train.X[o]).max() for c, o in near])
    assert len(near) == 30 and diffs.max() < 0.15 and diffs.min() > 0
    # the planted exact copies are the only exact duplicate rows in the file
    rows = {}
    for i, row in enumerate(map(tuple, train.X)):
        rows.setdefault(row, []).append(i)
    dup_pairs = sorted(sorted(v) for v in rows.values() if len(v) > 1)
    assert dup_pairs == sorted(sorted([o, c]) for c, o in people["dave"]["exact_duplicate_of"])


def test_load_demo_missing_folder_says_where_it_looked(tmp_path):
    with pytest.raises(ValidationError, match=r"not found: looked for .*demo_contributors\.csv"):
        datasets.load_demo(tmp_path)


@pytest.mark.slow
def test_demo_files_regenerate_byte_identical(tmp_path):
    subprocess.run(
        [sys.executable, str(DATA / "make_demo_data.py"), "--out-dir", str(tmp_path)],
        check=True,
        cwd=tmp_path,
    )
    for name in ("demo_contributors.csv", "demo_validation.csv", "demo_truth.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
