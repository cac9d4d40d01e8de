"""Inverse-Hessian-vector products: direct (Cholesky), conjugate gradient and LiSSA.

Each solver has ``solve(B) -> H^{-1} B`` for ``B`` of shape ``(n_params, m)``.

* :class:`DirectSolver` factors the dense Hessian once (Cholesky, ``O(p^3)``); best up to a
  few thousand parameters.
* :class:`CGSolver` runs preconditioned conjugate gradient (Hestenes & Stiefel 1952) on all
  right-hand sides at once, using only Hessian-vector products (Martens 2010; Koh & Liang
  2017, section 3): memory ``O(n p)``, no ``p x p`` matrix.
* :class:`LiSSASolver` is the stochastic Neumann-series estimator of Agarwal, Bullins & Hazan
  (2017), "Second-order stochastic optimization for machine learning in linear time", as
  used for influence functions by Koh & Liang (2017):
  ``v_{j+1} = b + (I - H_j / s) v_j``, ``H^{-1} b ~ v_J / s``, with ``H_j`` the Hessian on a
  random mini-batch (or the full data when ``batch_size=None``, which makes it a
  deterministic Richardson iteration) and ``s`` above the largest eigenvalue.

A singular or indefinite Hessian is reported with :class:`~openattrib.errors.ValidationError`
that suggests ``damping``; no solver returns NaN. (On a singular but *consistent* system,
right-hand sides in the range of ``H`` such as gradients with duplicated features, CG and
LiSSA started from zero converge to the pseudo-inverse solution; the direct solver refuses.)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.linalg

from ..errors import ValidationError

__all__ = ["DirectSolver", "CGSolver", "LiSSASolver", "largest_eigenvalue", "singular_message"]

logger = logging.getLogger("openattrib")


def singular_message(detail: str, damping: float) -> str:
    hint = (
        "pass damping=1e-3 (or larger) to influence(...), which adds damping * I to the "
        "Hessian of the average training loss"
        if damping == 0
        else f"increase damping (currently {damping:g})"
    )
    return (
        f"the Hessian of the training objective is singular or numerically indefinite "
        f"({detail}); its inverse, and hence the influence, is not defined. Typical causes: "
        "no L2 penalty, duplicated or constant features, more parameters than training "
        f"points. Fix: {hint}, or standardise the features."
    )


class DirectSolver:
    """Cholesky factor of a dense symmetric positive-definite Hessian.

    Parameters
    ----------
    hessian : ndarray of shape (p, p)
    damping : float
        Only used to word the error message.
    rcond : float, optional
        Refuse when ``(min pivot / max pivot)^2`` (an estimate of the reciprocal condition
        number) is below this; default ``p * 1e3 * machine epsilon``.
    message : callable ``(detail, damping) -> str``, optional
        Error text for a singular matrix (default :func:`singular_message`).
    """

    name = "direct"

    def __init__(
        self,
        hessian: np.ndarray,
        damping: float = 0.0,
        rcond: float | None = None,
        message: Any = None,
    ) -> None:
        hessian = np.asarray(hessian, dtype=np.float64)
        p = hessian.shape[0]
        singular = singular_message if message is None else message
        if not np.all(np.isfinite(hessian)):
            raise ValidationError(
                "the Hessian contains NaN or infinity; check the features for overflow and "
                "standardise them"
            )
        try:
            factor, lower = scipy.linalg.cho_factor(hessian, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise ValidationError(singular("Cholesky factorisation failed", damping)) from None
        pivots = np.abs(np.diag(factor))
        ratio = float((pivots.min() / pivots.max()) ** 2) if pivots.max() > 0 else 0.0
        floor = p * 1e3 * np.finfo(np.float64).eps if rcond is None else rcond
        if not ratio > floor:
            raise ValidationError(
                singular(f"estimated reciprocal condition number {ratio:.2e}", damping)
            )
        self._factor = (factor, lower)
        self.n_params = p
        self.diagnostics: dict[str, Any] = {"rcond_estimate": ratio}

    def solve(self, B: np.ndarray) -> np.ndarray:
        return scipy.linalg.cho_solve(self._factor, B, check_finite=False)


class CGSolver:
    """Batched, Jacobi-preconditioned conjugate gradient on a Hessian operator.

    Parameters
    ----------
    operator : object with ``matmat(V) -> H V``
    diagonal : ndarray, optional
        Diagonal of ``H`` for the Jacobi preconditioner.
    tol : float
        Stop a column when ``||b - H x|| <= tol * ||b||``.
    maxiter : int, optional
        Default ``max(100, 10 * n_params)``.
    """

    name = "cg"

    def __init__(
        self,
        operator: Any,
        diagonal: np.ndarray | None = None,
        tol: float = 1e-10,
        maxiter: int | None = None,
        damping: float = 0.0,
    ) -> None:
        self.operator = operator
        self.n_params = operator.shape[0]
        self.inverse_diagonal = None
        if diagonal is not None:
            diagonal = np.asarray(diagonal, dtype=np.float64)
            if np.all(diagonal > 0):
                self.inverse_diagonal = 1.0 / diagonal
        self.tol = float(tol)
        self.maxiter = int(maxiter) if maxiter is not None else max(100, 10 * self.n_params)
        self.damping = damping
        self.diagnostics: dict[str, Any] = {"iterations": []}

    def _precondition(self, R: np.ndarray) -> np.ndarray:
        return R if self.inverse_diagonal is None else self.inverse_diagonal[:, None] * R

    def solve(self, B: np.ndarray) -> np.ndarray:
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B = B.reshape(self.n_params, -1)
        X = np.zeros_like(B)
        R = B.copy()
        b_norm = np.linalg.norm(B, axis=0)
        active = b_norm > 0
        Z = self._precondition(R)
        P = Z.copy()
        rz = np.einsum("ij,ij->j", R, Z)
        iteration = 0
        while active.any() and iteration < self.maxiter:
            iteration += 1
            cols = np.flatnonzero(active)
            AP = self.operator.matmat(P[:, cols])
            curvature = np.einsum("ij,ij->j", P[:, cols], AP)
            if np.any(curvature <= 0) or not np.all(np.isfinite(curvature)):
                raise ValidationError(
                    singular_message(
                        "conjugate gradient met a direction of zero or negative curvature",
                        self.damping,
                    )
                )
            alpha = rz[cols] / curvature
            X[:, cols] += alpha * P[:, cols]
            R[:, cols] -= alpha * AP
            residual = np.linalg.norm(R[:, cols], axis=0) / b_norm[cols]
            done = residual <= self.tol
            active[cols[done]] = False
            cols = cols[~done]
            if cols.size == 0:
                break
            Z_cols = self._precondition(R[:, cols])
            rz_new = np.einsum("ij,ij->j", R[:, cols], Z_cols)
            P[:, cols] = Z_cols + (rz_new / rz[cols]) * P[:, cols]
            rz[cols] = rz_new
        if active.any():
            worst = float(np.max(np.linalg.norm(R[:, active], axis=0) / b_norm[active]))
            raise ValidationError(
                f"conjugate gradient did not converge in maxiter={self.maxiter} iterations "
                f"(relative residual {worst:.2e} > tol={self.tol:g}); the Hessian is badly "
                "conditioned. Fix: pass damping=1e-3 (or larger), a larger cg_maxiter, or "
                "method='direct' for up to a few thousand parameters"
            )
        self.diagnostics["iterations"].append(iteration)
        return X[:, 0] if vector else X


def largest_eigenvalue(operator: Any, n_iter: int = 50, seed: int = 0) -> float:
    """Largest eigenvalue of a symmetric PSD operator by power iteration (Rayleigh quotient)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    v = rng.standard_normal(operator.shape[0])
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(n_iter):
        w = operator.matmat(v[:, None])[:, 0]
        estimate = float(v @ w)
        norm = np.linalg.norm(w)
        if norm == 0:
            return 0.0
        v = w / norm
    return estimate


class LiSSASolver:
    """LiSSA (Agarwal et al. 2017) inverse-Hessian-vector products.

    Parameters
    ----------
    operator : HessianOperator
        Needs ``matmat(V, rows=None)`` and ``n_rows``.
    scale : float, optional
        Must exceed the largest eigenvalue of every (sampled) Hessian; default: power
        iteration estimate times 1.1 (full batch) or 2 (mini-batches).
    depth : int
        Maximum number of iterations per repetition.
    tol : float
        Full batch only: stop when the relative change of the iterate falls below ``tol``.
    batch_size : int, optional
        Rows per sampled Hessian; ``None`` uses all rows (deterministic).
    repeats : int
        Independent repetitions averaged (mini-batch mode).
    seed : int
    """

    name = "lissa"

    def __init__(
        self,
        operator: Any,
        scale: float | None = None,
        depth: int = 10_000,
        tol: float = 1e-9,
        batch_size: int | None = None,
        repeats: int = 1,
        seed: int = 0,
        damping: float = 0.0,
    ) -> None:
        self.operator = operator
        self.n_params = operator.shape[0]
        self.batch_size = batch_size
        if batch_size is not None and not 1 <= int(batch_size) <= operator.n_rows:
            raise ValidationError(
                f"lissa_batch_size={batch_size} must be between 1 and the number of training "
                f"rows {operator.n_rows} (or None for the full batch)"
            )
        if scale is None:
            top = largest_eigenvalue(operator, seed=seed)
            scale = (1.1 if batch_size is None else 2.0) * top
        if not scale > 0:
            raise ValidationError(f"lissa_scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.depth = int(depth)
        self.tol = float(tol)
        self.repeats = int(repeats)
        self.seed = int(seed)
        self.damping = damping
        self.diagnostics: dict[str, Any] = {"scale": self.scale, "iterations": []}

    def solve(self, B: np.ndarray) -> np.ndarray:
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B = B.reshape(self.n_params, -1)
        # the same mini-batch sequence for every call: results depend only on the seed,
        # not on how many solves a cached solver has done before
        streams = np.random.SeedSequence(self.seed).spawn(self.repeats)
        total = np.zeros_like(B)
        tiny = np.finfo(np.float64).tiny
        for stream in streams:
            rng = np.random.default_rng(stream)
            V = B.copy()
            converged = False
            change = np.zeros(B.shape[1])
            iterations = 0
            while iterations < self.depth:
                iterations += 1
                rows = None
                if self.batch_size is not None:
                    rows = rng.choice(self.operator.n_rows, size=self.batch_size, replace=False)
                V_next = B + V - self.operator.matmat(V, rows) / self.scale
                size = np.maximum(np.linalg.norm(V_next, axis=0), tiny)
                change = np.linalg.norm(V_next - V, axis=0) / size
                V = V_next
                if not np.all(np.isfinite(size)) or size.max() > 1e12 * max(
                    float(np.linalg.norm(B, axis=0).max()), tiny
                ):
                    raise ValidationError(
                        f"LiSSA diverged (scale={self.scale:g} is below the largest "
                        "eigenvalue of a sampled Hessian); pass a larger lissa_scale or a "
                        "larger lissa_batch_size"
                    )
                if self.batch_size is None and change.max() < self.tol:
                    converged = True
                    break
            if self.batch_size is None and not converged:
                raise ValidationError(
                    f"LiSSA did not converge in lissa_depth={self.depth} iterations (last "
                    f"relative change {change.max():.2e}); the Hessian is badly conditioned "
                    "relative to its largest eigenvalue. Fix: pass damping=1e-3 (or larger), "
                    "a larger lissa_depth, or method='cg'/'direct'"
                )
            self.diagnostics["iterations"].append(iterations)
            total += V / self.scale
        out = total / len(streams)
        return out[:, 0] if vector else out
