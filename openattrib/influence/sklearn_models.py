"""Read a fitted scikit-learn linear model into a :class:`~openattrib.influence.glm.GLM`.

Supported (final step of an optional :class:`~sklearn.pipeline.Pipeline` whose earlier
steps are treated as fixed feature maps):

* ``LogisticRegression`` with an L2 penalty or none (``l1_ratio=0``, ``penalty="l2"`` or
  ``C=np.inf`` / ``penalty=None``), binary or multinomial, with or without intercept, any
  solver (``liblinear`` penalises the intercept too, and so do we), ``class_weight`` as
  fitted;
* ``Ridge`` and ``LinearRegression`` with a single target and ``positive=False``.

The objective is the one scikit-learn minimises. For ``LogisticRegression`` (see the note
in ``sklearn/linear_model/_logistic.py``) it is ``C * sum_i w_i loss_i + ||coef||^2 / 2``,
i.e. ``sum_i w_i loss_i + ||coef||^2 / (2 C)``; ``liblinear`` adds
``intercept^2 / (2 C intercept_scaling^2)``. For ``Ridge`` it is
``||y - X coef - intercept||^2 + alpha ||coef||^2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedError, ValidationError
from .glm import GLM

__all__ = ["SUPPORTED", "glm_from_estimator", "split_pipeline", "effective_penalty"]

SUPPORTED = (
    "LogisticRegression (L2 penalty or none; binary or multinomial), Ridge and "
    "LinearRegression (single target, positive=False), alone or as the last step of a "
    "Pipeline"
)


def split_pipeline(model: Any) -> tuple[Any, Any]:
    """``(preprocessing or None, final estimator)`` of a model or Pipeline."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover
        return None, model
    if isinstance(model, Pipeline):
        if len(model.steps) == 1:
            return None, model.steps[-1][1]
        return model[:-1], model.steps[-1][1]
    return None, model


def _check_fitted(model: Any, final: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
        check_is_fitted(final)
    except NotFittedError:
        raise ValidationError(
            f"the model {type(final).__name__} is not fitted; call model.fit(train.X, train.y) "
            "before computing influences"
        ) from None


def effective_penalty(model: Any) -> tuple[str | None, float]:
    """``(penalty, C)`` that a fitted ``LogisticRegression`` actually used.

    Follows scikit-learn 1.8+'s resolution of the deprecated ``penalty`` parameter
    (``l1_ratio`` and ``C`` decide) and the older explicit ``penalty``.
    """
    C = float(model.C)
    penalty = getattr(model, "penalty", "l2")
    l1_ratio = getattr(model, "l1_ratio", None)
    if penalty == "deprecated":
        if l1_ratio is None or l1_ratio == 0:
            penalty = "l2"
        elif l1_ratio == 1:
            penalty = "l1"
        else:
            penalty = "elasticnet"
        if np.isinf(C):
            penalty = None
    elif penalty in (None, "none"):
        penalty, C = None, np.inf
    elif penalty == "elasticnet" and l1_ratio == 0:
        penalty = "l2"
    return penalty, C


def _logistic(final: Any) -> GLM:
    penalty, C = effective_penalty(final)
    if penalty not in ("l2", None):
        raise UnsupportedError(
            f"LogisticRegression with penalty {penalty!r} is not supported: influence "
            "functions need a twice-differentiable objective. Refit with an L2 penalty "
            "(l1_ratio=0) or none (C=np.inf); supported: " + SUPPORTED
        )
    if getattr(final, "dual", False):
        raise UnsupportedError(
            "LogisticRegression(dual=True) is not supported; refit with dual=False (the primal "
            "liblinear problem has the same solution)"
        )
    classes = np.asarray(final.classes_)
    coef = np.asarray(final.coef_, dtype=np.float64)
    fit_intercept = bool(final.fit_intercept)
    binary = classes.size == 2
    if binary and coef.shape[0] != 1:  # pragma: no cover - defensive
        raise UnsupportedError("a binary LogisticRegression must have one row of coef_")
    if not binary and coef.shape[0] != classes.size:
        raise UnsupportedError(
            "one-vs-rest LogisticRegression (e.g. OneVsRestClassifier or the old "
            "multi_class='ovr') is not supported; fit the multinomial model instead"
        )
    intercept = np.asarray(final.intercept_, dtype=np.float64).reshape(-1)
    theta = np.hstack([coef, intercept[:, None]]) if fit_intercept else coef
    inv_c = 0.0 if np.isinf(C) else 1.0 / C
    penalty_matrix = np.full(theta.shape, inv_c)
    liblinear_intercept = fit_intercept and final.solver == "liblinear"
    if fit_intercept:
        scaling = float(final.intercept_scaling)
        penalty_matrix[:, -1] = inv_c / scaling**2 if liblinear_intercept else 0.0
    extra = {"C": C, "solver": final.solver, "class_weight": final.class_weight}
    return GLM(
        "binary" if binary else "multinomial",
        theta,
        fit_intercept,
        penalty_matrix.reshape(-1),
        classes,
        description=repr(final),
        extra=extra,
    )


def _regression(final: Any, name: str) -> GLM:
    if getattr(final, "positive", False):
        raise UnsupportedError(
            f"{name}(positive=True) is not supported: the constraint makes the objective "
            "non-smooth at the fitted point; refit with positive=False"
        )
    coef = np.asarray(final.coef_, dtype=np.float64)
    if coef.ndim != 1:
        raise UnsupportedError(
            f"{name} fitted on {coef.shape[0]} targets is not supported; fit one model per "
            "target (y must be 1-D)"
        )
    alpha = 0.0
    if name == "Ridge":
        alpha_arr = np.asarray(final.alpha, dtype=np.float64)
        if alpha_arr.size != 1:
            raise UnsupportedError("Ridge with one alpha per target is not supported")
        alpha = float(alpha_arr)
    fit_intercept = bool(final.fit_intercept)
    theta = coef[None, :]
    penalty = np.full(theta.shape, 2.0 * alpha)
    if fit_intercept:
        theta = np.hstack([theta, [[float(final.intercept_)]]])
        penalty = np.hstack([penalty, [[0.0]]])
    return GLM(
        "squared",
        theta,
        fit_intercept,
        penalty.reshape(-1),
        None,
        description=repr(final),
        extra={"alpha": alpha},
    )


def glm_from_estimator(model: Any) -> tuple[GLM, Any]:
    """``(GLM, preprocessing)`` for a fitted supported model; clear errors otherwise."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    preprocessing, final = split_pipeline(model)
    kinds = (LogisticRegression, Ridge, LinearRegression)
    if not isinstance(final, kinds) or type(final).__name__.endswith("CV"):
        raise UnsupportedError(
            f"influence functions do not support {type(final).__name__}; supported: "
            f"{SUPPORTED}. (For other torch.nn.Module classifiers use oa.tracin or oa.trak.)"
        )
    _check_fitted(model, final)
    if isinstance(final, LogisticRegression):
        return _logistic(final), preprocessing
    return _regression(final, type(final).__name__), preprocessing


def sample_weights(glm: GLM, y: np.ndarray) -> np.ndarray:
    """Per-sample weights as fitted (``class_weight``); ones otherwise."""
    class_weight = glm.extra.get("class_weight")
    if class_weight is None or glm.classes is None:
        return np.ones(len(y))
    from sklearn.utils.class_weight import compute_class_weight

    per_class = compute_class_weight(class_weight, classes=glm.classes, y=np.asarray(y))
    return per_class[np.searchsorted(glm.classes, y)].astype(np.float64)
