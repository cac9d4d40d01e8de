"""Canonical JSON and atomic file writes: the one place files are written from.

Canonical JSON (used for results, allocations and ledger entries) is UTF-8, keys
sorted, no insignificant white space, and never NaN or infinity, so the same
object gives the same bytes on every machine.
"""

from __future__ import annotations

import json
import math
import os
import re
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
    "check_output_path",
    "parse_json",
    "read_text",
]

#: Deepest nesting of JSON containers :func:`read_json` accepts (none of our formats comes
#: near it; a deeper file is refused before the parser recurses).
MAX_JSON_DEPTH = 64
#: Largest JSON file :func:`read_json` reads (bytes).
MAX_JSON_BYTES = 1 << 30


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
    if path.is_dir():
        raise ValidationError(f"cannot write {str(path)!r}: it is a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValidationError(f"cannot write {str(path)!r}: {directory} is not a folder") from None
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


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (vectorised, no recursion)."""
    raw = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    if raw.size == 0:
        return 0
    step = np.isin(raw, (91, 123)).astype(np.int64) - np.isin(raw, (93, 125))
    return int(np.cumsum(step).max())


def _refuse_constant(name: str) -> Any:
    raise ValidationError(f"{name} is not valid JSON (NaN and infinity are not allowed)")


def parse_json(text: str, what: str = "JSON text") -> Any:
    """Strict JSON: no NaN/Infinity, bounded nesting; errors are :class:`ValidationError`."""
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise ValidationError(
            f"{what} nests JSON containers deeper than {MAX_JSON_DEPTH} levels; it is not a "
            "file openattrib wrote"
        )
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # pragma: no cover - guarded by the depth check
        raise ValidationError(f"{what} nests JSON too deeply") from None


def read_text(path: str | os.PathLike, what: str = "file", limit: int = MAX_JSON_BYTES) -> str:
    """Read a UTF-8 text file; a missing, unreadable or non-UTF-8 file is a ValidationError."""
    path = Path(path)
    if path.is_dir():
        raise ValidationError(f"{what} {str(path)!r} is a directory, not a file")
    try:
        if path.stat().st_size > limit:
            raise ValidationError(f"{what} {str(path)!r} is larger than {limit} bytes")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason})") from None


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read a JSON file; a missing, unreadable or malformed file is a :class:`ValidationError`.

    Refused: NaN and infinity (not JSON), nesting deeper than :data:`MAX_JSON_DEPTH`,
    files over :data:`MAX_JSON_BYTES`, a directory, text that is not UTF-8.
    """
    return parse_json(read_text(path, what), str(path))


def check_output_path(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    The path must not be a directory, and its nearest existing ancestor folder must be a
    writable directory (missing folders are created when writing). Raises
    :class:`ValidationError` naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise ValidationError(f"{what} {str(path)!r} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ValidationError(f"{what} {str(path)!r} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(
            f"{what} {str(path)!r} cannot be written: folder {parent} is read-only"
        )
    return path


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
