"""Exact fast evaluation of :class:`~openattrib.games.ModelUtility` for specific models.

The generic utility refits a clone of the estimator on every coalition. For some models the
fit on a coalition can be obtained far more cheaply, and :func:`select_fast_path` picks such
a path automatically from the estimator's type and parameters:

========================================  ==================================================
estimator                                 how
========================================  ==================================================
``Ridge``, ``LinearRegression``,          running sums of ``x``, ``x x'``, ``x y`` and one
``RidgeClassifier``                       ``d x d`` solve per coalition; a coalition of
                                          more than half the rows (leave-one-out) is the
                                          full sums less its complement's (:mod:`.linear`)
``GaussianNB``, ``MultinomialNB``         running per-class sufficient statistics
                                          (:mod:`.naive_bayes`)
``KNeighborsClassifier``,                 each validation point keeps its current nearest
``KNeighborsRegressor``                   neighbours as points are added (:mod:`.knn`)
``LogisticRegression`` (L2, lbfgs /      Newton iterations on scikit-learn's exact
newton-cg / newton-cholesky; any number   objective, per coalition class set: dense for up
of classes and features)                  to 256 coefficients (two-class walks prefix by
                                          prefix, :mod:`.binary_walk`), Hessian-free
                                          Newton-CG above (:mod:`.newton_cg`); warm-started
                                          (:mod:`.logistic`, :mod:`.multinomial`); all
                                          leave-one-out fits together from the full fit
                                          (:mod:`.logistic_loo`)
========================================  ==================================================

All paths except the logistic one give the same numbers as the generic refit up to floating
point rounding; the logistic path equals scikit-learn's fit within the optimiser tolerance
(scikit-learn's L-BFGS stops at ``tol``; the Newton path converges further). The logistic
path also fits sample-weighted problems (``weighted_outputs``): Data-OOB fits its bags
through it, a bag being the bootstrap counts as weights on the full data. Any parameter
a path does not model (class or sample weights, other penalties or solvers, ``positive``,
another metric, a Pipeline, a scorer that needs probabilities...) keeps the generic path,
logged at debug level on the ``"openattrib"`` logger. A path that meets numerical trouble on
one coalition (a singular system, no convergence, distance ties in KNN) refits that
coalition generically and counts it in ``utility.failures["fast_fallback: <reason>"]``.

Examples
--------
>>> from sklearn.linear_model import Ridge
>>> import openattrib as oa
>>> train, valid = oa.datasets.load_diabetes().split(test_size=0.3, seed=0)
>>> game = oa.ModelUtility(Ridge(), train, valid, scorer="r2")
>>> type(game.fast_path).__name__
'LinearFastPath'
"""

from __future__ import annotations

import logging
from typing import Any

from .base import FastPath
from .scoring import NotSupported

__all__ = ["FastPath", "select_fast_path", "fast_path_classes"]

log = logging.getLogger("openattrib")


def fast_path_classes() -> dict[type, type]:
    """Map of supported scikit-learn estimator classes to their fast path class."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
    from sklearn.naive_bayes import GaussianNB, MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    from .knn import KNNFastPath
    from .linear import LinearFastPath
    from .logistic import LogisticFastPath
    from .naive_bayes import GaussianNBFastPath, MultinomialNBFastPath

    return {
        Ridge: LinearFastPath,
        LinearRegression: LinearFastPath,
        RidgeClassifier: LinearFastPath,
        GaussianNB: GaussianNBFastPath,
        MultinomialNB: MultinomialNBFastPath,
        KNeighborsClassifier: KNNFastPath,
        KNeighborsRegressor: KNNFastPath,
        LogisticRegression: LogisticFastPath,
    }


def select_fast_path(utility: Any) -> FastPath | None:
    """The exact fast path for ``utility``'s estimator and parameters, or None.

    Only the exact estimator classes listed in :mod:`openattrib.fast` qualify (a subclass
    or a Pipeline may change the fit); every parameter is checked against what the path
    models. Returns None, and logs why at debug level, when the generic refit must be used.
    """
    estimator = utility.estimator
    path_class = fast_path_classes().get(type(estimator))
    if path_class is None:
        log.debug("no fast path for %s: generic refit", type(estimator).__name__)
        return None
    try:
        path = path_class(utility)
    except NotSupported as exc:
        log.debug("fast path %s not used: %s; generic refit", path_class.__name__, exc)
        return None
    log.debug("using fast path %s for %s", path_class.__name__, type(estimator).__name__)
    return path
