"""Proof objects (what a ledger hands out) and their verification against checkpoints.

An :class:`InclusionProof` shows one entry is in the log; a :class:`ConsistencyProof` shows a
later tree extends an earlier one (the log only appended). Both serialise to JSON with hex
hashes. :func:`verify_inclusion` and :func:`verify_checkpoint_consistency` check them against
(signed) :class:`~openattrib.ledger.checkpoint.Checkpoint` objects; the raw-hash verifiers
live in :mod:`openattrib.ledger.merkle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError, VerificationError
from . import merkle
from .merkle import check_hash, check_size

__all__ = [
    "BatchProof",
    "InclusionProof",
    "ConsistencyProof",
    "verify_inclusion",
    "verify_checkpoint_consistency",
    "verify_batch_inclusion",
]


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the entry with ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves.

    Verify it against a (signed) checkpoint with :func:`openattrib.ledger.verify_inclusion`.
    """

    index: int
    size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]

    def verify(self, root: bytes) -> bool:
        """True when the proof leads to ``root``."""
        return merkle.verify_inclusion(self.leaf_hash, self.index, self.size, list(self.path), root)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (hashes as lower-case hex)."""
        return {
            "type": "rfc6962-inclusion",
            "index": self.index,
            "size": self.size,
            "leaf_hash": self.leaf_hash.hex(),
            "path": [h.hex() for h in self.path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InclusionProof:
        """Inverse of :meth:`to_dict`; raises :class:`VerificationError` on bad fields."""
        try:
            return cls(
                index=check_size(data["index"], "index"),
                size=check_size(data["size"], "size"),
                leaf_hash=check_hash(bytes.fromhex(data["leaf_hash"]), "leaf_hash"),
                path=tuple(bytes.fromhex(h) for h in data["path"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, VerificationError):
                raise
            raise VerificationError(f"malformed inclusion proof: {exc!r}") from None


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of ``new_size`` leaves is an extension of the first ``old_size``."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> bool:
        """True when the proof links ``old_root`` to ``new_root``."""
        return merkle.verify_consistency(
            self.old_size, self.new_size, old_root, new_root, list(self.path)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (hashes as lower-case hex)."""
        return {
            "type": "rfc6962-consistency",
            "old_size": self.old_size,
            "new_size": self.new_size,
            "path": [h.hex() for h in self.path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsistencyProof:
        """Inverse of :meth:`to_dict`; raises :class:`VerificationError` on bad fields."""
        try:
            return cls(
                old_size=check_size(data["old_size"], "old_size"),
                new_size=check_size(data["new_size"], "new_size"),
                path=tuple(bytes.fromhex(h) for h in data["path"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, VerificationError):
                raise
            raise VerificationError(f"malformed consistency proof: {exc!r}") from None


@dataclass(frozen=True)
class BatchProof:
    """Proof that one leaf is leaf ``leaf_index`` of the batch recorded in ledger entry
    ``entry.index``: the leaf's RFC 6962 path to the batch root (``path``, ``batch_size``
    leaves) and the batch entry's inclusion proof in the log (``entry``, with the entry's
    bytes ``entry_data``, which hold the root)."""

    leaf_index: int
    batch_size: int
    path: tuple[bytes, ...]
    entry: InclusionProof
    entry_data: bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (hashes as hex, the entry bytes as UTF-8 text)."""
        return {
            "type": "openattrib-batch-inclusion",
            "leaf_index": self.leaf_index,
            "batch_size": self.batch_size,
            "path": [h.hex() for h in self.path],
            "entry": self.entry.to_dict(),
            "entry_data": self.entry_data.decode("utf-8"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchProof:
        """Inverse of :meth:`to_dict`; raises :class:`VerificationError` on bad fields."""
        try:
            return cls(
                leaf_index=check_size(data["leaf_index"], "leaf_index"),
                batch_size=check_size(data["batch_size"], "batch_size"),
                path=tuple(bytes.fromhex(h) for h in data["path"]),
                entry=InclusionProof.from_dict(data["entry"]),
                entry_data=str(data["entry_data"]).encode("utf-8"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, VerificationError):
                raise
            raise VerificationError(f"malformed batch proof: {exc!r}") from None


def verify_batch_inclusion(proof: Any, checkpoint: Any, data: bytes) -> bool:
    """True when ``data`` is leaf ``proof.leaf_index`` of a batch entry of the log
    committed to by ``checkpoint``.

    Checks the batch entry is in the log (its bytes hash to the proven leaf), that it is a
    batch of ``proof.batch_size`` leaves, and that ``data`` hashes up to its root.
    """
    import json

    if not isinstance(proof, BatchProof):
        raise ValidationError(
            f"proof must be a BatchProof (from Ledger.batch_proof), got {type(proof).__name__}"
        )
    if not verify_inclusion(proof.entry, checkpoint, proof.entry_data):
        return False
    try:
        record = json.loads(proof.entry_data.decode("utf-8"))
        root = bytes.fromhex(record["root"])
        size = record["size"]
        kind = record["kind"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"the proven entry is not a batch record ({exc!r})") from None
    if kind != "batch" or size != proof.batch_size:
        raise VerificationError(
            f"the proven entry is a {kind!r} record of size {size!r}, not a batch of "
            f"{proof.batch_size} leaves"
        )
    return merkle.verify_inclusion(
        merkle.leaf_hash(data), proof.leaf_index, proof.batch_size, list(proof.path), root
    )


def verify_checkpoint_consistency(old: Any, new: Any, proof: Any) -> bool:
    """True when the ``new`` checkpoint's tree extends the ``old`` one's (append-only).

    ``proof`` is a :class:`~openattrib.ledger.ConsistencyProof` (or a list of hashes)
    from ``old.size`` to ``new.size``. Verify both checkpoints' signatures first.
    Raises :class:`VerificationError` for mismatched logs, sizes or a malformed proof.
    """
    if old.origin != new.origin:
        raise VerificationError(
            f"checkpoints are from different logs ({old.origin!r} and {new.origin!r})"
        )
    path = _proof_path(proof, ("old_size", old.size), ("new_size", new.size))
    return merkle.verify_consistency(old.size, new.size, old.root, new.root, path)


def verify_inclusion(proof: Any, checkpoint: Any, data: bytes | None = None) -> bool:
    """True when ``proof`` shows its leaf is in the tree committed to by ``checkpoint``.

    ``proof`` is an :class:`~openattrib.ledger.InclusionProof` for the checkpoint's
    size (``Ledger.inclusion_proof(i, size=checkpoint.size)``). With ``data`` (the entry's
    raw bytes) the leaf hash is recomputed too. For raw hashes use
    :func:`openattrib.ledger.merkle.verify_inclusion`.

    Examples
    --------
    >>> from openattrib.ledger import Checkpoint
    >>> entries = [b"a", b"b", b"c"]
    >>> proof = InclusionProof(1, 3, merkle.leaf_hash(b"b"), tuple(merkle.inclusion_proof(entries, 1)))
    >>> verify_inclusion(proof, Checkpoint("example.com/log", 3, merkle.root(entries)), b"b")
    True
    """
    if not isinstance(proof, InclusionProof):
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
    if isinstance(proof, ConsistencyProof):
        for attr, size in sizes:
            if getattr(proof, attr) != size:
                raise VerificationError(
                    f"consistency proof has {attr}={getattr(proof, attr)} but the checkpoint "
                    f"has size {size}"
                )
        return list(proof.path)
    return list(proof)
