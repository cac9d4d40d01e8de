"""Ed25519 keys for signed checkpoints: generation, PEM files and signed-note key strings.

Keys come from ``cryptography``. Private keys are stored as unencrypted PKCS#8 PEM (file mode
0600), public keys as SubjectPublicKeyInfo PEM. Signed-note key IDs and the
``name+hexid+base64`` key strings follow c2sp.org/signed-note, as Go's
``golang.org/x/mod/sumdb/note`` and transparency-log witnesses use them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._io import atomic_write_bytes, canonical_json, read_json
from ..errors import ValidationError, VerificationError

__all__ = [
    "generate_signing_key",
    "save_signing_key",
    "load_signing_key",
    "load_public_key",
    "key_id",
    "note_verifier_key",
    "parse_note_verifier_key",
    "parse_note_signer_key",
    "signer_state_path",
    "read_signer_state",
    "write_signer_state",
]

STATE_FORMAT = "openattrib.signer-state/1"

ED25519 = 0x01  # signed-note signature type for Ed25519
CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


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
    atomic_write_bytes(Path(path), pem, mode=0o600)
    public_path = Path(public_path) if public_path is not None else Path(f"{path}.pub")
    atomic_write_bytes(public_path, _public_pem(key.public_key()))
    return public_path


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read_key_bytes(source: Any, what: str) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        if Path(source).is_dir():
            raise ValidationError(f"{what} path {str(source)!r} is a directory, not a PEM file")
        try:
            return Path(source).read_bytes()
        except FileNotFoundError:
            raise ValidationError(f"{what} file not found: {source}") from None
        except OSError as exc:
            raise ValidationError(f"cannot read {what} file {source}: {exc.strerror}") from None
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


def check_key_name(name: Any) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() or c == "+" for c in name):
        raise ValidationError(
            f"key name {name!r} is invalid: it must be non-empty, without spaces or '+' "
            "(for example 'example.com/my-ledger')"
        )
    if CONTROL_RE.search(name):
        raise ValidationError(f"key name {name!r} contains control characters")
    return name


def key_id(name: str, public_key: Any) -> int:
    """Signed-note key ID: first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || pubkey)``."""
    raw = load_public_key(public_key).public_bytes_raw()
    digest = hashlib.sha256(check_key_name(name).encode() + b"\n" + bytes([ED25519]) + raw)
    return int.from_bytes(digest.digest()[:4], "big")


def note_verifier_key(name: str, public_key: Any) -> str:
    """The ``name+hexid+base64`` verifier key string used by Go's sumdb/note and witnesses."""
    raw = load_public_key(public_key).public_bytes_raw()
    encoded = base64.b64encode(bytes([ED25519]) + raw).decode()
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def _split_note_key(text: str, parts: int, what: str) -> list[str]:
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise ValidationError(f"malformed {what} {text!r}")
    return fields


def parse_note_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a ``name+hexid+base64(0x01 || pubkey)`` verifier key; checks the key ID."""
    name, hex_id, encoded = _split_note_key(vkey, 3, "verifier key")
    raw = b64decode(encoded, "verifier key")
    if len(raw) != 33 or raw[0] != ED25519:
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
    raw = b64decode(encoded, "signer key")
    if len(raw) != 33 or raw[0] != ED25519:
        raise ValidationError("signer key is not an Ed25519 (type 0x01) key")
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if f"{key_id(name, key):08x}" != hex_id.lower():
        raise ValidationError("signer key has a key ID that does not match its key")
    return name, key


def b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VerificationError(f"{what}: {text[:40]!r} is not valid base64") from None


# ------------------------------------------------------------------- signer-side state
def signer_state_path(key: Any, state: str | os.PathLike | None) -> Path | None:
    """Where the signer keeps the last head it signed: ``state``, else ``KEY.state``."""
    if state is not None:
        return Path(state)
    if isinstance(key, (str, os.PathLike)):
        return Path(f"{key}.state")
    return None


def read_signer_state(path: Path) -> dict[str, tuple[int, bytes]]:
    """``origin -> (size, root)`` of the last head signed per log (empty when no file yet)."""
    if not path.exists():
        return {}
    data = read_json(path, "signer state file")
    heads = data.get("heads") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("format") != STATE_FORMAT
        or not isinstance(heads, dict)
    ):
        raise ValidationError(
            f"{path} is not an openattrib signer state file (format {STATE_FORMAT!r}); it "
            "must not be edited by hand"
        )
    out = {}
    for origin, head in heads.items():
        size, root = (
            (head.get("size"), head.get("root")) if isinstance(head, dict) else (None, None)
        )
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or size < 0
            or not isinstance(root, str)
            or not re.fullmatch(r"[0-9a-f]{64}", root)
        ):
            raise ValidationError(f"{path}: the head recorded for {origin!r} is malformed")
        out[origin] = (size, bytes.fromhex(root))
    return out


def write_signer_state(path: Path, heads: dict[str, tuple[int, bytes]]) -> None:
    """Atomically record the last signed head of every log (file mode 0600)."""
    document = {
        "format": STATE_FORMAT,
        "heads": {o: {"size": n, "root": r.hex()} for o, (n, r) in sorted(heads.items())},
    }
    atomic_write_bytes(path, canonical_json(document) + b"\n", mode=0o600)
