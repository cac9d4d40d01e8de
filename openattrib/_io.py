"""Canonical JSON and atomic file writes: the one place files are written from.

Canonical JSON (used for results, allocations and ledger entries) is UTF-8, keys
sorted, no insignificant white space, and never NaN or infinity, so the same
object gives the same bytes on every machine.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = [
    "canonical_json",
    "to_jsonable",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_json",
    "atomic_npy",
]


def to_jsonable(obj: Any, _path: str = "$") -> Any:
    """Convert numpy scalars/arrays, tuples and paths into plain JSON types.

    Raises :class:`ValidationError` naming the location of any NaN or infinity,
    since canonical JSON has no representation for them.
    """
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                key = str(key)
            out[key] = to_jsonable(value, f"{_path}.{key}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{_path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), _path)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            raise ValidationError(
                f"cannot encode {value} at {_path} as canonical JSON (NaN and infinity are not allowed)"
            )
        return value
    if isinstance(obj, (str, type(None))):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise ValidationError(f"cannot encode object of type {type(obj).__name__} at {_path} as JSON")


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON bytes (sorted keys, compact, UTF-8, no NaN)."""
    return json.dumps(
        to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A crash leaves either the old file or the new one, never a partial file. The file gets
    the usual permissions (0666 less the umask) unless ``mode`` is given (e.g. 0o600 for
    secrets).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # mkstemp creates 0600; give the file normal permissions
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str) -> None:
    """Remove a temporary file left by an interrupted atomic write."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text to ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file; a missing or malformed file is a :class:`ValidationError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path} is not valid JSON: {exc}") from None


@contextmanager
def atomic_npy(
    path: str | os.PathLike, shape: tuple[int, ...], dtype: Any = np.float64
) -> Iterator[Any]:
    """A writable ``.npy`` memory map that appears at ``path`` only once the block exits.

    The array is filled in place (larger than memory is fine), flushed, fsynced and renamed;
    an exception leaves no file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
