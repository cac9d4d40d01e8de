"""All leave-one-out fits of an L2 logistic regression together, from the full-data fit.

Leaving row ``i`` out of ``F = sum_j loss_j + ||W||^2 / (2C)`` (see :mod:`.logistic`) gives
``F_i = F - loss_i``, whose Hessian at the full solution ``w*`` is ``B_i = H - h_i`` with
``H`` the full Hessian at ``w*`` and ``h_i = A_i (x) x_i x_i'`` row ``i``'s contribution
(``A_i`` its ``m x m`` curvature: ``pi (1 - pi)`` for the binary link, ``diag(p) - p p'``
for the softmax). Every leave-one-out problem is solved by the chord (simplified Newton)
iteration ``w_i <- w_i - B_i^-1 grad F_i(w_i)`` from ``w_i = w*``, with ``B_i`` held fixed
(Ortega & Rheinboldt, *Iterative Solution of Nonlinear Equations in Several Variables*,
1970, sec. 10.2.4; Kelley, *Iterative Methods for Linear and Nonlinear Equations*, 1995,
sec. 5.4). ``B_i^-1`` never exists as a matrix: by the Woodbury identity (Golub & Van Loan,
*Matrix Computations*, 4th ed., 2013, sec. 2.1.4), with ``U_i = I (x) x_i`` (``q x m``),
``G_i = H^-1 U_i`` and ``M_i = U_i' G_i``,

    ``B_i^-1 = H^-1 + K_i G_i'``,  ``K_i = G_i (I - A_i M_i)^-1 A_i``,

so one ``q x q`` inverse of ``H`` (computed once) and a ``q x m`` matrix ``K_i`` per row serve
every iteration: a step is ``u = H^-1 g``, ``s = u + K_i (U_i' u)``. The first step from
``w*`` is the one-step "approximate leave-one-out" (Rad & Maleki, JRSS-B 2020); since
``B_i`` is the exact Hessian at ``w*``, each further step multiplies the error by about
``||w_i - w*||`` (linear convergence with a small rate, the chord method's), so two or
three steps reach the exact optimum.

The gradients of all problems of a block are computed together: the scores ``X W'`` for
every problem at once (one matrix product), softmax or sigmoid residuals with row ``i``'s
weight zero in problem ``i``, and ``R' X``; the block size keeps these ``n x B x m`` arrays
under a memory bound. The gradient at ``w*`` itself is the full gradient (computed once)
minus row ``i``'s term, so the first step costs no data pass.

A problem has converged once the error left is below ``step_tol`` relative to its
coefficients: a step that small, or, once the steps contract (``rate`` = the larger of the
last two ratios ``d_k / d_(k-1)``, at most 1/2), ``d_k * rate / (1 - rate)`` that small (the
error left after a linearly converging step; the first ratio alone, off the large first
step, can be optimistic). Problems that do not converge within ``max_iter`` steps, or whose steps contract by
less than half (a point so influential that the Hessian at ``w*`` is a poor model of its
leave-one-out problem), are reported so the caller can solve them by full Newton.
"""

from __future__ import annotations

import numpy as np

from .newton_cg import LogisticProblem

__all__ = ["leave_one_out_chord"]

#: bound on the ``n x B x m`` work arrays of one block of problems (float64 entries)
_CELLS = 4_000_000


def _row_terms(problem: LogisticProblem, full: np.ndarray, rows: np.ndarray):
    """Residual ``r_i`` (B, m) and curvature ``A_i`` (B, m, m) of each row at ``full``."""
    m, p = problem.m, problem.p
    X = problem.X[rows]
    labels = problem.labels[rows]
    Z = X @ full.reshape(m, p).T  # (B, m)
    if m == 1:
        P = 1.0 / (1.0 + np.exp(-Z))
        R = P - labels[:, None]
        A = (P * (1.0 - P))[:, :, None]
    else:
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        R = P.copy()
        R[np.arange(len(rows)), labels] -= 1.0
        A = -P[:, :, None] * P[:, None, :]
        A[:, np.arange(m), np.arange(m)] += P
    return R, A


def leave_one_out_chord(
    problem: LogisticProblem,
    full: np.ndarray,
    inverse: np.ndarray,
    removed: np.ndarray,
    *,
    step_tol: float,
    max_iter: int = 20,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Optima of the problems leaving out each row in ``removed``; ``(W, converged, passes)``.

    ``problem`` holds all rows (unit weights), ``full`` is its optimum and ``inverse`` the
    inverse of its Hessian there. ``W`` has one row per removed row (flattened as in
    :class:`.LogisticProblem`); ``passes`` counts the data passes made (each one gradient
    for every problem still iterating).
    """
    removed = np.asarray(removed, dtype=np.int64)
    n, m, p, q = problem.n, problem.m, problem.p, problem.q
    b = len(removed)
    ones = np.ones((n, 1))
    full_gradient = problem.gradient(ones, full[None, :])[0]
    X = problem.X[removed]  # (B, p)
    R, A = _row_terms(problem, full, removed)
    # G_i = H^-1 (I (x) x_i): column k is H^-1 restricted to class k's block times x_i
    G = (inverse.reshape(q * m, p) @ X.T).reshape(q, m, b).transpose(2, 0, 1)  # (B, q, m)
    M = np.einsum("bkpl,bp->bkl", G.reshape(b, m, p, m), X)  # (B, m, m)
    K = G @ np.linalg.solve(np.eye(m) - A @ M, A)  # (B, q, m)

    def step(gradient: np.ndarray, idx: np.ndarray) -> np.ndarray:
        u = gradient @ inverse  # H is symmetric
        v = np.einsum("bkp,bp->bk", u.reshape(len(idx), m, p), X[idx])
        return u + np.einsum("bqk,bk->bq", K[idx], v)

    W = np.broadcast_to(full, (b, q)).copy()
    # the gradient of F_i at w* is the full gradient less row i's term r_i (x) x_i
    gradient = full_gradient[None, :] - (R[:, :, None] * X[:, None, :]).reshape(b, q)
    converged = np.zeros(b, dtype=bool)
    previous = np.full(b, np.inf)
    last_rate = np.full(b, np.inf)
    active = np.arange(b)
    block = max(1, _CELLS // max(1, n * m))
    passes = 0
    for iteration in range(max_iter):
        if iteration > 0:
            gradient = np.empty((len(active), q))
            for start in range(0, len(active), block):
                chunk = active[start : start + block]
                weights = np.ones((n, len(chunk)))
                weights[removed[chunk], np.arange(len(chunk))] = 0.0
                gradient[start : start + len(chunk)] = problem.gradient(weights, W[chunk])
            passes += 1
        s = step(gradient, active)
        W[active] -= s
        moved = np.max(np.abs(s), axis=1)
        reference = step_tol * (1.0 + np.max(np.abs(W[active]), axis=1))
        last = previous[active]
        rate = np.where(np.isfinite(last), moved / np.where(np.isfinite(last), last, 1.0), np.inf)
        # the slower of the last two contractions: the first ratio alone can be optimistic
        estimate = np.maximum(rate, last_rate[active])
        last_rate[active] = rate
        contracting = estimate <= 0.5
        left = np.full(len(active), np.inf)
        fast = estimate[contracting]
        left[contracting] = moved[contracting] * fast / (1.0 - fast)
        done = np.isfinite(moved) & ((moved <= reference) | (left <= reference))
        bad = ~np.isfinite(moved) | (np.isfinite(last) & (rate > 0.5))
        converged[active[done]] = True
        previous[active] = moved
        active = active[~done & ~bad]
        if active.size == 0:
            break
    W[~np.isfinite(W).all(axis=1)] = full
    return W, converged, passes
