"""Signed checkpoints: Go sumdb/note vectors, C2SP format, keys, consistency between checkpoints."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openattrib import ledger
from openattrib.errors import LedgerError, ValidationError, VerificationError
from openattrib.ledger import merkle
from openattrib.ledger.checkpoint import Checkpoint, open_note, sign_note, verify_checkpoint
from openattrib.ledger.keys import (
    generate_signing_key,
    key_id,
    load_public_key,
    load_signing_key,
    note_verifier_key,
    parse_note_signer_key,
    parse_note_verifier_key,
    save_signing_key,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "signed_note_vectors.json").read_text())


class Run:
    """A minimal attribution run (the ledger duck-types it)."""

    def __init__(self, i: int) -> None:
        self.method, self.parameters, self.seed = "demo", {"i": i}, i
        self.provenance = {"dataset_hash": "0" * 64}

    def result_hash(self) -> str:
        return f"{self.seed:064x}"


# ------------------------------------------------------------- signed-note test vectors
def test_go_sumdb_note_keys_and_signature_are_reproduced():
    name, signer = parse_note_signer_key(VECTORS["signer_key"])
    vname, verifier = parse_note_verifier_key(VECTORS["verifier_key"])
    assert name == vname == VECTORS["key_name"]
    assert f"{key_id(name, verifier):08x}" == VECTORS["key_id"]
    assert note_verifier_key(name, signer) == VECTORS["verifier_key"]
    # Ed25519 is deterministic: the signed note must equal the published one byte for byte.
    assert sign_note(VECTORS["text"], signer, name) == VECTORS["signed_note"]
    assert open_note(VECTORS["signed_note"], verifier, name) == VECTORS["text"]


def test_unknown_signatures_are_ignored_and_each_known_key_verifies():
    note = VECTORS["signed_note"] + VECTORS["other_signature"]
    _, peter = parse_note_verifier_key(VECTORS["verifier_key"])
    enoch_name, enoch = parse_note_verifier_key(VECTORS["other_verifier_key"])
    assert open_note(note, peter, VECTORS["key_name"]) == VECTORS["text"]
    assert open_note(note, enoch, enoch_name) == VECTORS["text"]


def test_bad_notes_are_rejected():
    text, sig = VECTORS["text"], VECTORS["signed_note"][len(VECTORS["text"]) + 1 :]
    _, peter = parse_note_verifier_key(VECTORS["verifier_key"])
    name = VECTORS["key_name"]
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(text + "\n" + sig[:60] + "ABCD" + sig[60:], peter, name)
    with pytest.raises(VerificationError, match="no signature by key"):
        open_note(text + "\n" + VECTORS["other_signature"], peter, name)
    with pytest.raises(VerificationError, match="invalid signature"):
        open_note(text.replace("problem", "Problem", 1) + "\n" + sig, peter, name)
    bad_messages = [  # from note_test.go TestOpen
        text,
        text + "\n",
        text + "\n" + sig[:-1],
        "\x01" + text + "\n" + sig,
        text
        + "\n"
        + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        text + "\n" + sig + "Unexpected line.\n",
    ]
    for message in bad_messages:
        with pytest.raises(VerificationError):
            open_note(message, peter, name)
    with pytest.raises(VerificationError):
        open_note(b"\xff" + (text + "\n" + sig).encode(), peter, name)


def test_note_key_strings_are_checked():
    vkey = VECTORS["verifier_key"]
    with pytest.raises(ValidationError, match="key ID"):
        parse_note_verifier_key(vkey.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(ValidationError, match="malformed verifier key"):
        parse_note_verifier_key("PeterNeumann+c74f20a3")
    with pytest.raises(ValidationError, match="malformed signer key"):
        parse_note_signer_key(vkey)


# --------------------------------------------------------------------- checkpoint format
def test_c2sp_example_checkpoint_parses_and_renders_back():
    example = VECTORS["example_checkpoint"]
    cp = Checkpoint.parse(example["text"])
    assert (cp.origin, cp.size) == (example["origin"], example["size"])
    assert cp.root == base64.b64decode(example["root_base64"])
    assert cp.text == example["text"]
    assert len(cp.signatures) == 1 and cp.signatures[0].name == example["origin"]


def test_checkpoint_body_follows_tlog_checkpoint():
    cp = Checkpoint("example.com/log", 3, merkle.root([b"a", b"b", b"c"]))
    lines = cp.body.split("\n")
    assert lines[0] == "example.com/log" and lines[1] == "3" and lines[3] == ""
    assert base64.b64decode(lines[2]) == cp.root
    for bad in ["example.com/log\n03\n" + lines[2] + "\n", "example.com/log\n3\nAAAA\n", "x\n3\n"]:
        with pytest.raises(VerificationError, match="malformed checkpoint"):
            Checkpoint.parse(bad)
    with pytest.raises(ValidationError, match="one non-empty line"):
        Checkpoint("", 0, merkle.EMPTY_ROOT)


def test_signed_checkpoint_round_trip_and_every_tampering_is_rejected():
    key, other = generate_signing_key(), generate_signing_key()
    cp = Checkpoint("example.com/log", 7, merkle.root([bytes([i]) for i in range(7)])).sign(key)
    assert verify_checkpoint(cp.text, key.public_key()) == cp
    assert verify_checkpoint(cp.text, key) == cp  # a private key works as its public half
    body, sigs = cp.text.split("\n\n")
    tampered = {
        "size": cp.text.replace("\n7\n", "\n8\n", 1),
        "origin": cp.text.replace("example.com/log\n", "example.com/lag\n", 1),
        "root": body.split("\n")[0]
        + "\n7\n"
        + base64.b64encode(bytes(32)).decode()
        + "\n\n"
        + sigs,
    }
    for what, text in tampered.items():
        with pytest.raises(VerificationError):
            verify_checkpoint(text, key.public_key(), key_name="example.com/log")
        assert what
    blob = bytearray(base64.b64decode(sigs.split(" ")[-1]))
    blob[10] ^= 1
    flipped = body + "\n\n\u2014 example.com/log " + base64.b64encode(bytes(blob)).decode() + "\n"
    with pytest.raises(VerificationError, match="invalid signature"):
        verify_checkpoint(flipped, key.public_key())
    with pytest.raises(VerificationError, match="no signature by key"):
        verify_checkpoint(cp.text, other.public_key())
    with pytest.raises(VerificationError, match="no signature by key"):
        verify_checkpoint(cp.body, key.public_key())  # unsigned
    cosigned = cp.sign(other, "witness.example/w1")  # another key's line is ignored
    assert verify_checkpoint(cosigned.text, key.public_key()).size == 7
    assert verify_checkpoint(cosigned.text, other, key_name="witness.example/w1").size == 7


# -------------------------------------------------------------------------------- keys
def test_pem_keys_round_trip(tmp_path):
    key = generate_signing_key()
    public_path = save_signing_key(key, tmp_path / "log.pem")
    assert public_path == tmp_path / "log.pem.pub"
    assert (os.stat(tmp_path / "log.pem").st_mode & 0o777) == 0o600
    loaded = load_signing_key(tmp_path / "log.pem")
    raw = key.public_key().public_bytes_raw()
    assert loaded.public_key().public_bytes_raw() == raw
    assert load_public_key(public_path).public_bytes_raw() == raw
    assert load_public_key(tmp_path / "log.pem").public_bytes_raw() == raw
    assert load_public_key(raw).public_bytes_raw() == raw
    cp = Checkpoint("example.com/log", 0, merkle.EMPTY_ROOT).sign(tmp_path / "log.pem")
    assert verify_checkpoint(cp.text, public_path).size == 0


def test_wrong_key_files_give_clear_errors(tmp_path):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.pem").write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValidationError, match="Ed25519"):
        load_signing_key(tmp_path / "ec.pem")
    with pytest.raises(ValidationError, match="not found"):
        load_signing_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ValidationError, match="PEM"):
        load_public_key(tmp_path / "junk.pem")
    with pytest.raises(ValidationError, match="key name"):
        Checkpoint("has space", 0, merkle.EMPTY_ROOT).sign(generate_signing_key())


# ----------------------------------------------------------- consistency of checkpoints
def test_older_checkpoint_is_proven_consistent_with_newer(tmp_path):
    key = generate_signing_key()
    with ledger.Ledger(tmp_path / "l.sqlite", origin="example.com/test") as led:
        for i in range(5):
            led.append_run(Run(i))
        old = verify_checkpoint(led.checkpoint(key).text, key.public_key())
        for i in range(5, 13):
            led.append_run(Run(i))
        new = verify_checkpoint(led.checkpoint(key).text, key.public_key())
        proof = led.consistency_proof(old.size, new.size)
        assert ledger.verify_checkpoint_consistency(old, new, proof)
        assert ledger.verify_checkpoint_consistency(old, new, list(proof.path))
        forged = Checkpoint(old.origin, old.size, merkle.leaf_hash(b"other history"))
        assert not ledger.verify_checkpoint_consistency(forged, new, proof)
        with pytest.raises(VerificationError, match="size"):
            ledger.verify_checkpoint_consistency(old, new, led.consistency_proof(4, new.size))
        with pytest.raises(VerificationError, match="different logs"):
            ledger.verify_checkpoint_consistency(
                Checkpoint("elsewhere", old.size, old.root), new, proof
            )
        assert [c.size for c in led.checkpoints()] == [5, 13]
        assert led.verify(public_key=key.public_key()).ok


def test_ledger_refuses_to_sign_a_head_inconsistent_with_its_last_checkpoint(tmp_path):
    key = generate_signing_key()
    path = tmp_path / "l.sqlite"
    with ledger.Ledger(path) as led:
        for i in range(6):
            led.append_run(Run(i))
        led.checkpoint(key)
        led.append_run(Run(6))
    db = sqlite3.connect(path)  # an attacker rewrites entry 2 together with every stored hash
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("DROP TRIGGER nodes_no_update")
    data = db.execute("SELECT data FROM entries WHERE idx = 2").fetchone()[0]
    forged = data.replace(b'"seed":2', b'"seed":9')
    db.execute(
        "UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 2",
        (forged, merkle.leaf_hash(forged)),
    )
    leaves = [bytes(r[0]) for r in db.execute("SELECT leaf_hash FROM entries ORDER BY idx")]
    for level, nodes in enumerate(merkle.LevelTree(leaves).levels[1:], start=1):
        for idx, node in enumerate(nodes):
            db.execute("UPDATE nodes SET hash = ? WHERE level = ? AND idx = ?", (node, level, idx))
    db.commit()
    db.close()
    with ledger.Ledger(path) as led:
        with pytest.raises(LedgerError, match="refusing to sign"):
            led.checkpoint(key)
        report = led.verify()
        assert not report.ok
        assert any("root signed in checkpoint" in message for _, message in report.problems)


def test_verify_with_public_key_rejects_a_stored_checkpoint_with_a_bad_signature(tmp_path):
    key = generate_signing_key()
    path = tmp_path / "l.sqlite"
    with ledger.Ledger(path) as led:
        led.append_run(Run(0))
        cp = led.checkpoint(key)
    other = Checkpoint(cp.origin, cp.size, cp.root).sign(generate_signing_key(), cp.origin)
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER checkpoints_no_update")
    db.execute("UPDATE checkpoints SET text = ?", (other.text,))
    db.commit()
    db.close()
    with ledger.Ledger(path) as led:
        assert led.verify().ok  # without the key only the hashes can be checked
        report = led.verify(public_key=key.public_key())
        assert not report.ok and "no signature by key" in report.summary()
