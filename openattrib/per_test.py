"""One protocol for per-test-point results: :class:`PerTestResult`.

KNN-Shapley per test point (:class:`openattrib.estimators.KNNShapleyPerTest`) and influence
scores (:class:`openattrib.InfluenceResult`) are both a lazy ``(n_test, n_train)`` matrix
whose row ``t`` attributes test point ``t`` to the training points. Both answer the same
questions with the same methods and meanings:

* ``for_test(i)`` -- the :class:`~openattrib.Attribution` of test point ``i`` (one row);
* ``aggregate(test_weights=None)`` -- the weighted sum of the rows (default: their mean);
* ``top(i, k, order)`` -- the ``k`` training points with the largest values for test ``i``;
* ``to_array(memory_budget=None)`` -- the dense matrix, refused above ``memory_budget``;
* ``by_contributor(i=None)`` -- ``for_test(i)`` (or the aggregate) summed per contributor.
"""

from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np
import pandas as pd

from ._vocab import deprecated_keywords, parse_memory_budget
from .errors import BudgetError, ValidationError
from .result import Attribution

__all__ = ["PerTestResult", "available_memory"]

_ORDERS = ("helpful", "harmful", "abs")


def available_memory() -> int:
    """Bytes of physical memory currently available (Linux ``sysconf``; 4 GiB otherwise)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-Linux
        return 4 * 2**30


class PerTestResult(abc.ABC):
    """Base class of the lazy per-test-point results (see the module docstring).

    Subclasses provide ``shape``, ``train_names``, ``contributors``, :meth:`for_test`,
    :meth:`aggregate` and ``_dense``; the rest is shared so the two kinds of result
    behave identically.
    """

    train_names: list[str]
    contributors: np.ndarray | None
    #: column of ``top()`` holding the values
    value_column = "value"

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int]:
        """``(n_test, n_train)``."""

    def __len__(self) -> int:
        return self.shape[0]

    @abc.abstractmethod
    def for_test(self, i: int) -> Attribution:
        """The attribution of test point ``i`` over the training points."""

    @abc.abstractmethod
    def aggregate(self, test_weights: Any = None) -> Attribution:
        """Weighted sum of the rows over test points (default weights: the mean)."""

    @abc.abstractmethod
    def _dense(self) -> np.ndarray:
        """The full ``(n_test, n_train)`` matrix (size already checked)."""

    def _test_weights(self, test_weights: Any) -> np.ndarray | None:
        """``test_weights`` checked: None, or one finite float per test point."""
        if test_weights is None:
            return None
        n_test = self.shape[0]
        weights = np.asarray(test_weights, dtype=np.float64).reshape(-1)
        if weights.shape != (n_test,) or not np.all(np.isfinite(weights)):
            raise ValidationError(
                f"test_weights must be {n_test} finite numbers (one per test point), "
                f"got shape {weights.shape}"
            )
        return weights

    @deprecated_keywords(max_bytes="memory_budget")
    def to_array(self, *, memory_budget: int | str | None = None) -> np.ndarray:
        """The dense ``(n_test, n_train)`` float64 matrix, after checking its size.

        Refuses (:class:`~openattrib.errors.BudgetError`) when the matrix needs more than
        ``memory_budget`` (int bytes or a string like ``"512MB"``; default: half of the
        currently available physical memory).
        """
        if memory_budget is None:
            limit = available_memory() // 2
        else:
            limit = parse_memory_budget(memory_budget)
        need = 8 * self.shape[0] * self.shape[1]
        if need > limit:
            raise BudgetError(
                f"the per-test matrix {self.shape} needs {need / 2**20:,.1f} MiB (float64), above "
                f"memory_budget={limit / 2**20:,.1f} MiB; use for_test(i) or aggregate(), or "
                "pass a larger memory_budget"
            )
        return self._dense()

    def top(self, i: int, k: int = 10, order: str = "helpful") -> pd.DataFrame:
        """The ``k`` training points with the largest values for test point ``i``.

        ``order``: ``"helpful"`` (largest positive first), ``"harmful"`` (most negative
        first) or ``"abs"`` (largest magnitude first). Ties keep training order.
        """
        if order not in _ORDERS:
            raise ValidationError(f"order must be 'helpful', 'harmful' or 'abs', got {order!r}")
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValidationError(f"k must be a positive int, got {k!r}")
        values = self.for_test(i).values
        key = {"helpful": -values, "harmful": values, "abs": -np.abs(values)}[order]
        chosen = np.argsort(key, kind="stable")[: int(k)]
        frame = pd.DataFrame(
            {
                "train_index": chosen,
                "name": [self.train_names[j] for j in chosen],
                self.value_column: values[chosen],
            }
        )
        if self.contributors is not None:
            frame.insert(2, "contributor", np.asarray(self.contributors)[chosen])
        frame.index = pd.RangeIndex(1, len(chosen) + 1, name="rank")
        return frame

    def by_contributor(self, i: int | None = None) -> Attribution:
        """Sum per contributor of ``for_test(i)``, or of :meth:`aggregate` when ``i`` is None."""
        return (self.aggregate() if i is None else self.for_test(i)).by_contributor()
