"""Ridge, least-squares and ridge-classifier utilities from running sufficient statistics.

scikit-learn's :class:`~sklearn.linear_model.Ridge` (dense data, exact solvers) centres
``X`` and ``y`` when fitting an intercept, leaves the intercept unpenalised and solves
``(Xc'Xc + alpha I) w = Xc'yc`` with ``intercept = mean(y) - mean(X) w``.
:class:`~sklearn.linear_model.LinearRegression` is the case ``alpha = 0`` solved by least
squares. :class:`~sklearn.linear_model.RidgeClassifier` regresses on labels encoded as
+1/-1 (one column for two classes, one per class otherwise, for the classes present in the
training rows) and predicts by sign or argmax (Hastie, Tibshirani & Friedman, *The Elements
of Statistics Learning*, 2nd ed., sections 3.4.1 and 4.2).

All of these depend on the training rows only through ``n``, ``sum x``, ``sum x x'``,
``sum t`` and ``sum x t'``, so a prefix walk adds each point with a rank-one update of these
sums and solves one ``d x d`` system per prefix (batched over blocks of prefixes): memory is
``O(d^2)`` per prefix in a block, never ``n x n``. The features are shifted by the training
mean first when an intercept is fitted (the centred system does not change) to keep the
moment updates accurate. A system whose condition number exceeds ``cond_limit`` (singular or
nearly so, e.g. least squares with fewer points than features) is refitted generically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import FastPath
from .scoring import NotSupported

__all__ = ["LinearFastPath"]

RIDGE_EXACT_SOLVERS = ("auto", "cholesky", "svd")
RIDGE_COND_LIMIT = 1e6
LSTSQ_COND_LIMIT = 1e6


def _check_linear_params(estimator: Any) -> tuple[float, bool, float]:
    """(alpha, fit_intercept, cond_limit) of a supported estimator, or raise NotSupported."""
    from sklearn.linear_model import LinearRegression, Ridge, RidgeClassifier

    params = estimator.get_params()
    kind = type(estimator)
    if kind is LinearRegression:
        allowed = {"copy_X", "fit_intercept", "n_jobs", "positive", "tol"}
        alpha = 0.0
        tol = params["tol"]
        if not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise NotSupported(f"tol={tol!r}")
        # lstsq treats singular values below tol * max as zero: stay well inside that range
        cond_limit = LSTSQ_COND_LIMIT if tol == 0 else min(LSTSQ_COND_LIMIT, 0.5 / tol**2)
    elif kind in (Ridge, RidgeClassifier):
        allowed = {"alpha", "copy_X", "fit_intercept", "max_iter", "positive", "random_state"}
        allowed |= {"solver", "tol", "class_weight"}
        alpha = params["alpha"]
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.number)):
            raise NotSupported(f"alpha={alpha!r} (only a scalar alpha is modelled)")
        alpha = float(alpha)
        if not np.isfinite(alpha) or alpha < 0:
            raise NotSupported(f"alpha={alpha!r}")
        if params["solver"] not in RIDGE_EXACT_SOLVERS:
            raise NotSupported(f"solver={params['solver']!r} is iterative (tolerance-dependent)")
        if kind is RidgeClassifier and params["class_weight"] is not None:
            raise NotSupported("class_weight is not modelled")
        cond_limit = RIDGE_COND_LIMIT if alpha > 0 else LSTSQ_COND_LIMIT
    else:
        raise NotSupported(f"{kind.__name__} is not a linear fast-path estimator")
    unknown = set(params) - allowed
    if unknown:
        raise NotSupported(f"unmodelled parameters {sorted(unknown)}")
    if params["positive"]:
        raise NotSupported("positive=True (constrained least squares)")
    if params["fit_intercept"] not in (True, False):
        raise NotSupported(f"fit_intercept={params['fit_intercept']!r}")
    return alpha, bool(params["fit_intercept"]), cond_limit


class _Sums:
    """Running sums of a prefix: count, sum x, sum x x', sum t, sum x t'."""

    def __init__(self, d: int, t: int) -> None:
        self.n = 0.0
        self.s1 = np.zeros(d)
        self.sxx = np.zeros((d, d))
        self.st = np.zeros(t)
        self.sxt = np.zeros((d, t))


class LinearFastPath(FastPath):
    """Exact prefix walks and batches for Ridge, LinearRegression and RidgeClassifier."""

    def __init__(self, utility: Any) -> None:
        from sklearn.linear_model import LinearRegression, Ridge, RidgeClassifier

        kind = type(utility.estimator)
        if kind not in (LinearRegression, Ridge, RidgeClassifier):
            raise NotSupported(f"{kind.__name__} is not a linear fast-path estimator")
        if (kind is RidgeClassifier) != bool(utility.is_classifier):
            raise NotSupported("estimator type and task disagree")
        self.alpha, self.fit_intercept, self.cond_limit = _check_linear_params(utility.estimator)
        super().__init__(utility)
        X = utility.train.X
        self.shift = X.mean(axis=0) if self.fit_intercept else np.zeros(X.shape[1])
        self.X = X - self.shift
        self.X_valid = utility.valid.X - self.shift
        if self.classifier:
            self.T = np.where(
                self.label_index[:, None] == np.arange(self.n_classes)[None, :], 1.0, -1.0
            )
        else:
            y = utility.train.y
            if y.dtype.kind not in "biuf":
                raise NotSupported(f"regression target of dtype {y.dtype} is not numeric")
            self.T = np.asarray(y, dtype=np.float64)[:, None]
            self.n_classes = 1
        d, t = self.X.shape[1], self.T.shape[1]
        self._full_sums: tuple | None = None
        # a block holds a few (d x d) and (d x t) arrays per prefix; keep it to ~16 MB
        self.max_block = int(np.clip(2_000_000 // (d * d + d * t + self.n_valid * t), 8, 256))

    # -- hooks -------------------------------------------------------------------------
    def start_walk(self) -> _Sums:
        return _Sums(self.X.shape[1], self.T.shape[1])

    def extend(
        self,
        state: _Sums,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        sizes = np.array([len(s) for s in steps], dtype=np.float64)
        if (sizes == 1).all():
            rows = np.concatenate(steps)
            Xb, Tb = self.X[rows], self.T[rows]
            d_s1, d_st = Xb, Tb
            d_sxx = Xb[:, :, None] * Xb[:, None, :]
            d_sxt = Xb[:, :, None] * Tb[:, None, :]
        else:
            d_s1 = np.array([self.X[s].sum(axis=0) for s in steps])
            d_st = np.array([self.T[s].sum(axis=0) for s in steps])
            d_sxx = np.array([self.X[s].T @ self.X[s] for s in steps])
            d_sxt = np.array([self.X[s].T @ self.T[s] for s in steps])
        n = state.n + np.cumsum(sizes)
        s1 = state.s1 + np.cumsum(d_s1, axis=0)
        st = state.st + np.cumsum(d_st, axis=0)
        sxx = state.sxx + np.cumsum(d_sxx, axis=0)
        sxt = state.sxt + np.cumsum(d_sxt, axis=0)
        state.n, state.s1, state.st, state.sxx, state.sxt = n[-1], s1[-1], st[-1], sxx[-1], sxt[-1]
        keep = np.flatnonzero(needed)
        outputs = np.zeros((len(steps), self.n_valid), dtype=np.int64 if self.classifier else float)
        troubles: list = [None] * len(steps)
        if keep.size:
            out, trouble = self._solve(
                n[keep],
                s1[keep],
                sxx[keep],
                st[keep],
                sxt[keep],
                None if present is None else present[keep],
            )
            outputs[keep] = out
            for position, j in enumerate(keep):
                troubles[j] = trouble[position]
        return outputs, troubles

    def _row_sums(self, rows: np.ndarray) -> tuple:
        """The sums of ``rows``; of a large set, the full sums less its complement's."""
        n_total = self.X.shape[0]
        if 2 * len(rows) <= n_total:
            return self._row_sums_of(rows)
        if self._full_sums is None:
            self._full_sums = self._row_sums_of(np.arange(n_total))
        keep = np.ones(n_total, dtype=bool)
        keep[rows] = False
        X, T = self.X[keep], self.T[keep]
        n, s1, st, sxx, sxt = self._full_sums
        return n - len(X), s1 - X.sum(axis=0), st - T.sum(axis=0), sxx - X.T @ X, sxt - X.T @ T

    def _row_sums_of(self, rows: np.ndarray) -> tuple:
        X, T = self.X[rows], self.T[rows]
        return len(rows), X.sum(axis=0), T.sum(axis=0), X.T @ X, X.T @ T

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        # leave-one-out and other large coalitions are downdates of the full sums: O(d^2)
        # per left-out row instead of O(n d^2) per coalition
        sums = [self._row_sums(np.asarray(r)) for r in row_sets]
        n = np.array([part[0] for part in sums], dtype=np.float64)
        s1 = np.array([part[1] for part in sums])
        st = np.array([part[2] for part in sums])
        sxx = np.array([part[3] for part in sums])
        sxt = np.array([part[4] for part in sums])
        present = None
        if self.classifier:
            present = np.zeros((len(row_sets), self.n_classes), dtype=bool)
            for j, r in enumerate(row_sets):
                present[j, self.label_index[r]] = True
        return self._solve(n, s1, sxx, st, sxt, present)

    # -- algebra -------------------------------------------------------------------------
    def _solve(
        self,
        n: np.ndarray,
        s1: np.ndarray,
        sxx: np.ndarray,
        st: np.ndarray,
        sxt: np.ndarray,
        present: np.ndarray | None,
    ) -> tuple[np.ndarray, list]:
        d = s1.shape[1]
        if self.fit_intercept:
            mean_x = s1 / n[:, None]
            mean_t = st / n[:, None]
            gram = sxx - n[:, None, None] * mean_x[:, :, None] * mean_x[:, None, :]
            cross = sxt - n[:, None, None] * mean_x[:, :, None] * mean_t[:, None, :]
        else:
            gram, cross = sxx, sxt
        system = gram + self.alpha * np.eye(d)[None, :, :]
        # the Gram matrix is positive semi-definite, so with alpha > 0 the condition number
        # is at most trace / alpha; only systems without that certificate need eigenvalues
        good = np.zeros(len(n), dtype=bool)
        if self.alpha > 0:
            good = np.trace(system, axis1=1, axis2=2) < self.alpha * self.cond_limit
        unsure = np.flatnonzero(~good)
        if unsure.size:
            eigen = np.linalg.eigvalsh(system[unsure])
            largest, smallest = eigen[:, -1], eigen[:, 0]
            good[unsure] = (largest > 0) & (smallest > largest / self.cond_limit)
        troubles: list = [None if g else "singular" for g in good]
        coef = np.zeros_like(cross)
        if good.any():
            coef[good] = np.linalg.solve(system[good], cross[good])
        scores = np.matmul(self.X_valid, coef)  # (B, n_valid, t)
        if self.fit_intercept:
            intercept = mean_t - np.matmul(mean_x[:, None, :], coef)[:, 0, :]
            scores += intercept[:, None, :]
        if not self.classifier:
            return scores[:, :, 0], troubles
        return _ridge_classes(scores, present), troubles


def _ridge_classes(scores: np.ndarray, present: np.ndarray) -> np.ndarray:
    """RidgeClassifier's predicted class indices from the +1/-1 regression scores.

    Two classes present: one regression on ``+1 = second class``, predict it where the
    score is > 0. More: argmax over the present classes' columns (first on ties).
    """
    n_present = present.sum(axis=1)
    masked = np.where(present[:, None, :], scores, -np.inf)
    predicted = np.argmax(masked, axis=2)
    binary = np.flatnonzero(n_present == 2)
    if binary.size:
        low = np.argmax(present[binary], axis=1)
        high = present.shape[1] - 1 - np.argmax(present[binary, ::-1], axis=1)
        high_score = scores[binary][np.arange(binary.size), :, high]
        predicted[binary] = np.where(high_score > 0, high[:, None], low[:, None])
    return predicted
