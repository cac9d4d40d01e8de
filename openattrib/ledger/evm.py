"""Export allocations for on-chain claims: OpenZeppelin ``StandardMerkleTree`` compatible.

A payout contract stores one Merkle root and lets each claimant prove its leaf with
OpenZeppelin's ``MerkleProof.verify(proof, root, leaf)``. This module builds exactly the tree
of the ``@openzeppelin/merkle-tree`` JavaScript package (``standard-v1`` dump format):

- leaf = ``keccak256(keccak256(abi.encode(types, value)))`` (double hashing guards against
  second pre-image attacks with 64-byte leaves);
- node = ``keccak256(sort(a, b))`` (sorted pairs, what ``MerkleProof`` expects);
- leaves sorted by hash (default) and laid out in a flat array with the root at index 0,
  the children of node ``i`` at ``2i + 1`` and ``2i + 2``, and leaf ``j`` at ``len - 1 - j``.

keccak256 comes from pycryptodome and ABI encoding from ``eth_abi`` (see :mod:`._abi`);
nothing is hand-rolled.

A Solidity claim then checks::

    bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
    require(MerkleProof.verify(proof, root, leaf), "invalid proof");
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eth_utils import is_checksum_address, to_checksum_address

from .._ids import check_ids
from .._io import parse_json, read_text
from ..errors import UnsupportedError, ValidationError, VerificationError
from ._abi import (
    checked_leaf_hash,
    from_hex,
    hash_pair,
    jsonable,
    keccak256,
    parse_encoding,
    standard_leaf_hash,
    to_hex,
)

__all__ = [
    "keccak256",
    "standard_leaf_hash",
    "standard_merkle_tree",
    "get_proof",
    "verify_proof",
    "validate_dump",
    "export_allocation",
    "read_address_map",
    "CLAIMS_FORMAT",
]

CLAIMS_FORMAT = "openattrib.evm-claims/1"
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ZERO_ADDRESS = "0x" + "0" * 40


# --------------------------------------------------------------------- tree and proofs
def standard_merkle_tree(
    values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], *, sort_leaves: bool = True
) -> dict[str, Any]:
    """Build the OpenZeppelin ``StandardMerkleTree`` and return its ``standard-v1`` dump.

    Parameters
    ----------
    values : list of lists
        One list per leaf, matching ``leaf_encoding`` (e.g. ``[address, amount]``). Give
        large integers as decimal strings so JavaScript readers of the dump keep them exact.
    leaf_encoding : list of str
        Solidity ABI types, e.g. ``["address", "uint256"]``.
    sort_leaves : bool
        Sort leaves by hash (the package's default); needed for multiproofs.

    Returns
    -------
    dict
        ``{"format": "standard-v1", "leafEncoding", "tree", "values"}`` as
        ``StandardMerkleTree.dump()`` gives; ``tree[0]`` is the root.

    Examples
    --------
    >>> dump = standard_merkle_tree(
    ...     [["0x1111111111111111111111111111111111111111", "5000000000000000000"],
    ...      ["0x2222222222222222222222222222222222222222", "2500000000000000000"]],
    ...     ["address", "uint256"])
    >>> dump["tree"][0]
    '0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77'
    """
    encoding = list(leaf_encoding)
    types = parse_encoding(encoding)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValidationError("values must be a non-empty list of leaves (one list per leaf)")
    hashed = [
        (checked_leaf_hash(v, encoding, types, f"values[{i}]"), i) for i, v in enumerate(values)
    ]
    if sort_leaves:
        hashed.sort(key=lambda item: item[0])  # stable, like JavaScript's Array.sort
    n = len(hashed)
    tree: list[bytes] = [b""] * (2 * n - 1)
    for leaf_index, (h, _) in enumerate(hashed):
        tree[len(tree) - 1 - leaf_index] = h
    for i in range(len(tree) - 1 - n, -1, -1):
        tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
    tree_index = [0] * n
    for leaf_index, (_, value_index) in enumerate(hashed):
        tree_index[value_index] = len(tree) - 1 - leaf_index
    return {
        "format": "standard-v1",
        "leafEncoding": encoding,
        "tree": [to_hex(h) for h in tree],
        "values": [
            {"value": jsonable(v), "treeIndex": tree_index[i]} for i, v in enumerate(values)
        ],
    }


def _check_dump(dump: Any) -> tuple[list[bytes], list[str], list[Any]]:
    if not isinstance(dump, Mapping) or dump.get("format") != "standard-v1":
        got = dump.get("format") if isinstance(dump, Mapping) else type(dump).__name__
        raise VerificationError(f"not an OpenZeppelin standard-v1 dump (format {got!r})")
    try:
        encoding = list(dump["leafEncoding"])
        tree = [from_hex(h, f"tree[{i}]") for i, h in enumerate(dump["tree"])]
        values = list(dump["values"])
    except KeyError as exc:
        raise VerificationError(f"standard-v1 dump is missing the {exc.args[0]!r} field") from None
    if not tree:
        raise VerificationError("standard-v1 dump has an empty tree")
    return tree, encoding, values


def _checked_leaf(tree: list[bytes], encoding: list[str], values: list[Any], index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(values):
        raise ValidationError(f"value index {index!r} is outside 0..{len(values) - 1}")
    entry = values[index]
    tree_index = entry.get("treeIndex") if isinstance(entry, Mapping) else None
    if not isinstance(tree_index, int) or not 0 <= tree_index < len(tree):
        raise VerificationError(f"values[{index}] has no valid treeIndex")
    if 2 * tree_index + 1 < len(tree):
        raise VerificationError(f"values[{index}].treeIndex {tree_index} is not a leaf")
    expected = checked_leaf_hash(
        entry.get("value"), encoding, parse_encoding(encoding), f"values[{index}]"
    )
    if tree[tree_index] != expected:
        raise VerificationError(f"the tree does not contain the hash of values[{index}]")
    return tree_index


def get_proof(dump: Mapping[str, Any], index: int) -> list[str]:
    """Proof (sibling hashes, leaf to root, 0x-hex) for ``dump["values"][index]``.

    Equals ``StandardMerkleTree.load(dump).getProof(index)``.

    Examples
    --------
    >>> dump = standard_merkle_tree([["a"], ["b"], ["c"]], ["string"])
    >>> verify_proof(dump["tree"][0], ["string"], ["b"], get_proof(dump, 1))
    True
    """
    tree, encoding, values = _check_dump(dump)
    return _path(tree, _checked_leaf(tree, encoding, values, index))


def _path(tree: list[bytes], i: int) -> list[str]:
    """Sibling hashes from tree node ``i`` up to the root."""
    proof = []
    while i > 0:
        sibling = i + 1 if i % 2 else i - 1
        proof.append(to_hex(tree[sibling]))
        i = (i - 1) // 2
    return proof


def verify_proof(
    root: str | bytes, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[Any]
) -> bool:
    """``StandardMerkleTree.verify``: does ``proof`` lead from ``value``'s leaf to ``root``?

    Returns ``False`` for a wrong proof; raises :class:`VerificationError` for malformed hashes.

    Examples
    --------
    >>> dump = standard_merkle_tree([["a"], ["b"]], ["string"])
    >>> verify_proof(dump["tree"][0], ["string"], ["a"], get_proof(dump, 1))
    False
    """
    for name, item in (("leaf_encoding", leaf_encoding), ("value", value), ("proof", proof)):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence):
            raise VerificationError(f"{name} must be a list, got {type(item).__name__}")
    expected = from_hex(root, "root")
    node = standard_leaf_hash(value, leaf_encoding)
    for i, sibling in enumerate(proof):
        node = hash_pair(node, from_hex(sibling, f"proof[{i}]"))
    return node == expected


def validate_dump(dump: Mapping[str, Any]) -> None:
    """Check a ``standard-v1`` dump like ``StandardMerkleTree.load(dump).validate()``.

    Every value must hash to its leaf and every interior node to its sorted children;
    raises :class:`VerificationError` naming the first problem.
    """
    tree, encoding, values = _check_dump(dump)
    for i in range(len(values)):
        _checked_leaf(tree, encoding, values, i)
    for i, node in enumerate(tree):
        left, right = 2 * i + 1, 2 * i + 2
        if right >= len(tree):
            if left < len(tree):
                raise VerificationError(f"tree node {i} has only one child")
        elif node != hash_pair(tree[left], tree[right]):
            raise VerificationError(f"tree node {i} is not the hash of its children")


# ---------------------------------------------------------------------- allocations
def _checksum_address(address: Any, contributor: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.match(address.strip()):
        raise ValidationError(
            f"address for contributor {contributor!r} must be 0x followed by 40 hex digits, "
            f"got {address!r}"
        )
    address = address.strip()
    body = address[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(address):
        raise ValidationError(
            f"address {address} for contributor {contributor!r} fails its EIP-55 checksum "
            "(mixed case must be the checksummed form); check it for a typo"
        )
    if address.lower() == _ZERO_ADDRESS:
        raise ValidationError(
            f"contributor {contributor!r} maps to the zero address; tokens sent there are lost"
        )
    return to_checksum_address(address)


def export_allocation(
    allocation: Any,
    address_of: Mapping[str, str] | Callable[[str], str],
    *,
    include_zero: bool = False,
) -> dict[str, Any]:
    """Claims file for an allocation: OpenZeppelin tree over ``[address, uint256]`` leaves.

    Parameters
    ----------
    allocation : Allocation-like
        Anything with ``amounts`` (contributor -> int), ``pool`` and ``policy``
        (``result_hash()`` is recorded when present).
    address_of : mapping or callable
        Contributor name -> Ethereum address (EIP-55 checksum checked when mixed case).
    include_zero : bool
        Keep contributors whose amount is 0 (default: leave them out of the tree).

    Returns
    -------
    dict
        ``{"format", "root", "leafEncoding", "tree": <standard-v1 dump>, "claims": {name:
        {"address", "amount", "index", "proof"}}, "pool", "policy", "total", ...}``; amounts
        are decimal strings.

    Examples
    --------
    >>> class Alloc:
    ...     amounts = {"alice": 600, "bob": 400}; pool = 1000; policy = "proportional"
    >>> out = export_allocation(Alloc(), {"alice": "0x" + "11" * 20, "bob": "0x" + "22" * 20})
    >>> sorted(out["claims"]), out["total"]
    (['alice', 'bob'], '1000')
    """
    try:
        amounts = dict(allocation.amounts)
        pool = allocation.pool
        policy = allocation.policy
    except AttributeError as exc:
        raise UnsupportedError(
            f"export_allocation needs an allocation with amounts, pool and policy: {exc}"
        ) from None
    lookup = address_of if callable(address_of) else None
    mapping = address_of if lookup is None else None
    rows: list[tuple[str, str, int]] = []
    seen: dict[str, str] = {}
    for name in sorted(amounts, key=str):
        amount = amounts[name]
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValidationError(
                f"amount for contributor {name!r} must be an int (token base units), "
                f"got {type(amount).__name__}"
            )
        if amount < 0 or amount >= 2**256:
            raise ValidationError(f"amount for contributor {name!r} is outside uint256: {amount}")
        if amount == 0 and not include_zero:
            continue
        if lookup is not None:
            address = lookup(name)
        elif name in mapping:
            address = mapping[name]
        else:
            raise ValidationError(
                f"no address for contributor {name!r} (amount {amount}); add it to the address map"
            )
        address = _checksum_address(address, str(name))
        if address in seen:
            raise ValidationError(
                f"contributors {seen[address]!r} and {name!r} both map to {address}; a claim "
                "contract pays each address once, so merge their amounts or use distinct addresses"
            )
        seen[address] = str(name)
        rows.append((str(name), address, amount))
    if not rows:
        raise ValidationError("the allocation has no contributor with a positive amount to export")
    encoding = ["address", "uint256"]
    dump = standard_merkle_tree([[a, str(x)] for _, a, x in rows], encoding)
    tree = [from_hex(h, "tree") for h in dump["tree"]]  # parsed once: proofs are O(n log n)
    claims = {
        name: {
            "address": address,
            "amount": str(amount),
            "index": i,
            "proof": _path(tree, dump["values"][i]["treeIndex"]),
        }
        for i, (name, address, amount) in enumerate(rows)
    }
    result_hash = getattr(allocation, "result_hash", None)
    return {
        "format": CLAIMS_FORMAT,
        "root": dump["tree"][0],
        "leafEncoding": encoding,
        "pool": str(pool),
        "policy": str(policy),
        "total": str(sum(x for _, _, x in rows)),
        "allocation_hash": result_hash() if callable(result_hash) else None,
        "tree": dump,
        "claims": claims,
    }


def read_address_map(path: str | os.PathLike) -> dict[str, str]:
    """Read contributor -> address from a JSON object or a two-column CSV file.

    The CSV may have a header row (``contributor,address``); extra columns are ignored.
    """
    path = Path(path)
    text = read_text(path, "address map")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        data = parse_json(text, str(path))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValidationError(f"{path} must be a JSON object mapping contributor to address")
        check_ids(list(data), f"address map {path}")
        return {str(k): v for k, v in data.items()}
    out: dict[str, str] = {}
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise ValidationError(f"{path} line {line_no}: expected 'contributor,address'")
        name, address = row[0].strip(), row[1].strip()
        if line_no == 1 and not address.lower().startswith("0x"):
            if len(set(row)) != len(row):
                raise ValidationError(f"{path} has duplicate column names in its header {row}")
            continue  # header
        if name in out:
            raise ValidationError(f"{path} line {line_no}: contributor {name!r} appears twice")
        out[name] = address
    check_ids(list(out), f"address map {path}")
    return out
