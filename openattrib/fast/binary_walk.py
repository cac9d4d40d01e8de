"""Prefix walks of a binary L2 logistic regression, one prefix at a time, at little cost each.

Truncated Monte Carlo (TMC) Shapley walks a permutation only until the prefix score is
close to the full score, typically a few dozen prefixes: batching prefixes then wastes the
ones computed past the truncation point, and each batched Newton iteration waits for its
slowest column. This walker solves prefix ``k`` exactly from prefix ``k - 1``'s optimum:

1. **predictor**: adding row ``x`` (label ``y``, probability ``pi = sigmoid(x'w)`` under the
   previous optimum ``w``) changes the gradient of ``F`` by ``(pi - y) x`` and its Hessian by
   ``s x x'`` (``s = pi (1 - pi)``). One Newton step with the previous inverse Hessian
   updated by the Sherman-Morrison formula (Golub & Van Loan, *Matrix Computations*, 4th
   ed., 2013, sec. 2.1.4) gives ``w - (pi - y) H^-1 x / (1 + s x'H^-1 x)``: the previous
   Cholesky factor is reused (LAPACK ``potrs``), nothing is refactorised for the start;
2. **corrector**: Newton iterations on the prefix's rows (one ``p x p`` Cholesky solve,
   LAPACK ``posv``, each) until
   the error left is below ``step_tol`` relative to the coefficients: a full step that
   small, or two full steps ``d1 > d2`` in the quadratic regime, where the error left
   after the second is about ``d2 (d2 / d1) ** 2`` (the error squares at each iteration,
   Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, thm 3.5). Long steps
   (``LONG_STEP``) are halved until ``F`` does not increase (ibid., ch. 3). From the predicted start two
   iterations suffice; the last Cholesky factor is kept for the next prefix's predictor.
   When one row was added the predictor *is* a Newton step on the new problem (its gradient
   ``(pi - y) x`` and Hessian ``H + s x x'`` at the previous optimum, up to the factor being
   taken one iterate before that optimum), so it counts as the first step ``d1`` of the
   quadratic test and a single corrector iteration usually suffices.

``F = sum_i loss_i + ||w||^2 / (2C)`` (intercept unpenalised) is scikit-learn's objective
times the number of rows, as in :mod:`.logistic`. Everything works on small arrays held by
the caller, so the cost per prefix is a few dozen small numpy operations.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dposv, dpotrs
from scipy.special import expit

__all__ = ["BinaryWalker"]

#: steps longer than this (relative to the coefficients) are checked for descent; shorter
#: ones, from the predicted start, are taken in full (a poor one only costs an iteration:
#: convergence is declared on small contracting steps alone)
LONG_STEP = 0.1


class BinaryWalker:
    """Incremental exact solver of one prefix walk (labels 0/1, rows added in order)."""

    def __init__(
        self, penalty: np.ndarray, X_valid: np.ndarray, max_iter: int, step_tol: float
    ) -> None:
        self.penalty = penalty
        self.X_valid_T = np.ascontiguousarray(X_valid.T)
        self.max_iter = max_iter
        self.step_tol = step_tol
        self.w: np.ndarray | None = None  # optimum of the rows solved so far
        self.factor: np.ndarray | None = None  # Cholesky factor of the Hessian near it
        self.n_solved = 0

    def _objective(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        z = X @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.dot(self.penalty * w, w))

    def _predict_start(self, X_new: np.ndarray, y_new: np.ndarray) -> np.ndarray:
        """Sherman-Morrison quasi-Newton steps adding the new rows one at a time.

        ``H^-1 x`` comes from the kept Cholesky factor, corrected by the rank-one updates
        of the rows added before in this call (product form, no inverse is formed).
        """
        w = self.w.copy()
        updates: list[tuple[float, np.ndarray]] = []
        for x, label in zip(X_new, y_new, strict=True):
            pi = 1.0 / (1.0 + np.exp(-np.dot(x, w)))
            s = pi * (1.0 - pi)
            hx = dpotrs(self.factor, x)[0]
            for weight, h in updates:
                hx -= (weight * np.dot(h, x)) * h
            denominator = 1.0 + s * np.dot(x, hx)
            w -= ((pi - label) / denominator) * hx
            updates.append((s / denominator, hx))
        return w

    def solve(self, X: np.ndarray, y: np.ndarray) -> bool:
        """Move the solution to the optimum on rows ``X`` (a prefix extending the last one)."""
        n = len(X)
        previous = np.inf  # the last full (Newton) step's size
        if self.w is None:
            w = np.zeros(X.shape[1])
        else:
            w = self._predict_start(X[self.n_solved :], y[self.n_solved :])
            if not np.isfinite(w).all():
                w = self.w.copy()
            elif n == self.n_solved + 1:
                # one row added: the predictor is a full Newton step on the new problem
                # (its gradient and Hessian at the previous optimum), so it counts as the
                # previous step of the quadratic-convergence test below
                previous = float(np.abs(w - self.w).max())
        penalty = self.penalty
        diagonal = slice(None, None, len(w) + 1)
        XT = X.T
        before = None
        for _iteration in range(self.max_iter):
            z = X @ w
            pi = expit(z)
            gradient = XT @ (pi - y)
            gradient += penalty * w
            hessian = (XT * (pi * (1.0 - pi))) @ X
            hessian.flat[diagonal] += penalty
            factor, step, info = dposv(hessian, gradient)
            if info != 0:
                return False
            size = float(np.abs(step).max())
            if not size < np.inf:
                return False
            reference = 1.0 + float(np.abs(w).max())
            scale = 1.0
            if size > LONG_STEP * reference:
                if before is None:
                    before = float(np.sum(np.logaddexp(0.0, z) - y * z))
                    before += 0.5 * np.dot(penalty * w, w)
                after = self._objective(X, y, w - step)
                while not after <= before + 1e-12 * abs(before):
                    scale *= 0.5
                    if scale < 1e-9:
                        return False
                    after = self._objective(X, y, w - scale * step)
                before = after
                w = w - scale * step
            else:
                before = None
                w = w - step
            if scale == 1.0 and (
                size <= self.step_tol * reference
                # quadratic convergence: the error left after this step is about
                # size * (size / previous) ** 2 (Newton's error squares each iteration)
                or (
                    previous < np.inf
                    and size <= 1e-2 * reference
                    and size**3 <= self.step_tol * reference * previous**2
                )
            ):
                self.w, self.factor, self.n_solved = w, factor, n
                return True
            previous = size if scale == 1.0 else np.inf
        return False

    def outputs(self) -> np.ndarray:
        """Predicted class position (0 or 1) of every validation point at the current optimum."""
        return (self.w @ self.X_valid_T > 0).astype(np.int64)
