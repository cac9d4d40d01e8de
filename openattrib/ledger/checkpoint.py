"""Signed checkpoints: the C2SP ``tlog-checkpoint`` text in a C2SP ``signed-note``, Ed25519.

A checkpoint commits to the whole log at one size::

    openattrib.example/ledger-1a2b
    42
    o4r7Qm9yb2Z1c2lvbi1zaG91bGQtYmUtMzItYnl0ZXM=

    — openattrib.example/ledger-1a2b Az3grlgt...

Lines: origin (the log's name), tree size in decimal, base64 RFC 6962 root hash, then a
blank line and one signature line per key: em dash, key name, base64 of the 4-byte key ID
followed by the 64-byte Ed25519 signature of the text above the blank line. The key ID is
``SHA-256(key name || 0x0A || 0x01 || public key)[:4]`` (c2sp.org/signed-note), so these
notes interoperate with Go's ``golang.org/x/mod/sumdb/note`` and transparency-log witnesses.

Keys are Ed25519 from ``cryptography``, stored as PEM (PKCS#8 private, SubjectPublicKeyInfo
public). A log must never sign two inconsistent checkpoints: :meth:`Ledger.checkpoint
<openattrib.ledger.Ledger.checkpoint>` proves each new signed checkpoint consistent with the
previous one, and :func:`verify_checkpoint_consistency` lets anyone check it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._io import atomic_write_bytes
from ..errors import ValidationError, VerificationError
from . import merkle

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "generate_signing_key",
    "save_signing_key",
    "load_signing_key",
    "load_public_key",
    "key_id",
    "note_verifier_key",
    "parse_note_verifier_key",
    "parse_note_signer_key",
    "sign_note",
    "open_note",
    "verify_checkpoint",
    "verify_checkpoint_consistency",
    "verify_inclusion",
]

_ED25519 = 0x01  # signed-note signature type for Ed25519
_MAX_SIGNATURES = 100
_SIZE_RE = re.compile(r"^(0|[1-9][0-9]*)$")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


# ------------------------------------------------------------------------------- keys
def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key (from the operating system's random source).

    Examples
    --------
    >>> key = generate_signing_key()
    >>> len(key.public_key().public_bytes_raw())
    32
    """
    return Ed25519PrivateKey.generate()


def save_signing_key(
    key: Ed25519PrivateKey, path: str | os.PathLike, public_path: str | os.PathLike | None = None
) -> Path:
    """Write ``key`` as unencrypted PKCS#8 PEM (file mode 0600) and its public key beside it.

    The public key goes to ``public_path`` (default: ``path`` + ``.pub``). Returns the
    public key's path.
    """
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError(f"key must be an Ed25519PrivateKey, got {type(key).__name__}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(path, pem)  # mkstemp files are created 0600
    public_path = Path(public_path) if public_path is not None else Path(f"{path}.pub")
    atomic_write_bytes(public_path, _public_pem(key.public_key()))
    public_path.chmod(0o644)
    return public_path


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read_key_bytes(source: Any, what: str) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_bytes()
        except FileNotFoundError:
            raise ValidationError(f"{what} file not found: {source}") from None
    raise ValidationError(
        f"{what} must be a key object, PEM bytes or a path to a PEM file, "
        f"got {type(source).__name__}"
    )


def load_signing_key(source: Ed25519PrivateKey | bytes | str | os.PathLike) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a PEM file path or PEM bytes (or pass one through)."""
    if isinstance(source, Ed25519PrivateKey):
        return source
    data = _read_key_bytes(source, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"cannot read an unencrypted PEM private key from {_name(source)}: {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError(
            f"{_name(source)} holds a {type(key).__name__}; checkpoints need an Ed25519 key "
            "(create one with `openattrib ledger keygen --out KEY.pem`)"
        )
    return key


def load_public_key(source: Any) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, raw 32 bytes, PEM bytes or a PEM file path.

    A private key (object or PEM) is accepted too; its public half is returned.
    """
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        return source.public_key()
    data = _read_key_bytes(source, "public key")
    if len(data) == 32 and not isinstance(source, (str, os.PathLike)):
        return Ed25519PublicKey.from_public_bytes(data)
    if b"PRIVATE KEY" in data:
        return load_signing_key(data).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"cannot read a PEM public key from {_name(source)}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError(f"{_name(source)} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _name(source: Any) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else "the given bytes"


def _check_key_name(name: Any) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() or c == "+" for c in name):
        raise ValidationError(
            f"key name {name!r} is invalid: it must be non-empty, without spaces or '+' "
            "(for example 'example.com/my-ledger')"
        )
    if _CONTROL_RE.search(name):
        raise ValidationError(f"key name {name!r} contains control characters")
    return name


def key_id(name: str, public_key: Any) -> int:
    """Signed-note key ID: first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || pubkey)``."""
    raw = load_public_key(public_key).public_bytes_raw()
    digest = hashlib.sha256(_check_key_name(name).encode() + b"\n" + bytes([_ED25519]) + raw)
    return int.from_bytes(digest.digest()[:4], "big")


def note_verifier_key(name: str, public_key: Any) -> str:
    """The ``name+hexid+base64`` verifier key string used by Go's sumdb/note and witnesses."""
    raw = load_public_key(public_key).public_bytes_raw()
    encoded = base64.b64encode(bytes([_ED25519]) + raw).decode()
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def _split_note_key(text: str, parts: int, what: str) -> list[str]:
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise ValidationError(f"malformed {what} {text!r}")
    return fields


def parse_note_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a ``name+hexid+base64(0x01 || pubkey)`` verifier key; checks the key ID."""
    name, hex_id, encoded = _split_note_key(vkey, 3, "verifier key")
    raw = _b64(encoded, "verifier key")
    if len(raw) != 33 or raw[0] != _ED25519:
        raise ValidationError(f"verifier key {vkey!r} is not an Ed25519 (type 0x01) key")
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if f"{key_id(name, key):08x}" != hex_id.lower():
        raise ValidationError(f"verifier key {vkey!r} has a key ID that does not match its key")
    return name, key


def parse_note_signer_key(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """Parse a ``PRIVATE+KEY+name+hexid+base64(0x01 || seed)`` signer key; checks the ID."""
    fields = _split_note_key(skey, 5, "signer key")
    if fields[:2] != ["PRIVATE", "KEY"]:
        raise ValidationError("signer key must start with 'PRIVATE+KEY+'")
    name, hex_id, encoded = fields[2:]
    raw = _b64(encoded, "signer key")
    if len(raw) != 33 or raw[0] != _ED25519:
        raise ValidationError("signer key is not an Ed25519 (type 0x01) key")
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if f"{key_id(name, key):08x}" != hex_id.lower():
        raise ValidationError("signer key has a key ID that does not match its key")
    return name, key


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VerificationError(f"{what}: {text[:40]!r} is not valid base64") from None


# ------------------------------------------------------------------------ signed notes
@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: key name, 32-bit key ID, signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"\u2014 {self.name} {base64.b64encode(blob).decode()}\n"


def _check_note_text(text: str) -> str:
    if not isinstance(text, str):
        raise ValidationError(f"note text must be str, got {type(text).__name__}")
    if not text.endswith("\n") or _CONTROL_RE.search(text):
        raise VerificationError(
            "malformed note: text must end with a newline and contain no control characters"
        )
    return text


def _sign(text: str, private_key: Ed25519PrivateKey, key_name: str) -> NoteSignature:
    sig = private_key.sign(text.encode("utf-8"))
    return NoteSignature(_check_key_name(key_name), key_id(key_name, private_key), sig)


def sign_note(text: str, private_key: Any, key_name: str) -> str:
    """Sign note ``text`` (ending in a newline) with Ed25519; returns the signed note.

    Examples
    --------
    >>> key = generate_signing_key()
    >>> note = sign_note("hello\\n", key, "example.com/k")
    >>> open_note(note, key, "example.com/k")
    'hello\\n'
    """
    key = load_signing_key(private_key)
    return _check_note_text(text) + "\n" + _sign(text, key, key_name).line()


def _split_note(message: str) -> tuple[str, list[NoteSignature]]:
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("malformed note: not valid UTF-8") from None
    if not isinstance(message, str):
        raise ValidationError(f"a signed note must be str, got {type(message).__name__}")
    if _CONTROL_RE.search(message) or not message.endswith("\n"):
        raise VerificationError(
            "malformed note: it must end with a newline and contain no control characters"
        )
    split = message.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line before the signature lines")
    text, lines = message[: split + 1], message[split + 2 :]
    signatures = []
    for line in lines[:-1].split("\n"):
        match = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if not match or "+" in match.group(1):
            raise VerificationError(f"malformed signature line {line[:60]!r}")
        blob = _b64(match.group(2), "signature")
        if len(blob) < 5:
            raise VerificationError(f"malformed signature line {line[:60]!r}: too short")
        signatures.append(NoteSignature(match.group(1), int.from_bytes(blob[:4], "big"), blob[4:]))
    if len(signatures) > _MAX_SIGNATURES:
        raise VerificationError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    return text, signatures


def _verify_signatures(
    text: str, signatures: list[NoteSignature], public_key: Any, key_name: str
) -> None:
    key = load_public_key(public_key)
    wanted = key_id(key_name, key)
    known = [s for s in signatures if s.name == key_name and s.key_id == wanted]
    if not known:
        raise VerificationError(
            f"the note carries no signature by key {key_name}+{wanted:08x}; "
            "check the public key and the key name (the checkpoint origin by default)"
        )
    for sig in known:
        try:
            key.verify(sig.signature, text.encode("utf-8"))
        except InvalidSignature:
            raise VerificationError(
                f"invalid signature for key {key_name}+{wanted:08x}: the note was altered "
                "or signed by another key"
            ) from None


def open_note(message: str, public_key: Any, key_name: str) -> str:
    """Verify a signed note's signature by ``key_name``; returns the note text.

    Signatures by other keys are ignored (as the signed-note spec requires); raises
    :class:`VerificationError` when the key's signature is missing or invalid.
    """
    text, signatures = _split_note(message)
    _verify_signatures(text, signatures, public_key, _check_key_name(key_name))
    return text


# ------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin`` (log name), ``size`` (leaves) and RFC 6962 ``root``.

    ``text`` renders the C2SP checkpoint (a signed note when ``signatures`` is non-empty).

    Examples
    --------
    >>> cp = Checkpoint("example.com/log", 0, merkle.EMPTY_ROOT)
    >>> print(cp.body, end="")
    example.com/log
    0
    47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.origin, str)
            or not self.origin
            or _CONTROL_RE.search(self.origin + "".join(self.extensions))
            or "\n" in self.origin
        ):
            raise ValidationError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValidationError(f"checkpoint size must be a non-negative int, got {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != merkle.HASH_SIZE:
            raise ValidationError("checkpoint root must be a 32-byte hash")
        if any(not e or "\n" in e for e in self.extensions):
            raise ValidationError("checkpoint extension lines must be non-empty single lines")

    @property
    def body(self) -> str:
        """The note text that is signed: origin, size, base64 root (and extension lines)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @property
    def text(self) -> str:
        """The checkpoint as published: the body, then a blank line and signature lines."""
        if not self.signatures:
            return self.body
        return self.body + "\n" + "".join(s.line() for s in self.signatures)

    def sign(self, private_key: Any, key_name: str | None = None) -> Checkpoint:
        """A copy signed by ``private_key`` under ``key_name`` (default: the origin)."""
        key = load_signing_key(private_key)
        signature = _sign(self.body, key, key_name or self.origin)
        others = tuple(
            s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id)
        )
        return replace(self, signatures=(*others, signature))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (root hex) including the published text."""
        return {
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "text": self.text,
        }

    @classmethod
    def parse(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint (signed note or bare body) **without** checking signatures.

        Use :func:`verify_checkpoint` for anything you did not produce yourself.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="strict")
        if "\n\n" in text:
            body, signatures = _split_note(text)
        else:
            body, signatures = _check_note_text(text), []
        lines = body[:-1].split("\n")
        if len(lines) < 3 or not lines[0] or any(not line for line in lines):
            raise VerificationError(
                "malformed checkpoint: need origin, tree size and root hash lines, none empty"
            )
        if not _SIZE_RE.match(lines[1]):
            raise VerificationError(f"malformed checkpoint: tree size {lines[1][:30]!r}")
        root = _b64(lines[2], "checkpoint root hash")
        if len(root) != merkle.HASH_SIZE:
            raise VerificationError(f"malformed checkpoint: root hash has {len(root)} bytes")
        return cls(lines[0], int(lines[1]), root, tuple(lines[3:]), tuple(signatures))


def verify_checkpoint(
    text: str | bytes, public_key: Any, *, key_name: str | None = None
) -> Checkpoint:
    """Parse a signed checkpoint and verify its Ed25519 signature; returns the checkpoint.

    Parameters
    ----------
    text : str
        The checkpoint as published (signed note).
    public_key : key, bytes or path
        The log's Ed25519 public key (object, raw 32 bytes, PEM bytes or PEM file path).
    key_name : str, optional
        Name the signature is made under; defaults to the checkpoint's origin.

    Raises :class:`VerificationError` when the key's signature is missing or invalid.

    Examples
    --------
    >>> key = generate_signing_key()
    >>> cp = Checkpoint("example.com/log", 0, merkle.EMPTY_ROOT).sign(key)
    >>> verify_checkpoint(cp.text, key.public_key()).size
    0
    """
    checkpoint = Checkpoint.parse(text)
    name = _check_key_name(key_name or checkpoint.origin)
    _verify_signatures(checkpoint.body, list(checkpoint.signatures), public_key, name)
    return checkpoint


def verify_checkpoint_consistency(old: Checkpoint, new: Checkpoint, proof: Any) -> bool:
    """True when the ``new`` checkpoint's tree extends the ``old`` one's (append-only).

    ``proof`` is a :class:`~openattrib.ledger.merkle.ConsistencyProof` (or a list of hashes)
    from ``old.size`` to ``new.size``. Verify both checkpoints' signatures first.
    Raises :class:`VerificationError` for mismatched logs, sizes or a malformed proof.
    """
    if old.origin != new.origin:
        raise VerificationError(
            f"checkpoints are from different logs ({old.origin!r} and {new.origin!r})"
        )
    path = _proof_path(proof, ("old_size", old.size), ("new_size", new.size))
    return merkle.verify_consistency(old.size, new.size, old.root, new.root, path)


def verify_inclusion(proof: Any, checkpoint: Checkpoint, data: bytes | None = None) -> bool:
    """True when ``proof`` shows its leaf is in the tree committed to by ``checkpoint``.

    ``proof`` is an :class:`~openattrib.ledger.merkle.InclusionProof` for the checkpoint's
    size (``Ledger.inclusion_proof(i, size=checkpoint.size)``). With ``data`` (the entry's
    raw bytes) the leaf hash is recomputed too. For raw hashes use
    :func:`openattrib.ledger.merkle.verify_inclusion`.

    Examples
    --------
    >>> entries = [b"a", b"b", b"c"]
    >>> proof = merkle.InclusionProof(1, 3, merkle.leaf_hash(b"b"),
    ...                               tuple(merkle.inclusion_proof(entries, 1)))
    >>> verify_inclusion(proof, Checkpoint("example.com/log", 3, merkle.root(entries)), b"b")
    True
    """
    if not isinstance(proof, merkle.InclusionProof):
        raise ValidationError(
            f"proof must be an InclusionProof (from Ledger.inclusion_proof), got {type(proof).__name__}"
        )
    if proof.size != checkpoint.size:
        raise VerificationError(
            f"the proof is for a tree of size {proof.size} but the checkpoint has size "
            f"{checkpoint.size}; request the proof at that size: "
            f"inclusion_proof({proof.index}, size={checkpoint.size})"
        )
    if data is not None and merkle.leaf_hash(data) != proof.leaf_hash:
        return False
    return proof.verify(checkpoint.root)


def _proof_path(proof: Any, *sizes: tuple[str, int]) -> list[bytes]:
    if isinstance(proof, merkle.ConsistencyProof):
        for attr, size in sizes:
            if getattr(proof, attr) != size:
                raise VerificationError(
                    f"consistency proof has {attr}={getattr(proof, attr)} but the checkpoint "
                    f"has size {size}"
                )
        return list(proof.path)
    return list(proof)
