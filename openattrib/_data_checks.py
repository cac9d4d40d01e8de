"""Input coercion and validation behind :class:`openattrib.data.Dataset`.

Every function here turns one user-supplied piece of a data set (features, labels,
contributor ids, names) into its canonical numpy form or raises a
:class:`~openattrib.errors.ValidationError` that names the input, the problem and the fix.
``Dataset`` calls them at its public boundary; nothing else should need them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._ids import check_ids
from .errors import UnsupportedError, ValidationError

__all__ = [
    "coerce_features",
    "coerce_labels",
    "coerce_contributors",
    "check_feature_names",
    "check_lengths",
    "frame_feature_columns",
]

_MAX_LISTED = 8


def listing(items: Sequence[Any]) -> str:
    """Quote and join at most ``_MAX_LISTED`` items for an error message."""
    shown = ", ".join(repr(str(item)) for item in items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f", ... ({len(items) - _MAX_LISTED} more)"
    return shown


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return False


def coerce_features(
    X: Any, feature_names: Sequence[Any] | None, copy: bool
) -> tuple[np.ndarray, list[str]]:
    """Return ``(X as read-only float64 C-contiguous 2-D array, feature names)``."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise UnsupportedError(
            "X is a scipy sparse matrix; openattrib needs a dense array: pass X.toarray()"
        )
    if isinstance(X, pd.Series):
        raise ValidationError(
            f"X must be 2-D (n_samples, n_features); got a pandas Series of length {len(X)}. "
            "For a single feature pass series.to_frame()"
        )
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        if X.shape[1] == 0 or X.shape[0] == 0:
            raise ValidationError(
                f"X is empty: shape {X.shape}; a data set needs at least one row and one feature"
            )
        X = _numeric_frame(X, names)
        array = X.to_numpy(dtype=np.float64, na_value=np.nan)
        if feature_names is None:
            feature_names = names
    else:
        try:
            array = np.asarray(X)
        except ValueError as exc:  # ragged nested lists
            raise ValidationError(
                f"X could not be read as a 2-D array ({exc}); every row must have the same "
                "number of features"
            ) from None
        if array.ndim != 2:
            hint = " For a single feature use X.reshape(-1, 1)." if array.ndim == 1 else ""
            raise ValidationError(
                f"X must be 2-D (n_samples, n_features); got shape {array.shape}.{hint}"
            )
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise ValidationError(
                f"X is empty: shape {array.shape}; a data set needs at least one row and one feature"
            )
        array = _numeric_array(array, feature_names)
    names = check_feature_names(feature_names, array.shape[1])
    _check_finite(array, names)
    array = (np.array if copy else np.asarray)(array, dtype=np.float64, order="C")
    array = array.view()  # never flip the writeable flag on the caller's own array object
    array.flags.writeable = False
    return array, names


def _numeric_frame(X: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``X`` with object columns of numbers made numeric; names the first non-number."""
    columns = {}
    problems = []
    for j, dtype in enumerate(X.dtypes):
        column = X.iloc[:, j]
        if pd.api.types.is_complex_dtype(dtype):
            problems.append(f"{names[j]!r} (complex numbers)")
        elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        else:
            values = column.to_numpy(dtype=object)
            bad = [i for i, v in enumerate(values) if not (_is_real_number(v) or _is_missing(v))]
            if bad:
                problems.append(
                    f"{names[j]!r} (dtype {dtype}; e.g. {ascii(values[bad[0]])} at row {bad[0]})"
                )
            else:
                columns[j] = np.array([np.nan if _is_missing(v) else float(v) for v in values])
    if problems:
        shown = ", ".join(problems[:_MAX_LISTED])
        raise ValidationError(
            f"X has non-numeric feature column(s) {shown}; encode them as numbers "
            "first, e.g. with pd.get_dummies(df, columns=[...]) or an OrdinalEncoder"
        )
    if not columns:
        return X
    X = X.copy()
    for j, values in columns.items():
        X.isetitem(j, values)
    return X


def _numeric_array(array: np.ndarray, feature_names: Sequence[Any] | None) -> np.ndarray:
    """Convert a numpy array to float64, naming the columns that are not numbers."""
    kind = array.dtype.kind
    if kind in "biuf":
        return array.astype(np.float64, copy=False)
    names = (
        [str(n) for n in feature_names]
        if feature_names is not None and len(feature_names) == array.shape[1]
        else [f"x{j}" for j in range(array.shape[1])]
    )
    if kind == "O":
        bad = [
            names[j]
            for j in range(array.shape[1])
            if not all(_is_real_number(v) or v is None for v in array[:, j])
        ]
        if not bad:
            column_values = [[np.nan if v is None else float(v) for v in row] for row in array]
            return np.asarray(column_values, dtype=np.float64)
    else:
        bad = names
    raise ValidationError(
        f"X has non-numeric values (dtype {array.dtype}) in feature column(s) {listing(bad)}; "
        "encode them as numbers first, e.g. with pd.get_dummies or an OrdinalEncoder"
    )


def _check_finite(array: np.ndarray, names: list[str]) -> None:
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    columns = np.flatnonzero(bad.any(axis=0))
    first_row = int(np.flatnonzero(bad.any(axis=1))[0])
    kinds = []
    if np.isnan(array).any():
        kinds.append("NaN (missing)")
    if np.isinf(array).any():
        kinds.append("infinite")
    raise ValidationError(
        f"X contains {' and '.join(kinds)} values in feature column(s) "
        f"{listing([names[j] for j in columns])} (first at row {first_row}); impute or drop "
        "them first, e.g. with sklearn.impute.SimpleImputer or df.dropna()"
    )


def check_feature_names(feature_names: Sequence[Any] | None, n_features: int) -> list[str]:
    """Return feature names as ``list[str]``: defaults ``x0, x1, ...``; no duplicates."""
    if feature_names is None:
        return [f"x{j}" for j in range(n_features)]
    if isinstance(feature_names, str):
        raise ValidationError(
            f"feature_names must be a list of {n_features} names, not a single string "
            f"{feature_names!r}"
        )
    names = [str(n) for n in feature_names]
    if len(names) != n_features:
        raise ValidationError(
            f"feature_names has {len(names)} names but X has {n_features} feature columns; "
            "give exactly one name per column"
        )
    seen: set[str] = set()
    duplicates = []
    for name in names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        raise ValidationError(
            f"feature_names has duplicate name(s) {listing(duplicates)}; every feature needs "
            "a distinct name"
        )
    return names


def coerce_labels(y: Any, copy: bool) -> np.ndarray:
    """Return ``y`` as a read-only 1-D numpy array without missing values.

    Integer, boolean, float and string arrays keep their dtype. An object array whose
    entries are all numbers (as pandas gives for some columns) is converted to the numeric
    dtype numpy infers; one whose entries are all strings stays ``object``.
    """
    if isinstance(y, (pd.Series, pd.Index, pd.Categorical)):
        dtype = getattr(y, "dtype", None)
        if isinstance(dtype, pd.CategoricalDtype) or isinstance(y, pd.Categorical):
            array = np.asarray(y, dtype=object)
        elif getattr(dtype, "numpy_dtype", None) is not None and not pd.isna(y).any():
            array = y.to_numpy(dtype=dtype.numpy_dtype)  # nullable Int64 / Float64 / boolean
        else:
            array = y.to_numpy()
    elif isinstance(y, pd.DataFrame):
        raise ValidationError(
            f"y must be 1-D; got a DataFrame with shape {y.shape}. Pass one column, e.g. df['label']"
        )
    else:
        array = np.asarray(y)
    if array.ndim != 1:
        raise ValidationError(
            f"y must be 1-D (one label per row); got shape {array.shape}. Use y.ravel() if it "
            "is a single column"
        )
    if array.shape[0] == 0:
        raise ValidationError("y is empty; a data set needs at least one row")
    kind = array.dtype.kind
    if kind == "O":
        missing = np.flatnonzero([_is_missing(v) for v in array])
        if missing.size:
            raise ValidationError(
                f"y has missing values (None/NaN), first at row {int(missing[0])}; drop or fill "
                "those rows before building the Dataset"
            )
        if all(isinstance(v, str) for v in array):
            array = np.array(array, dtype=object)
        elif all(isinstance(v, (bool, np.bool_)) for v in array):
            array = np.array(array.tolist(), dtype=bool)
        elif all(_is_real_number(v) for v in array):
            array = np.array(array.tolist())
        else:
            types = sorted({type(v).__name__ for v in array})
            raise ValidationError(
                f"y mixes value types ({', '.join(types)}); labels must be all numbers or all "
                "strings"
            )
    elif kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            what = "missing values (NaN)" if np.isnan(array[first]) else "infinite values"
            raise ValidationError(
                f"y has {what}, first at row {first}; drop or fill those rows before building "
                "the Dataset"
            )
    elif kind not in "biuUS":
        raise UnsupportedError(
            f"y has dtype {array.dtype}, which openattrib does not support; use numeric or "
            "string labels"
        )
    array = np.array(array) if copy else np.asarray(array)
    array = array.view()
    array.flags.writeable = False
    return array


def coerce_contributors(contributors: Any, column: Any = None) -> np.ndarray | None:
    """Return contributor ids as a read-only 1-D object array of ``str`` (or ``None``).

    Strings are kept exactly as given; other values (ints from an array) become ``str()``.
    Every distinct id must follow the payee-identity rule of :mod:`openattrib._ids`.
    ``column`` (the user's column name) is used in error messages.
    """
    if contributors is None:
        return None
    what = "contributors" if column is None else f"contributor column {str(column)!r}"
    if isinstance(contributors, str):
        raise ValidationError(
            f"{what} must give one id per row, not a single string {contributors!r}"
        )
    values = (
        contributors.to_numpy(dtype=object)
        if isinstance(contributors, (pd.Series, pd.Index))
        else np.asarray(contributors, dtype=object)
    )
    if values.ndim != 1:
        raise ValidationError(f"{what} must be 1-D (one id per row); got shape {values.shape}")
    out = np.empty(values.shape[0], dtype=object)
    for i, value in enumerate(values):
        if _is_missing(value) or (isinstance(value, str) and not value.strip()):
            raise ValidationError(
                f"{what} has a missing or empty id at row {i} (0-based; got {value!r}); every row "
                "needs a contributor id"
            )
        out[i] = value if isinstance(value, str) else str(value)
    check_ids(out.tolist(), what)
    out.flags.writeable = False
    return out


def check_lengths(n_x: int, n_y: int, n_contributors: int | None) -> None:
    """Raise if X, y and contributors do not have the same number of rows."""
    lengths = {n_x, n_y} | ({n_contributors} if n_contributors is not None else set())
    if len(lengths) > 1:
        contributors_part = (
            f", contributors has {n_contributors} entries" if n_contributors is not None else ""
        )
        raise ValidationError(
            f"length mismatch: X has {n_x} rows, y has {n_y} entries{contributors_part}; "
            "they must all have one entry per row"
        )


def frame_feature_columns(
    df: Any, target: Any, contributor: Any, features: Sequence[Any] | None
) -> list[Any]:
    """Check the column choices of ``Dataset.from_frame`` and return the feature columns."""
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            f"from_frame expects a pandas DataFrame, got {type(df).__name__}; use "
            "Dataset(X, y) for arrays"
        )
    available = [str(c) for c in df.columns]
    duplicated = list(dict.fromkeys(c for c in available if available.count(c) > 1))
    if duplicated:
        raise ValidationError(
            f"the DataFrame has duplicate column name(s) {listing(duplicated)}; every column "
            "needs a distinct name"
        )
    for role, column in (("target", target), ("contributor", contributor)):
        if column is not None and column not in df.columns:
            raise ValidationError(
                f"{role} column {column!r} is not in the DataFrame; available columns: "
                f"{listing(available)}"
            )
    if features is None:
        features = [c for c in df.columns if c != target and c != contributor]
    else:
        features = list(features)
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise ValidationError(
                f"feature column(s) {listing(missing)} are not in the DataFrame; "
                f"available columns: {listing(available)}"
            )
        clash = [c for c in features if c in (target, contributor)]
        if clash:
            raise ValidationError(
                f"column(s) {listing(clash)} cannot be both a feature and the "
                "target/contributor column"
            )
    if not features:
        raise ValidationError(
            f"no feature columns left in the DataFrame besides target {target!r}"
            + (f" and contributor {contributor!r}" if contributor is not None else "")
        )
    return features
