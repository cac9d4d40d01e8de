"""Hostile and careless use of the ledger and the command line: read-only reads, signing
that cannot bless a rewritten history, and one clear line for every failure."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import refused, snapshot, table, value_args, write_csv

import openattrib as oa
from openattrib import ledger
from openattrib.cli import main
from openattrib.errors import LedgerError
from openattrib.ledger import merkle

REPO = Path(__file__).resolve().parents[1]


def run(i: int) -> oa.Attribution:
    return oa.Attribution(
        [0.6, 0.4], names=["ann", "ben"], method="demo", seed=i, players="contributors"
    )


@pytest.fixture()
def filled(tmp_path) -> Path:
    path = tmp_path / "l.sqlite"
    with ledger.Ledger(path, origin="example.com/log") as led:
        for i in range(6):
            led.append_run(run(i))
    return path


def unprotected(path: Path) -> sqlite3.Connection:
    """A raw connection without the append-only triggers (what an attacker would use)."""
    db = sqlite3.connect(path, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    return db


def rebuild_nodes(db: sqlite3.Connection) -> None:
    """Rewrite every stored tree node so that it matches the (rewritten) entries."""
    leaves = [bytes(r[0]) for r in db.execute("SELECT leaf_hash FROM entries ORDER BY idx")]
    db.execute("DELETE FROM nodes")
    for level, nodes in enumerate(merkle.LevelTree(leaves).levels[1:], start=1):
        for idx, node in enumerate(nodes):
            db.execute("INSERT INTO nodes VALUES (?, ?, ?)", (level, idx, node))


def without_write_permission(commands: list[list[str]]) -> list[int]:
    """Exit codes of CLI ``commands`` run in one process that cannot write where the file
    modes forbid it (as root, with the permission-override capabilities dropped)."""
    script = (
        "import sys; from openattrib.cli import main; "
        f"print(','.join(str(main(argv)) for argv in {commands!r}))"
    )
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:  # root ignores file modes unless the override is dropped
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh: cannot drop CAP_DAC_OVERRIDE")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c"]
        command.append(shlex.join([sys.executable, "-c", script]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip(), done.stderr
    return [int(code) for code in done.stdout.strip().splitlines()[-1].split(",")]


# ------------------------------------------------------------------- 6. reading is read-only
@pytest.mark.parametrize(
    "action",
    [["verify", "--no-progress"], ["show"], ["prove", "0"], ["consistency", "--old-size", "0"]],
)
def test_reading_never_creates_or_changes_a_ledger(tmp_path, capsys, filled, action):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    verb, *rest = action
    refused(capsys, ["ledger", verb, str(empty), *rest], "is empty (0 bytes)", tmp_path)
    refused(capsys, ["ledger", verb, str(tmp_path / "nope.sqlite"), *rest], "not found", tmp_path)
    refused(capsys, ["ledger", verb, str(tmp_path), *rest], "is a directory", tmp_path)
    before = snapshot(tmp_path)
    assert main(["ledger", verb, str(filled), *rest]) == 0
    after = snapshot(tmp_path)
    # SQLite's read-only WAL access may leave its shared-memory index and an empty log
    side = {f"{filled.name}-shm", f"{filled.name}-wal"}
    assert {k: v for k, v in after.items() if k not in side} == before
    assert after.get(f"{filled.name}-wal", b"") == b""


def test_reading_works_in_a_read_only_folder(tmp_path, filled):
    folder = filled.parent
    folder.chmod(0o555)
    try:
        led = str(filled)
        codes = without_write_permission(
            [
                ["ledger", "verify", led, "--no-progress"],
                ["ledger", "show", led],
                ["ledger", "prove", led, "3"],
                ["ledger", "append", led, "--run", "x.json"],  # writing is refused cleanly
            ]
        )
    finally:
        folder.chmod(0o755)
    assert codes == [0, 0, 0, 1]
    assert ledger.Ledger(filled, read_only=True).verify(progress=False).ok


# ---------------------------------------------------- 7. signing cannot bless a rewrite
def _attack_rewrite(path: Path) -> None:
    db = unprotected(path)
    data = db.execute("SELECT data FROM entries WHERE idx = 2").fetchone()[0]
    forged = data.replace(b'"seed":2', b'"seed":9')
    db.execute(
        "UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 2",
        (forged, merkle.leaf_hash(forged)),
    )
    rebuild_nodes(db)
    db.execute("DELETE FROM checkpoints")
    db.close()


def _attack_truncate(path: Path) -> None:
    db = unprotected(path)
    db.execute("DELETE FROM entries WHERE idx >= 4")
    db.execute("UPDATE meta SET value = '4' WHERE key = 'size'")
    rebuild_nodes(db)
    db.execute("DELETE FROM checkpoints")
    db.close()


def _attack_replace(path: Path) -> None:
    path.unlink()
    with ledger.Ledger(path, origin="example.com/log") as led:  # same name, other history
        for i in range(8):
            led.append_run(run(100 + i))


@pytest.mark.parametrize("attack", [_attack_rewrite, _attack_truncate, _attack_replace])
def test_signing_refuses_a_history_that_does_not_extend_the_last_signed_head(
    tmp_path, capsys, filled, attack
):
    key = tmp_path / "key.pem"
    assert main(["ledger", "keygen", "--out", str(key)]) == 0
    assert main(["ledger", "checkpoint", str(filled), "--key", str(key)]) == 0
    assert (tmp_path / "key.pem.state").exists()
    capsys.readouterr()
    attack(filled)
    with ledger.Ledger(filled) as led:
        assert led.verify(progress=False).ok  # the attacker left a self-consistent ledger
    argv = ["ledger", "checkpoint", str(filled), "--key", str(key), "--out", str(tmp_path / "cp")]
    refused(capsys, argv, "refusing to sign", tmp_path)


def test_signing_state_file_protects_key_objects_too(tmp_path, filled):
    key = ledger.generate_signing_key()
    state = tmp_path / "signer.state"
    with ledger.Ledger(filled) as led:
        led.checkpoint(key, state=state)
    _attack_rewrite(filled)
    with ledger.Ledger(filled) as led, pytest.raises(LedgerError, match="consistent extension"):
        led.checkpoint(key, state=state)
    with ledger.Ledger(filled) as led:
        led.append_run(run(7))  # an honest extension of a fresh log is signed
        assert led.checkpoint(key, state=tmp_path / "fresh.state").size == 7


def test_verify_checkpoint_compares_the_origin(tmp_path, capsys, filled):
    key = tmp_path / "key.pem"
    assert main(["ledger", "keygen", "--out", str(key)]) == 0
    other = tmp_path / "other.sqlite"
    with ledger.Ledger(other, origin="example.com/other") as led:
        for i in range(6):
            led.append_run(run(i))  # the same entries under another log's name
        (tmp_path / "cp.txt").write_text(led.checkpoint(key).text)
    argv = ["ledger", "verify", str(filled), "--no-progress", "--key", str(key) + ".pub"]
    refused(capsys, [*argv, "--checkpoint", str(tmp_path / "cp.txt")], "is for the log", tmp_path)


# -------------------------------------------------------- 9. every failure is one line
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty (0 bytes)"),
        (b"f1,f2,label,owner\n", "has a header (f1, f2, label, owner) but no data rows"),
        (b"f1,f2,label,owner\n1,2,0,a\n1,2,0\n", "line 3 has 3 field(s)"),
        (b"f1,f2,label,owner\n1,2,0,\xe9ric\n", "is not UTF-8 text (byte 0xe9 on line 2)"),
        (b"f1,f2,label,owner\n1,2\x00,0,a\n", "contains a NUL byte (line 2)"),
        (b",f1,label,owner\n0,1,0,a\n", "column 1 has no name"),
    ],
)
def test_bad_csv_files_are_one_line(tmp_path, capsys, content, message):
    (tmp_path / "d.csv").write_bytes(content)
    refused(capsys, value_args(tmp_path / "d.csv", tmp_path / "o.json"), message, tmp_path)


def test_unreadable_inputs_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "o.json")
    refused(capsys, value_args(tmp_path, Path(out)), "is a directory, not a CSV file", tmp_path)
    refused(capsys, value_args(Path("/proc/self/mem"), Path(out)), "cannot read CSV file", tmp_path)


def test_output_paths_are_checked_before_computing(tmp_path, capsys, monkeypatch):
    header, rows = table(12)
    data = write_csv(tmp_path / "d.csv", header, rows)

    def never(*args, **kwargs):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr("openattrib.cli.value.compute", never)
    (tmp_path / "folder").mkdir()
    refused(capsys, value_args(data, tmp_path / "folder"), "is a directory", tmp_path)
    refused(capsys, value_args(data, data / "o.json"), "is not a folder", tmp_path)


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    header, rows = table(12)
    data = write_csv(tmp_path / "d.csv", header, rows)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("openattrib._io.os.fsync", full)
    refused(capsys, value_args(data, tmp_path / "o.json"), "No space left on device", tmp_path)


def test_damaged_ledgers_and_bad_files_are_one_line(tmp_path, capsys, filled):
    db = unprotected(filled)
    db.execute("UPDATE entries SET data = 'plain text' WHERE idx = 1")
    db.close()
    led = str(filled)
    refused(capsys, ["ledger", "show", led, "1"], "stored as str, not as bytes", tmp_path)
    refused(capsys, ["ledger", "prove", led, "1"], "stored as str, not as bytes", tmp_path)
    refused(capsys, ["ledger", "verify", led, "--no-progress"], "FAILED at entry 1", tmp_path)
    run(0).save(tmp_path / "r.json")
    argv = ["ledger", "append", str(tmp_path), "--run", str(tmp_path / "r.json")]
    refused(capsys, argv, "is a directory", tmp_path)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "typed.json").write_text('{"format": "openattrib.attribution/1", "names": 3}')
    (tmp_path / "alloc.json").write_text('{"format": "openattrib.allocation/1", "pool": [1]}')
    for name, option, message in [
        ("deep.json", "--run", "deeper than 64 levels"),
        ("typed.json", "--run", "'names' must be a list of strings"),
        ("alloc.json", "--allocation", "malformed allocation record"),
    ]:
        argv = ["ledger", "append", str(tmp_path / "new.sqlite"), option, str(tmp_path / name)]
        refused(capsys, argv, message, tmp_path)
    key = tmp_path / "key.pem"
    assert main(["ledger", "keygen", "--out", str(key)]) == 0
    capsys.readouterr()
    refused(
        capsys, ["ledger", "checkpoint", led, "--key", str(tmp_path)], "is a directory", tmp_path
    )
    verify = ["ledger", "verify", str(tmp_path / "new.sqlite"), "--no-progress"]
    verify += ["--key", str(key) + ".pub"]
    with ledger.Ledger(tmp_path / "new.sqlite", origin="example.com/log") as fresh:
        fresh.append_run(run(0))
    for text, message in [
        (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
        (b"example.com/log\nten\nAAAA\n", "malformed checkpoint"),
        (b'{"size": 3}\n', "malformed checkpoint"),
    ]:
        (tmp_path / "cp.txt").write_bytes(text)
        refused(capsys, [*verify, "--checkpoint", str(tmp_path / "cp.txt")], message, tmp_path)
