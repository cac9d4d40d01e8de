"""Binary L2 logistic regression utilities by warm-started, batched Newton iterations.

scikit-learn's :class:`~sklearn.linear_model.LogisticRegression` (solvers ``lbfgs``,
``newton-cg``, ``newton-cholesky``; see ``sklearn/linear_model/_logistic.py``) minimises, on
the ``n`` training rows of a coalition with labels ``y in {0, 1}`` (1 = the coalition's
second class),

    (1/n) sum_i [log(1 + exp(z_i)) - y_i z_i] + 1/(2 C n) ||w||^2,   z_i = x_i'w + b,

with the intercept ``b`` unpenalised; multiplying by ``n`` gives the objective used here,
``F = sum_i loss_i + ||w||^2 / (2C)``. ``F`` is strictly convex, so Newton's method with a
step-halving safeguard converges quadratically from any start (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., 2006, ch. 3). Along a prefix walk the solution of one prefix is an
excellent start for the next; blocks of prefixes are solved together (the Hessians are one
matrix product), each iterated until a full Newton step is below ``STEP_TOL`` relative to
the coefficients: by quadratic convergence the remaining error is then of order
``STEP_TOL ** 2``, far below scikit-learn's own optimisation tolerance.

The result is the exact optimum of scikit-learn's objective. scikit-learn's own L-BFGS stops
once its projected gradient is below ``tol`` (1e-4 by default), so its coefficients differ
from the optimum by about that much: predictions agree except for validation points within
that distance of the decision boundary ("equal to scikit-learn's fit within tolerance").
A coalition whose iterations do not converge is refitted generically and counted as
``failures["fast_fallback: not_converged"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from .base import FastPath
from .scoring import NotSupported

__all__ = ["LogisticFastPath"]

STEP_TOL = 1e-7
MAX_NEWTON_ITER = 100
SUPPORTED_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")
_CELLS = 4_000_000  # bound on (coalitions x rows x coefficients) work arrays


def _check_params(estimator: Any) -> tuple[float, bool]:
    params = estimator.get_params()
    allowed = {"C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio"}
    allowed |= {"max_iter", "n_jobs", "penalty", "random_state", "solver", "tol", "verbose"}
    allowed |= {"warm_start"}
    unknown = set(params) - allowed
    if unknown:
        raise NotSupported(f"unmodelled parameters {sorted(unknown)}")
    if params["penalty"] not in ("deprecated", "l2"):
        raise NotSupported(f"penalty={params['penalty']!r} (only L2 is modelled)")
    if params["l1_ratio"] not in (0, 0.0, None):
        raise NotSupported(f"l1_ratio={params['l1_ratio']!r} (only L2 is modelled)")
    if params["solver"] not in SUPPORTED_SOLVERS:
        raise NotSupported(f"solver={params['solver']!r} (different objective or stochastic)")
    if params["class_weight"] is not None:
        raise NotSupported("class_weight is not modelled")
    if params["dual"]:
        raise NotSupported("dual=True")
    C = params["C"]
    if isinstance(C, (bool, np.bool_)) or not isinstance(C, (int, float, np.number)):
        raise NotSupported(f"C={C!r}")
    if not (0 < C < np.inf):
        raise NotSupported(f"C={C!r} (unpenalised fits may diverge)")
    max_iter, tol = params["max_iter"], params["tol"]
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 100:
        raise NotSupported(f"max_iter={max_iter!r} < 100 (scikit-learn stops far from the optimum)")
    if not isinstance(tol, (int, float, np.number)) or not 0 <= tol <= 1e-4:
        raise NotSupported(f"tol={tol!r} > 1e-4 (scikit-learn stops far from the optimum)")
    if params["fit_intercept"] not in (True, False):
        raise NotSupported(f"fit_intercept={params['fit_intercept']!r}")
    return float(C), bool(params["fit_intercept"])


class _WalkState:
    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef
        self.rows: list[np.ndarray] = []


class LogisticFastPath(FastPath):
    """Prefix walks and batches for binary L2 :class:`sklearn.linear_model.LogisticRegression`."""

    def __init__(self, utility: Any) -> None:
        if not utility.is_classifier:
            raise NotSupported("LogisticRegression on a regression task")
        self.C, self.fit_intercept = _check_params(utility.estimator)
        if len(utility.classes_) != 2:
            raise NotSupported(
                f"{len(utility.classes_)} classes (only the binary objective is modelled)"
            )
        super().__init__(utility)
        X = utility.train.X
        ones = np.ones((X.shape[0], 1))
        self.X = np.hstack([X, ones]) if self.fit_intercept else X.copy()
        self.X_valid = (
            np.hstack([utility.valid.X, np.ones((self.n_valid, 1))])
            if self.fit_intercept
            else utility.valid.X
        )
        self.y = (self.label_index == 1).astype(np.float64)
        n_coef = self.X.shape[1]
        self.penalty = np.full(n_coef, 1.0 / self.C)
        if self.fit_intercept:
            self.penalty[-1] = 0.0
        self.max_block = int(max(1, min(32, _CELLS // (X.shape[0] * n_coef))))
        self.max_batch = self.max_block
        self._full_coef: np.ndarray | None = None

    # -- Newton --------------------------------------------------------------------------
    def _objective(self, X: np.ndarray, y: np.ndarray, mask: np.ndarray, W: np.ndarray):
        Z = X @ W.T
        loss = np.logaddexp(0.0, Z) - y[:, None] * Z
        return np.sum(loss * mask, axis=0) + 0.5 * np.sum(self.penalty * W * W, axis=1)

    def _newton(
        self, X: np.ndarray, y: np.ndarray, mask: np.ndarray, W0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Minimise F for each column of ``mask`` (rows x coalitions); return (W, converged).

        Newton's method with step halving. The Hessians of all coalitions come from one
        matrix product, ``weights' @ outer``, where row i of ``outer`` holds ``x_i x_i'``.
        """
        K, p = mask.shape[1], X.shape[1]
        outer = (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], p * p)
        W = np.array(W0, dtype=np.float64, copy=True)
        converged = np.zeros(K, dtype=bool)
        active = np.arange(K)
        diagonal = np.arange(p)
        for _iteration in range(MAX_NEWTON_ITER):
            Wa, Ma = W[active], mask[:, active]
            Z = X @ Wa.T
            P = expit(Z)
            gradient = ((P - y[:, None]) * Ma).T @ X + self.penalty * Wa
            S = P * (1.0 - P) * Ma
            hessian = (S.T @ outer).reshape(len(active), p, p)
            hessian[:, diagonal, diagonal] += self.penalty
            try:
                step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                break
            before = np.sum((np.logaddexp(0.0, Z) - y[:, None] * Z) * Ma, axis=0)
            before += 0.5 * np.sum(self.penalty * Wa * Wa, axis=1)
            scale = np.ones(len(active))
            candidate = Wa - step
            # near the optimum full Newton steps are safe; check descent only for long steps
            long_step = np.max(np.abs(step), axis=1) > 1e-3 * (1.0 + np.max(np.abs(Wa), axis=1))
            after = np.full(len(active), -np.inf)
            if long_step.any():
                after[long_step] = self._objective(X, y, Ma[:, long_step], candidate[long_step])
            for _halving in range(40):
                worse = after > before + 1e-12 * np.abs(before)
                if not worse.any():
                    break
                scale[worse] *= 0.5
                candidate[worse] = Wa[worse] - scale[worse, None] * step[worse]
                after[worse] = self._objective(X, y, Ma[:, worse], candidate[worse])
            W[active] = candidate
            size = np.max(np.abs(scale[:, None] * step), axis=1)
            done = (scale == 1.0) & (size <= STEP_TOL * (1.0 + np.max(np.abs(candidate), axis=1)))
            converged[active[done]] = True
            active = active[~done]
            if active.size == 0:
                break
        return W, converged

    def _predict(self, W: np.ndarray, converged: np.ndarray) -> tuple[np.ndarray, list]:
        decision = W @ self.X_valid.T  # (K, n_valid)
        outputs = (decision > 0).astype(np.int64)
        troubles: list = [None if ok else "not_converged" for ok in converged]
        return outputs, troubles

    # -- hooks ---------------------------------------------------------------------------
    def start_walk(self) -> _WalkState:
        return _WalkState(np.zeros(self.X.shape[1]))

    def extend(
        self, state: _WalkState, steps: list[np.ndarray], needed: np.ndarray
    ) -> tuple[np.ndarray, list]:
        state.rows.extend(steps)
        rows = np.concatenate(state.rows)
        state.rows = [rows]
        sizes = np.array([len(s) for s in steps])
        ends = len(rows) - sizes.sum() + np.cumsum(sizes)
        outputs = np.zeros((len(steps), self.n_valid), dtype=np.int64)
        troubles: list = [None] * len(steps)
        keep = np.flatnonzero(needed)
        if keep.size == 0:
            return outputs, troubles
        mask = (np.arange(len(rows))[:, None] < ends[keep][None, :]).astype(np.float64)
        W0 = self._predictor(state.coef, rows, sizes)[keep]
        W, converged = self._newton(self.X[rows], self.y[rows], mask, W0)
        if converged.any():
            state.coef = W[np.flatnonzero(converged)[-1]].copy()
        out, trouble = self._predict(W, converged)
        outputs[keep] = out
        for position, j in enumerate(keep):
            troubles[j] = trouble[position]
        return outputs, troubles

    def _predictor(self, coef: np.ndarray, rows: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Starting points for the block's prefixes: one quasi-Newton step per added row.

        Adding row r to a prefix at its optimum changes the gradient by
        ``(sigmoid(x_r'w) - y_r) x_r``; one Newton step absorbs most of it. The inverse
        Hessian starts at the rows before the block (at ``coef``) and takes each added row's
        curvature by a Sherman-Morrison update, so Newton starts close to each optimum.
        """
        p, done = self.X.shape[1], len(rows) - int(sizes.sum())
        starts = np.empty((len(sizes), p))
        if done == 0:
            starts[:] = coef
            return starts
        old = self.X[rows[:done]]
        weight = expit(old @ coef)
        hessian = (old.T * (weight * (1.0 - weight))) @ old + np.diag(self.penalty)
        try:
            inverse = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            starts[:] = coef
            return starts
        new_X, new_y = self.X[rows[done:]], self.y[rows[done:]]
        w = coef.copy()
        position = 0
        for j, size in enumerate(sizes):
            for _ in range(size):
                x = new_X[position]
                sigma = 1.0 / (1.0 + np.exp(-float(x @ w)))
                curvature = sigma * (1.0 - sigma)
                direction = inverse @ x
                denominator = 1.0 + curvature * float(x @ direction)
                w -= ((sigma - new_y[position]) / denominator) * direction
                inverse -= np.outer(direction, direction * (curvature / denominator))
                position += 1
            starts[j] = w
        return starts

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        n = self.X.shape[0]
        if self._full_coef is None:
            W, ok = self._newton(self.X, self.y, np.ones((n, 1)), np.zeros((1, self.X.shape[1])))
            self._full_coef = W[0] if ok[0] else np.zeros(self.X.shape[1])
        mask = np.zeros((n, len(row_sets)))
        for j, rows in enumerate(row_sets):
            mask[rows, j] = 1.0
        W0 = np.broadcast_to(self._full_coef, (len(row_sets), self.X.shape[1]))
        W, converged = self._newton(self.X, self.y, mask, W0)
        return self._predict(W, converged)
