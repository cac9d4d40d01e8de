"""The contribution registry: row digests, Merkle roots, idempotence, row proofs, tampering."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openattrib as oa
from openattrib.errors import ValidationError
from openattrib.ledger import Ledger, RowProof, merkle, verify_row


def rows(X, y, who=None):
    return oa.Dataset(np.asarray(X, dtype=float), np.asarray(y), contributors=who)


# ------------------------------------------------------------------ canonical row digests
def test_row_digest_follows_the_documented_encoding():
    # independent re-implementation of the encoding in Dataset.row_digests' docstring
    ds = rows([[1.5, -0.0], [2.0, 3.0]], [1, 0])
    expected = hashlib.sha256(
        b"openattrib-row-v1"
        + struct.pack("<Q", 2)
        + struct.pack("<dd", 1.5, 0.0)
        + b"N"
        + struct.pack("<d", 1.0)
    ).digest()
    assert ds.row_digests()[0] == expected
    text = oa.Dataset([[1.0]], np.array(["cat"], dtype=object))
    label = b"cat"
    assert (
        text.row_digests()[0]
        == hashlib.sha256(
            b"openattrib-row-v1"
            + struct.pack("<Q", 1)
            + struct.pack("<d", 1.0)
            + b"S"
            + struct.pack("<Q", len(label))
            + label
        ).digest()
    )


def test_row_digest_ignores_position_contributor_and_int_vs_float_label():
    a = rows([[1.0, 2.0], [3.0, 4.0]], [0, 1], ["x", "y"])
    b = rows([[3.0, 4.0], [1.0, 2.0]], [1.0, 0.0], ["z", "z"])
    assert a.row_digests() == b.row_digests()[::-1]
    assert rows([[1.0, 2.0]], [1]).row_digests() != rows([[1.0, 2.0]], [0]).row_digests()


# ------------------------------------------------------------------ registration
@pytest.fixture
def led(tmp_path):
    with Ledger(tmp_path / "l.sqlite", origin="test/registry") as ledger:
        yield ledger


def test_registration_stores_count_and_root_over_sorted_digests(led):
    data = rows([[0.0], [1.0], [2.0]], [0, 1, 0])
    reg = led.append_contribution("alice", data)
    digests = sorted(data.row_digests())
    assert (reg.index, reg.n_rows, reg.created) == (0, 3, True)
    assert reg.rows_root == merkle.root(digests)
    record = led.entry(0).record
    assert record["kind"] == "contribution" and record["contributor"] == "alice"
    assert record["rows_root"] == merkle.root(digests).hex() and record["n_rows"] == 3
    assert "0.0" not in led.entry(0).data.decode()  # no data in the log, only the root
    assert led.verify().ok


def test_reregistration_is_idempotent_whatever_the_row_order(led):
    data = rows([[0.0], [1.0], [2.0]], [0, 1, 0])
    first = led.append_contribution("alice", data)
    again = led.append_contribution("alice", data.subset([2, 0, 1]))
    assert not again.created and again.index == first.index and led.size == 1
    other = led.append_contribution("bob", data)  # someone else: a new entry, collisions named
    assert other.created and other.index == 1
    assert other.collisions == [(0, "alice", 3)]


def test_collisions_are_reported_never_refused(led, caplog):
    caplog.set_level(logging.INFO, logger="openattrib")
    led.append_contribution("alice", rows([[0.0], [1.0]], [0, 1]))
    reg = led.append_contribution("dave", rows([[1.0], [5.0]], [1, 1]))
    assert reg.created and reg.collisions == [(0, "alice", 1)] and reg.n_colliding == 1
    assert "registered earlier by 'alice'" in caplog.text
    assert [r.contributor for r in led.contributions()] == ["alice", "dave"]


def test_holders_lists_every_registration_in_log_order(led):
    shared = rows([[7.0]], [1])
    led.append_contribution("a", rows([[7.0], [8.0]], [1, 0]))
    led.append_contribution("b", shared)
    held = led.holders(shared.row_digests() + rows([[9.0]], [0]).row_digests())
    assert [r.contributor for r in held[shared.row_digests()[0]]] == ["a", "b"]
    assert len(held) == 1  # the never-registered row is absent


@pytest.mark.parametrize(
    ("contributor", "data", "match"),
    [
        ("", [bytes(32)], "non-empty str"),
        ("a", [], "at least one row"),
        ("a", [b"short"], "32 bytes"),
        ("a", b"x" * 32, "sequence of 32-byte"),
    ],
)
def test_bad_registrations_are_refused_clearly(led, contributor, data, match):
    with pytest.raises(ValidationError, match=match):
        led.append_contribution(contributor, data)
    assert led.size == 0


def test_verify_detects_changed_row_digests(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as led:
        led.append_contribution("a", rows([[0.0], [1.0]], [0, 1]))
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER contribution_rows_no_update")
    db.execute("UPDATE contribution_rows SET digest = ? WHERE position = 0", (bytes(32),))
    db.commit()
    db.close()
    with Ledger(path) as led:
        report = led.verify()
    assert not report.ok and report.first_bad_index == 0
    assert "do not hash to the registered rows_root" in report.problems[0][1]


def test_row_digests_are_append_only(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as led:
        led.append_contribution("a", rows([[0.0]], [0]))
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM contribution_rows")
    db.close()


def test_row_proof_round_trips_and_rejects_non_contribution_entries(led):
    data = rows([[0.0], [1.0], [2.0]], [0, 1, 0])
    led.append_contribution("alice", data)
    proof = led.row_proof(0, data.subset([1]))
    again = RowProof.from_dict(proof.to_dict())
    assert again == proof and verify_row(
        again, data.row_digests()[1], led.contributions()[0].rows_root
    )
    with pytest.raises(ValidationError, match="not in this registration"):
        led.row_proof(0, rows([[9.0]], [0]))


# ------------------------------------------------------------------ property tests
small_rows = st.lists(
    st.tuples(st.lists(st.integers(-3, 3), min_size=2, max_size=2), st.integers(0, 1)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=small_rows,
    which=st.integers(0, 11),
    feature=st.integers(0, 2),
    delta=st.sampled_from([0.5, -1.0, 1e-9]),
)
def test_row_inclusion_proofs_verify_and_fail_for_any_altered_row(data, which, feature, delta):
    X = np.array([x for x, _ in data], dtype=float)
    y = np.array([label for _, label in data])
    ds = rows(X, y)
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "l.sqlite") as led:
        reg = led.append_contribution("c", ds)
        root = bytes.fromhex(led.entry(reg.index).record["rows_root"])
        proofs = [led.row_proof(reg.index, ds.subset([i])) for i in range(ds.n_samples)]
        assert all(verify_row(p, d, root) for p, d in zip(proofs, ds.row_digests(), strict=True))
        i = which % ds.n_samples
        X2, y2 = X.copy(), y.copy()
        if feature < 2:
            X2[i, feature] += delta
        else:
            y2[i] = 1 - y2[i]
        altered = rows(X2, y2).row_digests()[i]
        assert not verify_row(proofs[i], altered, root)
        assert not proofs[i].verify(altered)
        assert led.verify().ok


# ------------------------------------------------------------------ command line
def test_cli_register_in_file_order_idempotent_and_one_line_errors(tmp_path, capsys):
    from openattrib.cli import main
    from openattrib.datasets import DATA_DIR

    path, csv = tmp_path / "l.sqlite", str(DATA_DIR / "demo_contributors.csv")
    args = ["ledger", "register", str(path), "--data", csv, "--target", "label"]
    assert main([*args, "--contributor", "contributor"]) == 0
    out = capsys.readouterr().out
    assert "registered dave: 30 rows, entry 3" in out
    assert "30 rows were registered earlier by alice (entry 0)" in out
    assert main([*args, "--contributor", "contributor", "--only", "bob"]) == 0
    assert "already registered bob: 50 rows, entry 1" in capsys.readouterr().out
    with Ledger(path) as led:
        assert [r.contributor for r in led.contributions()] == [
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "grace",
            "heidi",
        ]
        assert led.size == 8 and led.verify().ok
    assert main([*args, "--contributor", "contributor", "--only", "zed"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("openattrib: error: --only names contributor(s) ['zed']")


def test_cli_value_on_owned_data_with_a_split_and_reproduce(tmp_path, capsys):
    from openattrib.cli import main
    from openattrib.datasets import DATA_DIR

    path, csv, out = (
        tmp_path / "l.sqlite",
        str(DATA_DIR / "demo_contributors.csv"),
        tmp_path / "v.json",
    )
    common = ["--data", csv, "--target", "label", "--contributor", "contributor"]
    assert main(["ledger", "register", str(path), *common]) == 0
    value = ["value", *common, "--method", "knn_shapley", "--players", "points", "--no-progress"]
    assert main([*value, "--ledger", str(path), "--out", str(out)]) == 0
    result = oa.Attribution.load(out)
    copies = result.provenance["ownership"]["copies"]
    assert {c["copier"] for c in copies} == {"dave", "erin"}
    assert {c["owner"] for c in copies} == {"alice"}
    # every training row submitted by dave or erin is credited to alice
    assert set(result.by_contributor().names) == {
        "alice",
        "bob",
        "carol",
        "frank",
        "grace",
        "heidi",
    }
    assert main(["ledger", "append", str(path), "--run", str(out)]) == 0
    capsys.readouterr()
    assert main(["ledger", "reproduce", str(path), "8", "--data", csv, "--no-progress"]) == 0
    assert "matches bit for bit" in capsys.readouterr().out
    assert main([*value, "--ledger", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 1
    assert "openattrib ledger register" in capsys.readouterr().err
