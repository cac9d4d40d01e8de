"""The data-valuation game: :class:`ModelUtility`.

The players are training points (or contributors, i.e. groups of points) and the value
of a coalition is the validation score of a model trained on its rows.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .._vocab import check_players, deprecated_keywords
from ..data import Dataset
from ..errors import UnsupportedError, ValidationError
from .base import Game, check_masks

__all__ = ["ModelUtility"]

log = logging.getLogger("openattrib")


class _ConstantClassifier:
    """What any classifier trained on rows of a single class predicts: that class."""

    _estimator_type = "classifier"

    def __init__(self, label: Any, classes: np.ndarray) -> None:
        self.label = label
        self.classes_ = classes

    def fit(self, X: Any, y: Any) -> _ConstantClassifier:  # pragma: no cover - never refitted
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(X.shape[0], self.label, dtype=self.classes_.dtype)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        proba = np.zeros((X.shape[0], len(self.classes_)))
        proba[:, int(np.flatnonzero(self.classes_ == self.label)[0])] = 1.0
        return proba

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        proba = self.predict_proba(X)
        return proba[:, 1] - proba[:, 0] if proba.shape[1] == 2 else proba

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6 scorers inspect tags
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        tags = Tags(estimator_type="classifier", target_tags=TargetTags(required=True))
        tags.classifier_tags = ClassifierTags()
        return tags


class ModelUtility(Game):
    """The data-valuation game: validation score of a model trained on a coalition's rows.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Left untouched; every evaluation fits a ``sklearn.base.clone`` of it.
    train, valid : Dataset
        Training data (whose rows or contributors are the players) and the data scored on.
    scorer : str or callable, default "accuracy"
        Any scikit-learn scorer name, or a callable ``scorer(fitted_model, X, y) -> float``.
    players : {"points", "contributors"}
        Value individual training points or contributors (groups of points).
    empty_value : float or "auto", default "auto"
        Value of the empty coalition, and of coalitions on which the estimator raises an
        error while fitting (for example KNN with fewer rows than neighbours). Such
        coalitions are counted in ``failures`` and reported in results. ``"auto"`` is
        0.0 for scorers where larger is better and 0 means "no skill" (accuracy, F1, R²,
        ...), and for ``neg_*`` scorers (where 0 would be a *perfect* score) the score of a
        constant baseline fitted on the training data (``DummyClassifier(strategy="prior")``
        or ``DummyRegressor()``).
    single_class : {"constant", "default"}, default "constant"
        Classification coalitions whose rows all share one label cannot be fitted by most
        classifiers. ``"constant"`` scores the prediction any classifier would make from
        such data (that label for every validation point); ``"default"`` uses
        ``empty_value``. Either way they are counted in ``failures``.
    cache_size : int, default 100_000
        Most recent coalition values kept in memory (least recently used dropped first).
    model_seed : int or None, default 0
        Estimators with a ``random_state`` left at ``None`` (forests, MLPs...) would give a
        different model for the same coalition on every fit, so results could not be
        reproduced from a seed. Each clone gets ``random_state=model_seed`` instead
        (``None`` keeps scikit-learn's unseeded behaviour). An explicit ``random_state`` on
        the estimator is kept.
    fast : bool, default True
        Use an exact incremental or batched evaluation path when one exists for the
        estimator and its parameters (see ``openattrib.fast``); ``False`` forces the
        generic refit of a clone per coalition.

    Attributes
    ----------
    scorer : callable
        The resolved scorer ``scorer(fitted_model, X, y) -> float`` (``scorer_name`` names it).
    player_rows : list of ndarray or None
        Training rows of each player for ``players="contributors"``; None for points (player
        ``i`` is row ``i``).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> import openattrib as oa
    >>> train, valid = oa.datasets.load_iris().split(test_size=0.5, seed=0)
    >>> game = ModelUtility(LogisticRegression(max_iter=500), train, valid)
    >>> 0.0 <= game.grand_value <= 1.0
    True
    """

    @deprecated_keywords(positional=("scorer", "players"))
    def __init__(
        self,
        estimator: Any,
        train: Dataset,
        valid: Dataset,
        *,
        scorer: str | Callable[..., float] = "accuracy",
        players: str = "points",
        empty_value: float | str = "auto",
        single_class: str = "constant",
        cache_size: int = 100_000,
        model_seed: int | None = 0,
        fast: bool = True,
    ) -> None:
        from sklearn.metrics import get_scorer

        if not hasattr(estimator, "fit"):
            raise UnsupportedError(
                f"estimator must be a scikit-learn estimator with fit(), got {type(estimator).__name__}"
            )
        for label, ds in (("train", train), ("valid", valid)):
            if not isinstance(ds, Dataset):
                raise ValidationError(
                    f"{label} must be an openattrib Dataset, got {type(ds).__name__}"
                )
        if train.n_features != valid.n_features:
            raise ValidationError(
                f"train has {train.n_features} features but valid has {valid.n_features}"
            )
        players = check_players(players)
        if single_class not in ("constant", "default"):
            raise ValidationError(
                f"single_class must be 'constant' or 'default', got {single_class!r}"
            )
        if not (empty_value == "auto" or (_is_number(empty_value) and np.isfinite(empty_value))):
            raise ValidationError(
                f"empty_value must be a finite number or 'auto', got {empty_value!r}"
            )
        if isinstance(scorer, str):
            try:
                self.scorer = get_scorer(scorer)
            except ValueError:
                raise ValidationError(
                    f"unknown scorer {scorer!r}; use a scikit-learn scorer name "
                    "(sklearn.metrics.get_scorer_names()) or a callable(model, X, y)"
                ) from None
            self.scorer_name = scorer
        elif callable(scorer):
            self.scorer = scorer
            self.scorer_name = getattr(scorer, "__qualname__", type(scorer).__name__)
        else:
            raise ValidationError(
                f"scorer must be a string or callable, got {type(scorer).__name__}"
            )
        self.estimator = estimator
        self.train = train
        self.valid = valid
        self.players = players
        self.level = players
        self.model_seed = model_seed
        params = estimator.get_params() if hasattr(estimator, "get_params") else {}
        self._seed_clones = (
            model_seed is not None and "random_state" in params and params["random_state"] is None
        )
        self._empty_value = 0.0 if empty_value == "auto" else float(empty_value)
        self.single_class = single_class
        self.is_classifier = _is_classifier(estimator)
        self.classes_ = np.unique(train.y) if self.is_classifier else None
        if players == "points":
            self.player_names = [str(i) for i in range(train.n_samples)]
            self.point_contributors = train.contributors
            self.player_rows: list[np.ndarray] | None = None
        else:
            groups = train.groups()
            self.player_names = list(groups)
            self.player_rows = list(groups.values())
        self.n_players = len(self.player_names)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self.failures: Counter[str] = Counter()
        self.n_fits = 0
        baseline = self._baseline_score()
        if empty_value == "auto" and isinstance(scorer, str) and scorer.startswith("neg_"):
            self._empty_value = baseline
        self.fast = bool(fast)
        self._fast_path = _select_fast_path(self) if self.fast else None

    @property
    def fast_path(self) -> Any:
        """The exact fast evaluation path in use (``openattrib.fast``), or None."""
        return self._fast_path

    @property
    def empty_value(self) -> float:
        """v(empty): the documented default score (no model can be trained on no data)."""
        return self._empty_value

    def _new_model(self) -> Any:
        from sklearn.base import clone

        model = clone(self.estimator)
        if self._seed_clones:
            model.set_params(random_state=self.model_seed)
        return model

    def _baseline_score(self) -> float:
        """Score of a constant baseline fitted on the training data, scored like any model.

        Run once at construction: an estimator, scorer and labels that do not go together
        (a regressor scored by accuracy, continuous validation labels for a classifier) fail
        here with a clear message, instead of every coalition silently scoring
        ``empty_value``.
        """
        from sklearn.dummy import DummyClassifier, DummyRegressor

        baseline = DummyClassifier(strategy="prior") if self.is_classifier else DummyRegressor()
        task = "classification" if self.is_classifier else "regression"
        try:
            baseline.fit(self.train.X, self.train.y)
            score = float(self.scorer(baseline, self.valid.X, self.valid.y))
        except Exception as exc:
            raise ValidationError(
                f"scorer {self.scorer_name!r} cannot score {type(self.estimator).__name__} "
                f"({task}) on this validation data ({type(exc).__name__}: {exc}); choose a "
                f"scorer and labels that fit a {task} model"
            ) from exc
        if not np.isfinite(score):
            raise ValidationError(
                f"scorer {self.scorer_name!r} returned {score} for a baseline model"
            )
        return score

    # ------------------------------------------------------------------------
    def rows(self, mask: np.ndarray) -> np.ndarray:
        """Training-row indices of a coalition."""
        if self.player_rows is None:
            return np.flatnonzero(mask)
        chosen = [self.player_rows[i] for i in np.flatnonzero(mask)]
        return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def score_rows(self, rows: np.ndarray) -> float:
        """Fit a clone on the given training rows and score it on the validation set."""

        if rows.size == 0:
            self.failures["empty"] += 1
            return self._empty_value
        X, y = self.train.X[rows], self.train.y[rows]
        if self.is_classifier and np.unique(y).size < 2:
            self.failures["single_class"] += 1
            if self.single_class == "default":
                return self._empty_value
            model: Any = _ConstantClassifier(y[0], self.classes_)
        else:
            model = self._new_model()
        try:
            if not isinstance(model, _ConstantClassifier):
                model.fit(X, y)
                self.n_fits += 1
            score = float(self.scorer(model, self.valid.X, self.valid.y))
        except (ValueError, np.linalg.LinAlgError) as exc:
            # e.g. KNN asked for more neighbours than the coalition has rows
            key = f"model_error: {type(exc).__name__}: {str(exc)[:80]}"
            if key not in self.failures:
                log.warning(
                    "model failed on a coalition of %d rows (%s); scored as empty_value",
                    rows.size,
                    exc,
                )
            self.failures[key] += 1
            return self._empty_value
        if not np.isfinite(score):
            raise ValidationError(f"scorer {self.scorer_name!r} returned {score} on a coalition")
        return score

    def value(self, mask: np.ndarray) -> float:
        key = np.packbits(mask).tobytes()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        if self._fast_path is not None:
            result = float(self._fast_path.evaluate_batch(mask[None, :])[0])
        else:
            result = self.score_rows(self.rows(mask))
        if self.cache_size > 0:
            self._cache[key] = result
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def evaluate_batch(self, masks: np.ndarray) -> np.ndarray:
        masks = check_masks(masks, self.n_players)
        if self._fast_path is not None:
            return self._fast_path.evaluate_batch(masks)
        return np.array([self.value(m) for m in masks], dtype=np.float64)

    def prefix_walk(
        self,
        permutation: np.ndarray,
        truncation: Callable[[int, float], bool] | None = None,
    ) -> tuple[np.ndarray, int]:
        if self._fast_path is not None:
            return self._fast_path.prefix_walk(np.asarray(permutation), truncation)
        return super().prefix_walk(permutation, truncation)

    def describe(self) -> dict[str, Any]:
        return {
            "game": "ModelUtility",
            "model": repr(self.estimator),
            "model_class": f"{type(self.estimator).__module__}.{type(self.estimator).__qualname__}",
            "scorer": self.scorer_name,
            "players": self.players,
            "n_players": self.n_players,
            "dataset_hash": self.train.content_hash(),
            "valid_hash": self.valid.content_hash(),
            "empty_value": self.empty_value,
            "single_class": self.single_class,
            "model_seed": self.model_seed if self._seed_clones else None,
            "fast_path": None if self._fast_path is None else type(self._fast_path).__name__,
        }

    def failure_report(self) -> dict[str, int]:
        """How many evaluations used a documented default instead of a fitted model.

        Counted per evaluation, not per distinct coalition: the cache is per process, so with
        several workers the same coalition may be counted once per worker. The numbers say
        how often a default was used, never change the values.
        """
        return dict(self.failures)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # workers start with an empty cache
        state["failures"] = Counter()
        return state


def _select_fast_path(utility: ModelUtility) -> Any:
    """The exact fast evaluation path for this utility's estimator, or None (generic refit)."""
    from ..fast import select_fast_path

    return select_fast_path(utility)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        return bool(is_classifier(estimator))
    except Exception:  # pragma: no cover - exotic estimators
        return getattr(estimator, "_estimator_type", None) == "classifier"
