"""What influence needs from ``(model, train)``, checked once and cached: :func:`prepare`.

:class:`Prepared` holds the fitted model as a :class:`~openattrib.influence.glm.GLM`, the
training design matrix, the weighted training residuals and the Hessian solver (for
``"direct"``, the Cholesky factor). It is cached per (model parameters, training-set hash,
method, damping, solver options), which is what makes the per-request
:func:`~openattrib.influence.attribute_prediction` cheap after the first call.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError
from . import sklearn_models
from .glm import GLM
from .solvers import CGSolver, DirectSolver, LiSSASolver

__all__ = [
    "METHODS",
    "Prepared",
    "as_rows",
    "check_dataset",
    "clear_cache",
    "prepare",
    "query_gradients",
]

logger = logging.getLogger("openattrib")

METHODS = ("direct", "cg", "lissa")
_CACHE: OrderedDict[tuple, Prepared] = OrderedDict()
_CACHE_SIZE = 8


@dataclass(eq=False)
class Prepared:
    """Everything about ``(model, train)`` that does not depend on the query (cached)."""

    glm: GLM
    preprocessing: Any
    design: np.ndarray  # augmented training features (n, p)
    train_factor: np.ndarray  # w_i r_i / W, shape (n, K)
    solver: Any
    train: Dataset
    names: list[str]
    weights: np.ndarray  # per-sample weights as fitted (class_weight), shape (n,)
    total: float  # W = sum of weights
    parameters: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- contraction
    def contract(self, Q: np.ndarray, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """``S[:, rows] = Q @ G[rows].T`` without forming the gradients ``G``.

        ``out``, when given, is a C-contiguous ``(len(Q), len(rows))`` array to fill.
        """
        m = Q.shape[0]
        K, p = self.glm.theta.shape
        Xb = self.design[rows]
        if K == 1:
            A = np.matmul(Q, Xb.T, out=out)
            A *= self.train_factor[rows, 0][None, :]
            return A
        A = (Q.reshape(m * K, p) @ Xb.T).reshape(m, K, -1)
        return np.einsum("mkb,bk->mb", A, self.train_factor[rows], out=out)

    def self_influence(self, rows: slice) -> np.ndarray:
        Xb = self.design[rows]
        factor = self.train_factor[rows]
        weights = self.weights[rows]
        safe = np.where(weights > 0, weights, 1.0)
        G = self.glm.gradients(Xb, factor / safe[:, None])  # unweighted r_i x_i / W
        solved = self.solver.solve(G.T)
        return np.einsum("bj,jb->b", G, solved) * weights * self.total


# ------------------------------------------------------------------ validation helpers
def check_dataset(obj: Any, role: str) -> Dataset:
    if not isinstance(obj, Dataset):
        raise ValidationError(
            f"{role} must be an openattrib Dataset, got {type(obj).__name__}; wrap arrays with "
            "oa.Dataset(X, y)"
        )
    return obj


def _features(prep_or_pre: Any, X: np.ndarray, glm: GLM, role: str) -> np.ndarray:
    """Apply the pipeline's preprocessing and check the feature count."""
    expected = glm.n_inputs - int(glm.fit_intercept)
    if prep_or_pre is not None:
        n_in = getattr(prep_or_pre, "n_features_in_", None)
        if n_in is not None and X.shape[1] != n_in:
            raise ValidationError(
                f"{role} has {X.shape[1]} features but the model was fitted on {n_in}; pass "
                "data with the same columns as at fit time"
            )
        X = prep_or_pre.transform(X)
        if hasattr(X, "toarray"):
            X = X.toarray()
        X = np.asarray(X, dtype=np.float64)
    if X.shape[1] != expected:
        raise ValidationError(
            f"{role} has {X.shape[1]} features but the model was fitted on {expected}; pass "
            "data with the same columns as at fit time"
        )
    return X


def _encode_labels(glm: GLM, y: np.ndarray, role: str) -> np.ndarray:
    y = np.asarray(y)
    if glm.kind == "squared":
        if y.dtype.kind not in "biuf":
            raise ValidationError(f"{role} labels must be numeric for a regression model")
        return y.astype(np.float64)
    unknown = ~np.isin(y, glm.classes)
    if unknown.any():
        raise ValidationError(
            f"{role} has label {y[unknown][0]!r}, which is not one of the model's classes "
            f"{glm.classes.tolist()}"
        )
    return glm.encode(y)


def _check_damping(damping: Any) -> float:
    if isinstance(damping, (bool, np.bool_)) or not isinstance(
        damping, (int, float, np.integer, np.floating)
    ):
        raise ValidationError(f"damping must be a non-negative float, got {damping!r}")
    if not (np.isfinite(damping) and damping >= 0):
        raise ValidationError(f"damping must be a non-negative finite float, got {damping!r}")
    return float(damping)


def _fingerprint(model: Any, glm: GLM, preprocessing: Any) -> str:
    digest = hashlib.sha256()
    digest.update(glm.description.encode())
    digest.update(np.ascontiguousarray(glm.theta).tobytes())
    digest.update(np.ascontiguousarray(glm.penalty).tobytes())
    if preprocessing is not None:
        digest.update(pickle.dumps(preprocessing))
    return digest.hexdigest()


# ------------------------------------------------------------------ preparation
def prepare(
    model: Any,
    train: Dataset,
    *,
    method: str = "direct",
    damping: float = 0.0,
    cg_tol: float = 1e-10,
    cg_maxiter: int | None = None,
    lissa_scale: float | None = None,
    lissa_depth: int = 10_000,
    lissa_tol: float = 1e-9,
    lissa_batch_size: int | None = None,
    lissa_repeats: int = 1,
    seed: int = 0,
    cache: bool = True,
) -> Prepared:
    """Read the model, check it against ``train`` and set up the Hessian solver (cached)."""
    train = check_dataset(train, "train")
    if method not in METHODS:
        raise ValidationError(f"method must be one of {METHODS}, got {method!r}")
    damping = _check_damping(damping)
    glm, preprocessing = sklearn_models.glm_from_estimator(model)
    solver_options = {
        "cg_tol": cg_tol,
        "cg_maxiter": cg_maxiter,
        "lissa_scale": lissa_scale,
        "lissa_depth": lissa_depth,
        "lissa_tol": lissa_tol,
        "lissa_batch_size": lissa_batch_size,
        "lissa_repeats": lissa_repeats,
        "seed": seed,
    }
    options = tuple(sorted(solver_options.items()))
    key = (_fingerprint(model, glm, preprocessing), train.content_hash(), method, damping, options)
    if cache and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]

    X = _features(preprocessing, train.X, glm, "train")
    y = _encode_labels(glm, train.y, "train")
    weights = sklearn_models.sample_weights(glm, train.y)
    total = float(weights.sum())
    design = glm.design(X)
    residuals = glm.residuals(design, y)
    gradient = glm.objective_gradient(design, y, weights)
    # sum_i |w_i r_i (x) x_i| without forming the per-sample gradients
    scale = float((np.abs(residuals * weights[:, None]).T @ np.abs(design)).sum())
    scale += float(np.abs(glm.penalty * glm.theta.reshape(-1)).sum())
    stationarity = float(np.abs(gradient).sum() / scale) if scale > 0 else 0.0
    if stationarity > 1e-2:
        logger.warning(
            "influence: the fitted parameters are far from a stationary point of the training "
            "objective on `train` (relative gradient %.2g). Was the model fitted on exactly "
            "this training set (same rows, no sample_weight)? Influence values assume it was.",
            stationarity,
        )
    if method == "direct":
        solver = DirectSolver(glm.hessian(design, weights, damping, total), damping)
    elif method == "cg":
        operator = glm.hvp_operator(design, weights, damping, total)
        diagonal = glm.hessian_diagonal(design, weights, damping, total)
        solver = CGSolver(operator, diagonal, tol=cg_tol, maxiter=cg_maxiter, damping=damping)
    else:
        operator = glm.hvp_operator(design, weights, damping, total)
        solver = LiSSASolver(
            operator,
            scale=lissa_scale,
            depth=lissa_depth,
            tol=lissa_tol,
            batch_size=lissa_batch_size,
            repeats=lissa_repeats,
            seed=seed,
            damping=damping,
        )
    parameters: dict[str, Any] = {"method": method, "damping": damping}
    if method == "cg":
        parameters.update(cg_tol=cg_tol, cg_maxiter=solver.maxiter)
    if method == "lissa":
        parameters.update(
            lissa_scale=solver.scale,
            lissa_depth=lissa_depth,
            lissa_tol=lissa_tol,
            lissa_batch_size=lissa_batch_size,
            lissa_repeats=lissa_repeats,
            seed=seed,
        )
    prepared = Prepared(
        glm=glm,
        preprocessing=preprocessing,
        design=design,
        train_factor=residuals * (weights / total)[:, None],
        solver=solver,
        train=train,
        names=[str(i) for i in range(train.n_samples)],
        weights=weights,
        total=total,
        parameters=parameters,
        diagnostics={"stationarity": stationarity, "n_params": glm.n_params},
    )
    if cache:
        _CACHE[key] = prepared
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prepared


def clear_cache() -> None:
    """Forget every cached Hessian factorisation (see :func:`attribute_prediction`)."""
    _CACHE.clear()


def query_gradients(prepared: Prepared, X: np.ndarray, y: Any) -> tuple[np.ndarray, str]:
    """Gradients of what is explained at each query row, and a description of it.

    With labels: the loss. Without: the loss of the *predicted* class (classification;
    positive = the point supports the prediction made) or the negated prediction
    (regression; positive = the point pushes the prediction up).
    """
    glm = prepared.glm
    X = _features(prepared.preprocessing, X, glm, "the query")
    design = glm.design(X)
    if y is not None:
        codes = _encode_labels(glm, np.asarray(y).reshape(-1), "the query")
        if codes.shape[0] != design.shape[0]:
            raise ValidationError(f"y has {codes.shape[0]} labels for {design.shape[0]} query rows")
        return glm.gradients(design, glm.residuals(design, codes)), "loss"
    if glm.kind == "squared":
        return -design, "prediction"
    z = glm.linear_predictor(design)
    predicted = (z[:, 0] > 0).astype(np.float64) if glm.kind == "binary" else z.argmax(axis=1)
    return glm.gradients(design, glm.residuals(design, predicted)), "loss of predicted class"


def as_rows(x: Any, role: str = "x") -> np.ndarray:
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    try:
        X = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{role} must be numeric features, got {type(x).__name__}") from None
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValidationError(
            f"{role} must be one row of features or a 2-D array, got shape {X.shape}"
        )
    if not np.all(np.isfinite(X)):
        raise ValidationError(f"{role} contains NaN or infinite values")
    return X
