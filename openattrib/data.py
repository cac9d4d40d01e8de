"""The data being valued: features, labels, and (optionally) who contributed each row.

:class:`Dataset` is an immutable value object. Its arrays are read-only and it carries
a content hash that is stable across runs, machines and platforms, so a result can name
exactly which data it was computed on.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import _data_checks as checks
from ._vocab import deprecated_keywords
from .errors import ValidationError

__all__ = ["Dataset", "HASH_HEADER", "ROW_HEADER"]

logger = logging.getLogger("openattrib")

#: Version tag that starts the byte encoding hashed by :meth:`Dataset.content_hash`.
HASH_HEADER = b"openattrib-dataset-v1"
#: Version tag that starts the byte encoding of one row in :meth:`Dataset.row_digests`.
ROW_HEADER = b"openattrib-row-v1"

_CONTRIBUTOR_COLUMN = "contributor"


def _length_prefixed(text: str | bytes) -> bytes:
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


class Dataset:
    """Features ``X``, labels ``y`` and optional per-row contributor ids.

    Parameters
    ----------
    X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        Numeric features; stored as a read-only C-contiguous float64 array. A DataFrame's
        column names become the feature names. NaN/infinite values are refused.
    y : array-like of shape (n_samples,)
        Labels or regression targets, without missing values. Integer, boolean, float and
        string dtypes are kept; an object array of numbers becomes numeric.
    contributors : array-like of shape (n_samples,), optional
        The id of whoever contributed each row. Strings are kept exactly as given (other
        values are converted with ``str()``). Missing or empty ids are refused, and so are
        ids that could be mistaken for another payee or that would not print safely:
        control and invisible characters, text not in Unicode NFC, and two ids equal after
        NFKC normalisation (the rule is stated in ``openattrib._ids``).
    feature_names : sequence of str, optional
        One distinct name per column (default ``x0, x1, ...`` or the DataFrame columns).
    target_name : str, default "target"
        Name of the label column (used by :meth:`to_frame`).
    copy : bool, default True
        Copy the inputs. With ``copy=False`` an input that is already float64 and
        C-contiguous is shared; the caller then promises not to modify it.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset(np.eye(4), [0, 1, 0, 1], contributors=["a", "a", "b", "b"])
    >>> ds.n_samples, ds.n_features, ds.contributor_ids
    (4, 4, ['a', 'b'])
    >>> train, valid = ds.split(test_size=0.5, seed=0)
    """

    __slots__ = ("_X", "_y", "_contributors", "_feature_names", "_target_name", "_hash")

    def __init__(
        self,
        X: Any,
        y: Any,
        contributors: Any = None,
        feature_names: Sequence[str] | None = None,
        target_name: str | None = "target",
        copy: bool = True,
    ) -> None:
        X_array, names = checks.coerce_features(X, feature_names, copy)
        y_array = checks.coerce_labels(y, copy)
        contributor_array = checks.coerce_contributors(
            contributors, getattr(contributors, "name", None)
        )
        checks.check_lengths(
            X_array.shape[0],
            y_array.shape[0],
            None if contributor_array is None else contributor_array.shape[0],
        )
        target = "target" if target_name is None else str(target_name)
        if target in names:
            raise ValidationError(
                f"target_name {target!r} is also a feature name; give the target a distinct name"
            )
        object.__setattr__(self, "_X", X_array)
        object.__setattr__(self, "_y", y_array)
        object.__setattr__(self, "_contributors", contributor_array)
        object.__setattr__(self, "_feature_names", tuple(names))
        object.__setattr__(self, "_target_name", target)
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            "Dataset is immutable; use with_labels / with_contributors / subset for a new one"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self._X, self._y, self._contributors, list(self._feature_names), self._target_name),
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        target: str,
        contributor: str | None = None,
        features: Sequence[str] | None = None,
    ) -> Dataset:
        """Build a Dataset from DataFrame columns.

        Parameters
        ----------
        df : pandas.DataFrame
        target : str
            Label column.
        contributor : str, optional
            Column holding the contributor id of each row.
        features : sequence of str, optional
            Feature columns; default every column except ``target`` and ``contributor``.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1], "owner": ["x", "y"]})
        >>> Dataset.from_frame(df, target="label", contributor="owner").feature_names
        ['a']
        """
        features = checks.frame_feature_columns(df, target, contributor, features)
        return cls(
            df[features],
            df[target],
            contributors=None if contributor is None else df[contributor],
            target_name=str(target),
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        target: str,
        contributor: str | None = None,
        features: Sequence[str] | None = None,
        **read_csv_kwargs: Any,
    ) -> Dataset:
        """Read a CSV file and call :meth:`from_frame`.

        The file is checked first (see ``openattrib._csv.read_csv``): it must be UTF-8
        with a header of distinct column names and at least one data row, every row as long
        as the header. The ``contributor`` column is read as the exact strings in the file
        (``007`` and ``7`` are two contributors, ``NA`` is a contributor, only an empty cell
        is missing); other columns are parsed by :func:`pandas.read_csv`, which gets
        ``read_csv_kwargs``.

        Examples
        --------
        >>> from openattrib.datasets import DATA_DIR
        >>> ds = Dataset.from_csv(DATA_DIR / "demo_contributors.csv", target="label",
        ...                       contributor="contributor")
        >>> ds.n_samples, ds.n_features, ds.n_contributors
        (322, 8, 8)
        """
        from ._csv import read_csv

        df = read_csv(
            path,
            text_columns=[] if contributor is None else [contributor],
            **read_csv_kwargs,
        )
        return cls.from_frame(df, target=target, contributor=contributor, features=features)

    # ------------------------------------------------------------------ properties
    @property
    def X(self) -> np.ndarray:
        """Read-only float64 feature matrix of shape (n_samples, n_features)."""
        return self._X

    @property
    def y(self) -> np.ndarray:
        """Read-only 1-D label array."""
        return self._y

    @property
    def contributors(self) -> np.ndarray | None:
        """Read-only 1-D object array of contributor ids (str), or None."""
        return self._contributors

    @property
    def feature_names(self) -> list[str]:
        """Feature names, one per column."""
        return list(self._feature_names)

    @property
    def target_name(self) -> str:
        """Name of the label column."""
        return self._target_name

    @property
    def n_samples(self) -> int:
        return int(self._X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self._X.shape[1])

    @property
    def contributor_ids(self) -> list[str]:
        """Distinct contributor ids in order of first appearance (``[]`` without contributors)."""
        if self._contributors is None:
            return []
        return list(dict.fromkeys(self._contributors.tolist()))

    @property
    def n_contributors(self) -> int:
        return len(self.contributor_ids)

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels."""
        return np.unique(self._y)

    @property
    def task(self) -> str:
        """``"regression"`` if ``y`` is floating point, else ``"classification"``."""
        return "regression" if self._y.dtype.kind == "f" else "classification"

    def __len__(self) -> int:
        return self.n_samples

    # ------------------------------------------------------------------ derived data sets
    def groups(self) -> dict[str, np.ndarray]:
        """Row indices (int64) of each contributor, in :attr:`contributor_ids` order."""
        if self._contributors is None:
            raise ValidationError(
                "this Dataset has no contributors; add them with "
                "oa.datasets.partition(ds, n_contributors), ds.with_contributors(ids) or the "
                "contributor= column of Dataset.from_frame"
            )
        positions: dict[str, list[int]] = {}
        for row, cid in enumerate(self._contributors.tolist()):
            positions.setdefault(cid, []).append(row)
        return {cid: np.asarray(rows, dtype=np.int64) for cid, rows in positions.items()}

    def subset(self, indices: Any) -> Dataset:
        """Rows ``indices`` (int positions in ``[0, n_samples)`` or a boolean mask)."""
        index = np.asarray(indices)
        n = self.n_samples
        if index.dtype.kind == "b":
            if index.shape != (n,):
                raise ValidationError(
                    f"boolean mask has shape {index.shape}, expected ({n},) to match the "
                    "Dataset's rows"
                )
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = index.astype(np.int64)
        elif index.dtype.kind not in "iu":
            raise ValidationError(
                f"subset indices must be integers or a boolean mask, got dtype {index.dtype}"
            )
        if index.ndim != 1:
            raise ValidationError(f"subset indices must be 1-D, got shape {index.shape}")
        if index.size == 0:
            raise ValidationError("subset would be empty: no indices selected")
        bad = (index < 0) | (index >= n)
        if bad.any():
            raise ValidationError(
                f"subset index {int(index[bad][0])} is out of range for a Dataset with {n} rows "
                f"(valid: 0..{n - 1})"
            )
        return Dataset(
            self._X[index],
            self._y[index],
            None if self._contributors is None else self._contributors[index],
            feature_names=self._feature_names,
            target_name=self._target_name,
            copy=False,
        )

    @deprecated_keywords(positional=("test_size", "seed", "stratify"))
    def split(
        self, *, test_size: float | int = 0.3, seed: int = 0, stratify: bool = True
    ) -> tuple[Dataset, Dataset]:
        """Shuffle and split into ``(train, valid)``; contributors follow their rows.

        Stratified by ``y`` when ``stratify`` is true, the task is classification and every
        class has at least two rows (and both parts can hold every class); otherwise a
        plain shuffled split.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
        >>> train, valid = ds.split(test_size=0.4, seed=1)
        >>> len(train), len(valid)
        (6, 4)
        """
        from sklearn.model_selection import train_test_split

        n = self.n_samples
        if isinstance(test_size, (bool, np.bool_)) or not isinstance(
            test_size, (int, float, np.integer, np.floating)
        ):
            raise ValidationError(
                f"test_size must be a float in (0, 1) or an int, got {test_size!r}"
            )
        if isinstance(test_size, (int, np.integer)):
            n_test = int(test_size)
            if not 1 <= n_test <= n - 1:
                raise ValidationError(
                    f"test_size={n_test} rows is invalid for {n} rows; give 1..{n - 1}"
                )
        else:
            if not 0.0 < float(test_size) < 1.0:
                raise ValidationError(f"test_size must be in (0, 1), got {test_size}")
            n_test = int(np.ceil(float(test_size) * n))
            if not 1 <= n_test <= n - 1:
                raise ValidationError(
                    f"test_size={test_size} of {n} rows leaves an empty train or test part"
                )
        strata = None
        if stratify and self.task == "classification":
            labels, counts = np.unique(self._y, return_counts=True)
            if counts.min() < 2:
                logger.debug(
                    "split: not stratifying, class %r has fewer than 2 rows",
                    labels[np.argmin(counts)],
                )
            elif n_test < labels.size or n - n_test < labels.size:
                logger.debug(
                    "split: not stratifying, a part is smaller than the %d classes", labels.size
                )
            else:
                strata = self._y
        elif stratify:
            logger.debug("split: not stratifying a regression target")
        random_state = int(np.random.default_rng(seed).integers(0, 2**31 - 1))
        train_idx, test_idx = train_test_split(
            np.arange(n), test_size=n_test, random_state=random_state, stratify=strata
        )
        return self.subset(np.sort(train_idx)), self.subset(np.sort(test_idx))

    def with_contributors(self, ids: Any) -> Dataset:
        """A copy with contributor ids replaced (``None`` removes them)."""
        return Dataset(self._X, self._y, ids, self._feature_names, self._target_name, copy=False)

    def with_labels(self, y: Any) -> Dataset:
        """A copy with labels replaced."""
        return Dataset(
            self._X, y, self._contributors, self._feature_names, self._target_name, copy=True
        )

    # ------------------------------------------------------------------ identity
    def content_hash(self) -> str:
        """SHA-256 (hex) of a canonical, platform-independent byte encoding.

        The encoding is, in order: ``HASH_HEADER``; ``n_samples`` and ``n_features`` as
        little-endian uint64; ``X`` row-major as little-endian float64 (``-0.0`` written as
        ``0.0``); ``y`` as ``b"N"`` followed by little-endian float64 values when numeric
        (bool/int/float) or ``b"S"`` followed by each label length-prefixed UTF-8 (bytes
        labels raw); contributors as ``b"\\x00"`` if absent, else ``b"\\x01"`` followed by
        each id length-prefixed; each feature name length-prefixed; the target name
        length-prefixed. "Length-prefixed" is the byte length as little-endian uint64, then
        the UTF-8 bytes. Integer labels above 2**53 lose precision in this encoding.
        """
        if self._hash is not None:
            return self._hash
        digest = hashlib.sha256()
        digest.update(HASH_HEADER)
        digest.update(struct.pack("<QQ", self.n_samples, self.n_features))
        digest.update(np.ascontiguousarray(self._X + 0.0, dtype="<f8").tobytes())
        if self._y.dtype.kind in "biuf":
            digest.update(b"N")
            digest.update((self._y.astype("<f8") + 0.0).tobytes())
        else:
            digest.update(b"S")
            for label in self._y.tolist():
                digest.update(_length_prefixed(label))
        if self._contributors is None:
            digest.update(b"\x00")
        else:
            digest.update(b"\x01")
            for cid in self._contributors.tolist():
                digest.update(_length_prefixed(cid))
        for name in self._feature_names:
            digest.update(_length_prefixed(name))
        digest.update(_length_prefixed(self._target_name))
        object.__setattr__(self, "_hash", digest.hexdigest())
        return self._hash

    def row_digests(self, *, include_label: bool = True) -> list[bytes]:
        """SHA-256 of each row's canonical bytes: the identity of a row's *content*.

        This is the one definition of "the same row" in openattrib: the gaming audit's
        exact duplicates, the ledger's contribution registry (which stores only these
        digests and their Merkle root, never the data) and provenance all use it. The
        encoding of row ``i`` is ``ROW_HEADER``; ``n_features`` as little-endian uint64;
        the features as little-endian float64 (``-0.0`` written as ``0.0``); then, with
        ``include_label``, ``b"N"`` and the label as little-endian float64 when labels are
        numeric (bool/int/float, so ``1`` and ``1.0`` are the same label) or ``b"S"`` and
        the label length-prefixed UTF-8. Contributor ids, feature names and row positions
        are not part of a row's identity, so the same content submitted by two people, or
        in another order, has the same digest.

        Examples
        --------
        >>> ds = Dataset([[1.0, 2.0], [1.0, 2.0]], [0, 0])
        >>> a, b = ds.row_digests()
        >>> a == b, len(a)
        (True, 32)
        """
        X = np.ascontiguousarray(self._X + 0.0, dtype="<f8")  # + 0.0 folds -0.0 into 0.0
        prefix = ROW_HEADER + struct.pack("<Q", self.n_features)
        if not include_label:
            labels: list[bytes] = [b""] * self.n_samples
        elif self._y.dtype.kind in "biuf":
            y = np.ascontiguousarray(self._y.astype("<f8") + 0.0)
            labels = [b"N" + y[i : i + 1].tobytes() for i in range(self.n_samples)]
        else:
            labels = [b"S" + _length_prefixed(label) for label in self._y.tolist()]
        return [
            hashlib.sha256(prefix + X[i].tobytes() + labels[i]).digest()
            for i in range(self.n_samples)
        ]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        return self.content_hash() == other.content_hash()

    def __hash__(self) -> int:
        return hash(self.content_hash())

    # ------------------------------------------------------------------ export / display
    def to_frame(self) -> pd.DataFrame:
        """Features, the target column and (if any) a ``"contributor"`` column."""
        if self._contributors is not None and (
            _CONTRIBUTOR_COLUMN in self._feature_names or self._target_name == _CONTRIBUTOR_COLUMN
        ):
            raise ValidationError(
                "cannot add the 'contributor' column: a feature or the target already has that name"
            )
        frame = pd.DataFrame(np.array(self._X), columns=list(self._feature_names))
        frame[self._target_name] = np.array(self._y)
        if self._contributors is not None:
            frame[_CONTRIBUTOR_COLUMN] = np.array(self._contributors)
        return frame

    def _summary(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_contributors": self.n_contributors,
            "task": self.task,
            "hash": self.content_hash()[:12],
        }

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in self._summary().items()
        )
        return f"Dataset({fields})"

    def _repr_html_(self) -> str:
        summary = self._summary()
        summary["target"] = self._target_name
        names = self.feature_names
        summary["features"] = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        if self.task == "classification":
            labels, counts = np.unique(self._y, return_counts=True)
            summary["classes"] = ", ".join(
                f"{lab}: {c}"
                for lab, c in list(zip(labels.tolist(), counts.tolist(), strict=True))[:10]
            )
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        )
        return f"<table><caption>openattrib Dataset</caption>{rows}</table>"


def _rebuild(
    X: np.ndarray, y: np.ndarray, contributors: Any, names: list[str], target: str
) -> Dataset:
    return Dataset(X, y, contributors, names, target, copy=False)
