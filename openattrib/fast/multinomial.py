"""Objective pieces of L2 logistic regression for the Newton solver of :mod:`.logistic`.

Two link functions share one damped Newton driver and one warm-start predictor:

* **binary** (a coalition with two classes ``a < b``): one coefficient vector ``w`` (the
  intercept last when fitted), ``z_i = x_i'w``, loss ``log(1 + exp(z_i)) - y_i z_i`` with
  ``y_i = 1`` for class ``b``;
* **multinomial** (three or more classes): one row ``w_k`` per class present, symmetric
  parameterisation without a reference class, ``z_ik = x_i'w_k``, loss
  ``logsumexp_k(z_ik) - z_{i, y_i}`` (scikit-learn's ``HalfMultinomialLoss``).

Both minimise ``F = sum_i loss_i + ||W||^2 / (2C)`` with the intercepts unpenalised, which
is ``n`` times scikit-learn's objective (mean loss plus ``l2_reg_strength = 1/(C n)``, see
``_logistic_regression_path`` and ``LinearModelLoss`` in scikit-learn 1.9). In the
multinomial case ``F`` is unchanged when the same constant is added to every intercept,
so its Hessian is singular along that direction and the optimum is a line. We minimise
``F + (sum_k b_k)^2 / 2`` instead: the extra term is zero exactly on the optimum with
intercepts summing to zero, which predicts the same classes as every other optimum. All
gradients of ``F`` are orthogonal to the null direction, so scikit-learn's L-BFGS, started
at zero, also stays on intercepts summing to zero. The weights ``w_k`` are strictly convex
through the penalty (their optimum satisfies ``sum_k w_k = 0``).

Arrays of coefficients are flattened per coalition: shape ``(B, m * p)`` with class ``k``'s
vector at ``[k * p, (k + 1) * p)`` (``m = 1`` for the binary link).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

__all__ = ["link_parts", "damped_newton", "predictor_starts"]

#: weight of the term ``(sum_k b_k)^2 / 2`` fixing the multinomial intercepts' free shift
INTERCEPT_SHIFT_WEIGHT = 1.0


def logsumexp(Z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(Z)))`` along ``axis``, shifted by the maximum to avoid overflow."""
    top = np.max(Z, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(Z - top), axis=axis)) + np.squeeze(top, axis=axis)


Derivatives = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
Objective = Callable[[np.ndarray, np.ndarray], np.ndarray]


def link_parts(
    X: np.ndarray, labels: np.ndarray, m: int, penalty: np.ndarray, intercept: bool
) -> tuple[Objective, Derivatives]:
    """Objective and derivatives of ``F`` on rows ``X`` for ``m`` coefficient vectors.

    ``labels`` holds each row's class position (0 .. m - 1 for the multinomial link; 0 or 1
    for the binary link, ``m == 1``); ``penalty`` the per-coefficient L2 weights of one
    vector (``1/C``, zero for the intercept). Both returned functions take ``mask`` (rows x
    coalitions, 0/1) and ``W`` (coalitions x ``m * p``); ``derivatives`` returns
    ``(value, gradient, hessian)``.
    """
    n, p = X.shape
    outer = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    if m == 1:
        y = labels.astype(np.float64)

        def objective(mask: np.ndarray, W: np.ndarray) -> np.ndarray:
            Z = X @ W.T
            loss = np.logaddexp(0.0, Z) - y[:, None] * Z
            return np.sum(loss * mask, axis=0) + 0.5 * np.sum(penalty * W * W, axis=1)

        def derivatives(mask: np.ndarray, W: np.ndarray):
            Z = X @ W.T
            value = np.sum((np.logaddexp(0.0, Z) - y[:, None] * Z) * mask, axis=0)
            value += 0.5 * np.sum(penalty * W * W, axis=1)
            P = expit(Z)
            gradient = ((P - y[:, None]) * mask).T @ X + penalty * W
            weight = P * (1.0 - P) * mask
            hessian = (weight.T @ outer).reshape(len(W), p, p)
            hessian[:, np.arange(p), np.arange(p)] += penalty
            return value, gradient, hessian

        return objective, derivatives

    Y = np.zeros((n, m))
    Y[np.arange(n), labels] = 1.0
    q = m * p
    flat_penalty = np.tile(penalty, m)
    bias = np.arange(m) * p + (p - 1)  # positions of the intercepts
    shift = INTERCEPT_SHIFT_WEIGHT if intercept else 0.0

    def scores(W: np.ndarray) -> np.ndarray:
        return (X @ W.reshape(len(W) * m, p).T).reshape(n, len(W), m)

    def value_of(Z: np.ndarray, lse: np.ndarray, mask: np.ndarray, W: np.ndarray) -> np.ndarray:
        loss = lse - np.einsum("nbm,nm->nb", Z, Y)
        value = np.sum(loss * mask, axis=0) + 0.5 * np.sum(flat_penalty * W * W, axis=1)
        if shift:
            value += 0.5 * shift * np.sum(W[:, bias], axis=1) ** 2
        return value

    def objective(mask: np.ndarray, W: np.ndarray) -> np.ndarray:
        Z = scores(W)
        return value_of(Z, logsumexp(Z, axis=2), mask, W)

    def derivatives(mask: np.ndarray, W: np.ndarray):
        b = len(W)
        Z = scores(W)
        lse = logsumexp(Z, axis=2)
        value = value_of(Z, lse, mask, W)
        P = np.exp(Z - lse[:, :, None])
        residual = (P - Y[:, None, :]) * mask[:, :, None]
        gradient = (residual.reshape(n, b * m).T @ X).reshape(b, q) + flat_penalty * W
        weight = -P[:, :, :, None] * P[:, :, None, :]
        weight[:, :, np.arange(m), np.arange(m)] += P
        weight *= mask[:, :, None, None]
        hessian = (weight.reshape(n, b * m * m).T @ outer).reshape(b, m, m, p, p)
        hessian = hessian.transpose(0, 1, 3, 2, 4).reshape(b, q, q)
        hessian[:, np.arange(q), np.arange(q)] += flat_penalty
        if shift:
            total = np.sum(W[:, bias], axis=1)
            gradient[:, bias] += shift * total[:, None]
            hessian[:, bias[:, None], bias[None, :]] += shift
        return value, gradient, hessian

    return objective, derivatives


def damped_newton(
    objective: Objective,
    derivatives: Derivatives,
    mask: np.ndarray,
    W0: np.ndarray,
    max_iter: int,
    step_tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``F`` for each column of ``mask``; return ``(W, converged)``.

    Newton's method with step halving (Nocedal & Wright, *Numerical Optimization*, 2nd ed.,
    2006, ch. 3), all coalitions at once. When the Hessian is numerically singular (nearly
    separable classes saturate the probabilities and the unpenalised intercepts lose their
    curvature) and no halved step descends, the step is damped Levenberg-Marquardt style,
    ``(H + lambda I) s = g`` (ibid., ch. 10), which leaves the minimiser unchanged. A
    coalition has converged once a full undamped Newton step is below ``step_tol`` relative
    to its coefficients: by quadratic convergence the remaining error is then of order
    ``step_tol ** 2``.
    """
    B, q = mask.shape[1], W0.shape[1]
    W = np.array(W0, dtype=np.float64, copy=True)
    converged = np.zeros(B, dtype=bool)
    damping = np.zeros(B)
    active = np.arange(B)
    diagonal = np.arange(q)
    for _iteration in range(max_iter):
        Wa, Ma, Da = W[active], mask[:, active], damping[active]
        before, gradient, hessian = derivatives(Ma, Wa)
        if Da.any():
            size = np.mean(np.abs(hessian[:, diagonal, diagonal]), axis=1) + 1e-12
            hessian[:, diagonal, diagonal] += (Da * size)[:, None]
        step = _solve_each(hessian, gradient)
        candidate, scale, failed = halve_until_descent(objective, Ma, Wa, step, before)
        # never accept an ascent (failed keeps Wa): damp the next step instead
        W[active] = candidate
        damping[active] = np.where(
            failed, np.maximum(16.0 * Da, 1e-8), np.where(Da < 1e-9, 0.0, 0.25 * Da)
        )
        size = np.max(np.abs(scale[:, None] * step), axis=1)
        done = ~failed & (Da == 0) & (scale == 1.0)
        done &= size <= step_tol * (1.0 + np.max(np.abs(candidate), axis=1))
        converged[active[done]] = True
        active = active[~done]
        if active.size == 0:
            break
    return W, converged


def halve_until_descent(
    objective: Objective, mask: np.ndarray, W: np.ndarray, step: np.ndarray, before: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps ``W - scale * step``, ``scale`` halved until ``F`` does not increase.

    Near the optimum full Newton steps are safe, so descent is checked only for long steps
    (above 1e-3 relative to the coefficients) and non-finite ones. Returns the candidates,
    the scales, and which coalitions found no descent in 30 halvings (their candidate is
    ``W`` itself).
    """
    scale = np.ones(len(W))
    candidate = W - step
    long_step = np.max(np.abs(step), axis=1) > 1e-3 * (1.0 + np.max(np.abs(W), axis=1))
    long_step |= ~np.isfinite(step).all(axis=1)
    after = np.full(len(W), -np.inf)
    if long_step.any():
        after[long_step] = objective(mask[:, long_step], candidate[long_step])
    for _halving in range(30):
        worse = ~(after <= before + 1e-12 * np.abs(before))  # NaN counts as worse
        if not worse.any():
            break
        scale[worse] *= 0.5
        candidate[worse] = W[worse] - scale[worse, None] * step[worse]
        after[worse] = objective(mask[:, worse], candidate[worse])
    failed = ~(after <= before + 1e-12 * np.abs(before))
    candidate[failed] = W[failed]
    return candidate, scale, failed


def _solve_each(hessian: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Newton steps ``H^-1 g`` of a stack; a singular system gives a NaN step (damped next)."""
    try:
        return np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        steps = np.full(gradient.shape, np.nan)
        for b in range(len(gradient)):
            try:
                steps[b] = np.linalg.solve(hessian[b], gradient[b])
            except np.linalg.LinAlgError:
                pass
        return steps


def predictor_starts(
    hessian: np.ndarray,
    coef: np.ndarray,
    X_new: np.ndarray,
    labels_new: np.ndarray,
    m: int,
    record: np.ndarray,
) -> np.ndarray:
    """Starting points after adding rows one at a time to a problem solved at ``coef``.

    ``hessian`` is the Hessian of ``F`` at ``coef`` on the rows ``coef`` is optimal for. Adding row ``x`` with
    residual ``g`` (predicted probabilities minus the one-hot label) and curvature ``A``
    (``diag(P) - P P'``, or ``P (1 - P)`` for the binary link) changes the gradient by
    ``g (x) x`` and the Hessian by ``A (x) x x'``. Each row takes one quasi-Newton step with
    the inverse Hessian kept current by the Woodbury identity (rank ``m`` update), so the
    starts are close to each optimum. ``record[j]`` is the number of new rows after which
    start ``j`` is taken.
    """
    q = coef.size
    p = q // m
    inverse = np.linalg.inv(hessian)
    w = coef.astype(np.float64, copy=True)
    starts = np.empty((len(record), q))
    position = 0
    for j, stop in enumerate(record):
        while position < stop:
            x = X_new[position]
            z = w.reshape(m, p) @ x
            if m == 1:
                prob = expit(z)
                residual = prob - labels_new[position]
                curvature = (prob * (1.0 - prob))[:, None]
            else:
                prob = np.exp(z - logsumexp(z))
                residual = prob.copy()
                residual[labels_new[position]] -= 1.0
                curvature = np.diag(prob) - np.outer(prob, prob)
            G = (inverse.reshape(q, m, p) @ x).reshape(q, m)  # H^-1 (I_m (x) x)
            M = (G.reshape(m, p, m) * x[None, :, None]).sum(axis=1)  # (I (x) x)' H^-1 (I (x) x)
            GT = np.linalg.solve((np.eye(m) + curvature @ M).T, G.T).T  # G (I + A M)^-1
            w -= GT @ residual
            inverse -= GT @ curvature @ G.T
            position += 1
        starts[j] = w
    return starts
