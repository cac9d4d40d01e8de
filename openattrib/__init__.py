"""openattrib: how much did each piece of training data, and each contributor, contribute?

The public API is re-exported here; see ``DESIGN.md`` for the architecture.

Names are resolved lazily (PEP 562): ``import openattrib`` loads only this table, and
``openattrib.permutation_shapley`` imports its module on first use, so the import stays
fast and heavy libraries (torch, shap, matplotlib, dask, scipy.stats) load only inside the
functions that need them. ``__all__`` and ``dir(openattrib)`` list every public name.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import (
    BudgetError,
    LedgerError,
    OpenAttribError,
    UnsupportedError,
    ValidationError,
    VerificationError,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import datasets, experiments, ledger, methods, report, rewards, text, toy_games
    from . import stopping as stop
    from .data import Dataset
    from .estimators import (
        KNNShapleyPerTest,
        banzhaf,
        beta_shapley,
        data_oob,
        exact_banzhaf,
        exact_semivalue,
        exact_shapley,
        knn_shapley,
        knn_shapley_per_test,
        loo,
        permutation_shapley,
        semivalue,
    )
    from .games import FunctionGame, Game, ModelUtility
    from .influence import (
        InfluenceResult,
        LDSResult,
        PredictionExplanation,
        attribute_prediction,
        explain_prediction,
        influence,
        lds,
        tracin,
        trak,
    )
    from .ledger import Ledger
    from .per_test import PerTestResult
    from .result import Attribution, ContributorSums
    from .rewards import Allocation, allocate

#: public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    **{
        name: (f"{__name__}.{name}", None)
        for name in (
            "datasets",
            "experiments",
            "ledger",
            "methods",
            "report",
            "rewards",
            "text",
            "toy_games",
        )
    },
    "stop": (f"{__name__}.stopping", None),
    "Dataset": (f"{__name__}.data", "Dataset"),
    **{
        name: (f"{__name__}.estimators", name)
        for name in (
            "KNNShapleyPerTest",
            "banzhaf",
            "beta_shapley",
            "data_oob",
            "exact_banzhaf",
            "exact_semivalue",
            "exact_shapley",
            "knn_shapley",
            "knn_shapley_per_test",
            "loo",
            "permutation_shapley",
            "semivalue",
        )
    },
    **{name: (f"{__name__}.games", name) for name in ("FunctionGame", "Game", "ModelUtility")},
    **{
        name: (f"{__name__}.influence", name)
        for name in (
            "InfluenceResult",
            "LDSResult",
            "PredictionExplanation",
            "attribute_prediction",
            "explain_prediction",
            "influence",
            "lds",
            "tracin",
            "trak",
        )
    },
    "Ledger": (f"{__name__}.ledger", "Ledger"),
    "Attribution": (f"{__name__}.result", "Attribution"),
    "ContributorSums": (f"{__name__}.result", "ContributorSums"),
    "PerTestResult": (f"{__name__}.per_test", "PerTestResult"),
    "Allocation": (f"{__name__}.rewards", "Allocation"),
    "allocate": (f"{__name__}.rewards", "allocate"),
}

__all__ = [
    "Allocation",
    "Attribution",
    "BudgetError",
    "ContributorSums",
    "Dataset",
    "FunctionGame",
    "Game",
    "InfluenceResult",
    "KNNShapleyPerTest",
    "LDSResult",
    "Ledger",
    "LedgerError",
    "ModelUtility",
    "OpenAttribError",
    "PerTestResult",
    "PredictionExplanation",
    "UnsupportedError",
    "ValidationError",
    "VerificationError",
    "__version__",
    "allocate",
    "attribute_prediction",
    "banzhaf",
    "beta_shapley",
    "data_oob",
    "datasets",
    "exact_banzhaf",
    "exact_semivalue",
    "exact_shapley",
    "experiments",
    "explain_prediction",
    "influence",
    "knn_shapley",
    "knn_shapley_per_test",
    "lds",
    "ledger",
    "loo",
    "methods",
    "permutation_shapley",
    "report",
    "rewards",
    "semivalue",
    "stop",
    "text",
    "toy_games",
    "tracin",
    "trak",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from .result import package_version

        value: Any = package_version()
    elif name in _LAZY:
        module, attribute = _LAZY[name]
        value = importlib.import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # cached: later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps a public function whose name is also a subpackage's (``influence``).

    Importing ``openattrib.influence`` (the subpackage) sets the attribute ``influence``
    of this package to the module; the public name is the function, as it was when
    everything was imported eagerly, so that assignment is dropped and the function is
    resolved by ``__getattr__``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name, ("", None))[1] is not None:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
