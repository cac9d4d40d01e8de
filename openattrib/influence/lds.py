"""Linear datamodeling score (LDS) of an attribution (Park et al. 2023, "TRAK", section 2.2).

For random training subsets ``S_1..S_m`` of size ``alpha * n``, an attribution ``tau``
predicts the output on test point ``z`` of the model trained on ``S_j`` as
``g(z, S_j) = sum_{i in S_j} tau(z)_i``. The LDS of ``z`` is the Spearman rank correlation,
over ``j``, between these predictions and the outputs ``f(z; theta(S_j))`` of models
actually retrained on ``S_j``; the reported score is its average over test points.

With this package's sign convention (positive = helps, i.e. lowers the test loss), the
matching output is the *negative* test loss (``output="neg_loss"``) or the correct-class
margin ``log p_y - log(1 - p_y)`` that TRAK uses (``output="margin"``).

:func:`subset_masks` draws the subsets, :func:`retrained_outputs` refits a scikit-learn
estimator on each, :func:`lds` scores any ``(n_test, n_train)`` attribution against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError
from .result import InfluenceResult

__all__ = ["LDSResult", "lds", "subset_masks", "retrained_outputs", "model_outputs"]


@dataclass(frozen=True)
class LDSResult:
    """``mean`` LDS over test points, the ``per_test`` Spearman correlations (NaN where the
    prediction or the actual output is constant over subsets), and the design."""

    mean: float
    per_test: np.ndarray
    n_subsets: int
    alpha: float

    def __float__(self) -> float:
        return self.mean

    def __repr__(self) -> str:
        return (
            f"LDSResult(mean={self.mean:.4f}, n_test={self.per_test.size}, "
            f"n_subsets={self.n_subsets}, alpha={self.alpha:g})"
        )


def subset_masks(
    n_train: int, n_subsets: int = 50, alpha: float = 0.5, seed: int = 0
) -> np.ndarray:
    """``n_subsets`` random subsets of exactly ``round(alpha * n_train)`` rows, as a bool matrix.

    Subset ``j`` is drawn from its own stream ``SeedSequence(seed).spawn(n_subsets)[j]``.

    Examples
    --------
    >>> masks = subset_masks(10, n_subsets=3, alpha=0.5, seed=0)
    >>> masks.shape, masks.sum(axis=1).tolist()
    ((3, 10), [5, 5, 5])
    """
    for name, value in (("n_train", n_train), ("n_subsets", n_subsets)):
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValidationError(f"{name} must be a positive int, got {value!r}")
    if not 0 < float(alpha) < 1:
        raise ValidationError(f"alpha must be in (0, 1), got {alpha!r}")
    size = int(round(float(alpha) * n_train))
    if not 1 <= size <= n_train - 1:
        raise ValidationError(f"alpha={alpha} of {n_train} rows gives an empty or full subset")
    masks = np.zeros((int(n_subsets), int(n_train)), dtype=bool)
    for j, stream in enumerate(np.random.SeedSequence(seed).spawn(int(n_subsets))):
        masks[j, np.random.default_rng(stream).choice(n_train, size=size, replace=False)] = True
    return masks


def model_outputs(model: Any, test: Dataset, output: str | Callable = "neg_loss") -> np.ndarray:
    """Per-test-point output of a fitted model: ``"neg_loss"``, ``"margin"`` or a callable."""
    if callable(output):
        return np.asarray(output(model, test), dtype=np.float64).reshape(-1)
    if output not in ("neg_loss", "margin"):
        raise ValidationError(f"output must be 'neg_loss', 'margin' or a callable, got {output!r}")
    if not hasattr(model, "predict_proba"):
        if output == "margin":
            raise ValidationError("output='margin' needs a classifier with predict_proba")
        return -((np.asarray(model.predict(test.X), dtype=np.float64) - test.y) ** 2)
    proba = model.predict_proba(test.X)
    classes = list(model.classes_)
    p = np.full(test.n_samples, 1e-15)
    for row, label in enumerate(test.y.tolist()):
        if label in classes:
            p[row] = proba[row, classes.index(label)]
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(p) if output == "neg_loss" else np.log(p) - np.log1p(-p)


def retrained_outputs(
    estimator: Any,
    train: Dataset,
    test: Dataset,
    masks: np.ndarray,
    *,
    output: str | Callable = "neg_loss",
    progress: bool = True,
) -> np.ndarray:
    """Refit a clone of ``estimator`` on each subset; outputs of shape (n_subsets, n_test).

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> masks = subset_masks(train.n_samples, n_subsets=3, seed=0)
    >>> retrained_outputs(LogisticRegression(), train, test, masks, progress=False).shape
    (3, 30)
    """
    from sklearn.base import clone
    from tqdm.auto import tqdm

    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[1] != train.n_samples:
        raise ValidationError(
            f"masks must have shape (n_subsets, {train.n_samples}), got {masks.shape}"
        )
    out = np.empty((masks.shape[0], test.n_samples))
    for j in tqdm(range(masks.shape[0]), disable=not progress, desc="retraining subsets"):
        part = train.subset(masks[j])
        model = clone(estimator).fit(part.X, part.y)
        out[j] = model_outputs(model, test, output)
    return out


def _spearman_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``a`` with the same column of ``b``."""
    from scipy.stats import rankdata  # lazily: scipy.stats takes ~1 s to import

    ra = rankdata(a, axis=0)
    rb = rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    denom = np.sqrt((ra**2).sum(axis=0) * (rb**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(axis=0) / np.where(denom > 0, denom, 1), np.nan)


def lds(scores: Any, masks: np.ndarray, actual: np.ndarray) -> LDSResult:
    """Linear datamodeling score of an attribution (Park et al. 2023, definition 2.3).

    Parameters
    ----------
    scores : ndarray of shape (n_test, n_train) or InfluenceResult
        ``scores[t, i]``: attribution of training point ``i`` for test point ``t``
        (positive = helps).
    masks : bool ndarray of shape (n_subsets, n_train)
        The subsets (:func:`subset_masks`).
    actual : ndarray of shape (n_subsets, n_test)
        Output of the model retrained on each subset (:func:`retrained_outputs`), oriented
        so that larger is better (for example the negative loss).

    Returns
    -------
    LDSResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(size=(2, 20))
    >>> masks = subset_masks(20, n_subsets=30, seed=1)
    >>> round(lds(tau, masks, masks @ tau.T).mean, 6)  # outputs exactly additive
    1.0
    """
    masks = np.asarray(masks)
    actual = np.asarray(actual, dtype=np.float64)
    if masks.ndim != 2 or masks.dtype.kind != "b":
        raise ValidationError("masks must be a 2-D boolean array (n_subsets, n_train)")
    weights = masks.astype(np.float64)
    if isinstance(scores, InfluenceResult):
        n_test, n_train = scores.shape
        if n_train != masks.shape[1]:
            raise ValidationError(
                f"masks have {masks.shape[1]} columns for {n_train} training points"
            )
        predicted = np.empty((masks.shape[0], n_test))
        for rows, block in scores.iter_blocks():
            predicted[:, rows] = weights @ block.T
    else:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != masks.shape[1]:
            raise ValidationError(
                f"scores must have shape (n_test, {masks.shape[1]}), got {scores.shape}"
            )
        n_test = scores.shape[0]
        predicted = weights @ scores.T
    if actual.shape != (masks.shape[0], n_test):
        raise ValidationError(
            f"actual must have shape (n_subsets, n_test) = {(masks.shape[0], n_test)}, got "
            f"{actual.shape}"
        )
    if masks.shape[0] < 3:
        raise ValidationError("LDS needs at least 3 subsets (use 50 or more)")
    per_test = _spearman_columns(predicted, actual)
    if np.all(np.isnan(per_test)):
        raise ValidationError("LDS is undefined: predictions or outputs are constant over subsets")
    alpha = float(masks.sum(axis=1).mean() / masks.shape[1])
    return LDSResult(float(np.nanmean(per_test)), per_test, int(masks.shape[0]), alpha)
