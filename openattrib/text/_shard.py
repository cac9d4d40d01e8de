"""One shard of a span index: its files, how they are built, and binary search over them.

The files are infini-gram's v4 layout (Liu et al., 2024, "Infini-gram: Scaling unbounded
n-gram language models to a trillion tokens"), so an index folder also opens in
``infini_gram.engine.InfiniGramEngine``:

- ``tokenized.{s}``: every document as ``SEP + tokens`` (little-endian token ids of width
  ``w``; ``SEP`` is the largest value of the token type, which no token uses);
- ``table.{s}``: the suffix array over the token-aligned suffixes of ``tokenized.{s}`` in
  byte-lexicographic order, each entry a byte offset of ``ptr_size =
  ceil(log2(size) / 8)`` little-endian bytes;
- ``offset.{s}``: the byte offset of each document's separator, ``uint64``.

The suffix array is computed by libdivsufsort (Mori's induced-sorting algorithm, through
:mod:`pydivsufsort`) over the bytes of ``tokenized.{s}``; for tokens wider than one byte
only the token-aligned suffixes are kept, which is exactly the byte order infini-gram's
engine searches. Peak memory is the shard's bytes plus a 32-bit (64-bit above 2 GiB) entry
per byte.
"""

from __future__ import annotations

import math
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HashingWriter", "Shard", "write_suffix_table", "pointer_size"]

_CHUNK = 1 << 18


def pointer_size(n_bytes: int) -> int:
    """Bytes per suffix-array entry for a shard of ``n_bytes`` bytes (infini-gram's rule)."""
    return max(1, math.ceil(math.log2(n_bytes) / 8)) if n_bytes > 1 else 1


def write_suffix_table(tokenized: Path, table: Path, width: int) -> tuple[int, dict[str, Any]]:
    """Sort the token-aligned suffixes of ``tokenized`` into ``table``; returns ``ptr_size``
    and the table's manifest record (size and SHA-256, hashed as it is written).

    Memory: the shard's bytes plus libdivsufsort's suffix array (4 bytes per byte, 8 above
    2 GiB); the table is written from that array in chunks of ``_CHUNK`` entries, each
    entry's low ``ptr_size`` bytes taken in place (no widening copy).
    """
    from pydivsufsort import divsufsort

    data = tokenized.read_bytes()
    size = len(data)
    ptr_size = pointer_size(size)
    suffixes = divsufsort(data)
    del data
    itemsize = suffixes.dtype.itemsize
    little = suffixes.dtype.newbyteorder("<")
    with HashingWriter(table) as out:
        for begin in range(0, size, _CHUNK):
            part = suffixes[begin : begin + _CHUNK]
            if width > 1:
                part = part[(part & (width - 1)) == 0]  # widths are powers of two
            raw = part.astype(little, copy=False).view(np.uint8).reshape(-1, itemsize)
            out.write(raw if ptr_size == itemsize else np.ascontiguousarray(raw[:, :ptr_size]))
    return ptr_size, out.record


class Shard:
    """A memory-mapped shard: binary search over its suffix array.

    Pickles as its folder and number, and maps its files again where it is unpickled (so
    shards can be queried in worker processes or on Dask workers sharing the folder).
    """

    def __init__(self, directory: Path, number: int, width: int, doc_start: int) -> None:
        self.directory = Path(directory)
        self.number = number
        self.width = width
        self.doc_start = doc_start
        self._open()

    def _open(self) -> None:
        def mapped(name: str) -> mmap.mmap:
            with open(self.directory / f"{name}.{self.number}", "rb") as handle:
                return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

        self.ds = mapped("tokenized")
        self.sa = mapped("table")
        self.size = len(self.ds)
        self.n_tokens = self.size // self.width
        self.ptr_size = len(self.sa) // self.n_tokens
        self.offsets = np.frombuffer(mapped("offset"), dtype="<u8")

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("directory", "number", "width", "doc_start")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()

    # ------------------------------------------------------------ primitives
    def pointer(self, rank: int) -> int:
        p = self.ptr_size
        return int.from_bytes(self.sa[rank * p : rank * p + p], "little")

    def pointers(self, begin: int, end: int) -> np.ndarray:
        """Byte offsets of the suffixes of ranks ``begin..end-1`` (uint64)."""
        p = self.ptr_size
        raw = np.frombuffer(self.sa, dtype=np.uint8, count=(end - begin) * p, offset=begin * p)
        wide = np.zeros((end - begin, 8), dtype=np.uint8)
        wide[:, :p] = raw.reshape(-1, p)
        return wide.view("<u8").reshape(-1)

    def lower_bound(self, query: bytes, lo: int = 0, hi: int | None = None) -> int:
        """First rank whose suffix (cut to ``len(query)`` bytes) is not below ``query``."""
        return self._search(query, lo, self.n_tokens if hi is None else hi, False)

    def upper_bound(self, query: bytes, lo: int = 0, hi: int | None = None) -> int:
        """First rank whose suffix (cut to ``len(query)`` bytes) is above ``query``."""
        return self._search(query, lo, self.n_tokens if hi is None else hi, True)

    def _search(self, query: bytes, lo: int, hi: int, past_equal: bool) -> int:
        ds, sa, p, n = self.ds, self.sa, self.ptr_size, len(query)
        while lo < hi:
            mid = (lo + hi) >> 1
            ptr = int.from_bytes(sa[mid * p : mid * p + p], "little")
            piece = ds[ptr : ptr + n]
            if piece < query or (past_equal and piece == query):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def bounds(self, query: bytes) -> tuple[int, int]:
        """Ranks ``[begin, end)`` of the suffixes starting with ``query``."""
        begin = self.lower_bound(query)
        return begin, self.upper_bound(query, begin)

    def longest_prefix(self, query: bytes) -> int:
        """Length in tokens of the longest prefix of ``query`` that occurs in the shard.

        The suffixes sharing the longest prefix with ``query`` sit next to where ``query``
        would be inserted in the suffix array, so the two neighbours of its lower bound
        decide it (both are checked, rank 0 included).
        """
        rank = self.lower_bound(query)
        best = 0
        for neighbour in (rank - 1, rank):
            if 0 <= neighbour < self.n_tokens:
                ptr = self.pointer(neighbour)
                best = max(best, _common_prefix(self.ds[ptr : ptr + len(query)], query))
        return best // self.width

    def locate(self, pointers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shard-local document index and token position within it of each byte offset."""
        docs = np.searchsorted(self.offsets, pointers, side="right").astype(np.int64) - 1
        positions = (pointers - self.offsets[docs] - self.width) // self.width
        return docs, positions.astype(np.int64)


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    diff = np.flatnonzero(np.frombuffer(a, np.uint8, n) != np.frombuffer(b, np.uint8, n))
    return int(diff[0])


class HashingWriter:
    """A binary file written once, hashed (SHA-256) and measured as it is written, so the
    manifest needs no second pass over the bytes."""

    def __init__(self, path: Path) -> None:
        import hashlib

        self._handle = open(path, "wb")  # noqa: SIM115 - closed by __exit__
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> None:
        view = memoryview(data)
        if not view.nbytes:
            return
        view = view.cast("B")
        self._digest.update(view)
        self._handle.write(view)
        self.size += len(view)

    @property
    def record(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self._digest.hexdigest()}

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 4 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries to disk (after renames), where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
