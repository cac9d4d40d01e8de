"""The methods an experiment config can name, their parameters and how each is run.

Estimators are imported only when a method is run (or checked), so a method whose module
is missing fails with a clear error naming it, and only when it is requested.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import UnsupportedError, ValidationError
from ..result import Attribution, make_provenance

__all__ = [
    "METHODS",
    "Method",
    "MethodContext",
    "check_method_params",
    "check_available",
    "resolve",
]

# Where each estimator lives if it is not (yet) exported from the top-level package.
_LOCATIONS = {
    "permutation_shapley": ("openattrib.estimators.semivalue",),
    "beta_shapley": ("openattrib.estimators.semivalue",),
    "banzhaf": ("openattrib.estimators.semivalue",),
    "knn_shapley": ("openattrib.estimators.knn",),
    "data_oob": ("openattrib.estimators.oob",),
    "influence": ("openattrib.influence",),
    "exact_shapley": ("openattrib.estimators.exact",),
    "exact_banzhaf": ("openattrib.estimators.exact",),
    "loo": ("openattrib.estimators.exact",),
    "MaxSamples": ("openattrib.stopping",),
}


def resolve(name: str) -> Any:
    """The estimator function ``name`` (``openattrib.<name>`` or its module), or a clear error."""
    for module in ("openattrib", *_LOCATIONS.get(name, ())):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if found is not None and not isinstance(found, types.ModuleType):
            return found
    raise UnsupportedError(
        f"{name} is not available in this installation of openattrib (looked in "
        f"{', '.join(('openattrib', *_LOCATIONS.get(name, ())))}); remove the method from the config"
    )


@dataclass
class MethodContext:
    """What a method may use: the data, a fresh utility game, the model and run options."""

    train: Dataset
    valid: Dataset
    make_game: Callable[[], Any]
    model: Any
    level: str = "points"
    n_jobs: int = 1
    progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One entry of the registry."""

    name: str
    defaults: dict[str, Any]
    run: Callable[[MethodContext, dict[str, Any], int], Attribution]
    needs: tuple[str, ...]
    semivalue: str | None = None  # which exact semivalue a long run converges to
    monte_carlo: bool = False
    description: str = ""


def _max_samples(budget: int) -> Any:
    return resolve("MaxSamples")(int(budget))


def _run_loo(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("loo")(ctx.make_game(), progress=ctx.progress)


def _run_exact(kind: str) -> Callable[[MethodContext, dict[str, Any], int], Attribution]:
    def run(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
        return resolve(kind)(ctx.make_game(), max_players=p["max_players"], progress=ctx.progress)

    return run


def _run_permutation(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("permutation_shapley")(
        ctx.make_game(),
        truncation=p["truncation"] or None,
        antithetic=p["antithetic"],
        stop=_max_samples(p["budget"]),
        seed=seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )


def _run_beta(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("beta_shapley")(
        ctx.make_game(),
        p["alpha"],
        p["beta"],
        truncation=p["truncation"] or None,
        stop=_max_samples(p["budget"]),
        seed=seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )


def _run_banzhaf(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("banzhaf")(
        ctx.make_game(),
        stop=_max_samples(p["budget"]),
        seed=seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )


def _run_knn(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("knn_shapley")(ctx.train, ctx.valid, k=p["k"], progress=ctx.progress)


def _run_oob(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    return resolve("data_oob")(
        ctx.train,
        n_estimators=p["n_estimators"],
        seed=seed,
        n_jobs=ctx.n_jobs,
        progress=ctx.progress,
    )


def _run_influence(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    from sklearn.base import clone

    model = clone(ctx.model).fit(ctx.train.X, ctx.train.y)
    scores = resolve("influence")(model, ctx.train, ctx.valid, damping=p["damping"])
    ctx.extra["influence_scores"] = scores
    ctx.extra["influence_model"] = model
    return scores.aggregate()


def _run_random(ctx: MethodContext, p: dict[str, Any], seed: int) -> Attribution:
    n = ctx.train.n_samples
    values = np.random.default_rng(seed).uniform(size=n)
    return Attribution(
        values,
        [str(i) for i in range(n)],
        method="random",
        seed=seed,
        provenance=make_provenance(dataset_hash=ctx.train.content_hash()),
        players="points",
        contributors=ctx.train.contributors,
    )


_MC = {"budget": 100, "truncation": 0.01}
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("loo", {}, _run_loo, ("loo",), description="leave-one-out"),
        Method(
            "exact_shapley",
            {"max_players": 16},
            _run_exact("exact_shapley"),
            ("exact_shapley",),
            semivalue="shapley",
            description="exact Shapley by enumeration (small games)",
        ),
        Method(
            "exact_banzhaf",
            {"max_players": 16},
            _run_exact("exact_banzhaf"),
            ("exact_banzhaf",),
            semivalue="banzhaf",
            description="exact Banzhaf by enumeration (small games)",
        ),
        Method(
            "tmc",
            {**_MC, "antithetic": False},
            _run_permutation,
            ("permutation_shapley", "MaxSamples"),
            semivalue="shapley",
            monte_carlo=True,
            description="truncated Monte Carlo Shapley",
        ),
        Method(
            "permutation",
            {**_MC, "truncation": 0.0, "antithetic": False},
            _run_permutation,
            ("permutation_shapley", "MaxSamples"),
            semivalue="shapley",
            monte_carlo=True,
            description="permutation-sampling Shapley, no truncation",
        ),
        Method(
            "beta",
            {**_MC, "truncation": 0.0, "alpha": 16.0, "beta": 1.0},
            _run_beta,
            ("beta_shapley", "MaxSamples"),
            semivalue="beta",
            monte_carlo=True,
            description="Beta(alpha, beta) Shapley",
        ),
        Method(
            "banzhaf",
            {"budget": 1000},
            _run_banzhaf,
            ("banzhaf", "MaxSamples"),
            semivalue="banzhaf",
            monte_carlo=True,
            description="Data Banzhaf (MSR)",
        ),
        Method(
            "knn_shapley",
            {"k": 5},
            _run_knn,
            ("knn_shapley",),
            description="closed-form KNN-Shapley",
        ),
        Method(
            "data_oob",
            {"n_estimators": 200},
            _run_oob,
            ("data_oob",),
            description="Data-OOB",
        ),
        Method(
            "influence",
            {"damping": 0.0},
            _run_influence,
            ("influence",),
            description="influence functions, summed over validation points",
        ),
        Method("random", {}, _run_random, (), description="random values (baseline)"),
    )
}

_MINIMUM = {"budget": 1, "k": 1, "n_estimators": 1, "max_players": 1}
_POSITIVE = {"alpha", "beta"}
_NON_NEGATIVE = {"truncation", "damping"}


def check_method_params(key: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate the parameters of method ``name`` (config key ``key``); defaults filled in."""
    defaults = METHODS[name].defaults
    extra = sorted(set(params) - set(defaults))
    if extra:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ValidationError(
            f"config key {key}.{extra[0]!r} is not a parameter of method {name!r}; its parameters: {valid}"
        )
    out = {**defaults, **params}
    for param, value in out.items():
        where = f"config key {key}.{param!r}"
        default = defaults[param]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValidationError(f"{where} must be true or false, got {value!r}")
        elif isinstance(default, int):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < _MINIMUM.get(param, 0)
            ):
                raise ValidationError(
                    f"{where} must be an integer >= {_MINIMUM.get(param, 0)}, got {value!r}"
                )
        elif isinstance(default, float):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not np.isfinite(value)
            ):
                raise ValidationError(f"{where} must be a number, got {value!r}")
            if param in _POSITIVE and value <= 0 or param in _NON_NEGATIVE and value < 0:
                sign = "positive" if param in _POSITIVE else "non-negative"
                raise ValidationError(f"{where} must be {sign}, got {value!r}")
            out[param] = float(value)
    return out


def check_available(name: str) -> None:
    """Raise :class:`UnsupportedError` now if method ``name`` cannot run in this installation."""
    for needed in METHODS[name].needs:
        try:
            resolve(needed)
        except UnsupportedError as exc:
            raise UnsupportedError(f"method {name!r} is not available: {exc}") from None
