"""Argument checks shared by the closed-form estimators (KNN-Shapley, Data-OOB)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError

__all__ = ["check_int", "check_n_jobs", "check_labels", "TASKS"]

TASKS = ("auto", "classification", "regression")


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name} must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_n_jobs(n_jobs: Any) -> int:
    """``n_jobs`` as a positive int or -1 (all cores)."""
    if (
        isinstance(n_jobs, (bool, np.bool_))
        or not isinstance(n_jobs, (int, np.integer))
        or n_jobs == 0
        or n_jobs < -1
    ):
        raise ValidationError(
            f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}"
        )
    return int(n_jobs)


def _family(y: np.ndarray) -> str:
    return "numeric" if y.dtype.kind in "biuf" else "text"


def check_labels(task: str, datasets: dict[str, Dataset]) -> None:
    """Refuse labels that do not fit ``task`` (``"classification"`` or ``"regression"``).

    Regression needs numeric targets; classification refuses non-integer floats (a
    regression target) and data sets whose labels are of different kinds (text vs numbers).
    """
    if task == "regression":
        for label, ds in datasets.items():
            if ds.y.dtype.kind not in "iuf":
                raise ValidationError(
                    f"task='regression' needs numeric targets, but {label}.y has dtype "
                    f"{ds.y.dtype} (e.g. {ds.y[0]!r}); use task='classification' for class labels"
                )
        return
    families = {label: _family(ds.y) for label, ds in datasets.items()}
    if len(set(families.values())) > 1:
        described = " but ".join(
            f"{label} labels are {fam} ({datasets[label].y.dtype})"
            for label, fam in families.items()
        )
        raise ValidationError(f"{described}; give every data set labels of the same kind")
    for label, ds in datasets.items():
        if ds.y.dtype.kind == "f" and not np.all(ds.y == np.round(ds.y)):
            example = ds.y[np.flatnonzero(ds.y != np.round(ds.y))[0]]
            raise ValidationError(
                f"{label}.y holds non-integer floats (e.g. {example!r}): that is a regression "
                "target, not class labels. Use task='regression', or pass integer/string "
                "class labels for classification"
            )
