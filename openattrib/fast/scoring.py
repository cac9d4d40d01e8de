"""Scoring model outputs on the validation set the way the utility's scorer would.

A fast path produces, for many coalitions at once, the validation-set outputs of the model
each coalition would have fitted: class indices into ``utility.classes_`` for classifiers,
predictions for regressors. :class:`Scoring` turns a stack of such outputs into scores.

* A few common scorers (``accuracy``, ``r2``, ``neg_mean_squared_error``,
  ``neg_root_mean_squared_error``, ``neg_mean_absolute_error``) are computed directly,
  vectorised over coalitions, with the same formulas as :mod:`sklearn.metrics`.
* Any other scikit-learn scorer that only needs ``predict`` is called per coalition on a
  tiny stand-in model (:class:`OutputModel`) that returns the precomputed predictions.
* Anything else (probability or decision-function scorers, custom callables) is not
  handled: :func:`make_scoring` raises :class:`NotSupported` and the utility keeps the
  generic refit path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Scoring", "OutputModel", "NotSupported", "ForeignInput", "make_scoring"]

DIRECT_SCORERS = (
    "accuracy",
    "r2",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
)


class NotSupported(Exception):
    """Raised while building a fast path that cannot model this utility exactly."""


class ForeignInput(Exception):
    """The stand-in model was asked to predict on data other than the validation set."""


class OutputModel:
    """A stand-in fitted model whose ``predict`` returns precomputed validation outputs.

    Used only to call a scikit-learn scorer; predicting on any other data raises
    :class:`ForeignInput`, and the fast path then refits the real model for that coalition.
    """

    def __init__(
        self, X_valid: np.ndarray, predictions: np.ndarray, classes: np.ndarray | None
    ) -> None:
        self._X_valid = X_valid
        self._predictions = predictions
        if classes is not None:
            self.classes_ = classes
        self._estimator_type = "regressor" if classes is None else "classifier"

    def fit(self, X: Any, y: Any) -> OutputModel:  # pragma: no cover - never refitted
        return self

    def predict(self, X: Any) -> np.ndarray:
        if X is not self._X_valid and not (
            np.shape(X) == self._X_valid.shape and np.array_equal(X, self._X_valid)
        ):
            raise ForeignInput
        return self._predictions

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True))
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        else:
            tags.regressor_tags = RegressorTags()
        return tags


def _same_scorer(name: str, scorer: Any) -> bool:
    from sklearn.metrics import get_scorer

    try:
        reference = get_scorer(name)
    except ValueError:
        return False
    return type(reference) is type(scorer) and repr(reference) == repr(scorer)


def make_scoring(utility: Any) -> Scoring:
    """The scoring of ``utility``'s scorer on precomputed outputs, or raise NotSupported."""
    from sklearn.metrics._scorer import _BaseScorer

    scorer = utility.scorer
    name = utility.scorer_name
    n_valid = utility.valid.n_samples
    classifier = bool(utility.is_classifier)
    direct = {"accuracy"} if classifier else set(DIRECT_SCORERS) - {"accuracy"}
    if isinstance(name, str) and name in direct and _same_scorer(name, scorer):
        if name != "r2" or n_valid >= 2:  # r2 of one sample is undefined (NaN + warning)
            return Scoring(utility, name)
    if isinstance(scorer, _BaseScorer) and getattr(scorer, "_response_method", None) == "predict":
        return Scoring(utility, "per_coalition")
    raise NotSupported(
        f"scorer {name!r} needs more than predictions (or is a custom callable); "
        f"fast paths compute {', '.join(DIRECT_SCORERS)} directly and call other "
        "predict-based scikit-learn scorers"
    )


class Scoring:
    """Scores of stacked validation outputs (one row per coalition)."""

    def __init__(self, utility: Any, mode: str) -> None:
        self.mode = mode
        self.scorer = utility.scorer
        self.X_valid = utility.valid.X
        self.y_valid = utility.valid.y
        self.classes = utility.classes_
        if utility.is_classifier:
            # index of each validation label among the training classes (-1: unseen label)
            position = np.searchsorted(self.classes, self.y_valid)
            position = np.clip(position, 0, len(self.classes) - 1)
            self.y_index = np.where(self.classes[position] == self.y_valid, position, -1)
        else:
            self.y_float = np.asarray(self.y_valid, dtype=np.float64)

    def score(self, outputs: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``outputs`` (n_coalitions, n_valid).

        ``present`` (n_coalitions, n_classes) marks each coalition's classes, the
        ``classes_`` of the model it would fit (needed only by per-coalition scorers).
        Raises :class:`ForeignInput` (from a per-coalition scorer) and lets scorer errors
        through; the caller then refits that coalition generically.
        """
        mode = self.mode
        if mode == "accuracy":
            return (outputs == self.y_index[None, :]).mean(axis=1)
        if mode == "per_coalition":
            return np.array([self.score_one(outputs[i], present, i) for i in range(len(outputs))])
        error = self.y_float[None, :] - outputs
        if mode == "neg_mean_squared_error":
            return -np.mean(error**2, axis=1)
        if mode == "neg_root_mean_squared_error":
            return -np.sqrt(np.mean(error**2, axis=1))
        if mode == "neg_mean_absolute_error":
            return -np.mean(np.abs(error), axis=1)
        # r2, as sklearn.metrics.r2_score with force_finite=True
        numerator = np.sum(error**2, axis=1)
        centred = self.y_float - np.mean(self.y_float)
        denominator = float(np.sum(centred**2))
        scores = np.ones(len(outputs))
        if denominator != 0.0:
            nonzero = numerator != 0.0
            scores[nonzero] = 1.0 - numerator[nonzero] / denominator
        else:
            scores[numerator != 0.0] = 0.0
        return scores

    def score_one(self, output: np.ndarray, present: np.ndarray | None, i: int) -> float:
        """Score one coalition's outputs with the utility's scikit-learn scorer."""
        if self.classes is not None:
            predictions = self.classes[output]
            classes = self.classes if present is None else self.classes[present[i]]
        else:
            predictions, classes = output, None
        model = OutputModel(self.X_valid, predictions, classes)
        return float(self.scorer(model, self.X_valid, self.y_valid))
