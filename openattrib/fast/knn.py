"""k-nearest-neighbour utilities: each validation point keeps its nearest training points.

A fitted KNN model is its training rows; its prediction at a validation point depends only
on that point's K nearest rows (Cover & Hart, "Nearest neighbor pattern classification",
1967). Along a prefix walk each validation point keeps its current ``K + 1`` nearest rows in
sorted order; adding a point costs ``O(n_valid)`` (one distance per validation point and an
insertion where it enters). The ``(K + 1)``-th neighbour is kept to detect distance ties at
the boundary of the K nearest: there scikit-learn's choice among equidistant rows depends on
its search algorithm (brute force or trees), so such a coalition (any validation point with
``d_K`` and ``d_{K+1}`` equal within rounding) is refitted generically and counted as
``failures["fast_fallback: distance_tie"]``. Without boundary ties the K nearest are unique
and the result is exact: plurality vote with ties to the smallest class (``weights=
"uniform"``) or the mean target (regressor). Coalitions with fewer rows than ``n_neighbors``
(where scikit-learn raises and the generic path scores ``empty_value``) are scored once by
the generic path per size and replayed.

Memory: ``n_valid x (K + 1)`` for the walk; the ``n_valid x n_train`` distance matrix is
cached only when it has at most ``DISTANCE_CACHE_CELLS`` entries, otherwise distances are
computed per block of added points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import FastPath
from .scoring import NotSupported

__all__ = ["KNNFastPath"]

DISTANCE_CACHE_CELLS = 2_000_000
#: relative and norm-scaled tolerances under which two squared distances count as tied
TIE_RTOL = 1e-9
TIE_NORM_TOL = 1e-10


class _Neighbours:
    """The K + 1 nearest rows of each validation point among the rows added so far."""

    def __init__(self, n_valid: int, k: int) -> None:
        self.dist = np.full((n_valid, k + 1), np.inf)
        self.rows = np.full((n_valid, k + 1), -1, dtype=np.int64)
        self.n_rows = 0
        self.prediction: np.ndarray | None = None
        self.tie = np.zeros(n_valid, dtype=bool)


class KNNFastPath(FastPath):
    """Exact prefix walks and batches for KNeighborsClassifier and KNeighborsRegressor."""

    max_block = 128

    def __init__(self, utility: Any) -> None:
        from sklearn.neighbors import KNeighborsClassifier

        params = utility.estimator.get_params()
        allowed = {"algorithm", "leaf_size", "metric", "metric_params", "n_jobs"}
        allowed |= {"n_neighbors", "p", "weights"}
        unknown = set(params) - allowed
        if unknown:
            raise NotSupported(f"unmodelled parameters {sorted(unknown)}")
        if params["weights"] != "uniform":
            raise NotSupported(f"weights={params['weights']!r} (only 'uniform' is modelled)")
        if params["metric"] not in ("minkowski", "euclidean") or params["p"] != 2:
            raise NotSupported(f"metric={params['metric']!r}, p={params['p']!r} (not Euclidean)")
        if params["metric_params"]:
            raise NotSupported("metric_params are not modelled")
        if params["algorithm"] not in ("auto", "ball_tree", "kd_tree", "brute"):
            raise NotSupported(f"algorithm={params['algorithm']!r}")
        k = params["n_neighbors"]
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise NotSupported(f"n_neighbors={k!r}")
        if (type(utility.estimator) is KNeighborsClassifier) != bool(utility.is_classifier):
            raise NotSupported("estimator type and task disagree")
        super().__init__(utility)
        self.k = int(k)
        self.X = utility.train.X
        self.X_valid = utility.valid.X
        if not self.classifier:
            y = utility.train.y
            if y.dtype.kind not in "biuf":
                raise NotSupported(f"regression target of dtype {y.dtype} is not numeric")
            self.y = np.asarray(y, dtype=np.float64)
        norms = np.einsum("ij,ij->i", self.X, self.X)
        valid_norms = np.einsum("ij,ij->i", self.X_valid, self.X_valid)
        self.tie_atol = TIE_NORM_TOL * (valid_norms + (norms.max() if norms.size else 0.0))
        self._class_range = np.arange(self.n_classes) if self.classifier else None
        self._distances: np.ndarray | None = None
        if self.n_valid * self.X.shape[0] <= DISTANCE_CACHE_CELLS:
            self._distances = self._compute(np.arange(self.X.shape[0]))

    # -- distances ---------------------------------------------------------------------
    def _compute(self, rows: np.ndarray) -> np.ndarray:
        """Squared Euclidean distances (n_valid, len(rows)), summed from differences."""
        out = np.empty((self.n_valid, len(rows)))
        chunk = max(1, 1_000_000 // max(1, self.n_valid * self.X.shape[1]))
        for start in range(0, len(rows), chunk):
            part = self.X[rows[start : start + chunk]]
            diff = self.X_valid[:, None, :] - part[None, :, :]
            out[:, start : start + chunk] = np.einsum("vrd,vrd->vr", diff, diff)
        return out

    def _distances_to(self, rows: np.ndarray) -> np.ndarray:
        if self._distances is not None:
            return self._distances[:, rows]
        return self._compute(rows)

    def _tied(self, low: np.ndarray, high: np.ndarray, atol: np.ndarray) -> np.ndarray:
        return (high - low) <= TIE_RTOL * high + atol

    # -- predictions ---------------------------------------------------------------------
    def _vote(self, rows: np.ndarray) -> np.ndarray:
        """Predictions from neighbour rows (m, K): class index or mean target."""
        if not self.classifier:
            return np.mean(self.y[rows], axis=1)
        labels = self.label_index[rows]
        counts = (labels[:, :, None] == self._class_range).sum(axis=1)
        return np.argmax(counts, axis=1)

    # -- hooks ---------------------------------------------------------------------------
    def start_walk(self) -> _Neighbours:
        return _Neighbours(self.n_valid, self.k)

    def extend(
        self,
        state: _Neighbours,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        all_rows = np.concatenate(steps)
        distances = self._distances_to(all_rows)
        dtype = np.int64 if self.classifier else np.float64
        outputs = np.zeros((len(steps), self.n_valid), dtype=dtype)
        troubles: list = [None] * len(steps)
        with np.errstate(invalid="ignore"):
            self._walk_steps(state, steps, needed, distances, outputs, troubles)
        return outputs, troubles

    def _walk_steps(
        self,
        state: _Neighbours,
        steps: list[np.ndarray],
        needed: np.ndarray,
        distances: np.ndarray,
        outputs: np.ndarray,
        troubles: list,
    ) -> None:
        """Insert the steps' rows one by one; fill ``outputs`` and ``troubles`` in place."""
        k = self.k
        slots = np.arange(k + 1)[None, :]
        column = 0
        for j, step in enumerate(steps):
            changed_any = np.zeros(self.n_valid, dtype=bool)
            for row in step:
                dist = distances[:, column]
                column += 1
                enter = (dist < state.dist[:, k]).nonzero()[0]
                if enter.size == 0:
                    continue
                d_new = dist[enter][:, None]
                old_d, old_r = state.dist[enter], state.rows[enter]
                # insert into each sorted row: keep slots before the position, shift the rest
                position = (old_d <= d_new).sum(axis=1)[:, None]
                shifted_d, shifted_r = np.empty_like(old_d), np.empty_like(old_r)
                shifted_d[:, 1:], shifted_r[:, 1:] = old_d[:, :-1], old_r[:, :-1]
                before, at = slots < position, slots == position
                new_d = np.where(before, old_d, np.where(at, d_new, shifted_d))
                new_r = np.where(before, old_r, np.where(at, row, shifted_r))
                state.dist[enter], state.rows[enter] = new_d, new_r
                changed_any[enter] = True
            state.n_rows += len(step)
            changed = changed_any.nonzero()[0]
            if changed.size:  # (inf - inf is NaN, not a tie, before K + 1 rows)
                state.tie[changed] = self._tied(
                    state.dist[changed, k - 1], state.dist[changed, k], self.tie_atol[changed]
                )
            if state.n_rows < k:
                troubles[j] = ("replay", ("knn_fewer_rows", state.n_rows))
                continue
            if state.prediction is None:
                state.prediction = self._vote(state.rows[:, :k])
            elif changed.size:
                state.prediction[changed] = self._vote(state.rows[changed, :k])
            if state.tie.any():
                troubles[j] = "distance_tie"
            elif needed[j]:
                outputs[j] = state.prediction

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        k = self.k
        dtype = np.int64 if self.classifier else np.float64
        outputs = np.zeros((len(row_sets), self.n_valid), dtype=dtype)
        troubles: list = [None] * len(row_sets)
        for j, rows in enumerate(row_sets):
            if len(rows) < k:
                troubles[j] = ("replay", ("knn_fewer_rows", len(rows)))
                continue
            dist = self._distances_to(rows)
            keep = min(k + 1, len(rows))
            if keep < len(rows):
                nearest = np.argpartition(dist, keep - 1, axis=1)[:, :keep]
            else:
                nearest = np.broadcast_to(np.arange(len(rows)), dist.shape).copy()
            near_d = np.take_along_axis(dist, nearest, axis=1)
            order = np.argsort(near_d, axis=1, kind="stable")
            nearest = np.take_along_axis(nearest, order, axis=1)
            near_d = np.take_along_axis(near_d, order, axis=1)
            if keep > k and self._tied(near_d[:, k - 1], near_d[:, k], self.tie_atol).any():
                troubles[j] = "distance_tie"
                continue
            outputs[j] = self._vote(rows[nearest[:, :k]])
        return outputs, troubles
