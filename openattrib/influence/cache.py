"""On-disk cache of the training side of a neural influence method (train once, query cheaply).

One entry per method configuration lives in ``cache_dir/<key>/``:

* ``features.npy`` - the (whitened and/or projected) per-example training gradients, read
  back as a read-only memory map, so a query touches them block by block;
* ``arrays.npz`` - the small state a query needs (EK-FAC eigenbases and eigenvalues,
  DataInf damping and norms, projection seeds are re-derived);
* ``manifest.json`` - written last: the method configuration, the model hash (class,
  parameter names, shapes and values, every checkpoint) and the training data hash.

An entry whose manifest names another model or other data is **stale** and refused with an
explanation (it is never silently reused or overwritten); a directory without a manifest (a
run that crashed) is rebuilt.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_npy, atomic_write_bytes, canonical_json, read_json
from ..errors import ValidationError

__all__ = ["StaleCacheError", "CacheEntry"]

FORMAT = "openattrib-neural-influence-cache-v1"


class StaleCacheError(ValidationError):
    """A cache entry was built for a different model or different training data."""


class CacheEntry:
    """One cached training side: ``cache_dir / sha256(configuration)[:16]``."""

    def __init__(self, cache_dir: str | Path, configuration: dict[str, Any], model: str, data: str):
        self.configuration = dict(configuration)
        key = hashlib.sha256(canonical_json(self.configuration)).hexdigest()[:16]
        self.path = Path(cache_dir) / key
        self.model_hash = model
        self.data_hash = data

    def load(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]] | None:
        """``(features memmap, arrays, manifest)``, or None when there is no complete entry."""
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            return None
        manifest = read_json(manifest_path, "cache manifest")
        if manifest.get("format") != FORMAT:
            raise StaleCacheError(
                f"{manifest_path} is not an openattrib {FORMAT} manifest; delete {self.path}"
            )
        for what, stored, current in (
            ("model", manifest.get("model_hash"), self.model_hash),
            ("training data", manifest.get("data_hash"), self.data_hash),
        ):
            if stored != current:
                raise StaleCacheError(
                    f"the influence cache at {self.path} was built for a different {what} "
                    f"(hash {str(stored)[:12]}..., now {current[:12]}...): it is stale. Delete "
                    "that directory to rebuild it, or pass another cache_dir"
                )
        features = np.load(self.path / "features.npy", mmap_mode="r")
        if list(features.shape) != manifest.get("shape"):
            raise StaleCacheError(f"{self.path}/features.npy does not match its manifest")
        with np.load(self.path / "arrays.npz") as stored_arrays:
            arrays = {k: stored_arrays[k] for k in stored_arrays.files}
        return features, arrays, manifest

    def prepare(self) -> None:
        """Remove an incomplete entry (no manifest) before rebuilding it."""
        if self.path.exists() and not (self.path / "manifest.json").is_file():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)

    def features_writer(self, shape: tuple[int, int]) -> Any:
        return atomic_npy(self.path / "features.npy", shape)

    def commit(self, shape: tuple[int, int], arrays: dict[str, np.ndarray], info: dict) -> None:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.path / "arrays.npz", buffer.getvalue())
        manifest = {
            "format": FORMAT,
            "configuration": self.configuration,
            "model_hash": self.model_hash,
            "data_hash": self.data_hash,
            "shape": list(shape),
            **info,
        }
        atomic_write_bytes(self.path / "manifest.json", canonical_json(manifest))
