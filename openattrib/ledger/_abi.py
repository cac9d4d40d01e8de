"""keccak256 and Solidity ABI leaf hashing for OpenZeppelin trees (helpers of :mod:`.evm`).

keccak256 is pycryptodome's ``Crypto.Hash.keccak``; ABI encoding is ``eth_abi``. Values may be
given in JSON-friendly form (integers as decimal or 0x strings, bytes as 0x-hex), as
``@openzeppelin/merkle-tree`` dumps hold them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from Crypto.Hash import keccak
from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_abi.grammar import BasicType, TupleType, parse
from eth_abi.registry import registry

from ..errors import UnsupportedError, ValidationError, VerificationError

__all__ = [
    "keccak256",
    "standard_leaf_hash",
    "hash_pair",
    "to_hex",
    "from_hex",
    "coerce",
    "parse_encoding",
    "checked_leaf_hash",
    "jsonable",
]


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak256 (pycryptodome ``Crypto.Hash.keccak``, 256-bit digest).

    Examples
    --------
    >>> keccak256(b"").hex()[:16]
    'c5d2460186f7233c'
    """
    return keccak.new(digest_bits=256, data=bytes(data)).digest()


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin node hash: keccak256 of the two children in ascending byte order."""
    return keccak256(a + b if a <= b else b + a)


def to_hex(h: bytes) -> str:
    """``0x``-prefixed lower-case hex, as the JavaScript package writes hashes."""
    return "0x" + h.hex()


def from_hex(value: Any, what: str) -> bytes:
    """A 32-byte hash from 0x-hex (or bytes); :class:`VerificationError` naming ``what``."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]*", value) and len(value) % 2 == 0:
        raw = bytes.fromhex(value[2:])
    else:
        raise VerificationError(f"{what} must be a 0x-prefixed hex string, got {value!r}")
    if len(raw) != 32:
        raise VerificationError(f"{what} must be a 32-byte hash, got {len(raw)} bytes")
    return raw


# ------------------------------------------------------------------- ABI value coercion
def coerce(abi_type: Any, value: Any, where: str) -> Any:
    """Turn JSON-friendly values (decimal strings, 0x-hex) into what ``eth_abi`` encodes."""
    if abi_type.is_array:
        if not isinstance(value, (list, tuple)):
            raise ValidationError(f"{where} must be a list for ABI type {abi_type.to_type_str()}")
        item = abi_type.item_type
        return [coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(abi_type, TupleType):
        parts = abi_type.components
        if not isinstance(value, (list, tuple)) or len(value) != len(parts):
            raise ValidationError(f"{where} must be a list of {len(parts)} items for a tuple")
        return tuple(
            coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(parts, value, strict=True))
        )
    assert isinstance(abi_type, BasicType)
    base = abi_type.base
    if base in ("uint", "int"):
        if isinstance(value, bool):
            raise ValidationError(f"{where} must be an integer, got a bool")
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
            except ValueError:
                raise ValidationError(
                    f"{where} = {value!r} is not an integer (use a decimal string like '1000')"
                ) from None
        if isinstance(value, int):
            return value
        raise ValidationError(
            f"{where} must be an int or decimal string, got {type(value).__name__}"
        )
    if base == "bytes" and isinstance(value, str):
        if not re.fullmatch(r"0x([0-9a-fA-F]{2})*", value):
            raise ValidationError(f"{where} must be 0x-prefixed hex bytes, got {value!r}")
        return bytes.fromhex(value[2:])
    if base in ("fixed", "ufixed"):
        raise UnsupportedError(f"{where}: ABI type {base} is not supported by OpenZeppelin trees")
    return value


def parse_encoding(leaf_encoding: Sequence[str]) -> list[Any]:
    """Parse ABI type names, refusing types ``eth_abi`` cannot encode."""
    if isinstance(leaf_encoding, str) or not isinstance(leaf_encoding, Sequence):
        raise ValidationError(
            f"leaf_encoding must be a list of ABI type names like ['address', 'uint256'], "
            f"got {leaf_encoding!r}"
        )
    if not leaf_encoding:
        raise ValidationError("leaf_encoding must name at least one ABI type")
    types = []
    for t in leaf_encoding:
        try:
            known = isinstance(t, str) and registry.has_encoder(t)
        except Exception:
            known = False
        if not known:
            raise ValidationError(
                f"leaf_encoding: {t!r} is not a valid ABI type (e.g. 'address', 'uint256', "
                "'bytes32', 'string[]')"
            )
        types.append(parse(t))
    return types


def standard_leaf_hash(value: Sequence[Any], leaf_encoding: Sequence[str]) -> bytes:
    """``keccak256(keccak256(abi.encode(leaf_encoding, value)))``, the OpenZeppelin leaf.

    Examples
    --------
    >>> leaf = standard_leaf_hash(["0x1111111111111111111111111111111111111111", 5], ["address", "uint256"])
    >>> len(leaf)
    32
    """
    return checked_leaf_hash(value, list(leaf_encoding), parse_encoding(leaf_encoding), "value")


def checked_leaf_hash(value: Any, encoding: list[str], types: list[Any], where: str) -> bytes:
    """:func:`standard_leaf_hash` with parsed ``types``; errors name the value as ``where``."""
    if not isinstance(value, (list, tuple)) or len(value) != len(types):
        raise ValidationError(
            f"{where} must be a list of {len(types)} items matching leaf_encoding {encoding}, "
            f"got {value!r}"
        )
    coerced = [
        coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(types, value, strict=True))
    ]
    try:
        encoded = abi_encode(encoding, coerced)
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"{where} cannot be ABI-encoded as {encoding}: {exc}") from None
    return keccak256(keccak256(encoded))


def jsonable(value: Any) -> Any:
    """A leaf value as it appears in a JSON dump (bytes become 0x-hex)."""
    if isinstance(value, (bytes, bytearray)):
        return to_hex(bytes(value))
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
