"""Per-inference influence scores, computed block by block on demand: :class:`InfluenceResult`.

Every influence method here has the form ``S[t, i] = q_t . g_i``: a *query factor* ``q_t``
per test point (for influence functions ``H^{-1} grad loss(test_t)``; for TracIn the
learning-rate-weighted checkpoint gradients; for TRAK the projected, kernel-whitened
gradients) against a *training factor* ``g_i`` per training point. The result stores the
query factors (``n_test x n_params``, small) and a function that contracts them with the
training factors of a block of rows, so the ``n_test x n_train`` matrix exists only when
asked for with :meth:`InfluenceResult.to_array`.

Sign convention (the whole package): **positive = the training point helps the test
prediction**: removing it would increase the test loss (or, for an explained output without
a label, decrease that output).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._vocab import parse_memory_budget
from ..errors import ValidationError
from ..per_test import PerTestResult, available_memory
from ..result import Attribution

__all__ = ["InfluenceResult", "available_memory"]

Contract = Callable[..., np.ndarray]  # (Q, rows, out=None) -> Q @ G[rows].T
SelfInfluence = Callable[[slice], np.ndarray]

_MIB = 2**20


class InfluenceResult(PerTestResult):
    """Influence of every training point on every test point, computed lazily.

    Not built by hand: returned by :func:`openattrib.influence`, :func:`openattrib.tracin`
    and :func:`openattrib.trak`.

    Parameters
    ----------
    query : ndarray of shape (n_test, n_factors)
        Query factors ``q_t``.
    contract : callable ``(Q, rows, out=None) -> ndarray (len(Q), len(rows))``
        ``Q @ G[rows].T`` for a slice of training rows, written into ``out`` (a
        C-contiguous array of that shape) when given.
    n_train : int
    self_influence : callable ``rows -> ndarray``, optional
        Self-influence ``g_i^T H^{-1} g_i`` of a slice of training rows.
    train_names, contributors, test_names : sequences
    method : str
    parameters, provenance, diagnostics : dict
    memory_budget : int or str, optional
        Bytes a single block of intermediate results may use (or a string like ``"256MB"``);
        default 256 MiB.
    seed : int, optional
        Seed of the method's randomness (recorded in every attribution it returns).
    work_per_entry : int
        Floats of intermediate storage per (test, train) pair in ``contract``.

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, test = oa.datasets.load_demo()
    >>> model = LogisticRegression().fit(train.X, train.y)
    >>> result = oa.influence(model, train, test, damping=1e-3)
    >>> result.to_array().shape  # (n_test, n_train)
    (170, 322)
    >>> top = result.for_test(0).ranking()[:3]  # the three training points that help most
    """

    def __init__(
        self,
        query: np.ndarray,
        contract: Contract,
        n_train: int,
        *,
        self_influence: SelfInfluence | None = None,
        train_names: list[str] | None = None,
        contributors: np.ndarray | None = None,
        test_names: list[str] | None = None,
        method: str = "influence",
        parameters: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        diagnostics: dict[str, Any] | None = None,
        memory_budget: int | str | None = None,
        seed: int | None = None,
        work_per_entry: int = 1,
    ) -> None:
        self._query = np.asarray(query, dtype=np.float64)
        if self._query.ndim != 2:
            raise ValidationError("query factors must be 2-D (n_test, n_factors)")
        self._contract = contract
        self._self = self_influence
        self.n_train = int(n_train)
        self.n_test = int(self._query.shape[0])
        self.train_names = (
            [str(i) for i in range(self.n_train)] if train_names is None else list(train_names)
        )
        self.test_names = (
            [str(i) for i in range(self.n_test)] if test_names is None else list(test_names)
        )
        self.contributors = contributors
        self.method = method
        self.parameters = dict(parameters or {})
        self.provenance = dict(provenance or {})
        self.diagnostics = dict(diagnostics or {})
        self.memory_budget = (
            256 * _MIB if memory_budget is None else parse_memory_budget(memory_budget)
        )
        self.seed = None if seed is None else int(seed)
        self.work_per_entry = max(1, int(work_per_entry))

    value_column = "influence"

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_test, n_train)``."""
        return (self.n_test, self.n_train)

    def __repr__(self) -> str:
        return (
            f"InfluenceResult(method={self.method!r}, n_test={self.n_test}, n_train={self.n_train})"
        )

    def _test_index(self, i: int) -> int:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise ValidationError(f"test index must be an int, got {i!r}")
        if not -self.n_test <= int(i) < self.n_test:
            raise ValidationError(
                f"test index {i} is out of range for {self.n_test} test points "
                f"(valid: 0..{self.n_test - 1})"
            )
        return int(i) % self.n_test

    def _train_block(self, n_rows: int) -> int:
        per_row = 8 * self.work_per_entry * max(1, n_rows)
        return int(max(1, min(self.n_train, self.memory_budget // per_row)))

    def _row(self, q: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``q @ G.T`` for query factors ``q`` (m, f), block over training rows."""
        step = self._train_block(q.shape[0])
        if step >= self.n_train:
            return self._contract(q, slice(0, self.n_train), out=out)
        if out is None:
            out = np.empty((q.shape[0], self.n_train))
        for start in range(0, self.n_train, step):
            rows = slice(start, min(start + step, self.n_train))
            out[:, rows] = self._contract(q, rows)
        return out

    def _attribution(self, values: np.ndarray, method: str, **parameters: Any) -> Attribution:
        return Attribution(
            values,
            self.train_names,
            method=method,
            parameters={**self.parameters, **parameters},
            seed=self.seed,
            provenance=self.provenance,
            players="points",
            contributors=self.contributors,
            diagnostics=self.diagnostics,
        )

    # ------------------------------------------------------------------ views
    def for_test(self, i: int) -> Attribution:
        """Influence of every training point on test point ``i`` (level ``"points"``).

        ``by_contributor()`` on the result sums it per contributor.
        """
        i = self._test_index(i)
        values = self._row(self._query[i : i + 1])[0]
        return self._attribution(values, self.method, test_index=i, test_name=self.test_names[i])

    def aggregate(self, test_weights: Any = None) -> Attribution:
        """Weighted sum over test points (default: the mean), in one pass.

        With the default weights the value is the predicted change of the *mean* test loss
        when the training point is removed (positive = the point helps on the test set).
        """
        weights = self._test_weights(test_weights)
        if weights is None:
            weights = np.full(self.n_test, 1.0 / self.n_test)
        values = self._row((weights @ self._query)[None, :])[0]
        return self._attribution(
            values,
            f"{self.method} (aggregate)",
            test_weights="mean" if test_weights is None else "custom",
        )

    def self_influence(self) -> Attribution:
        """Influence of each training point on its own loss (Koh & Liang 2017, section 5.4).

        ``g_i^T H^{-1} g_i >= 0``: the predicted increase of point ``i``'s loss if it were
        removed. **High** self-influence flags points the model can only fit by memorising
        them: mislabelled examples and outliers rank at the top (Pruthi et al. 2020 use the
        same score with TracIn). To use it as a data *value* where low means bad, negate it.
        """
        if self._self is None:
            raise ValidationError(f"self-influence is not available for {self.method}")
        values = np.empty(self.n_train)
        per_row = 8 * 4 * max(1, self._query.shape[1])  # gradients, solves and temporaries
        step = int(max(1, min(self.n_train, self.memory_budget // per_row)))
        for start in range(0, self.n_train, step):
            rows = slice(start, min(start + step, self.n_train))
            values[rows] = self._self(rows)
        attribution = self._attribution(values, f"{self.method} (self-influence)")
        attribution.diagnostics["higher_is_more_suspicious"] = True
        return attribution

    # ------------------------------------------------------------------ dense access
    def iter_blocks(self, test_block: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(test_rows, S[test_rows, :])`` blocks that fit in ``memory_budget``."""
        if test_block is None:
            test_block = max(1, self.memory_budget // (8 * self.n_train * self.work_per_entry))
        for start in range(0, self.n_test, int(test_block)):
            rows = slice(start, min(start + int(test_block), self.n_test))
            yield rows, self._row(self._query[rows])

    def _dense(self) -> np.ndarray:
        out = np.empty((self.n_test, self.n_train))
        step = max(1, self.memory_budget // (8 * self.n_train * self.work_per_entry))
        for start in range(0, self.n_test, step):
            rows = slice(start, min(start + step, self.n_test))
            self._row(self._query[rows], out=out[rows])  # fills the rows in place
        return out

    def values(self, test_indices: Any) -> np.ndarray:
        """Rows ``test_indices`` of the influence matrix, shape (len(test_indices), n_train)."""
        idx = np.atleast_1d(np.asarray(test_indices))
        if idx.dtype.kind not in "iu":
            raise ValidationError("test_indices must be integers")
        idx = np.array([self._test_index(int(i)) for i in idx], dtype=np.int64)
        return self._row(self._query[idx])
