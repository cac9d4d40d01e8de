"""The one registry of attribution methods: name -> callable, defaults, kind, error bars.

The command line (``openattrib value``), :func:`openattrib.recipe.compute` (and so
``openattrib ledger reproduce`` and the main job), the experiment runner and the
replication experiment all look methods up here, so a method has one name, one set of
parameters and one default for each of them.

Canonical names are the names of the public functions (``permutation_shapley``,
``data_oob``, ...). Older names stay valid as *aliases*; an alias may fix parameters (the
command line's ``tmc`` is ``permutation_shapley`` with ``truncation=0.01``), so recipes
recorded under an old name reproduce the same result.

>>> from openattrib import methods
>>> methods.get("tmc").name
'permutation_shapley'
>>> methods.resolve("tmc")[1]
{'truncation': 0.01}
>>> methods.get("data_oob").defaults["n_estimators"]
1000
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from .data import Dataset
from .errors import ValidationError
from .result import Attribution, make_provenance

__all__ = [
    "KINDS",
    "METHODS",
    "ALIASES",
    "Method",
    "MethodInput",
    "check_params",
    "get",
    "names",
    "register",
    "resolve",
    "run",
    "unregister",
]

#: ``game``: values a utility game (``ModelUtility``); ``closed_form``: computed directly
#: from data (KNN-Shapley, Data-OOB); ``influence``: gradients of a fitted model;
#: ``baseline``: a reference with no information (random values).
KINDS = ("game", "closed_form", "influence", "baseline")


@dataclass
class MethodInput:
    """What a method may use: the data, the model and how to run.

    Parameters
    ----------
    train, valid : Dataset
        The points (or contributors) valued and the points the utility scores on.
    model : scikit-learn estimator, optional
        Unfitted; game-based methods train clones of it, influence fits a clone once.
    scorer : str or callable, optional
        Utility scorer (default ``"accuracy"`` / ``"r2"`` by task).
    players : {"points", "contributors"}
        Level of the result. Methods that only value points are summed per contributor
        (``Attribution.by_contributor``).
    make_game : callable, optional
        Builds the game (default: ``ModelUtility(model, train, valid, scorer, players)``).
    n_jobs, scheduler, progress
        Where and how visibly the work runs; they do not change the numbers.
    """

    train: Dataset
    valid: Dataset
    _: KW_ONLY
    model: Any = None
    scorer: Any = None
    players: str = "points"
    make_game: Callable[[], Any] | None = None
    n_jobs: int = 1
    scheduler: str | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def game(self) -> Any:
        """A utility game over ``train`` scored on ``valid`` at level ``players``."""
        if self.make_game is not None:
            return self.make_game()
        from .games import ModelUtility

        if self.model is None:
            raise ValidationError("a game-based method needs a model (MethodInput(model=...))")
        scorer = self.scorer or ("accuracy" if self.train.task == "classification" else "r2")
        return ModelUtility(self.model, self.train, self.valid, scorer=scorer, players=self.players)

    def run_options(self) -> dict[str, Any]:
        """Keyword arguments of the Monte Carlo estimators that choose where work runs."""
        options: dict[str, Any] = {"n_jobs": self.n_jobs, "progress": self.progress}
        if self.scheduler:
            options.update(backend="dask", scheduler=self.scheduler)
        return options


Runner = Callable[[MethodInput, dict[str, Any], int], Attribution]


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes
    ----------
    name : str
        Canonical name (the public function's name).
    function : str
        Dotted path of the callable, imported when first used (``"module:attribute"``).
    kind : str
        One of :data:`KINDS`.
    defaults : dict
        Every parameter the method takes in a recipe or config, with its one default.
    run : callable
        ``run(inputs, params, seed) -> Attribution`` at the method's native level.
    error_bars : bool
        Whether results carry standard errors (Monte Carlo estimators, Data-OOB).
    levels : tuple of str
        Player levels (``"points"``, ``"contributors"``) the method values natively; others
        are reached by summing points.
    monte_carlo : bool
        Whether the method samples under a stopping rule (``budget`` / ``stop``).
    semivalue : str or None
        The exact semivalue a long run converges to (``"shapley"``, ``"banzhaf"``, ``"beta"``).
    """

    name: str
    function: str
    kind: str
    defaults: Mapping[str, Any]
    run: Runner
    error_bars: bool = False
    levels: tuple[str, ...] = ("points", "contributors")
    monte_carlo: bool = False
    semivalue: str | None = None
    description: str = ""

    @property
    def callable(self) -> Callable[..., Any]:
        """The public function this method runs."""
        module, _, attribute = self.function.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __call__(
        self, inputs: MethodInput, params: Mapping[str, Any] | None = None, *, seed: int = 0
    ) -> Attribution:
        """Run with ``params`` (checked, defaults filled) at level ``inputs.players``."""
        full = check_params(self.name, dict(params or {}))
        result = self.run(inputs, full, int(seed))
        if inputs.players == "contributors" and result.level != "contributors":
            if result.contributors is not None:
                result = result.by_contributor()
            else:
                result = result.by_contributor(inputs.train.contributors)
        return result


METHODS: dict[str, Method] = {}
#: alias -> (canonical name, parameters the alias fixes)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(method: Method, aliases: Mapping[str, Mapping[str, Any]] | None = None) -> Method:
    """Add ``method`` (and ``aliases``: alias -> fixed parameters) to the registry."""
    if method.kind not in KINDS:
        raise ValidationError(f"method kind must be one of {KINDS}, got {method.kind!r}")
    taken = set(METHODS) | set(ALIASES)
    for name in (method.name, *(aliases or {})):
        if name in taken:
            raise ValidationError(f"method name {name!r} is already registered")
    METHODS[method.name] = method
    for alias, fixed in (aliases or {}).items():
        unknown = sorted(set(fixed) - set(method.defaults))
        if unknown:
            raise ValidationError(f"alias {alias!r} fixes unknown parameter(s) {unknown}")
        ALIASES[alias] = (method.name, dict(fixed))
    return method


def unregister(name: str) -> None:
    """Remove a method and its aliases (for tests and plug-ins)."""
    canonical = get(name).name
    del METHODS[canonical]
    for alias in [a for a, (target, _) in ALIASES.items() if target == canonical]:
        del ALIASES[alias]


def names(*, aliases: bool = True) -> list[str]:
    """Every name a user may give: canonical names, then aliases."""
    return [*METHODS, *(ALIASES if aliases else ())]


def resolve(name: str) -> tuple[Method, dict[str, Any]]:
    """The method ``name`` stands for and the parameters its alias fixes (``{}`` if none)."""
    if name in METHODS:
        return METHODS[name], {}
    if name in ALIASES:
        canonical, fixed = ALIASES[name]
        return METHODS[canonical], dict(fixed)
    raise ValidationError(f"unknown method {name!r}; choose one of {', '.join(names())}")


def get(name: str) -> Method:
    """The method registered under ``name`` (canonical or alias)."""
    return resolve(name)[0]


_MINIMUM = {"budget": 1, "k": 1, "n_estimators": 1, "max_players": 1}
_POSITIVE = {"alpha", "beta"}
_NON_NEGATIVE = {"truncation", "damping"}


def check_params(
    name: str, params: Mapping[str, Any], *, where: str = "parameter "
) -> dict[str, Any]:
    """Validate ``params`` of method ``name`` (alias presets and defaults filled in).

    ``where`` prefixes each parameter's name in messages (e.g. ``"config key methods[0]."``).
    An alias's fixed parameters may be overridden explicitly.
    """
    method, fixed = resolve(name)
    defaults = method.defaults
    extra = sorted(set(params) - set(defaults))
    if extra:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ValidationError(
            f"{where}{extra[0]!r} is not a parameter of method {name!r}; its parameters: {valid}"
        )
    out = {**defaults, **fixed, **params}
    for param, value in out.items():
        label = f"{where}{param!r}"
        default = defaults[param]
        if default is None:  # optional text (a stopping rule)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{label} must be text, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValidationError(f"{label} must be true or false, got {value!r}")
        elif isinstance(default, int):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < _MINIMUM.get(param, 0)
            ):
                raise ValidationError(
                    f"{label} must be an integer >= {_MINIMUM.get(param, 0)}, got {value!r}"
                )
            out[param] = int(value)
        elif isinstance(default, float):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not np.isfinite(value)
            ):
                raise ValidationError(f"{label} must be a number, got {value!r}")
            if param in _POSITIVE and value <= 0 or param in _NON_NEGATIVE and value < 0:
                sign = "positive" if param in _POSITIVE else "non-negative"
                raise ValidationError(f"{label} must be {sign}, got {value!r}")
            out[param] = float(value)
    return out


def run(
    name: str,
    inputs: MethodInput,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
) -> Attribution:
    """Run method ``name`` (canonical or alias) on ``inputs``; see ``Method.__call__``."""
    method, fixed = resolve(name)
    return method(inputs, {**fixed, **(params or {})}, seed=seed)


# --------------------------------------------------------------------------- the methods
def _stop(p: dict[str, Any]) -> Any:
    from . import stopping

    if p.get("stop"):
        return stopping.parse(p["stop"])
    return stopping.MaxSamples(p["budget"])


def _run_exact(attribute: str) -> Runner:
    def run_exact(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
        function = get(attribute).callable
        return function(inputs.game(), max_players=p["max_players"], progress=inputs.progress)

    return run_exact


def _run_loo(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import loo

    return loo(inputs.game(), progress=inputs.progress)


def _run_permutation(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import permutation_shapley

    return permutation_shapley(
        inputs.game(),
        truncation=p["truncation"] or None,
        antithetic=p["antithetic"],
        stop=_stop(p),
        seed=seed,
        **inputs.run_options(),
    )


def _run_beta(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import beta_shapley

    return beta_shapley(
        inputs.game(),
        alpha=p["alpha"],
        beta=p["beta"],
        truncation=p["truncation"] or None,
        stop=_stop(p),
        seed=seed,
        **inputs.run_options(),
    )


def _run_banzhaf(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import banzhaf

    return banzhaf(inputs.game(), stop=_stop(p), seed=seed, **inputs.run_options())


def _run_knn(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import knn_shapley

    return knn_shapley(
        inputs.train, inputs.valid, k=p["k"], n_jobs=inputs.n_jobs, progress=inputs.progress
    )


def _run_oob(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from .estimators import data_oob

    return data_oob(
        inputs.train,
        n_estimators=p["n_estimators"],
        seed=seed,
        n_jobs=inputs.n_jobs,
        players=inputs.players,
        progress=inputs.progress,
    )


def _run_influence(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    from sklearn.base import clone

    from .influence import influence

    if inputs.model is None:
        raise ValidationError("method 'influence' needs a model (MethodInput(model=...))")
    model = clone(inputs.model).fit(inputs.train.X, inputs.train.y)
    scores = influence(model, inputs.train, inputs.valid, damping=p["damping"])
    inputs.extra["influence_scores"] = scores
    inputs.extra["influence_model"] = model
    return scores.aggregate()


def _run_random(inputs: MethodInput, p: dict[str, Any], seed: int) -> Attribution:
    n = inputs.train.n_samples
    values = np.random.default_rng(seed).uniform(size=n)
    return Attribution(
        values,
        [str(i) for i in range(n)],
        method="random",
        seed=seed,
        provenance=make_provenance(dataset_hash=inputs.train.content_hash()),
        players="points",
        contributors=inputs.train.contributors,
    )


_EXACT_MAX_PLAYERS = 20  # the estimators' own limit (estimators.exact.DEFAULT_MAX_PLAYERS)
_MC = {"budget": 100, "stop": None, "truncation": 0.0}

register(
    Method(
        "exact_shapley",
        "openattrib.estimators:exact_shapley",
        "game",
        {"max_players": _EXACT_MAX_PLAYERS},
        _run_exact("exact_shapley"),
        semivalue="shapley",
        description="exact Shapley values by enumeration (small games)",
    ),
    aliases={"exact": {}},
)
register(
    Method(
        "exact_banzhaf",
        "openattrib.estimators:exact_banzhaf",
        "game",
        {"max_players": _EXACT_MAX_PLAYERS},
        _run_exact("exact_banzhaf"),
        semivalue="banzhaf",
        description="exact Banzhaf values by enumeration (small games)",
    ),
    aliases={"banzhaf-exact": {}},
)
register(
    Method(
        "loo",
        "openattrib.estimators:loo",
        "game",
        {},
        _run_loo,
        description="leave-one-out",
    )
)
register(
    Method(
        "permutation_shapley",
        "openattrib.estimators:permutation_shapley",
        "game",
        {**_MC, "antithetic": False},
        _run_permutation,
        error_bars=True,
        monte_carlo=True,
        semivalue="shapley",
        description="Monte Carlo permutation Shapley (truncated with truncation > 0)",
    ),
    aliases={"permutation": {}, "tmc": {"truncation": 0.01}},
)
register(
    Method(
        "beta_shapley",
        "openattrib.estimators:beta_shapley",
        "game",
        {**_MC, "alpha": 16.0, "beta": 1.0},
        _run_beta,
        error_bars=True,
        monte_carlo=True,
        semivalue="beta",
        description="Beta(alpha, beta) Shapley (Monte Carlo)",
    ),
    aliases={"beta": {}},
)
register(
    Method(
        "banzhaf",
        "openattrib.estimators:banzhaf",
        "game",
        {"budget": 1000, "stop": None},
        _run_banzhaf,
        error_bars=True,
        monte_carlo=True,
        semivalue="banzhaf",
        description="Data Banzhaf (maximum sample reuse)",
    )
)
register(
    Method(
        "knn_shapley",
        "openattrib.estimators:knn_shapley",
        "closed_form",
        {"k": 5},
        _run_knn,
        levels=("points",),
        description="closed-form KNN-Shapley",
    ),
    aliases={"knn": {}},
)
register(
    Method(
        "data_oob",
        "openattrib.estimators:data_oob",
        "closed_form",
        {"n_estimators": 1000},
        _run_oob,
        error_bars=True,
        description="Data-OOB (out-of-bag scores of a bagged model)",
    ),
    aliases={"oob": {}},
)
register(
    Method(
        "influence",
        "openattrib.influence:influence",
        "influence",
        {"damping": 0.0},
        _run_influence,
        levels=("points",),
        description="influence functions, summed over validation points",
    )
)
register(
    Method(
        "random",
        "openattrib.methods:_run_random",
        "baseline",
        {},
        _run_random,
        levels=("points",),
        description="random values (baseline)",
    )
)
