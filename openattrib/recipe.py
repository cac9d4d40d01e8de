"""Recipes: a JSON-able description of one attribution run, enough to recompute it.

The CLI, the main job and ``openattrib ledger reproduce`` all go through :func:`compute`,
which records the recipe in the result's provenance. Given the same data files, anyone can
rerun a recorded recipe and check that the result hash matches (bit-identical for seeded
runs whose stopping rule does not depend on wall time).

A recipe is a dict::

    {"model": "logistic", "scorer": "accuracy", "players": "contributors",
     "method": "tmc", "params": {"stop": "MaxSamples(200)", "truncation": 0.01},
     "seed": 0, "standardize": true,
     "split": {"test_size": 0.3, "seed": 0}}        # or null when a validation file is given
"""

from __future__ import annotations

import logging
from typing import Any

from .data import Dataset
from .errors import ValidationError
from .games import ModelUtility
from .result import Attribution

__all__ = ["MODELS", "METHODS", "compute", "make_model", "prepare_data", "standardize"]

log = logging.getLogger("openattrib")

MODELS = ("logistic", "knn", "ridge", "tree", "naive_bayes")
#: method name -> (kind, description); kind "game" methods value a ModelUtility
METHODS: dict[str, tuple[str, str]] = {
    "exact": ("game", "exact Shapley values by enumeration"),
    "banzhaf-exact": ("game", "exact Banzhaf values by enumeration"),
    "loo": ("game", "leave-one-out"),
    "permutation": ("game", "Monte Carlo permutation Shapley"),
    "tmc": ("game", "truncated Monte Carlo Shapley"),
    "beta": ("game", "Beta Shapley (Monte Carlo)"),
    "banzhaf": ("game", "Banzhaf values (maximum sample reuse)"),
    "knn": ("data", "closed-form KNN-Shapley"),
    "oob": ("data", "Data-OOB"),
}
_MC = ("permutation", "tmc", "beta", "banzhaf")


def make_model(name: str, task: str, seed: int = 0) -> Any:
    """The scikit-learn estimator a model name stands for (classification or regression)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classification = task == "classification"
    if name == "logistic":
        return LogisticRegression(max_iter=1000) if classification else LinearRegression()
    if name == "knn":
        return KNeighborsClassifier(5) if classification else KNeighborsRegressor(5)
    if name == "ridge":
        return RidgeClassifier() if classification else Ridge()
    if name == "tree":
        cls = DecisionTreeClassifier if classification else DecisionTreeRegressor
        return cls(max_depth=5, random_state=seed)
    if name == "naive_bayes":
        if not classification:
            raise ValidationError("model 'naive_bayes' needs a classification target")
        return GaussianNB()
    raise ValidationError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def standardize(train: Dataset, valid: Dataset) -> tuple[Dataset, Dataset]:
    """Scale features by the training mean and standard deviation (constant columns kept)."""
    mean = train.X.mean(axis=0)
    scale = train.X.std(axis=0)
    scale[scale == 0] = 1.0

    def rescale(ds: Dataset) -> Dataset:
        return Dataset(
            (ds.X - mean) / scale,
            ds.y,
            contributors=ds.contributors,
            feature_names=ds.feature_names,
            target_name=ds.target_name,
        )

    return rescale(train), rescale(valid)


def prepare_data(
    recipe: dict[str, Any], data: Dataset, valid: Dataset | None = None
) -> tuple[Dataset, Dataset]:
    """Training and validation sets as the recipe says (split and standardisation)."""
    split = recipe.get("split")
    if valid is None:
        if not split:
            raise ValidationError(
                "this recipe used a separate validation file; pass it (--valid FILE)"
            )
        train, valid = data.split(test_size=split["test_size"], seed=split["seed"])
    else:
        train = data
    if recipe.get("standardize", False):
        train, valid = standardize(train, valid)
    return train, valid


def _stop_rule(params: dict[str, Any]) -> Any:
    from . import stopping

    if params.get("stop") is None:
        raise ValidationError(
            "a Monte Carlo method needs a stopping rule: give --max-samples N, --max-time S "
            "and/or --stderr E (or 'stop' in the recipe, e.g. 'MaxSamples(200)')"
        )
    return stopping.parse(params["stop"])


def compute(
    recipe: dict[str, Any],
    train: Dataset,
    valid: Dataset,
    *,
    progress: bool = True,
    n_jobs: int = 1,
    scheduler: str | None = None,
) -> Attribution:
    """Run a recipe on prepared data; the result's provenance records the recipe.

    ``n_jobs`` and ``scheduler`` choose where the work runs; by design they do not change
    the numbers, so they are not part of the recipe.
    """
    from . import estimators

    method = recipe.get("method")
    if method not in METHODS:
        raise ValidationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    params = dict(recipe.get("params") or {})
    seed = int(recipe.get("seed", 0))
    players = recipe.get("players", "points")
    if players == "contributors" and train.contributors is None:
        raise ValidationError("players='contributors' needs a contributor column")
    if method == "knn":
        result: Attribution = estimators.knn_shapley(
            train, valid, k=int(params.get("k", 5)), n_jobs=n_jobs, progress=progress
        )
        if players == "contributors":
            result = result.by_contributor()
    elif method == "oob":
        result = estimators.data_oob(
            train,
            n_estimators=int(params.get("n_estimators", 1000)),
            seed=seed,
            n_jobs=n_jobs,
            players=players,
            progress=progress,
        )
    else:
        model = make_model(recipe.get("model", "logistic"), train.task, seed)
        scorer = recipe.get("scorer") or ("accuracy" if train.task == "classification" else "r2")
        game = ModelUtility(model, train, valid, scorer=scorer, players=players)
        if method == "exact":
            result = estimators.exact_shapley(game, progress=progress)
        elif method == "banzhaf-exact":
            result = estimators.exact_banzhaf(game, progress=progress)
        elif method == "loo":
            result = estimators.loo(game, progress=progress)
        else:
            run = {"stop": _stop_rule(params), "seed": seed, "progress": progress, "n_jobs": n_jobs}
            if scheduler:
                run.update(backend="dask", scheduler=scheduler)
            if method == "permutation":
                result = estimators.permutation_shapley(game, **run)
            elif method == "tmc":
                result = estimators.permutation_shapley(
                    game, truncation=params.get("truncation", 0.01), **run
                )
            elif method == "beta":
                result = estimators.beta_shapley(
                    game,
                    alpha=float(params.get("alpha", 16)),
                    beta=float(params.get("beta", 1)),
                    **run,
                )
            else:
                result = estimators.banzhaf(game, **run)
    result.provenance["recipe"] = dict(recipe)
    return result


def depends_on_time(recipe: dict[str, Any]) -> bool:
    """True when the recipe's stopping rule involves wall time (not bit-reproducible)."""
    stop = (recipe.get("params") or {}).get("stop") or ""
    return "MaxTime" in str(stop) and recipe.get("method") in _MC
