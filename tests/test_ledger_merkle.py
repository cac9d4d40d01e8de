"""RFC 6962 Merkle hashing and proofs: published vectors, a reference implementation, properties.

Vectors: tests/data/rfc6962_vectors.json (transparency-dev/merkle and
google/certificate-transparency; sources named in the file). The reference implementation
below transcribes the recursive definitions of RFC 6962 section 2.1 (MTH, PATH, PROOF) and
is independent of the iterative code under test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openattrib.errors import ValidationError, VerificationError
from openattrib.ledger import merkle

DATA = Path(__file__).parent / "data" / "rfc6962_vectors.json"
VECTORS = json.loads(DATA.read_text())
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]
NODES = [[bytes.fromhex(h) for h in level] for level in VECTORS["node_hashes"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# ------------------------------------------------------------- reference (RFC 6962 text)
def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_split(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(d)) else ref_subproof(m, d, True)


def rejected(fn, *args) -> bool:
    """A verifier rejects when it returns False or raises VerificationError."""
    try:
        return fn(*args) is False
    except VerificationError:
        return True


# ------------------------------------------------------------------ published vectors
def test_hashes_of_the_reference_leaves_and_all_tree_sizes():
    assert merkle.leaf_hash(b"") == NODES[0][0]
    for n in range(9):
        assert merkle.root(LEAVES[:n]) == ROOTS[n], n
    assert merkle.root([]) == merkle.EMPTY_ROOT == ROOTS[0]
    tree = merkle.LevelTree([merkle.leaf_hash(x) for x in LEAVES])
    assert tree.levels == NODES  # every perfect subtree of the 8-leaf tree


@pytest.mark.parametrize(
    "case", VECTORS["inclusion_proofs"], ids=lambda c: f"{c['index']}of{c['size']}"
)
def test_inclusion_proof_vectors(case):
    entries, proof = LEAVES[: case["size"]], [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.inclusion_proof(entries, case["index"]) == proof
    leaf = merkle.leaf_hash(LEAVES[case["index"]])
    assert merkle.verify_inclusion(leaf, case["index"], case["size"], proof, ROOTS[case["size"]])


@pytest.mark.parametrize(
    "case", VECTORS["consistency_proofs"], ids=lambda c: f"{c['old_size']}to{c['new_size']}"
)
def test_consistency_proof_vectors(case):
    old, new = case["old_size"], case["new_size"]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert merkle.consistency_proof(LEAVES[:new], old) == proof
    assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def _expand(case) -> list[bytes]:
    hashes = [NODES[level][index] for level, index in case["nodes"]]
    if "rehash" in case:  # proof_test.go: nodes[begin:end] fold into one hash, later on the left
        begin, end = case["rehash"]
        acc = hashes[begin]
        for h in hashes[begin + 1 : end]:
            acc = merkle.node_hash(h, acc)
        hashes = hashes[:begin] + [acc] + hashes[end:]
    return hashes


@pytest.mark.parametrize(
    "case", VECTORS["inclusion_nodes"], ids=lambda c: f"{c['index']}of{c['size']}"
)
def test_inclusion_proof_node_vectors(case):
    assert merkle.inclusion_proof(LEAVES[: case["size"]], case["index"]) == _expand(case)


@pytest.mark.parametrize(
    "case", VECTORS["consistency_nodes"], ids=lambda c: f"{c['old_size']}to{c['new_size']}"
)
def test_consistency_proof_node_vectors(case):
    assert merkle.consistency_proof(LEAVES[: case["new_size"]], case["old_size"]) == _expand(case)


def test_impossible_proof_requests_are_refused():
    for size, index in VECTORS["inclusion_errors_size_index"]:
        with pytest.raises(ValidationError, match="outside a tree"):
            merkle.inclusion_proof(LEAVES[:size], index)
    for old, new in VECTORS["consistency_errors_old_new"]:
        with pytest.raises(ValidationError):
            merkle.consistency_proof(LEAVES[:new], old)


# ------------------------------------------------------ corrupted proofs (verify_test.go)
def inclusion_probes(index, size, proof, root, leaf):
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, root, merkle.leaf_hash(b"WrongLeaf"), proof),
        (index, size, merkle.EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, root, leaf, flipped))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


def consistency_probes(old, new, old_root, new_root, proof):
    probes = [
        (old - 1, new, old_root, new_root, proof),
        (old + 1, new, old_root, new_root, proof),
        (old ^ 2, new, old_root, new_root, proof),
        (old, new * 2, old_root, new_root, proof),
        (old, new // 2, old_root, new_root, proof),
        (old, new, b"WrongRoot", new_root, proof),
        (old, new, old_root, b"WrongRoot", proof),
        (old, new, SOME_HASH, new_root, proof),
        (old, new, old_root, SOME_HASH, proof),
        (old, new, new_root, old_root, proof),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*proof, b""]),
        (old, new, old_root, new_root, [*proof, old_root]),
        (old, new, old_root, new_root, [*proof, new_root]),
        (old, new, old_root, new_root, [b"", *proof]),
        (old, new, old_root, new_root, [old_root, *proof]),
        (old, new, old_root, new_root, [new_root, *proof]),
        (old, new, old_root, new_root, [proof[0], *proof]),
        (old, new, old_root, new_root, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((old, new, old_root, new_root, flipped))
    return probes


def test_corrupted_inclusion_proofs_of_the_vectors_are_rejected():
    for case in VECTORS["inclusion_proofs"]:
        index, size = case["index"], case["size"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        leaf = merkle.leaf_hash(LEAVES[index])
        for probe in inclusion_probes(index, size, proof, ROOTS[size], leaf):
            if probe[:2] == (index, size) and probe[2:] == (ROOTS[size], leaf, proof):
                continue  # a probe that happens to equal the original (e.g. size // 2 == size)
            i, s, root, lh, p = probe
            assert rejected(merkle.verify_inclusion, lh, i, s, p, root), (case, probe[:2])


def test_corrupted_consistency_proofs_of_the_vectors_are_rejected():
    for case in VECTORS["consistency_proofs"]:
        old, new = case["old_size"], case["new_size"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        if not proof:
            continue
        for probe in consistency_probes(old, new, ROOTS[old], ROOTS[new], proof):
            assert rejected(merkle.verify_consistency, *probe), (case, probe[:2])


def test_degenerate_inclusion_requests_are_rejected():
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        assert rejected(merkle.verify_inclusion, SOME_HASH, index, size, [], b"")
        assert rejected(merkle.verify_inclusion, b"", index, size, [], merkle.EMPTY_ROOT)
        assert rejected(merkle.verify_inclusion, SOME_HASH, index, size, [], merkle.EMPTY_ROOT)
    leaf = merkle.leaf_hash(b"data")  # a one-entry tree: root == leaf, empty proof
    assert merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    assert rejected(merkle.verify_inclusion, leaf, 0, 1, [], b"")
    assert rejected(merkle.verify_inclusion, b"", 0, 1, [], leaf)


def test_trivial_and_degenerate_consistency_cases():
    r = SOME_HASH
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, r, [])
    assert merkle.verify_consistency(1, 1, r, r, [])
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, r, []) is False  # roots differ
    assert merkle.verify_consistency(1, 1, merkle.EMPTY_ROOT, r, []) is False
    assert merkle.verify_consistency(0, 5, SOME_HASH, r, []) is False  # not the empty-tree hash
    for old, new in [(1, 0), (2, 1)]:  # time travel to the past
        with pytest.raises(VerificationError, match="cannot shrink"):
            merkle.verify_consistency(old, new, r, r, [])
    with pytest.raises(VerificationError, match="needs exactly 1"):
        merkle.verify_consistency(1, 2, r, r, [])  # empty proof
    for old, new in [(0, 0), (0, 1), (1, 1)]:  # roots match but the proof is not empty
        with pytest.raises(VerificationError, match="needs exactly 0"):
            merkle.verify_consistency(old, new, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [r])


def test_malformed_input_errors_name_the_problem():
    leaf = merkle.leaf_hash(b"x")
    with pytest.raises(VerificationError, match="32-byte"):
        merkle.verify_inclusion(leaf[:31], 0, 1, [], leaf)
    with pytest.raises(VerificationError, match="index 3 is not inside a tree of size 2"):
        merkle.verify_inclusion(leaf, 3, 2, [leaf], leaf)
    with pytest.raises(VerificationError, match="non-negative integer"):
        merkle.verify_inclusion(leaf, -1, 2, [leaf], leaf)
    with pytest.raises(VerificationError, match="list of 32-byte hashes"):
        merkle.verify_inclusion(leaf, 0, 2, leaf, leaf)
    with pytest.raises(VerificationError, match=r"proof\[0\] must be a 32-byte"):
        merkle.verify_inclusion(leaf, 0, 2, ["ab" * 32], leaf)
    with pytest.raises(ValidationError, match="must be bytes"):
        merkle.leaf_hash("text")


# ----------------------------------------------------------------- properties (hypothesis)
entries_strategy = st.lists(st.binary(max_size=12), min_size=0, max_size=70)


@settings(max_examples=60, deadline=None)
@given(entries=entries_strategy)
def test_root_matches_the_recursive_definition(entries):
    assert merkle.root(entries) == ref_mth(entries)


@settings(max_examples=60, deadline=None)
@given(entries=entries_strategy.filter(bool), data=st.data())
def test_every_inclusion_proof_verifies_and_mutations_do_not(entries, data):
    n = len(entries)
    root = merkle.root(entries)
    tree = merkle.LevelTree([merkle.leaf_hash(e) for e in entries])
    for index in range(n):
        proof = tree.inclusion_proof(index)
        assert proof == ref_path(index, entries)
        assert merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, n, proof, root)
    index = data.draw(st.integers(0, n - 1))
    proof = tree.inclusion_proof(index)
    leaf = merkle.leaf_hash(entries[index])
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        mutated = list(proof)
        mutated[i] = bytes(
            b ^ (1 << (bit % 8)) if k == bit // 8 else b for k, b in enumerate(proof[i])
        )
        assert rejected(merkle.verify_inclusion, leaf, index, n, mutated, root)
        assert rejected(merkle.verify_inclusion, leaf, index, n, proof[:-1], root)
    assert rejected(merkle.verify_inclusion, leaf, index, n, [*proof, SOME_HASH], root)
    other = data.draw(st.integers(0, n))
    if other != index and (other == n or entries[other] != entries[index]):
        assert rejected(merkle.verify_inclusion, leaf, other, n, proof, root)
    # Wrong tree height (the probes of verify_test.go). Other wrong sizes can share the proof's
    # shape: RFC 6962 binds the size to the root only through the signed tree head.
    for wrong_size in (2 * n, n // 2):
        assert rejected(merkle.verify_inclusion, leaf, index, wrong_size, proof, root)
    assert rejected(merkle.verify_inclusion, leaf, index, n, proof, SOME_HASH)


@settings(max_examples=60, deadline=None)
@given(entries=entries_strategy, data=st.data())
def test_every_consistency_proof_verifies_and_mutations_do_not(entries, data):
    n = len(entries)
    tree = merkle.LevelTree([merkle.leaf_hash(e) for e in entries])
    roots = [ref_mth(entries[:m]) for m in range(n + 1)]
    for old in range(n + 1):
        proof = tree.consistency_proof(old)
        assert proof == ref_proof(old, entries)
        assert merkle.verify_consistency(old, n, roots[old], roots[n], proof)
    old = data.draw(st.integers(0, n))
    proof = tree.consistency_proof(old)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        mutated = list(proof)
        mutated[i] = bytes([mutated[i][0] ^ 1]) + mutated[i][1:]
        assert rejected(merkle.verify_consistency, old, n, roots[old], roots[n], mutated)
        assert rejected(merkle.verify_consistency, old, n, roots[old], roots[n], proof[1:])
        assert rejected(
            merkle.verify_consistency, old, n, roots[old], roots[n], [*proof, SOME_HASH]
        )
        assert rejected(merkle.verify_consistency, old, n, SOME_HASH, roots[n], proof)
        assert rejected(merkle.verify_consistency, old, n, roots[old], SOME_HASH, proof)
        other = data.draw(st.integers(1, n))
        if roots[other] != roots[old]:
            assert rejected(merkle.verify_consistency, other, n, roots[old], roots[n], proof)


def test_proofs_in_a_larger_tree_match_the_reference():
    entries = [i.to_bytes(3, "big") for i in range(1000)]
    tree = merkle.LevelTree([merkle.leaf_hash(e) for e in entries])
    assert tree.root() == ref_mth(entries)
    for index in (0, 1, 511, 512, 513, 998, 999):
        assert tree.inclusion_proof(index) == ref_path(index, entries)
    for old in (1, 2, 3, 500, 512, 513, 777, 999):
        proof = tree.consistency_proof(old)
        assert proof == ref_proof(old, entries)
        assert merkle.verify_consistency(old, 1000, tree.root(old), tree.root(), proof)
    for size in (1, 7, 600, 1000):
        assert tree.root(size) == ref_mth(entries[:size])
