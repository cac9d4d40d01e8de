"""Hostile and careless input: never a silently wrong answer with exit code 0.

Each class of defect is tried with several instances; every refusal is checked for its exit
code, its one-line message and for leaving no file created or changed.
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import refused, table, value_args, write_csv

import openattrib as oa
from openattrib.cli import main
from openattrib.errors import OpenAttribError, ValidationError
from openattrib.rewards import Allocation, allocate

RNG = np.random.default_rng(0)


# ------------------------------------------------------------- 1. payee identity as written
def test_contributor_ids_are_the_strings_written_in_the_file(tmp_path, capsys):
    written = ["007", "07", "7", "NA", "True", "true", "1", "1.0", "null", "N/A"]
    header, rows = table(40, written)
    path = write_csv(tmp_path / "ids.csv", header, rows)
    ds = oa.Dataset.from_csv(path, target="label", contributor="owner")
    assert ds.contributor_ids == written  # no type inference, no NA sentinel
    out = tmp_path / "run.json"
    assert main(value_args(path, out, "--valid", str(path))) == 0
    assert sorted(oa.Attribution.load(out).names) == sorted(written)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["bob", "bo\u200bb"], "invisible format character (U+200B)"),
        (["ann", "\u00e9ric", "e\u0301ric"], "normal form NFC"),
        (["bob", "\uff42\uff4f\uff42"], "look the same"),
        (["ann", "eve\x1b[31m"], "control character (U+001B)"),
        (["ann", "a\u202eb"], "invisible format character (U+202E)"),
        (["ann", "bob "], "leading or trailing white space"),
        (["ann", "bob\u00a0x"], "white space other than a plain space"),
    ],
)
def test_lookalike_and_unsafe_contributor_ids_are_refused(tmp_path, capsys, ids, message):
    header, rows = table(12, ids)
    path = write_csv(tmp_path / "ids.csv", header, rows)
    line = refused(capsys, value_args(path, tmp_path / "out.json"), message, tmp_path)
    assert "contributor column 'owner'" in line
    assert all(unicodedata.category(c)[0] != "C" for c in line)  # shown escaped
    with pytest.raises(ValidationError, match="contributor"):
        allocate(dict.fromkeys(ids, 1.0), pool=100)


def test_missing_contributor_id_names_the_users_column_and_row(tmp_path, capsys):
    header, rows = table(8)
    rows[5][3] = ""
    path = write_csv(tmp_path / "gap.csv", header, rows)
    refused(
        capsys,
        value_args(path, tmp_path / "out.json"),
        "contributor column 'owner' has a missing or empty id at row 5",
        tmp_path,
    )


# ----------------------------------------------- 2. allocations must follow from their run
@pytest.fixture()
def run_and_allocation(tmp_path):
    attr = oa.Attribution(
        [0.5, 0.3, 0.15, 0.05],
        names=["ann", "ben", "cat", "dan"],
        stderr=[0.01, 0.02, 0.01, 0.03],
        counts=[50, 50, 50, 50],
        method="tmc_shapley",
        seed=3,
        players="contributors",
        provenance={"dataset_hash": "ab" * 32},
    )
    attr.save(tmp_path / "run.json")
    alloc = allocate(attr, pool=10**6, policy="uncertainty_aware", cap="0.5")
    alloc.save(tmp_path / "alloc.json")
    return attr, alloc


def _tamper(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    out = path.with_name("bad_" + path.name)
    out.write_text(json.dumps(data))
    return out


def test_a_derivable_allocation_is_linked(tmp_path, capsys, run_and_allocation):
    led = str(tmp_path / "l.sqlite")
    args = ["ledger", "append", led, "--run", str(tmp_path / "run.json")]
    assert main([*args, "--allocation", str(tmp_path / "alloc.json")]) == 0
    assert main(["ledger", "append", led, "--allocation", str(tmp_path / "alloc.json")]) == 0
    for_run = ["--allocation", str(tmp_path / "alloc.json"), "--for-run", "0"]
    assert main(["ledger", "append", led, *for_run]) == 0
    with oa.ledger.Ledger(led, read_only=True) as ledger:
        assert ledger.kinds() == {"run": 1, "allocation": 3}


def test_allocations_that_do_not_follow_from_the_run_are_refused(
    tmp_path, capsys, run_and_allocation
):
    attr, alloc = run_and_allocation
    led = tmp_path / "l.sqlite"
    assert main(["ledger", "append", str(led), "--run", str(tmp_path / "run.json")]) == 0
    capsys.readouterr()
    # an internally consistent allocation of other values that claims the run as its source
    other = allocate({"ann": 0.1, "ben": 0.2, "cat": 0.3, "dan": 0.4}, pool=10**6)
    other_path = tmp_path / "other.json"
    other.save(other_path)
    forged = _tamper(other_path, lambda d: d.update(source=attr.result_hash()))
    # the run's own values, paid under another policy than recorded
    relabelled = allocate(attr, pool=10**6, policy="proportional", cap="0.5")
    data = relabelled.to_dict()
    data["parameters"]["cap"] = "1/3 of pool"  # not what the recorded amounts used
    (tmp_path / "relabel.json").write_text(json.dumps(data))
    for path, message in [
        (forged, "values are not the values of"),
        (tmp_path / "relabel.json", "the allocation differs from the one"),
    ]:
        argv = ["ledger", "append", str(led), "--allocation", str(path), "--for-run", "0"]
        refused(capsys, argv, message, tmp_path)
        argv = ["ledger", "append", str(tmp_path / "new.sqlite"), "--run"]
        refused(
            capsys,
            [*argv, str(tmp_path / "run.json"), "--allocation", str(path)],
            message,
            tmp_path,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(policy="fair"), "unknown policy 'fair'"),
        (lambda d: d["names"].__setitem__(1, d["names"][0]), "listed more than once"),
        (lambda d: d.update(pool=str(int(d["pool"]) + 1)), "not to the pool"),
        (lambda d: d.update(decimals=10**9), "decimals (the share grid's digits) must be an int"),
        (lambda d: d.update(decimals=2), "coarser than one base unit"),
        (lambda d: d.update(pool="9" * 200_000), "at most 100 digits"),
        (lambda d: d.update(amounts="123"), "amounts must be a list"),
        (lambda d: d["values"].__setitem__(0, "0.5"), "values[0] must be a finite number"),
        (lambda d: d["values"].__setitem__(0, None), "values[0] must be a finite number"),
        (lambda d: d.update(extra=1), "unknown field"),
    ],
)
def test_loading_a_bad_allocation_is_refused(tmp_path, capsys, run_and_allocation, change, message):
    bad = _tamper(tmp_path / "alloc.json", change)
    with pytest.raises(OpenAttribError, match=re.escape(message)):
        Allocation.load(bad)
    refused(
        capsys,
        ["ledger", "append", str(tmp_path / "l.sqlite"), "--allocation", str(bad)],
        message,
        tmp_path,
    )


# ------------------------------------------------------------- 3. the share grid's precision
def _hamilton(pool: int, values: dict[str, float]) -> dict[str, int]:
    """Independent oracle: largest remainder on the exact quotas pool * v / sum(v)."""
    total = sum(Fraction(v) for v in values.values())
    quotas = {n: pool * Fraction(v) / total for n, v in values.items()}
    amounts = {n: int(q) for n, q in quotas.items()}
    left = pool - sum(amounts.values())
    for n in sorted(quotas, key=lambda n: -(quotas[n] - amounts[n]))[:left]:
        amounts[n] += 1
    return amounts


def test_share_digits_is_the_grid_precision_and_never_coarser_than_the_pool():
    split = {"a": 0.51, "b": 0.44, "c": 0.02, "d": 0.02, "e": 0.01}
    assert allocate(split, 100).amounts == {"a": 51, "b": 44, "c": 2, "d": 2, "e": 1}
    assert sum(allocate(split, 26).amounts.values()) == 26
    for pool, digits in [(100, 0), (100, 1), (26, 1), (10**21, 18), (10**6 + 1, 6)]:
        with pytest.raises(ValidationError, match="coarser than one base unit of the pool"):
            allocate(split, pool, share_digits=digits)
    rng = np.random.default_rng(1)
    for pool in (7, 10**18, 10**21, 3 * 10**25 + 7):
        values = {f"c{i}": float(v) for i, v in enumerate(rng.uniform(0.01, 1.0, 9))}
        assert allocate(values, pool).amounts == _hamilton(pool, values)
    with pytest.warns(DeprecationWarning, match="use share_digits="):
        old = allocate(split, 100, decimals=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = allocate(split, 100, share_digits=4)
    assert old.to_dict() == new.to_dict() and new.share_digits == 4
    with pytest.warns(DeprecationWarning, match="share_digits"):
        assert new.decimals == 4


# ------------------------------------------------------------------- 4. columns by name
def test_validation_columns_are_matched_by_name(tmp_path, capsys):
    header, rows = table(30)
    data = write_csv(tmp_path / "train.csv", header, rows)
    _, valid_rows = table(16, seed=5)
    valid = write_csv(tmp_path / "valid.csv", header, valid_rows)
    order = [2, 1, 3, 0]  # label, f2, owner, f1
    reordered = write_csv(
        tmp_path / "reordered.csv",
        [header[i] for i in order],
        [[r[i] for i in order] for r in valid_rows],
    )
    assert main(value_args(data, tmp_path / "a.json", "--valid", str(valid))) == 0
    assert main(value_args(data, tmp_path / "b.json", "--valid", str(reordered))) == 0
    a, b = oa.Attribution.load(tmp_path / "a.json"), oa.Attribution.load(tmp_path / "b.json")
    np.testing.assert_array_equal(a.values, b.values)
    cases = [
        (["f1", "g2", "label"], "lacks column(s) 'f2' and has column(s) 'g2'"),
        (["f1", "label"], "lacks column(s) 'f2'"),
        (["f1", "f2", "f3", "label"], "has column(s) 'f3' that the training file does not have"),
    ]
    for columns, message in cases:
        frame = pd.DataFrame({c: RNG.normal(size=6) for c in columns})
        frame["label"] = [0, 1] * 3
        frame.to_csv(tmp_path / "v.csv", index=False)
        argv = value_args(data, tmp_path / "out.json", "--valid", str(tmp_path / "v.csv"))
        refused(capsys, argv, message, tmp_path)


@pytest.mark.parametrize("where", ["data", "valid"])
def test_duplicate_column_names_are_refused(tmp_path, capsys, where):
    header, rows = table(12)
    good = write_csv(tmp_path / "good.csv", header, rows)
    dup = write_csv(tmp_path / "dup.csv", [*header, "label"], [[*r, r[2]] for r in rows])
    argv = (
        value_args(dup, tmp_path / "o.json")
        if where == "data"
        else value_args(good, tmp_path / "o.json", "--valid", str(dup))
    )
    refused(capsys, argv, "duplicate column name(s) 'label'", tmp_path)
    frame = pd.DataFrame([[1.0, 2.0, 0]], columns=["a", "a", "label"])
    with pytest.raises(ValidationError, match="duplicate column name"):
        oa.Dataset.from_frame(frame, target="label")


# ---------------------------------------------------------- 5. results without information
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [r.__setitem__(2, 1) for r in rows], "has a single class (1)"),
        (lambda rows: [r.__setitem__(2, "yes") for r in rows], "has a single class ('yes')"),
        (lambda rows: rows[0].__setitem__(0, "1e308"), "'f1' cannot be standardised"),
        (lambda rows: rows[3].__setitem__(1, "-3e200"), "'f2' cannot be standardised"),
        (lambda rows: rows[-1].__setitem__(1, "1.7e308"), "'f2' cannot be standardised"),
    ],
)
def test_results_without_information_are_refused(tmp_path, capsys, edit, message):
    header, rows = table(20)
    edit(rows)
    path = write_csv(tmp_path / "d.csv", header, rows)
    refused(capsys, value_args(path, tmp_path / "o.json", "--valid", str(path)), message, tmp_path)


# ----------------------------------------------------------------- 8. loaded results checked
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["values"].__setitem__(0, 0.9), "integrity digest does not match"),
        (lambda d: d.update(result_hash="00" * 32), "unknown field(s) ['result_hash']"),
        (lambda d: d.update(values="[0.5, 0.3]"), "'values' must be a list of 2 numbers"),
        (lambda d: d.update(counts=[1.5, 2]), "'counts' must be a list of 2 non-negative"),
        (lambda d: d.update(counts=[True, 2]), "'counts' must be a list of 2 non-negative"),
        (lambda d: d.update(seed=1.5), "'seed' must be an integer"),
        (lambda d: d.update(names="ab"), "'names' must be a list of strings"),
        (lambda d: d.update(level="galaxies"), "'level' must be one of"),
        (lambda d: d.update(provenance=[]), "'provenance' must be an object"),
    ],
)
def test_attribution_load_checks_schema_and_integrity(tmp_path, change, message):
    attr = oa.Attribution([0.5, 0.25], names=["a", "b"], counts=[3, 4], method="m", seed=1)
    attr.save(tmp_path / "r.json")
    bad = _tamper(tmp_path / "r.json", change)
    with pytest.raises(ValidationError, match=re.escape(message)):
        oa.Attribution.load(bad)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_saved_results_are_refused(tmp_path, token):
    attr = oa.Attribution([0.5, 0.25], names=["a", "b"], stderr=[0.1, 0.1], method="m")
    attr.save(tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text().replace("0.25", token, 1)
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(ValidationError, match="NaN|finite"):
        oa.Attribution.load(tmp_path / "bad.json")


def test_results_saved_before_the_integrity_field_still_load(tmp_path):
    attr = oa.Attribution([0.5, np.nan], names=["a", "b"], counts=[3, 0], method="m", seed=1)
    (tmp_path / "old.json").write_text(json.dumps(attr.to_dict()))  # no "integrity"
    loaded = oa.Attribution.load(tmp_path / "old.json")
    assert loaded.result_hash() == attr.result_hash()
    attr.save(tmp_path / "new.json")
    assert "integrity" in json.loads((tmp_path / "new.json").read_text())
    assert oa.Attribution.load(tmp_path / "new.json").result_hash() == attr.result_hash()


# --------------------------------------------------- issue 12 item 7: Dataset input messages
def test_dataset_input_messages_name_the_users_file_column_and_row(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("f1,f2,label,owner\n")
    with pytest.raises(
        ValidationError, match=r"has a header \(f1, f2, label, owner\) but no data rows"
    ):
        oa.Dataset.from_csv(path, target="label", contributor="owner")
    frame = pd.DataFrame(
        {"size": [1.0, 2.0, 3.0], "colour": ["red", 2.0, None], "label": [0, 1, 0]},
    )
    frame["size"] = frame["size"].astype(object)  # numbers in an object column are fine
    with pytest.raises(
        ValidationError, match=r"column\(s\) 'colour' \(dtype object; e.g. 'red' at row 0\)"
    ):
        oa.Dataset.from_frame(frame, target="label")
    ds = oa.Dataset.from_frame(frame.drop(columns="colour"), target="label")
    assert ds.X[:, 0].tolist() == [1.0, 2.0, 3.0]
    frame = pd.DataFrame({"f": [1.0, 2.0], "label": [0, 1], "who": ["a", None]})
    with pytest.raises(
        ValidationError, match=r"contributor column 'who' has a missing .* at row 1"
    ):
        oa.Dataset.from_frame(frame, target="label", contributor="who")
