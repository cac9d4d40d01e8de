"""Tests for openattrib.data.Dataset: validation messages, content hash oracle, split, subset."""

from __future__ import annotations

import hashlib
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
from conftest import random_arrays

from openattrib.data import HASH_HEADER, Dataset
from openattrib.errors import UnsupportedError, ValidationError


# ---------------------------------------------------------------------------- construction
def test_basic_properties_and_read_only():
    X, y, ids = random_arrays()
    ds = Dataset(X, y, contributors=ids)
    assert ds.X.dtype == np.float64 and ds.X.flags.c_contiguous
    assert ds.n_samples == 12 and ds.n_features == 3 and len(ds) == 12
    assert ds.feature_names == ["x0", "x1", "x2"]
    assert ds.target_name == "target"
    assert ds.contributors.dtype == object
    assert all(isinstance(c, str) for c in ds.contributors)
    assert ds.task == "classification"
    np.testing.assert_array_equal(ds.classes, [0, 1])
    for arr in (ds.X, ds.y, ds.contributors):
        with pytest.raises(ValueError):
            arr[0] = arr[1]
    with pytest.raises(AttributeError):
        ds.foo = 1
    X[0, 0] = 123.0  # copy=True: the caller's array is independent
    assert ds.X[0, 0] != 123.0


def test_copy_false_does_not_freeze_caller_array():
    X, y, _ = random_arrays()
    ds = Dataset(X, y, copy=False)
    assert np.shares_memory(ds.X, X)
    assert X.flags.writeable


def test_contributor_ids_order_of_first_appearance_and_groups():
    X = np.zeros((5, 1))
    ds = Dataset(X, [0, 1, 0, 1, 0], contributors=["zed", "amy", "zed", 7, "amy"])
    assert ds.contributor_ids == ["zed", "amy", "7"]
    groups = ds.groups()
    assert list(groups) == ["zed", "amy", "7"]
    np.testing.assert_array_equal(groups["zed"], [0, 2])
    np.testing.assert_array_equal(groups["amy"], [1, 4])
    assert groups["7"].dtype == np.int64


def test_groups_without_contributors_explains_fix():
    X, y, _ = random_arrays(contributors=False)
    with pytest.raises(ValidationError, match="no contributors.*partition"):
        Dataset(X, y).groups()


def test_task_inference():
    X = np.zeros((4, 1))
    assert Dataset(X, [0.5, 1.0, 2.0, 3.0]).task == "regression"
    assert Dataset(X, ["a", "b", "a", "b"]).task == "classification"
    assert Dataset(X, [True, False, True, False]).task == "classification"
    assert Dataset(X, np.array([1, 2, 3, 4], dtype=object)).y.dtype.kind == "i"


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "X, pattern",
    [
        (np.zeros(5), r"2-D.*\(5,\).*reshape"),
        (np.zeros((2, 2, 2)), r"2-D.*\(2, 2, 2\)"),
        (np.zeros((0, 3)), r"empty.*\(0, 3\)"),
        (np.zeros((3, 0)), r"empty.*\(3, 0\)"),
    ],
)
def test_bad_shapes(X, pattern):
    with pytest.raises(ValidationError, match=pattern):
        Dataset(X, np.zeros(len(X)) if X.ndim else [0])


def test_nan_and_inf_name_columns_and_first_row():
    X = np.zeros((6, 3))
    X[4, 1] = np.nan
    X[2, 2] = np.inf
    with pytest.raises(ValidationError) as info:
        Dataset(X, np.zeros(6), feature_names=["a", "b", "c"])
    message = str(info.value)
    assert "NaN" in message and "infinite" in message
    assert "'b'" in message and "'c'" in message and "'a'" not in message
    assert "row 2" in message


def test_non_numeric_columns_named():
    df = pd.DataFrame({"num": [1.0, 2.0], "city": ["x", "y"], "flag": [True, False]})
    with pytest.raises(ValidationError, match=r"non-numeric.*'city'.*get_dummies"):
        Dataset(df, [0, 1])
    obj = np.array([[1.0, "a"], [2.0, "b"]], dtype=object)
    with pytest.raises(ValidationError, match=r"non-numeric.*'x1'") as info:
        Dataset(obj, [0, 1])
    assert "'x0'" not in str(info.value)
    with pytest.raises(ValidationError, match="non-numeric"):
        Dataset(np.array([["1", "2"]]), [0])


def test_object_numeric_array_with_none_is_missing():
    obj = np.array([[1.0, None], [2.0, 3]], dtype=object)
    with pytest.raises(ValidationError, match=r"NaN.*'x1'.*row 0"):
        Dataset(obj, [0, 1])


def test_ragged_and_sparse_inputs():
    with pytest.raises(ValidationError, match="same number of features"):
        Dataset([[1.0, 2.0], [3.0]], [0, 1])
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(UnsupportedError, match="toarray"):
        Dataset(scipy_sparse.csr_matrix(np.eye(2)), [0, 1])


def test_length_mismatch_reports_all_three_lengths():
    with pytest.raises(ValidationError, match=r"X has 4 rows, y has 3 entries, contributors has 5"):
        Dataset(np.zeros((4, 1)), [0, 1, 0], contributors=list("abcde"))
    with pytest.raises(ValidationError, match=r"X has 4 rows, y has 3 entries"):
        Dataset(np.zeros((4, 1)), [0, 1, 0])


@pytest.mark.parametrize(
    "y, pattern",
    [
        ([0.0, np.nan, 1.0], r"missing.*row 1"),
        ([0.0, 1.0, np.inf], r"infinite.*row 2"),
        (np.array(["a", None, "b"], dtype=object), r"missing.*row 1"),
        (pd.Series([1, None, 2], dtype="Int64"), r"missing.*row 1"),
        (np.array([1, "a", 2], dtype=object), r"mixes"),
        (np.zeros((3, 1)), r"1-D.*\(3, 1\).*ravel"),
    ],
)
def test_bad_labels(y, pattern):
    with pytest.raises(ValidationError, match=pattern):
        Dataset(np.zeros((3, 1)), y)


def test_nullable_label_dtype_without_missing_is_numeric():
    ds = Dataset(np.zeros((3, 1)), pd.Series([1, 0, 1], dtype="Int64"))
    assert ds.y.dtype == np.int64


@pytest.mark.parametrize("bad", [None, np.nan, "", "   ", pd.NA])
def test_missing_contributor_ids(bad):
    ids = ["a", "b", bad, "c"]
    with pytest.raises(ValidationError, match=r"missing or empty id at row 2"):
        Dataset(np.zeros((4, 1)), [0, 1, 0, 1], contributors=ids)


def test_feature_name_errors():
    with pytest.raises(ValidationError, match=r"duplicate name\(s\) 'a'"):
        Dataset(np.zeros((2, 3)), [0, 1], feature_names=["a", "b", "a"])
    with pytest.raises(ValidationError, match=r"2 names but X has 3 feature columns"):
        Dataset(np.zeros((2, 3)), [0, 1], feature_names=["a", "b"])
    with pytest.raises(ValidationError, match="target_name 'a' is also a feature"):
        Dataset(np.zeros((2, 1)), [0, 1], feature_names=["a"], target_name="a")


# ---------------------------------------------------------------------------- from_frame / csv
def frame():
    return pd.DataFrame(
        {
            "age": [30.0, 40.0, 50.0, 60.0],
            "income": [1, 2, 3, 4],
            "label": [0, 1, 0, 1],
            "owner": ["a", "a", "b", "b"],
        }
    )


def test_from_frame_defaults_and_selected_features():
    ds = Dataset.from_frame(frame(), target="label", contributor="owner")
    assert ds.feature_names == ["age", "income"]
    assert ds.target_name == "label"
    assert ds.contributor_ids == ["a", "b"]
    only = Dataset.from_frame(frame(), target="label", features=["income"])
    assert only.feature_names == ["income"] and only.contributors is None


def test_from_frame_errors_name_columns():
    df = frame()
    with pytest.raises(ValidationError, match=r"target column 'y' is not.*'age', 'income'"):
        Dataset.from_frame(df, target="y")
    with pytest.raises(ValidationError, match=r"contributor column 'who' is not.*'owner'"):
        Dataset.from_frame(df, target="label", contributor="who")
    with pytest.raises(ValidationError, match=r"non-numeric.*'owner'.*get_dummies"):
        Dataset.from_frame(df, target="label")
    with pytest.raises(ValidationError, match=r"'nope'.*not in the DataFrame"):
        Dataset.from_frame(df, target="label", features=["nope"])
    with pytest.raises(ValidationError, match="both a feature and the target"):
        Dataset.from_frame(df, target="label", features=["age", "label"])


def test_from_csv_roundtrip_and_missing_file(tmp_path):
    path = tmp_path / "d.csv"
    frame().to_csv(path, index=False)
    ds = Dataset.from_csv(path, target="label", contributor="owner")
    assert ds == Dataset.from_frame(frame(), target="label", contributor="owner")
    missing = tmp_path / "absent.csv"
    with pytest.raises(ValidationError, match=r"not found.*absent\.csv"):
        Dataset.from_csv(missing, target="label")


def test_to_frame_roundtrip():
    ds = Dataset.from_frame(frame(), target="label", contributor="owner")
    out = ds.to_frame()
    assert list(out.columns) == ["age", "income", "label", "contributor"]
    back = Dataset.from_frame(out, target="label", contributor="contributor")
    assert back == ds


# ---------------------------------------------------------------------------- content hash
def oracle_hash(X, y, contributors, names, target):
    """Independent implementation of the documented encoding."""

    def lp(s):
        raw = s.encode("utf-8")
        return len(raw).to_bytes(8, "little") + raw

    h = hashlib.sha256()
    h.update(b"openattrib-dataset-v1")
    n, d = len(X), len(X[0])
    h.update(n.to_bytes(8, "little") + d.to_bytes(8, "little"))
    for row in X:
        for v in row:
            h.update(struct.pack("<d", float(v) + 0.0))
    if all(isinstance(v, (int, float)) for v in y):
        h.update(b"N" + b"".join(struct.pack("<d", float(v)) for v in y))
    else:
        h.update(b"S" + b"".join(lp(v) for v in y))
    if contributors is None:
        h.update(b"\x00")
    else:
        h.update(b"\x01" + b"".join(lp(str(c)) for c in contributors))
    for name in names:
        h.update(lp(name))
    h.update(lp(target))
    return h.hexdigest()


def test_content_hash_matches_independent_encoding():
    assert HASH_HEADER == b"openattrib-dataset-v1"
    X = [[0.5, -1.25], [3.0, -0.0], [1e-300, 7.0]]
    for y, ids in [([0, 1, 1], ["a", "bé", "a"]), (["cat", "dög", "cat"], None)]:
        ds = Dataset(X, y, contributors=ids, feature_names=["f", "g"], target_name="lbl")
        assert ds.content_hash() == oracle_hash(X, y, ids, ["f", "g"], "lbl")
        assert len(ds.content_hash()) == 64


def test_content_hash_changes_with_any_single_change():
    X, y, ids = random_arrays()
    base = Dataset(X, y, contributors=ids)
    X2 = X.copy()
    X2[5, 1] = np.nextafter(X2[5, 1], np.inf)
    y2 = y.copy()
    y2[3] = 1 - y2[3]
    ids2 = list(ids)
    ids2[7] = "other"
    variants = [
        Dataset(X2, y, contributors=ids),
        Dataset(X, y2, contributors=ids),
        Dataset(X, y, contributors=ids2),
        Dataset(X, y, contributors=None),
        Dataset(X, y, contributors=ids, feature_names=["x0", "x1", "z"]),
        Dataset(X, y, contributors=ids, target_name="label"),
        Dataset(X, y.astype(str), contributors=ids),
    ]
    hashes = {base.content_hash()} | {v.content_hash() for v in variants}
    assert len(hashes) == len(variants) + 1


def test_content_hash_invariant_to_container_and_dtype():
    X, y, ids = random_arrays()
    base = Dataset(X, y, contributors=ids)
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    assert Dataset(df, pd.Series(y), contributors=pd.Series(ids)).content_hash() == (
        base.content_hash()
    )
    assert Dataset(np.asfortranarray(X), y.astype(np.int32), ids) == base
    X32 = X.astype(np.float32)
    assert Dataset(X32, y, ids) == Dataset(X32.astype(np.float64), y, ids)
    big_endian = X.astype(">f8")
    assert Dataset(big_endian, y, ids) == base
    labels = np.array(["a", "b"] * 6)
    assert Dataset(X, labels) == Dataset(X, labels.astype(object))
    assert Dataset(X, labels) == Dataset(X, pd.Series(labels, dtype="category"))


def test_pickle_roundtrip_keeps_hash_and_read_only():
    X, y, ids = random_arrays()
    ds = Dataset(X, y, contributors=ids)
    back = pickle.loads(pickle.dumps(ds))
    assert back.content_hash() == ds.content_hash()
    assert not back.X.flags.writeable


def test_repr_and_html():
    X, y, ids = random_arrays()
    ds = Dataset(X, y, contributors=ids)
    text = repr(ds)
    assert "n_samples=12" in text and "n_features=3" in text and "n_contributors=3" in text
    assert ds.content_hash()[:12] in text
    assert "<table>" in ds._repr_html_() and ds.content_hash()[:12] in ds._repr_html_()


# ---------------------------------------------------------------------------- subset / with_*
def test_subset_indices_mask_and_errors():
    X, y, ids = random_arrays()
    ds = Dataset(X, y, contributors=ids)
    sub = ds.subset([3, 1, 3])
    np.testing.assert_array_equal(sub.X, X[[3, 1, 3]])
    assert list(sub.contributors) == [ids[3], ids[1], ids[3]]
    mask = np.zeros(12, dtype=bool)
    mask[[2, 5]] = True
    np.testing.assert_array_equal(ds.subset(mask).y, y[[2, 5]])
    with pytest.raises(ValidationError, match=r"index 12 is out of range.*12 rows"):
        ds.subset([0, 12])
    with pytest.raises(ValidationError, match=r"index -1 is out of range"):
        ds.subset([-1])
    with pytest.raises(ValidationError, match=r"mask has shape \(3,\)"):
        ds.subset(np.ones(3, dtype=bool))
    with pytest.raises(ValidationError, match="empty"):
        ds.subset([])
    with pytest.raises(ValidationError, match="integers or a boolean mask"):
        ds.subset([0.5])


def test_with_contributors_and_labels():
    X, y, ids = random_arrays()
    ds = Dataset(X, y)
    withc = ds.with_contributors(ids)
    assert withc.contributor_ids == ["c0", "c1", "c2"] and ds.contributors is None
    relabelled = withc.with_labels(1 - y)
    np.testing.assert_array_equal(relabelled.y, 1 - y)
    assert relabelled.contributor_ids == withc.contributor_ids
    with pytest.raises(ValidationError, match="y has 3 entries"):
        ds.with_labels([0, 1, 0])


# ---------------------------------------------------------------------------- split
def test_split_stratified_proportions_and_reproducible():
    rng = np.random.default_rng(1)
    n = 200
    y = np.array([0] * 150 + [1] * 40 + [2] * 10)
    ids = [f"c{i % 7}" for i in range(n)]
    ds = Dataset(rng.normal(size=(n, 2)), y, contributors=ids)
    train, valid = ds.split(test_size=0.3, seed=5)
    assert len(valid) == 60 and len(train) == 140
    np.testing.assert_array_equal(np.bincount(valid.y), [45, 12, 3])
    np.testing.assert_array_equal(np.bincount(train.y), [105, 28, 7])
    again_train, again_valid = ds.split(test_size=0.3, seed=5)
    assert again_train == train and again_valid == valid
    other_train, _ = ds.split(test_size=0.3, seed=6)
    assert other_train != train
    # contributors follow their rows: each row of the parts is a row of the original
    lookup = {
        tuple(row): (lab, cid) for row, lab, cid in zip(ds.X, ds.y, ds.contributors, strict=True)
    }
    for part in (train, valid):
        for row, lab, cid in zip(part.X, part.y, part.contributors, strict=True):
            assert lookup[tuple(row)] == (lab, cid)
    assert {tuple(r) for r in train.X}.isdisjoint({tuple(r) for r in valid.X})


def test_split_falls_back_when_a_class_is_singleton_and_for_regression():
    X = np.arange(20.0).reshape(10, 2)
    train, valid = Dataset(X, [0] * 9 + [1]).split(test_size=3, seed=0)
    assert len(train) == 7 and len(valid) == 3
    train, valid = Dataset(X, np.linspace(0, 1, 10)).split(test_size=0.5, seed=0)
    assert len(train) == 5 and len(valid) == 5


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 0, 10, "0.3", True])
def test_split_validates_test_size(test_size):
    ds = Dataset(np.zeros((10, 1)), [0, 1] * 5)
    with pytest.raises(ValidationError, match="test_size"):
        ds.split(test_size=test_size)
