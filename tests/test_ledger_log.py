"""The SQLite ledger: records, proofs against the pure functions, tampering, crashes, concurrency."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import openattrib as oa
from openattrib import ledger
from openattrib.cli.ledger import add_ledger_parser
from openattrib.errors import LedgerError, UnsupportedError, ValidationError, VerificationError
from openattrib.ledger import merkle
from openattrib.ledger.audit import audit
from openattrib.rewards import allocate

REPO = Path(__file__).resolve().parents[1]


class Run:
    """A minimal attribution run; the ledger only duck-types."""

    def __init__(self, i: int, tag: str = "t") -> None:
        self.method, self.parameters, self.seed = "demo", {"i": i, "tag": tag}, i
        self.provenance = {"dataset_hash": "0" * 64, "model": "Ridge()"}

    def result_hash(self) -> str:
        return f"{self.seed:064x}"


class Alloc:
    def __init__(self, amounts: dict, pool: int | None = None, source: str | None = None) -> None:
        self.amounts, self.policy, self.source = amounts, "proportional", source
        self.pool = sum(amounts.values()) if pool is None else pool

    def result_hash(self) -> str:
        return "ab" * 32


def attribution() -> oa.Attribution:
    return oa.Attribution(
        [0.7, 0.3],
        names=["alice", "bob"],
        method="tmc_shapley",
        seed=7,
        parameters={"truncation": 0.01},
        provenance={
            "dataset_hash": "cd" * 32,
            "model": "LogisticRegression()",
            "scorer": "accuracy",
        },
    )


def fill(path: Path, n: int) -> None:
    with ledger.Ledger(path) as led:
        for i in range(n):
            led.append_run(Run(i))


# ---------------------------------------------------------------------------- records
def test_run_and_allocation_records_hold_what_reproduction_needs(tmp_path):
    attr = attribution()
    alloc = allocate(attr, pool=10**21)
    with ledger.Ledger(tmp_path / "l.sqlite") as led:
        entry = led.append_run(attr, alloc)
        assert (entry.index, entry.kind) == (0, "run")
        assert entry.leaf_hash == merkle.leaf_hash(entry.data)
        run = entry.record
        assert run["provenance"] == attr.provenance and run["parameters"] == attr.parameters
        assert (run["method"], run["seed"], run["result_hash"]) == (
            "tmc_shapley",
            7,
            attr.result_hash(),
        )
        assert run["dataset_hash"] == "cd" * 32 and run["estimator"] == "LogisticRegression()"
        assert run["package_version"] == oa.__version__
        paid = led.entry(1).record
        assert (
            paid["kind"] == "allocation"
            and paid["run"] == 0
            and paid["source"] == attr.result_hash()
        )
        assert {k: int(v) for k, v in paid["amounts"].items()} == alloc.amounts
        assert int(paid["pool"]) == 10**21 and paid["allocation_hash"] == alloc.result_hash()
        second = led.append_allocation(alloc, run=entry.index)
        assert second.index == 2 and second.record["run"] == 0
        with pytest.raises(ValidationError, match="computed from result"):
            led.append_allocation(Alloc({"a": 1}, source="ee" * 32), run=0)
        with pytest.raises(ValidationError, match="not an attribution run"):
            led.append_allocation(alloc, run=1)
        with pytest.raises(ValidationError, match="earlier entry"):
            led.append_allocation(alloc, run=99)
        assert led.size == 3  # refused appends left nothing behind


def test_bad_inputs_are_refused_with_clear_messages(tmp_path):
    with ledger.Ledger(tmp_path / "l.sqlite") as led:
        with pytest.raises(UnsupportedError, match="result_hash"):
            led.append_run(object())
        with pytest.raises(ValidationError, match="sum to at most the pool"):
            led.append_allocation(Alloc({"a": 5, "b": 6}, pool=10))
        with pytest.raises(ValidationError, match="non-negative int"):
            led.append_allocation(Alloc({"a": 1.5}, pool=10))
        bad = Run(0)
        bad.parameters = {"x": float("nan")}
        with pytest.raises(ValidationError, match="NaN"):
            led.append_run(bad)
        with pytest.raises(ValidationError, match="0..-1"):
            led.entry(0)
        assert led.size == 0
    (tmp_path / "other.sqlite").write_bytes(b"not a database at all, just text" * 10)
    with pytest.raises(LedgerError, match="not a usable openattrib ledger"):
        ledger.Ledger(tmp_path / "other.sqlite")
    with pytest.raises(LedgerError, match="not found"):
        ledger.Ledger(tmp_path / "missing.sqlite", create=False)
    with ledger.Ledger(tmp_path / "named.sqlite", origin="example.com/a"):
        pass
    with pytest.raises(LedgerError, match="is the log 'example.com/a'"):
        ledger.Ledger(tmp_path / "named.sqlite", origin="example.com/b")


# ---------------------------------------------------------------------------- proofs
def test_stored_tree_gives_the_same_roots_and_proofs_as_the_pure_functions(tmp_path):
    with ledger.Ledger(tmp_path / "l.sqlite") as led:
        for i in range(19):
            led.append_run(Run(i)) if i % 3 else led.append_allocation(Alloc({"x": i}))
        data = [e.data for e in led.entries()]
        for n in range(len(data) + 1):
            assert led.root(n) == merkle.root(data[:n])
            for i in range(n):
                proof = led.inclusion_proof(i, n)
                assert list(proof.path) == merkle.inclusion_proof(data[:n], i)
                assert proof.leaf_hash == merkle.leaf_hash(data[i])
            for m in range(n + 1):
                assert list(led.consistency_proof(m, n).path) == merkle.consistency_proof(
                    data[:n], m
                )
        checkpoint = led.checkpoint()
        proof = led.inclusion_proof(5)
        assert ledger.verify_inclusion(proof, checkpoint, data=data[5])
        assert not ledger.verify_inclusion(proof, checkpoint, data=data[6])
        assert ledger.InclusionProof.from_dict(json.loads(json.dumps(proof.to_dict()))) == proof
        with pytest.raises(VerificationError, match=r"inclusion_proof\(5, size=19\)"):
            ledger.verify_inclusion(led.inclusion_proof(5, size=10), checkpoint)
        with pytest.raises(ValidationError, match="0..18"):
            led.inclusion_proof(19)


# --------------------------------------------------------------------------- tampering
def _raw(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("PRAGMA synchronous=OFF")
    return db


def test_triggers_refuse_updates_and_deletes(tmp_path):
    fill(tmp_path / "l.sqlite", 3)
    db = sqlite3.connect(tmp_path / "l.sqlite")
    for sql in (
        "UPDATE entries SET data = x'00' WHERE idx = 1",
        "DELETE FROM nodes",
        "DELETE FROM entries",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()


def test_changing_any_byte_of_any_entry_is_found_at_that_index(tmp_path):
    path = tmp_path / "l.sqlite"
    with ledger.Ledger(path) as led:
        for i in range(5):
            led.append_run(Run(i))
        led.append_allocation(Alloc({"alice": 3, "bob": 4}))  # linking needs a real Allocation
    db = _raw(path)
    rng = random.Random(0)
    rows = db.execute("SELECT idx, data FROM entries ORDER BY idx").fetchall()
    for idx, data in rows:
        for pos in range(len(data)):
            changed = bytearray(data)
            changed[pos] ^= rng.randrange(1, 256)
            db.execute("UPDATE entries SET data = ? WHERE idx = ?", (bytes(changed), idx))
            report = audit(db)
            assert not report.ok and report.first_bad_index == idx, (idx, pos, report.problems)
        db.execute("UPDATE entries SET data = ? WHERE idx = ?", (data, idx))
    assert audit(db).ok


def test_rewritten_leaf_hashes_are_caught_by_the_tree_and_by_the_checkpoint(tmp_path):
    path, key = tmp_path / "l.sqlite", ledger.generate_signing_key()
    with ledger.Ledger(path) as led:
        for i in range(7):
            led.append_run(Run(i))
        led.checkpoint(key)
    db = _raw(path)
    for idx in range(7):
        data = db.execute("SELECT data FROM entries WHERE idx = ?", (idx,)).fetchone()[0]
        forged = data.replace(b'"seed":', b'"seed":1')
        db.execute("BEGIN")
        db.execute(
            "UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = ?",
            (forged, merkle.leaf_hash(forged), idx),
        )
        report = audit(db)
        assert not report.ok
        assert any("checkpoint" in message for _, message in report.problems)
        if (
            idx < 6
        ):  # entries 0..5 are under stored level-1 nodes; entry 6 only under the checkpoint
            assert report.first_bad_index == idx - idx % 2
        db.execute("ROLLBACK")


def test_deleted_reordered_and_inserted_entries_are_found(tmp_path):
    path = tmp_path / "l.sqlite"
    fill(path, 9)
    db = _raw(path)
    rows = db.execute("SELECT idx, data, leaf_hash FROM entries ORDER BY idx").fetchall()

    def case(sql_steps):
        db.execute("BEGIN")
        for sql, params in sql_steps:
            db.execute(sql, params)
        report = audit(db)
        db.execute("ROLLBACK")
        return report

    for k in range(9):  # delete one entry
        report = case([("DELETE FROM entries WHERE idx = ?", (k,))])
        assert not report.ok and report.first_bad_index == k, (k, report.problems)
    swap = [  # reorder entries 3 and 6 (data and leaf hash together)
        ("UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 3", (rows[6][1], rows[6][2])),
        ("UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 6", (rows[3][1], rows[3][2])),
    ]
    report = case(swap)
    assert report.first_bad_index == 3 and "reordered" in report.problems[0][1]
    report = case([("INSERT INTO entries VALUES (9, ?, ?)", (rows[8][1], rows[8][2]))])
    assert not report.ok and report.first_bad_index == 9
    # The deleter also fixes the recorded size: the stored tree nodes still give it away.
    report = case(
        [
            ("DELETE FROM entries WHERE idx >= 6", ()),
            ("UPDATE meta SET value = '6' WHERE key = 'size'", ()),
        ]
    )
    assert (
        not report.ok and report.first_bad_index == 6 and "deleted from the end" in report.summary()
    )
    report = case([("UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1", (bytes(32),))])
    assert report.first_bad_index == 4 and "tree node (2, 1)" in report.summary()


def test_appending_to_a_damaged_ledger_is_refused(tmp_path):
    path = tmp_path / "l.sqlite"
    fill(path, 4)
    _raw(path).execute("DELETE FROM entries WHERE idx = 3")
    with ledger.Ledger(path) as led:
        report = led.verify()
        assert not report and report.first_bad_index == 3
        with pytest.raises(VerificationError, match="at entry 3"):
            report.raise_if_bad()
        with pytest.raises(LedgerError, match="damaged"):
            led.append_run(Run(9))


# ----------------------------------------------------------------- crashes, concurrency
CHILD = r"""
import sys
from openattrib.ledger import Ledger

class Run:
    def __init__(self, tag, i):
        self.method, self.parameters, self.seed = "demo", {"i": i, "tag": tag}, i
        self.provenance = {"dataset_hash": "0" * 64}
    def result_hash(self):
        return f"{self.seed:064x}"

path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Ledger(path) as led:
    i = 0
    while count < 0 or i < count:
        entry = led.append_run(Run(tag, i))
        sys.stdout.write(f"{entry.index} {i}\n")
        sys.stdout.flush()
        i += 1
"""


def _child(path: Path, tag: str, count: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), tag, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _acked(lines: str) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in lines.splitlines() if line.count(" ") == 1]


def _check_acked(led: ledger.Ledger, tag: str, acked: list[tuple[int, int]]) -> None:
    for index, i in acked:
        assert led.entry(index).record["parameters"] == {"i": i, "tag": tag}


@pytest.mark.slow
def test_appends_survive_sigkill_at_random_moments(tmp_path):
    path = tmp_path / "crash.sqlite"
    rng = random.Random(1)
    for round_ in range(3):
        proc = _child(path, f"r{round_}", -1)
        first = proc.stdout.readline()  # the child is up and has committed one append
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acked = _acked(first + rest)
        assert acked
        with ledger.Ledger(path) as led:
            _check_acked(led, f"r{round_}", acked)
            assert led.size >= max(index for index, _ in acked) + 1
            report = led.verify()
            assert report.ok, report.problems
    with ledger.Ledger(path) as led:  # appending goes on after the crashes
        size = led.size
        assert led.append_run(Run(0, "after")).index == size
        assert led.verify().ok


def test_two_processes_appending_concurrently_serialise(tmp_path):
    path = tmp_path / "concurrent.sqlite"
    ledger.Ledger(path).close()
    procs = {tag: _child(path, tag, 25) for tag in ("a", "b")}
    outputs = {tag: proc.communicate(timeout=120)[0] for tag, proc in procs.items()}
    assert all(proc.returncode == 0 for proc in procs.values())
    acked = {tag: _acked(out) for tag, out in outputs.items()}
    indices = [index for pairs in acked.values() for index, _ in pairs]
    assert sorted(indices) == list(range(50))
    with ledger.Ledger(path) as led:
        assert led.size == 50 and led.verify().ok
        for tag, pairs in acked.items():
            assert [i for _, i in pairs] == list(range(25))
            _check_acked(led, tag, pairs)


# ------------------------------------------------------------------------------ CLI
def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="openattrib")
    add_ledger_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_command_line_round_trip(tmp_path, capsys):
    attr = attribution()
    attr.save(tmp_path / "run.json")
    allocate(attr, pool=10**6).save(tmp_path / "alloc.json")
    db, key = str(tmp_path / "l.sqlite"), str(tmp_path / "key.pem")
    assert (
        _cli(
            "ledger",
            "append",
            db,
            "--run",
            str(tmp_path / "run.json"),
            "--allocation",
            str(tmp_path / "alloc.json"),
            "--origin",
            "example.com/cli",
        )
        == 0
    )
    assert "entry 1" in capsys.readouterr().out
    assert (
        _cli("ledger", "append", db, "--allocation", str(tmp_path / "alloc.json"), "--for-run", "0")
        == 0
    )
    assert _cli("ledger", "keygen", "--out", key, "--name", "example.com/cli") == 0
    assert "example.com/cli+" in capsys.readouterr().out
    with pytest.raises(ValidationError, match="--force"):
        _cli("ledger", "keygen", "--out", key)
    assert _cli("ledger", "checkpoint", db, "--key", key, "--out", str(tmp_path / "cp1.txt")) == 0
    assert _cli("ledger", "append", db, "--run", str(tmp_path / "run.json")) == 0
    capsys.readouterr()
    assert _cli("ledger", "prove", db, "1") == 0
    proof_doc = json.loads(capsys.readouterr().out)
    proof = ledger.InclusionProof.from_dict(proof_doc["proof"])
    assert proof.leaf_hash == merkle.leaf_hash(proof_doc["entry"].encode())
    assert proof.verify(bytes.fromhex(proof_doc["root"]))
    assert (
        _cli("ledger", "consistency", db, "--old", str(tmp_path / "cp1.txt"), "--key", key + ".pub")
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert (doc["proof"]["old_size"], doc["proof"]["new_size"]) == (3, 4)
    assert (
        _cli(
            "ledger",
            "verify",
            db,
            "--no-progress",
            "--key",
            key + ".pub",
            "--checkpoint",
            str(tmp_path / "cp1.txt"),
        )
        == 0
    )
    assert "ledger OK: 4 entries" in capsys.readouterr().out
    assert _cli("ledger", "show", db) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["kinds"] == {"allocation": 2, "run": 2} and summary["origin"] == "example.com/cli"
    )
    assert _cli("ledger", "show", db, "0") == 0
    assert json.loads(capsys.readouterr().out)["record"]["result_hash"] == attr.result_hash()
    with pytest.raises(ValidationError, match="--run"):
        _cli("ledger", "append", db)
    _raw(Path(db)).execute("UPDATE entries SET data = CAST('{}' AS BLOB) WHERE idx = 2")
    with pytest.raises(VerificationError, match="at entry 2"):
        _cli("ledger", "verify", db, "--no-progress")


def test_using_a_closed_ledger_is_a_clear_error(tmp_path):
    led = oa.Ledger(tmp_path / "closed.sqlite", create=True)
    led.close()
    with pytest.raises(oa.LedgerError, match="is closed"):
        led.checkpoint()
    led.close()  # closing twice is harmless


def _tamper_batch(path, statement, params=()):
    db = sqlite3.connect(path)
    for trigger in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'batch_leaves'"
    ).fetchall():
        db.execute(f"DROP TRIGGER {trigger[0]}")
    db.execute(statement, params)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("statement", "params", "message"),
    [
        (
            "UPDATE batch_leaves SET data = ? WHERE entry = 1 AND idx = 2",
            (b"forged",),
            "do not hash to its recorded root",
        ),
        ("DELETE FROM batch_leaves WHERE entry = 1 AND idx = 0", (), "leaves deleted or inserted"),
        (
            "INSERT INTO batch_leaves(entry, idx, data) VALUES (1, 5, ?)",
            (b"extra",),
            "leaves deleted or inserted",
        ),
        (
            "INSERT INTO batch_leaves(entry, idx, data) VALUES (0, 0, ?)",
            (b"x",),
            "which is no batch",
        ),
        (
            "UPDATE batch_leaves SET data = 'text' WHERE entry = 1 AND idx = 1",
            (),
            "not stored as bytes",
        ),
    ],
)
def test_verify_rechecks_stored_batch_leaves_against_their_root(
    tmp_path, statement, params, message
):
    """Oracle: the batch root is recomputed independently (RFC 6962) from the leaves given."""
    path = tmp_path / "l.sqlite"
    leaves = [f"inference {i}".encode() for i in range(5)]
    with ledger.Ledger(path) as led:
        led.append_run(Run(0))
        entry = led.append_batch(leaves)
        led.append_run(Run(1))
        assert entry.record["root"] == merkle.root(leaves).hex()
        assert led.verify().ok
    _tamper_batch(path, statement, params)
    with ledger.Ledger(path) as led:
        report = led.verify()
    assert not report.ok
    assert any(message in text for _, text in report.problems), report.problems
    if "no batch" not in message:
        assert report.first_bad_index == 1  # names the batch entry whose leaves changed
        assert "batch entry 1" in report.summary()
