"""Closed-form per-sample gradients, Hessians and Hessian-vector products of linear models.

A :class:`GLM` is a fitted linear model reduced to what influence functions need: the
parameter matrix ``theta`` of shape ``(K, p)`` (``p = n_features + fit_intercept``, the
intercept in the last column; ``K = 1`` for binary logistic and squared-error regression,
``K = n_classes`` for the multinomial model) and the training objective

.. math::

    F(\\theta) = \\sum_i w_i\\, \\ell(z_i, y_i) + \\tfrac12 \\sum_j \\lambda_j \\theta_j^2,
    \\qquad z_i = \\theta \\tilde x_i,

with :math:`\\tilde x_i = (x_i, 1)` and the per-sample losses

* ``"binary"``: :math:`\\ell = \\log(1 + e^{z}) - y z` (log-loss, ``y`` in {0, 1}),
* ``"multinomial"``: :math:`\\ell = \\log\\sum_k e^{z_k} - z_y`,
* ``"squared"``: :math:`\\ell = (z - y)^2`.

Everything is written as :math:`\\nabla_\\theta \\ell_i = r_i \\otimes \\tilde x_i` with the
residual :math:`r_i = \\partial \\ell / \\partial z` and
:math:`\\nabla^2_\\theta \\ell_i = C_i \\otimes \\tilde x_i \\tilde x_i^\\top` with the
curvature :math:`C_i = \\partial^2 \\ell / \\partial z^2`, so nothing larger than
``(n, K * p)`` is ever formed (Koh & Liang 2017, "Understanding black-box predictions via
influence functions", section 3, for the influence formulas built on these).

The solvers work with the Hessian of the *average* objective ``F / W`` (``W = sum_i w_i``),
the scale of scikit-learn's internal ``LinearModelLoss``, so ``damping`` means the same
whatever the number of training points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, log_softmax, softmax

__all__ = ["GLM", "augment", "KINDS"]

KINDS = ("binary", "multinomial", "squared")


def augment(X: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``X`` with a trailing column of ones when the model has an intercept."""
    X = np.asarray(X, dtype=np.float64)
    if not fit_intercept:
        return X
    return np.hstack([X, np.ones((X.shape[0], 1))])


@dataclass(frozen=True, eq=False)
class GLM:
    """A fitted linear model with its training objective (see the module docstring).

    Parameters
    ----------
    kind : {"binary", "multinomial", "squared"}
    theta : ndarray of shape (K, p)
        Parameters; the last column is the intercept when ``fit_intercept``.
    fit_intercept : bool
    penalty : ndarray of shape (K * p,)
        The L2 coefficients ``lambda_j`` of the *summed* objective, one per parameter.
    classes : ndarray, optional
        Class labels (classification); ``y`` is coded by position in ``classes``.
    description : str
        Human-readable model description for provenance.
    """

    kind: str
    theta: np.ndarray
    fit_intercept: bool
    penalty: np.ndarray
    classes: np.ndarray | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ shapes
    @property
    def n_outputs(self) -> int:
        return int(self.theta.shape[0])

    @property
    def n_inputs(self) -> int:
        """Columns of the augmented design (features plus one for the intercept)."""
        return int(self.theta.shape[1])

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    def with_theta(self, theta: np.ndarray) -> GLM:
        """The same model with other parameters (used by finite-difference checks)."""
        return GLM(
            self.kind,
            np.asarray(theta, dtype=np.float64).reshape(self.theta.shape),
            self.fit_intercept,
            self.penalty,
            self.classes,
            self.description,
            self.extra,
        )

    # ------------------------------------------------------------------ pointwise pieces
    def design(self, X: np.ndarray) -> np.ndarray:
        return augment(X, self.fit_intercept)

    def linear_predictor(self, Xa: np.ndarray) -> np.ndarray:
        """``z = Xa @ theta.T`` of shape (n, K)."""
        return Xa @ self.theta.T

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as the numbers the loss uses: 0/1, class positions, or float targets."""
        y = np.asarray(y)
        if self.kind == "squared":
            return y.astype(np.float64)
        codes = np.searchsorted(self.classes, y)
        if self.kind == "binary":
            return codes.astype(np.float64)
        return codes.astype(np.int64)

    def losses(self, Xa: np.ndarray, y_coded: np.ndarray) -> np.ndarray:
        """Per-sample loss ``l(z_i, y_i)``, shape (n,)."""
        z = self.linear_predictor(Xa)
        if self.kind == "binary":
            return np.logaddexp(0.0, z[:, 0]) - y_coded * z[:, 0]
        if self.kind == "multinomial":
            return -log_softmax(z, axis=1)[np.arange(z.shape[0]), y_coded]
        return (z[:, 0] - y_coded) ** 2

    def residuals(self, Xa: np.ndarray, y_coded: np.ndarray) -> np.ndarray:
        """``r_i = d loss / d z``, shape (n, K)."""
        z = self.linear_predictor(Xa)
        if self.kind == "binary":
            return (expit(z[:, 0]) - y_coded)[:, None]
        if self.kind == "multinomial":
            r = softmax(z, axis=1)
            r[np.arange(z.shape[0]), y_coded] -= 1.0
            return r
        return 2.0 * (z - y_coded[:, None])

    def curvature(self, Xa: np.ndarray) -> np.ndarray:
        """Second derivative of the loss in ``z``.

        Shape (n, 1) for the scalar losses; for the multinomial loss the class
        probabilities ``P`` of shape (n, K), from which ``C_i = diag(P_i) - P_i P_i^T``.
        """
        z = self.linear_predictor(Xa)
        if self.kind == "binary":
            s = expit(z)
            return s * (1.0 - s)
        if self.kind == "multinomial":
            return softmax(z, axis=1)
        return np.full((Xa.shape[0], 1), 2.0)

    def gradients(self, Xa: np.ndarray, residuals: np.ndarray) -> np.ndarray:
        """Per-sample gradients ``r_i (x) x_i``, shape (n, K * p)."""
        n = Xa.shape[0]
        return (residuals[:, :, None] * Xa[:, None, :]).reshape(n, -1)

    # ------------------------------------------------------------------ objective
    def objective(self, Xa: np.ndarray, y_coded: np.ndarray, weights: np.ndarray) -> float:
        """The summed training objective ``F(theta)``."""
        theta = self.theta.reshape(-1)
        return float(weights @ self.losses(Xa, y_coded) + 0.5 * self.penalty @ theta**2)

    def objective_gradient(
        self, Xa: np.ndarray, y_coded: np.ndarray, weights: np.ndarray
    ) -> np.ndarray:
        """Gradient of ``F``, shape (K * p,)."""
        r = self.residuals(Xa, y_coded) * weights[:, None]
        return (r.T @ Xa).reshape(-1) + self.penalty * self.theta.reshape(-1)

    def null_directions(self, damping: float) -> np.ndarray | None:
        """Mask of the parameters along which the multinomial Hessian is exactly singular.

        Adding the same number to every class's column ``j`` leaves the softmax unchanged,
        so when column ``j`` is unpenalised (the intercept, or everything with
        ``penalty=None``) and undamped, the Hessian is singular along ``1_K (x) e_j``.
        Every per-sample gradient is orthogonal to these directions (residuals sum to zero
        over classes), so the solvers add a multiple of the projector onto them: that
        leaves every influence unchanged and makes the system invertible.
        """
        if self.kind != "multinomial" or damping > 0:
            return None
        column_penalty = self.penalty.reshape(self.theta.shape)[0]
        mask = column_penalty == 0
        return mask if mask.any() else None

    # ------------------------------------------------------------------ curvature (mean scale)
    def hessian(
        self,
        Xa: np.ndarray,
        weights: np.ndarray,
        damping: float = 0.0,
        total: float | None = None,
        fix_null: bool = True,
    ) -> np.ndarray:
        """Dense Hessian of ``F / W`` plus ``damping * I``, shape (K p, K p).

        With ``fix_null`` the multinomial null directions are lifted (see
        :meth:`null_directions`); without, this is exactly the second derivative.
        """
        total = float(weights.sum()) if total is None else total
        K, p = self.theta.shape
        curv = self.curvature(Xa)
        if self.kind == "multinomial":
            weighted = curv * (weights / total)[:, None]
            H = np.zeros((K, p, K, p))
            for k in range(K):
                H[k, :, k, :] = (Xa * weighted[:, k : k + 1]).T @ Xa
            M = (curv[:, :, None] * Xa[:, None, :]).reshape(Xa.shape[0], -1)
            H = H.reshape(K * p, K * p) - (M * (weights / total)[:, None]).T @ M
        else:
            H = (Xa * (curv[:, 0] * weights / total)[:, None]).T @ Xa
        H[np.diag_indices_from(H)] += self.penalty / total + damping
        mask = self.null_directions(damping) if fix_null else None
        if mask is not None:
            shift = float(np.trace(H)) / H.shape[0]
            H += shift * _null_projector(K, mask)
        return H

    def hessian_diagonal(
        self,
        Xa: np.ndarray,
        weights: np.ndarray,
        damping: float = 0.0,
        total: float | None = None,
        fix_null: bool = True,
    ) -> np.ndarray:
        """Diagonal of :meth:`hessian` without forming it (Jacobi preconditioner)."""
        total = float(weights.sum()) if total is None else total
        curv = self.curvature(Xa)
        if self.kind == "multinomial":
            curv = curv * (1.0 - curv)
        diag = ((curv * (weights / total)[:, None]).T @ Xa**2).reshape(-1)
        diag += self.penalty / total + damping
        mask = self.null_directions(damping) if fix_null else None
        if mask is not None:
            K = self.n_outputs
            diag = diag.reshape(K, -1)
            diag[:, mask] += float(diag.mean()) / K
            diag = diag.reshape(-1)
        return diag

    def hvp_operator(
        self,
        Xa: np.ndarray,
        weights: np.ndarray,
        damping: float = 0.0,
        total: float | None = None,
    ) -> HessianOperator:
        """A matrix-free Hessian of ``F / W`` (+ damping) over the rows ``Xa``."""
        return HessianOperator(self, Xa, weights, damping, total)


def _null_projector(K: int, mask: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto ``span{1_K (x) e_j : mask_j}``."""
    return np.kron(np.full((K, K), 1.0 / K), np.diag(mask.astype(np.float64)))


class HessianOperator:
    """``V -> (H / W + damping I) V`` for ``V`` of shape (K p, m), never forming ``H``.

    ``rows`` restricted to a subset gives the sampled Hessian used by LiSSA (the data
    term is then averaged over those rows only, the penalty kept at full-data scale).
    """

    def __init__(
        self,
        glm: GLM,
        Xa: np.ndarray,
        weights: np.ndarray,
        damping: float,
        total: float | None,
    ) -> None:
        self.glm = glm
        self.Xa = Xa
        self.weights = weights
        self.total = float(weights.sum()) if total is None else float(total)
        self.damping = float(damping)
        self.curv = glm.curvature(Xa)
        self.shape = (glm.n_params, glm.n_params)
        self.null_mask = glm.null_directions(damping)
        self._null_shift = None
        self.dtype = np.float64

    @property
    def n_rows(self) -> int:
        return int(self.Xa.shape[0])

    def matmat(self, V: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        glm = self.glm
        K, p = glm.theta.shape
        V2 = V.reshape(K * p, -1)
        m = V2.shape[1]
        if rows is None:
            Xa, curv, w = self.Xa, self.curv, self.weights / self.total
        else:
            Xa, curv = self.Xa[rows], self.curv[rows]
            w = self.weights[rows] / self.weights[rows].sum()
        # U[i, k, :] = x_i . V[k]: directional change of z (BLAS matrix products only)
        stacked = V2.reshape(K, p, m).transpose(1, 0, 2).reshape(p, K * m)
        U = (Xa @ stacked).reshape(-1, K, m)
        if glm.kind == "multinomial":
            PU = curv[:, :, None] * U
            U = PU - curv[:, :, None] * PU.sum(axis=1, keepdims=True)
        else:
            U = curv[:, :, None] * U
        U *= w[:, None, None]
        out = (Xa.T @ U.reshape(-1, K * m)).reshape(p, K, m).transpose(1, 0, 2).reshape(K * p, m)
        out += (glm.penalty / self.total + self.damping)[:, None] * V2
        if self.null_mask is not None:
            if self._null_shift is None:
                diag = glm.hessian_diagonal(self.Xa, self.weights, 0.0, self.total, False)
                self._null_shift = float(diag.mean())
            Vn = V2.reshape(K, p, m) * self.null_mask[None, :, None]
            out += self._null_shift * np.broadcast_to(
                Vn.mean(axis=0, keepdims=True), (K, p, m)
            ).reshape(K * p, m)
        return out.reshape(V.shape) if V.ndim == 1 else out

    def __matmul__(self, V: np.ndarray) -> np.ndarray:
        return self.matmat(V)
