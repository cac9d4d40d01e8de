"""Exact KNN-Shapley (Jia et al., 2019): closed-form Shapley values of a K-nearest-neighbour model.

The players are the training points; for one test point ``(x, y)`` the game is the
utility of the unweighted KNN model (Jia et al., 2019, "Efficient task-specific data
valuation for nearest neighbor algorithms", PVLDB 12(11)):

* classification: ``U(S) = (1/k) * #{j among the min(k, |S|) nearest points of S : y_j == y}``
* regression: ``U(S) = -((1/k) * sum of y_j over the min(k, |S|) nearest points of S - y)^2``

with ``U(empty) = 0`` (classification) or ``-y^2`` (regression). Both have O(n log n)
closed forms per test point; the reported value is the mean over test points.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._vocab import check_players, deprecated_keywords, parse_memory_budget
from ..data import Dataset
from ..errors import ValidationError
from ..parallel import Executor
from ..per_test import PerTestResult
from ..result import Attribution, make_provenance
from ._checks import TASKS, check_int, check_labels, check_n_jobs
from ._knn_core import METRICS, NeighbourOrder, classification_values, regression_values

__all__ = ["knn_shapley", "knn_shapley_per_test", "KNNShapleyPerTest", "KNN_METRICS"]

log = logging.getLogger("openattrib")

KNN_METRICS = METRICS
#: Test points summed into one partial sum; fixes the summation order for every
#: batch_size and n_jobs, so the mean is bit-identical whatever they are.
REDUCTION_CHUNK = 64
_BYTES_PER_CELL = 64  # working memory per (test point, training point) pair in a block
_TARGET_CELLS = 1 << 17
_DEFAULT_BUDGET = "512MB"


def _check_task(task: str, train: Dataset, test: Dataset, role: str) -> str:
    if task not in TASKS:
        raise ValidationError(f"task must be one of {TASKS}, got {task!r}")
    task = train.task if task == "auto" else task
    check_labels(task, {"train": train, role: test})
    return task


class _Kernel:
    """What computing rows needs (and all a worker process receives): no names, no Datasets."""

    def __init__(
        self, train: Dataset, test: Dataset, k: int, metric: str, task: str, batch_size: int
    ) -> None:
        self.k, self.task, self.batch_size = k, task, batch_size
        self.n_train = train.n_samples
        self.X_test = test.X
        self.neighbours = NeighbourOrder(train.X, metric)
        if task == "classification":
            classes, codes = np.unique(np.concatenate([train.y, test.y]), return_inverse=True)
            small = np.min_scalar_type(-max(classes.size, 1))  # compact codes gather faster
            self.y_train = codes[: self.n_train].astype(small)
            self.y_test = codes[self.n_train :].astype(small)
        else:
            self.y_train = train.y.astype(np.float64)
            self.y_test = test.y.astype(np.float64)

    def block_values(self, start: int, stop: int) -> np.ndarray:
        """Values (stop - start, n_train) of test points start..stop-1, in one block."""
        order = self.neighbours.order(self.X_test[start:stop])
        if self.task == "classification":
            match = (self.y_train[order] == self.y_test[start:stop, None]).astype(np.float64)
            values = classification_values(match, self.k)
        else:
            values = regression_values(self.y_train[order], self.y_test[start:stop], self.k)
        out = np.empty_like(values)
        for row in range(out.shape[0]):
            out[row, order[row]] = values[row]
        return out

    def blocks(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """Values of test points start..stop-1 in sub-blocks of at most batch_size rows."""
        for lo in range(start, stop, self.batch_size):
            yield self.block_values(lo, min(lo + self.batch_size, stop))

    def chunk_sum(self, chunk: tuple[int, int, np.ndarray | None]) -> np.ndarray:
        """Sum of the rows of test points chunk[0]..chunk[1]-1, added in test order.

        ``chunk[2]``: weights of those rows (None: plain sum).
        """
        start, stop, weights = chunk
        total = np.zeros(self.n_train)
        t = 0
        for values in self.blocks(start, stop):
            for row in values:
                if weights is None:
                    total += row
                else:
                    total += weights[t] * row
                t += 1
        return total


class KNNShapleyPerTest(PerTestResult):
    """Per-test-point KNN-Shapley values, computed lazily block by block.

    Row ``t`` is the exact Shapley value of every training point in the KNN game of test
    point ``t`` alone; the mean of the rows is :func:`knn_shapley`. Nothing is computed
    until asked, and :meth:`for_test` computes a single row (one distance pass and one
    sort over the training set), so attributing one inference is cheap. Shares the
    per-test protocol of :class:`openattrib.per_test.PerTestResult` (``for_test``,
    ``aggregate``, ``top``, ``to_array``, ``by_contributor``) with influence results.

    Examples
    --------
    >>> import openattrib as oa
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> per_test = oa.knn_shapley_per_test(train, test, k=3, progress=False)
    >>> len(per_test), per_test.shape
    (30, (30, 120))
    >>> row = per_test.for_test(0)  # Attribution over the 120 training points
    """

    def __init__(
        self,
        train: Dataset,
        test: Dataset,
        *,
        k: int,
        metric: str,
        task: str,
        batch_size: int | str,
        memory_budget: int | str | None = None,
        n_jobs: int = 1,
        progress: bool = True,
    ) -> None:
        self.train, self.test = train, test
        self.contributors = train.contributors
        self.k, self.metric, self.task = k, metric, task
        self.n_jobs = n_jobs
        self.progress = progress
        self.memory_budget = parse_memory_budget(
            _DEFAULT_BUDGET if memory_budget is None else memory_budget
        )
        n = train.n_samples
        if batch_size == "auto":
            # a few hundred thousand cells per block keeps the passes cache-friendly while
            # the distance product stays a matrix product (>= 4 rows), within the budget
            fits = max(1, self.memory_budget // (_BYTES_PER_CELL * n))
            batch_size = int(min(fits, max(4, _TARGET_CELLS // n), REDUCTION_CHUNK))
        self.batch_size = check_int("batch_size", batch_size, 1)
        self._kernel = _Kernel(train, test, k, metric, task, self.batch_size)

    @property
    def train_names(self) -> list[str]:  # type: ignore[override]
        """Training point names: their row indices as strings."""
        return [str(i) for i in range(self.train.n_samples)]

    names = train_names

    @property
    def test_names(self) -> list[str]:
        """Test point names: their row indices as strings."""
        return [str(i) for i in range(self.test.n_samples)]

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_test, n_train)``."""
        return (self.test.n_samples, self.train.n_samples)

    def __repr__(self) -> str:
        return (
            f"KNNShapleyPerTest(n_test={self.shape[0]}, n_train={self.shape[1]}, k={self.k}, "
            f"metric={self.metric!r}, task={self.task!r})"
        )

    def _check_range(self, start: int, end: int) -> tuple[int, int]:
        n_test = len(self)
        start = check_int("start", start, 0)
        stop = check_int("end", end, 0)
        if not start <= stop <= n_test:
            raise ValidationError(
                f"block({start}, {stop}) is out of range: need 0 <= start <= end <= {n_test}"
            )
        return start, stop

    # ------------------------------------------------------------------ public
    def block(self, start: int, end: int) -> np.ndarray:
        """Values of test points ``start..end-1``: array (end - start, n_train)."""
        start, stop = self._check_range(start, end)
        if stop - start <= self.batch_size:
            return self._kernel.block_values(start, stop)
        return np.concatenate(list(self._kernel.blocks(start, stop)), axis=0)

    def for_test(self, i: int) -> Attribution:
        """The attribution of one test point (one inference) over the training points."""
        i = check_int("i", i, 0)
        if i >= len(self):
            raise ValidationError(f"test index {i} is out of range for {len(self)} test points")
        return self._attribution(self.block(i, i + 1)[0], test_index=i)

    def _dense(self) -> np.ndarray:
        return self.block(0, len(self))

    def aggregate(self, test_weights: Any = None) -> Attribution:
        """Weighted sum over test points; by default the mean, the value of the test set."""
        weights = self._test_weights(test_weights)
        n_test = len(self)
        chunks = [
            (
                s,
                min(s + REDUCTION_CHUNK, n_test),
                None if weights is None else weights[s : s + REDUCTION_CHUNK],
            )
            for s in range(0, n_test, REDUCTION_CHUNK)
        ]
        total = np.zeros(self.train.n_samples)
        bar = tqdm(total=n_test, desc="knn_shapley", unit="test", disable=not self.progress)
        with bar, Executor(n_jobs=self.n_jobs) as executor:
            partials = executor.imap(_Kernel.chunk_sum, chunks, shared=self._kernel)
            for (start, stop, _), partial in zip(chunks, partials, strict=True):
                total += partial  # partial sums added in chunk order: n_jobs-independent
                bar.update(stop - start)
        if weights is None:
            return self._attribution(total / n_test, test_index=None)
        attribution = self._attribution(total, test_index=None)
        attribution.parameters["test_weights"] = "custom"
        return attribution

    def _attribution(self, values: np.ndarray, test_index: int | None) -> Attribution:
        train, test = self.train, self.test
        parameters = {
            "k": self.k,
            "metric": self.metric,
            "task": self.task,
            "n_test": len(self),
            "ties": "equal distance: lower training index is nearer",
        }
        diagnostics: dict[str, Any] = {
            "k_at_least_n_train": self.k >= train.n_samples,
            "batch_size": self.batch_size,
        }
        method = "knn_shapley"
        if test_index is not None:
            parameters["test_index"] = test_index
            diagnostics["test_label"] = test.y[test_index : test_index + 1].tolist()[0]
            method = "knn_shapley (one test point)"
        return Attribution(
            values,
            self.names,
            method=method,
            parameters=parameters,
            provenance=make_provenance(
                dataset_hash=train.content_hash(),
                valid_hash=test.content_hash(),
                model=f"KNN {self.task} (k={self.k}, metric={self.metric})",
            ),
            players="points",
            contributors=train.contributors,
            diagnostics=diagnostics,
        )


_KEYWORDS = ("k", "metric", "task", "batch_size", "n_jobs")


def _per_test(
    train: Dataset,
    test: Dataset,
    role: str,
    k: Any,
    metric: Any,
    task: Any,
    batch_size: Any,
    n_jobs: Any,
    memory_budget: Any,
    progress: Any,
) -> KNNShapleyPerTest:
    """Check the arguments and build the lazy per-test result (``role``: "valid" or "test")."""
    for label, ds in (("train", train), (role, test)):
        if not isinstance(ds, Dataset):
            raise ValidationError(
                f"{label} must be an openattrib Dataset, got {type(ds).__name__}; build one "
                "with oa.Dataset(X, y)"
            )
    if test.n_features != train.n_features:
        raise ValidationError(
            f"{role} has {test.n_features} features but train has {train.n_features}; both must "
            "have the same feature columns in the same order"
        )
    k = check_int("k", k, 1)
    if not isinstance(metric, str) or metric.lower() not in METRICS:
        raise ValidationError(f"unknown metric {metric!r}; supported metrics: {', '.join(METRICS)}")
    metric = metric.lower()
    task = _check_task(task, train, test, role)
    n_jobs = check_n_jobs(n_jobs)
    if batch_size != "auto":
        check_int("batch_size", batch_size, 1)
    if k >= train.n_samples:
        log.info(
            "knn_shapley: k=%d >= %d training points, so every point is a neighbour",
            k,
            train.n_samples,
        )
    return KNNShapleyPerTest(
        train,
        test,
        k=k,
        metric=metric,
        task=task,
        batch_size=batch_size,
        memory_budget=memory_budget,
        n_jobs=int(n_jobs),
        progress=bool(progress),
    )


@deprecated_keywords(positional=_KEYWORDS, test="valid")
def knn_shapley(
    train: Dataset,
    valid: Dataset,
    *,
    k: int = 5,
    metric: str = "euclidean",
    task: str = "auto",
    batch_size: int | str = "auto",
    n_jobs: int = 1,
    players: str = "points",
    per_test: bool = False,
    memory_budget: int | str | None = None,
    progress: bool = True,
) -> Attribution:
    """Exact KNN-Shapley values of the training points (Jia et al., 2019).

    For each test point the Shapley value of every training point in the KNN game is
    computed in closed form, then averaged over the test points.

    Utility of a coalition S for one test point ``(x, y)`` (the paper's definitions),
    where ``a_1(S), a_2(S), ...`` are the points of S from nearest to farthest:

    * classification (Theorem 1): ``U(S) = (1/k) sum_{j=1}^{min(k,|S|)} 1[y_{a_j(S)} = y]``,
      ``U(empty) = 0``. Values: ``s_N = 1[y_N = y] / max(k, N)`` and
      ``s_i = s_{i+1} + (1[y_i = y] - 1[y_{i+1} = y]) / max(k, i)`` over the sorted points.
    * regression (the paper's KNN regressor): ``U(S) = -((1/k) sum_{j=1}^{min(k,|S|)} y_{a_j(S)} - y)^2``,
      ``U(empty) = -y^2`` (the KNN regressor's negative squared error, dividing by k);
      closed form in ``openattrib.estimators._knn_core.regression_values``.

    Parameters
    ----------
    train, valid : Dataset
        Points to value, and the points the KNN utility scores on (formerly ``test``).
    k : int, default 5
        Number of neighbours, >= 1. ``k >= len(train)`` is allowed: every point is then a
        neighbour, the classification utility is additive and each point gets
        ``1[y_i = y] / k``.
    metric : {"euclidean", "cosine", "manhattan"}
        Distance. Ordering uses the exact float64 distance (squared euclidean
        ``sum_f (x_f - z_f)^2``; cosine ``1 - x.z / (|x| |z|)``, zero vectors at distance 1;
        manhattan ``sum_f |x_f - z_f|``). **Ties**: training points at equal distance are
        ordered by training index, the lower index counting as nearer.
    task : {"auto", "classification", "regression"}
        ``"auto"`` uses ``train.task`` (float targets mean regression).
    batch_size : int or "auto"
        Test points processed together; ``"auto"`` sizes it from ``memory_budget``
        (about 64 bytes per test-train pair). Results are bit-identical for every value.
    n_jobs : int
        Local worker processes (``openattrib.parallel``; -1 = all cores). Results are
        bit-identical for every value.
    players : {"points", "contributors"}
        ``"contributors"``: the point values summed per contributor
        (``result.by_contributor()``), the sum of point values, not a contributor-level game.
    per_test : bool
        Deprecated: use :func:`knn_shapley_per_test`, which returns the lazy per-test
        result; ``knn_shapley`` always returns an :class:`~openattrib.Attribution`.
    memory_budget : int or str, optional
        Working memory for one block, e.g. ``"512MB"`` (the default).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Attribution
        Exact values (no stderr), ``players="points"``, names ``"0", "1", ...`` (training
        row indices), carrying ``train.contributors`` so ``.by_contributor()`` sums them.

    Notes
    -----
    pyDVL's ``KNNShapleyValuation`` (0.10) uses the same recursion with
    ``s_N = 1[y_N = y] / N``: identical for ``k <= N``; for ``k > N`` only the form above sums to
    ``U(all) - U(empty)`` (efficiency), so the two differ there.

    Examples
    --------
    >>> import openattrib as oa
    >>> train, valid = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> values = oa.knn_shapley(train, valid, k=5, progress=False)
    >>> values.level, len(values)
    ('points', 120)
    """
    players = check_players(players)
    values = _per_test(
        train, valid, "valid", k, metric, task, batch_size, n_jobs, memory_budget, progress
    )
    if per_test:
        warnings.warn(
            "knn_shapley(per_test=True) is deprecated and will be removed in the next release; "
            "use knn_shapley_per_test(train, test, ...) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        return values  # type: ignore[return-value]
    if math.prod(values.shape) == 0:  # pragma: no cover - Dataset refuses empty data
        raise ValidationError("train and valid must both have rows")
    result = values.aggregate()
    return result.by_contributor() if players == "contributors" else result


@deprecated_keywords(positional=_KEYWORDS)
def knn_shapley_per_test(
    train: Dataset,
    test: Dataset,
    *,
    k: int = 5,
    metric: str = "euclidean",
    task: str = "auto",
    batch_size: int | str = "auto",
    n_jobs: int = 1,
    memory_budget: int | str | None = None,
    progress: bool = True,
) -> KNNShapleyPerTest:
    """KNN-Shapley values of the training points for each test point, computed lazily.

    Row ``t`` of the result is the exact KNN-Shapley value (Jia et al., 2019) of every
    training point in the KNN game of test point ``t`` alone; the mean of the rows is
    :func:`knn_shapley` with ``valid=test``. The arguments mean what they mean for
    :func:`knn_shapley`; here ``test`` holds the points being explained.

    Returns
    -------
    KNNShapleyPerTest
        ``for_test(i)``, ``aggregate()``, ``top(i)``, ``to_array()``, ``by_contributor(i)``.

    Examples
    --------
    >>> import openattrib as oa
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> rows = oa.knn_shapley_per_test(train, test, k=3, progress=False)
    >>> rows.shape
    (30, 120)
    """
    return _per_test(
        train, test, "test", k, metric, task, batch_size, n_jobs, memory_budget, progress
    )
