"""Recipes: a JSON-able description of one attribution run, enough to recompute it.

The CLI, the main job and ``openattrib ledger reproduce`` all go through :func:`compute`,
which records the recipe in the result's provenance. Given the same data files, anyone can
rerun a recorded recipe and check that the result hash matches (bit-identical for seeded
runs whose stopping rule does not depend on wall time).

A recipe is a dict::

    {"model": "logistic", "scorer": "accuracy", "players": "contributors",
     "method": "permutation_shapley",
     "params": {"stop": "MaxSamples(200)", "truncation": 0.01},
     "seed": 0, "standardize": true,
     "split": {"test_size": 0.3, "seed": 0}}        # or null when a validation file is given

``method`` is any name of :mod:`openattrib.methods`, canonical or alias (recipes recorded
before the registry say ``tmc``, ``oob``, ``knn``...: they reproduce unchanged).

An optional ``"payout": "split_robust"`` (with ``"players": "points"``) turns the point
values into what the payout is made of: each owner's sum of positive point values
(:func:`openattrib.rewards.split_robust`), a contributor-level result that splitting rows
among identities cannot change.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .data import Dataset
from .errors import ValidationError
from .result import Attribution

__all__ = [
    "MODELS",
    "PAYOUTS",
    "compute",
    "depends_on_time",
    "make_model",
    "prepare_data",
    "read_data",
    "standardize",
]

log = logging.getLogger("openattrib")

MODELS = ("logistic", "knn", "ridge", "tree", "naive_bayes")
#: values of a recipe's optional ``"payout"``: how point values become contributor values
PAYOUTS = ("split_robust",)


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
    """Scale features by the training mean and standard deviation (constant columns kept).

    A column with a value so large that squares of the column overflow float64 (beyond
    ``sqrt(max float / n_rows)``, about 1e150 for small files; in training or validation
    rows) is refused naming it: its standard deviation would be infinite and the column
    silently zero, or distances on it infinite.
    """
    n_rows = train.n_samples + valid.n_samples
    limit = np.sqrt(np.finfo(np.float64).max / n_rows)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = (np.abs(train.X) > limit).any(axis=0) | (np.abs(valid.X) > limit).any(axis=0)
        mean = train.X.mean(axis=0)
        scale = train.X.std(axis=0)
        scale[scale == 0] = 1.0
        bad |= ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        names = [train.feature_names[j] for j in np.flatnonzero(bad)]
        largest = max(float(np.max(np.abs(ds.X[:, bad]))) for ds in (train, valid))
        raise ValidationError(
            f"feature column(s) {', '.join(repr(n) for n in names[:8])} cannot be standardised: "
            f"values as large as {largest:.3g} overflow float64 when their spread is computed "
            f"(the limit for {n_rows} rows is {limit:.3g}); rescale those columns (other "
            "units, or a logarithm) first"
        )

    def rescale(ds: Dataset) -> Dataset:
        return Dataset(
            (ds.X - mean) / scale,
            ds.y,
            contributors=ds.contributors,
            feature_names=ds.feature_names,
            target_name=ds.target_name,
        )

    return rescale(train), rescale(valid)


def read_data(
    recipe: dict[str, Any], data_path: Any, valid_path: Any = None
) -> tuple[Dataset, Dataset | None]:
    """The training (and validation) Dataset of a recipe, read from CSV files.

    The validation file's columns are matched to the training features **by name**: it must
    hold exactly the training file's feature columns and the target (in any order; the
    contributor column may be present and is ignored). Missing or extra columns are refused
    and named, since a renamed or reordered column would otherwise be valued silently wrong.
    """
    from ._csv import read_csv

    target, contributor = recipe.get("target"), recipe.get("contributor")
    if not isinstance(target, str) or not (contributor is None or isinstance(contributor, str)):
        raise ValidationError(
            f"the recipe's target ({target!r}) and contributor ({contributor!r}) must be "
            "column names (strings)"
        )
    data = Dataset.from_csv(data_path, target=target, contributor=contributor)
    if valid_path is None:
        return data, None
    frame = read_csv(
        valid_path,
        text_columns=[] if contributor is None else [contributor],
        what="validation file",
    )
    columns = [str(c) for c in frame.columns]
    expected = [*data.feature_names, target]
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected and c != contributor]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"lacks column(s) {', '.join(repr(c) for c in missing[:8])}")
        if extra:
            problems.append(
                f"has column(s) {', '.join(repr(c) for c in extra[:8])} that the training "
                "file does not have"
            )
        raise ValidationError(
            f"validation file {str(valid_path)!r} {' and '.join(problems)}; it must hold the "
            f"training file's columns ({', '.join(expected[:8])}), matched by name"
        )
    valid = Dataset.from_frame(frame, target=target, features=data.feature_names)
    return data, valid


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


def check_informative(train: Dataset, players: str = "points") -> None:
    """Refuse training data on which every attribution is the same, whatever the method.

    A classification target with a single class makes every model predict that class on
    every coalition: every player gets the same value and the result carries no
    information about the data, so it is refused rather than reported.
    """
    if train.task != "classification":
        return
    classes = np.unique(train.y)
    if classes.size < 2:
        who = "contributor" if players == "contributors" else "training point"
        raise ValidationError(
            f"the target {train.target_name!r} has a single class ({classes.tolist()[0]!r}) in the "
            f"training data: every {who} would get the same value, which says nothing about "
            "the data; use training data with at least two classes"
        )


def compute(
    recipe: dict[str, Any],
    train: Dataset,
    valid: Dataset,
    *,
    progress: bool = True,
    n_jobs: int = 1,
    scheduler: str | None = None,
    ownership: Any = None,
) -> Attribution:
    """Run a recipe on prepared data; the result's provenance records the recipe.

    The method is looked up in :mod:`openattrib.methods` (canonical names and the older
    aliases such as ``tmc`` or ``oob``); parameters the recipe leaves out take the
    registry's defaults. ``n_jobs`` and ``scheduler`` choose where the work runs; by
    design they do not change the numbers, so they are not part of the recipe. With ``ownership`` (a
    :class:`~openattrib.rewards.Provenance` of ``train``'s rows), the owned data is valued
    (each row once, credited to its first registrant) and the result mapped back to
    ``train``'s rows or contributors, copiers' copied rows at 0; the recipe then records
    ``"ownership"`` (its parameters) so the run can be recomputed from the ledger. With
    ``"payout": "split_robust"`` the point values (on the owned data) are summed per owner.
    """
    from . import methods

    if ownership is not None:
        recipe = {**recipe, "ownership": ownership.recipe()}
        inner = {k: v for k, v in recipe.items() if k != "ownership"}
        owned = compute(
            inner,
            ownership.owned(train),
            valid,
            progress=progress,
            n_jobs=n_jobs,
            scheduler=scheduler,
        )
        result = ownership.credit(owned, train)
        result.provenance["recipe"] = recipe
        return result

    payout = recipe.get("payout")
    if payout is not None and (payout not in PAYOUTS or recipe.get("players") != "points"):
        raise ValidationError(
            f"recipe 'payout' must be one of {PAYOUTS} with players 'points' (point values "
            f"summed per owner), got payout {payout!r} with players {recipe.get('players')!r}"
        )
    name = recipe.get("method")
    if not isinstance(name, str):
        raise ValidationError(
            f"recipe 'method' must be a method name, got {name!r}; choose one of "
            f"{', '.join(methods.names())}"
        )
    params = dict(recipe.get("params") or {})
    if not methods.get(name).monte_carlo:
        # before the registry the CLI recorded a stopping rule for every method and the
        # methods without sampling ignored it; such recipes still reproduce
        params.pop("stop", None)
    params = methods.check_params(name, params, where="recipe param ")
    seed = int(recipe.get("seed", 0))
    players = recipe.get("players", "points")
    if players == "contributors" and train.contributors is None:
        raise ValidationError("players='contributors' needs a contributor column")
    check_informative(train, players)
    needs_model = methods.get(name).kind in ("game", "influence")
    inputs = methods.MethodInput(
        train,
        valid,
        model=make_model(recipe.get("model", "logistic"), train.task, seed)
        if needs_model
        else None,
        scorer=recipe.get("scorer"),
        players=players,
        n_jobs=n_jobs,
        scheduler=scheduler,
        progress=progress,
    )
    result = methods.run(name, inputs, params, seed=seed)
    if payout == "split_robust":
        from .rewards import split_robust

        result = split_robust(result, train)
    result.provenance["recipe"] = dict(recipe)
    return result


def depends_on_time(recipe: dict[str, Any]) -> bool:
    """True when the recipe's stopping rule involves wall time (not bit-reproducible)."""
    from . import methods

    stop = (recipe.get("params") or {}).get("stop") or ""
    name = recipe.get("method")
    return (
        "MaxTime" in str(stop)
        and isinstance(name, str)
        and name in methods.names()
        and methods.get(name).monte_carlo
    )
