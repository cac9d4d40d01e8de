"""``openattrib value``: value the rows or contributors of a CSV file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError
from ..games import ModelUtility
from ..result import Attribution

MODELS = ("logistic", "knn", "ridge", "tree")
GAME_METHODS = ("exact", "banzhaf-exact", "loo")


def add_value_parser(commands: Any) -> None:
    p = commands.add_parser(
        "value",
        help="value training data (points or contributors) of a CSV file",
        description="Value the rows (or contributors) of a CSV file and write the attribution as JSON.",
    )
    p.add_argument("--data", required=True, type=Path, help="training data CSV")
    p.add_argument("--target", required=True, help="name of the label column")
    p.add_argument("--contributor", help="name of the contributor column (values contributors)")
    p.add_argument(
        "--valid", type=Path, help="validation CSV (default: split --test-size off --data)"
    )
    p.add_argument(
        "--test-size", type=float, default=0.3, help="validation fraction when no --valid"
    )
    p.add_argument(
        "--players",
        choices=("points", "contributors"),
        help="default: contributors when --contributor is given",
    )
    p.add_argument("--model", choices=MODELS, default="logistic")
    p.add_argument(
        "--scorer", default=None, help="scikit-learn scorer name (default accuracy / r2)"
    )
    p.add_argument("--method", choices=GAME_METHODS, default="exact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-standardize", action="store_true", help="do not standardise features")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="where to write the attribution JSON")
    p.set_defaults(handler=run_value)


def make_model(name: str, task: str, seed: int) -> Any:
    """The scikit-learn estimator a CLI model name stands for."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classification = task == "classification"
    if name == "logistic":
        if not classification:
            return LinearRegression()
        return LogisticRegression(max_iter=1000)
    if name == "knn":
        return KNeighborsClassifier(5) if classification else KNeighborsRegressor(5)
    if name == "ridge":
        return RidgeClassifier() if classification else Ridge()
    if name == "tree":
        cls = DecisionTreeClassifier if classification else DecisionTreeRegressor
        return cls(max_depth=5, random_state=seed)
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


def load_train_valid(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    train = Dataset.from_csv(args.data, target=args.target, contributor=args.contributor)
    if args.valid is not None:
        valid = Dataset.from_csv(args.valid, target=args.target)
    else:
        train, valid = train.split(test_size=args.test_size, seed=args.seed)
    if not args.no_standardize:
        train, valid = standardize(train, valid)
    return train, valid


def run_value(args: argparse.Namespace) -> int:
    from .. import estimators

    players = args.players or ("contributors" if args.contributor else "points")
    if players == "contributors" and not args.contributor:
        raise ValidationError("--players contributors needs --contributor COLUMN")
    train, valid = load_train_valid(args)
    model = make_model(args.model, train.task, args.seed)
    scorer = args.scorer or ("accuracy" if train.task == "classification" else "r2")
    game = ModelUtility(model, train, valid, scorer=scorer, players=players)
    progress = not args.no_progress
    if args.method == "exact":
        result: Attribution = estimators.exact_shapley(game, progress=progress)
    elif args.method == "banzhaf-exact":
        result = estimators.exact_banzhaf(game, progress=progress)
    else:
        result = estimators.loo(game, progress=progress)
    path = result.save(args.out)
    frame = result.to_frame(sort=True)
    print(frame.head(20).to_string(float_format=lambda v: f"{v:.4f}"))
    print(
        f"\nwrote {path} ({len(result)} {result.level}, method {result.method}, sum {np.sum(result.values):.4f})"
    )
    return 0
