"""RFC 6962 Merkle tree hashing, proofs and proof verification, as pure functions.

The tree is the one of Certificate Transparency (RFC 6962 section 2.1, kept in RFC 9162
section 2.1): leaves are hashed as ``SHA-256(0x00 || entry)``, interior nodes as
``SHA-256(0x01 || left || right)``, the tree over ``n`` entries splits at the largest power
of two smaller than ``n``, and the empty tree hashes to ``SHA-256("")``. Proofs are lists of
32-byte hashes ordered from the leaf up, exactly as RFC 6962 ``PATH`` and ``PROOF`` define
them, so they interoperate with other transparency-log tooling.

Every algorithm here is iterative: a tree is addressed through the hashes of its *perfect*
subtrees (``2**level`` leaves starting at a multiple of ``2**level``), which an in-memory
:class:`LevelTree` computes level by level and the SQLite ledger stores, so a proof in a log
of a million entries needs only ``O(log(n)**2)`` hash look-ups.

Verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2. They return ``False`` when hashes
do not match and raise :class:`~openattrib.errors.VerificationError` for malformed input
(a hash that is not 32 bytes, impossible sizes, a proof with too many or too few hashes);
they never return ``True`` for a bad proof.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ValidationError, VerificationError

__all__ = [
    "HASH_SIZE",
    "check_hash",
    "check_size",
    "EMPTY_ROOT",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaf_hashes",
    "inclusion_proof",
    "consistency_proof",
    "verify_inclusion",
    "verify_consistency",
    "root_from_inclusion_proof",
    "inclusion_proof_length",
    "consistency_proof_length",
    "LevelTree",
    "perfect_pieces",
    "tree_root",
    "tree_inclusion_proof",
    "tree_consistency_proof",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

PerfectHash = Callable[[int, int], bytes]
"""``perfect(level, index)``: hash of the leaves ``[index * 2**level, (index + 1) * 2**level)``."""


# ----------------------------------------------------------------------------- hashing
def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash ``SHA-256(0x00 || data)`` of one raw entry.

    Examples
    --------
    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(b"\x00" + _as_bytes(data, "data")).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``.

    Examples
    --------
    >>> len(node_hash(bytes(32), bytes(32)))
    32
    """
    return hashlib.sha256(b"\x01" + check_hash(left, "left") + check_hash(right, "right")).digest()


def _node(left: bytes, right: bytes) -> bytes:
    # Trusted internal fast path (inputs already checked).
    return hashlib.sha256(b"\x01" + left + right).digest()


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ValidationError(f"{name} must be bytes, got {type(value).__name__}")


def check_hash(value: Any, name: str) -> bytes:
    """``value`` as a ``HASH_SIZE``-byte hash, or a VerificationError naming ``name``."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise VerificationError(
            f"{name} must be a {HASH_SIZE}-byte hash (bytes), got {type(value).__name__}"
        )
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise VerificationError(
            f"{name} must be a {HASH_SIZE}-byte SHA-256 hash, got {len(value)} bytes"
        )
    return value


def check_size(value: Any, name: str) -> int:
    """``value`` as a non-negative int tree size or index, or a VerificationError naming ``name``."""
    if isinstance(value, bool):
        raise VerificationError(f"{name} must be a non-negative integer, got a bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise VerificationError(
            f"{name} must be a non-negative integer, got {type(value).__name__}"
        ) from None
    if value < 0:
        raise VerificationError(f"{name} must be a non-negative integer, got {value}")
    return value


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# ------------------------------------------------------------ tree shape (no hashing)
def perfect_pieces(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up the leaves ``[begin, end)``.

    Left to right and decreasing in size; for every subtree that occurs in RFC 6962 trees and
    proofs (``begin`` is a multiple of the smallest power of two >= ``end - begin``).
    """
    pieces = []
    pos = begin
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos:
            level = min(level, (pos & -pos).bit_length() - 1)
        pieces.append((level, pos >> level))
        pos += 1 << level
    return pieces


def _range_hash(perfect: PerfectHash, begin: int, end: int) -> bytes:
    """MTH of the leaves ``[begin, end)``: its perfect subtrees folded from the right.

    This is what the recursive RFC 6962 definition gives, since every split point is the
    largest power of two below the range size.
    """
    pieces = [perfect(level, index) for level, index in perfect_pieces(begin, end)]
    result = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = _node(piece, result)
    return result


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Subtree ranges whose hashes form RFC 6962 ``PATH(index, D[size])``, leaf first."""
    ranges = []
    begin, end = 0, size
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Subtree ranges whose hashes form RFC 6962 ``PROOF(old_size, D[new_size])``."""
    if old_size == 0 or old_size == new_size:
        return []
    ranges = []
    begin, end, m, complete = 0, new_size, old_size, True
    while True:
        n = end - begin
        if m == n:
            if not complete:
                ranges.append((begin, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def inclusion_proof_length(index: int, size: int) -> int:
    """Number of hashes in the inclusion proof of leaf ``index`` in a tree of ``size`` leaves."""
    return len(_inclusion_ranges(index, size))


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Number of hashes in the consistency proof between trees of ``old_size`` and ``new_size``."""
    return len(_consistency_ranges(old_size, new_size))


# -------------------------------------------------------------- proofs from hash sources
def tree_root(perfect: PerfectHash, size: int) -> bytes:
    """Root of the first ``size`` leaves of a tree addressed by ``perfect(level, index)``."""
    return EMPTY_ROOT if size == 0 else _range_hash(perfect, 0, size)


def tree_inclusion_proof(perfect: PerfectHash, index: int, size: int) -> list[bytes]:
    """RFC 6962 ``PATH(index, D[size])`` from a perfect-subtree hash source."""
    if not 0 <= index < size:
        raise ValidationError(
            f"leaf index {index} is outside a tree of size {size}; use 0 <= index < size"
        )
    return [_range_hash(perfect, a, b) for a, b in _inclusion_ranges(index, size)]


def tree_consistency_proof(perfect: PerfectHash, old_size: int, new_size: int) -> list[bytes]:
    """RFC 6962 ``PROOF(old_size, D[new_size])`` from a perfect-subtree hash source."""
    if not 0 <= old_size <= new_size:
        raise ValidationError(
            f"cannot prove consistency from size {old_size} to size {new_size}; "
            "need 0 <= old_size <= new_size"
        )
    return [_range_hash(perfect, a, b) for a, b in _consistency_ranges(old_size, new_size)]


class LevelTree:
    """All perfect-subtree hashes of a list of leaf hashes, computed level by level.

    ``levels[0]`` are the leaf hashes; ``levels[l][k]`` is the hash of the leaves
    ``[k * 2**l, (k + 1) * 2**l)``; about ``2 n`` hashes in total.

    Examples
    --------
    >>> tree = LevelTree([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
    >>> tree.root() == root([b"a", b"b", b"c"])
    True
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        level = [check_hash(h, f"leaf_hashes[{i}]") for i, h in enumerate(leaf_hashes)]
        self.levels: list[list[bytes]] = [level]
        while len(level) >= 2:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def perfect(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self.perfect, self._size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return tree_inclusion_proof(self.perfect, index, self._size(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return tree_consistency_proof(self.perfect, old_size, self._size(new_size))

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValidationError(f"tree size {size} is outside 0..{self.size}")
        return size


def _entries_tree(entries: Sequence[bytes]) -> LevelTree:
    return LevelTree([leaf_hash(_as_bytes(e, f"entries[{i}]")) for i, e in enumerate(entries)])


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree head (MTH) of a list of leaf hashes."""
    return LevelTree(leaf_hashes).root()


def root(entries: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree head of raw entries (any size, ``SHA-256("")`` when empty).

    Examples
    --------
    >>> root([]).hex()[:12]
    'e3b0c44298fc'
    >>> root([b"x"]) == leaf_hash(b"x")
    True
    """
    return _entries_tree(entries).root()


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path (RFC 6962 ``PATH``) of ``entries[index]`` in the tree of all ``entries``.

    Examples
    --------
    >>> entries = [b"a", b"b", b"c"]
    >>> proof = inclusion_proof(entries, 2)
    >>> verify_inclusion(leaf_hash(b"c"), 2, 3, proof, root(entries))
    True
    """
    return _entries_tree(entries).inclusion_proof(index)


def consistency_proof(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof (RFC 6962 ``PROOF``) between the first ``old_size`` entries and all.

    Examples
    --------
    >>> entries = [b"a", b"b", b"c"]
    >>> proof = consistency_proof(entries, 2)
    >>> verify_consistency(2, 3, root(entries[:2]), root(entries), proof)
    True
    """
    return _entries_tree(entries).consistency_proof(old_size)


# ---------------------------------------------------------------------------- verify
def _proof(proof: Any, expected: int, what: str) -> list[bytes]:
    if isinstance(proof, (bytes, bytearray, str)) or not hasattr(proof, "__len__"):
        raise VerificationError(f"{what} must be a list of {HASH_SIZE}-byte hashes")
    hashes = [check_hash(h, f"{what}[{i}]") for i, h in enumerate(proof)]
    if len(hashes) != expected:
        raise VerificationError(
            f"{what} has {len(hashes)} hashes but this tree shape needs exactly {expected}; "
            "the proof is truncated, padded or for another index or size"
        )
    return hashes


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Root hash implied by an inclusion proof (RFC 9162 section 2.1.3.2).

    Raises :class:`VerificationError` for malformed input.
    """
    leaf = check_hash(leaf_hash, "leaf_hash")
    index, size = check_size(index, "index"), check_size(size, "size")
    if index >= size:
        raise VerificationError(
            f"leaf index {index} is not inside a tree of size {size} (need index < size)"
        )
    path = _proof(proof, inclusion_proof_length(index, size), "inclusion proof")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:  # pragma: no cover - excluded by the length check
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Returns ``False`` when the hashes do not match; raises :class:`VerificationError` for
    malformed input (hash lengths, ``index >= size``, wrong number of proof hashes).

    Examples
    --------
    >>> entries = [b"a", b"b"]
    >>> verify_inclusion(leaf_hash(b"a"), 0, 2, [leaf_hash(b"b")], root(entries))
    True
    >>> verify_inclusion(leaf_hash(b"a"), 0, 2, [leaf_hash(b"x")], root(entries))
    False
    """
    expected = check_hash(root, "root")
    return root_from_inclusion_proof(leaf_hash, index, size, proof) == expected


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree of ``new_size`` leaves extends the tree of ``old_size`` leaves.

    Implements RFC 9162 section 2.1.4.2. Equal sizes need equal roots and an empty proof;
    ``old_size == 0`` needs an empty proof and ``old_root`` equal to the empty-tree hash.
    Returns ``False`` when hashes do not match; raises :class:`VerificationError` for
    malformed input (hash lengths, ``old_size > new_size``, wrong number of proof hashes).

    Examples
    --------
    >>> entries = [b"a", b"b", b"c", b"d", b"e"]
    >>> proof = consistency_proof(entries, 3)
    >>> verify_consistency(3, 5, root(entries[:3]), root(entries), proof)
    True
    """
    old_size, new_size = check_size(old_size, "old_size"), check_size(new_size, "new_size")
    first, second = check_hash(old_root, "old_root"), check_hash(new_root, "new_root")
    if old_size > new_size:
        raise VerificationError(
            f"old_size {old_size} is larger than new_size {new_size}; a log cannot shrink"
        )
    path = _proof(proof, consistency_proof_length(old_size, new_size), "consistency proof")
    if old_size == new_size:
        return first == second
    if old_size == 0:
        return first == EMPTY_ROOT
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is a node itself
        path = [first, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # pragma: no cover - excluded by the length check
            raise VerificationError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first and sr == second
