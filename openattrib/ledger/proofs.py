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
    "InclusionProof",
    "ConsistencyProof",
    "verify_inclusion",
    "verify_checkpoint_consistency",
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
