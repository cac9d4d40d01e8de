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

Keys are Ed25519 (:mod:`openattrib.ledger.keys`). A log must never sign two inconsistent
checkpoints: :meth:`Ledger.checkpoint
<openattrib.ledger.Ledger.checkpoint>` proves each new signed checkpoint consistent with the
previous one, and :func:`~openattrib.ledger.proofs.verify_checkpoint_consistency` lets anyone
check it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ValidationError, VerificationError
from . import merkle
from .keys import CONTROL_RE, b64decode, check_key_name, key_id, load_public_key, load_signing_key

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "sign_note",
    "open_note",
    "verify_checkpoint",
]

_MAX_SIGNATURES = 100
_SIZE_RE = re.compile(r"^(0|[1-9][0-9]*)$")


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
    if not text.endswith("\n") or CONTROL_RE.search(text):
        raise VerificationError(
            "malformed note: text must end with a newline and contain no control characters"
        )
    return text


def _sign(text: str, private_key: Ed25519PrivateKey, key_name: str) -> NoteSignature:
    sig = private_key.sign(text.encode("utf-8"))
    return NoteSignature(check_key_name(key_name), key_id(key_name, private_key), sig)


def sign_note(text: str, private_key: Any, key_name: str) -> str:
    """Sign note ``text`` (ending in a newline) with Ed25519; returns the signed note.

    Examples
    --------
    >>> from openattrib.ledger.keys import generate_signing_key
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
    if CONTROL_RE.search(message) or not message.endswith("\n"):
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
        blob = b64decode(match.group(2), "signature")
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
    _verify_signatures(text, signatures, public_key, check_key_name(key_name))
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
            or CONTROL_RE.search(self.origin + "".join(self.extensions))
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
        root = b64decode(lines[2], "checkpoint root hash")
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
    >>> from openattrib.ledger.keys import generate_signing_key
    >>> key = generate_signing_key()
    >>> cp = Checkpoint("example.com/log", 0, merkle.EMPTY_ROOT).sign(key)
    >>> verify_checkpoint(cp.text, key.public_key()).size
    0
    """
    checkpoint = Checkpoint.parse(text)
    name = check_key_name(key_name or checkpoint.origin)
    _verify_signatures(checkpoint.body, list(checkpoint.signatures), public_key, name)
    return checkpoint
