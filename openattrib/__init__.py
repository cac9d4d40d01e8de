"""openattrib: how much did each piece of training data, and each contributor, contribute?

The public API is re-exported here; see ``DESIGN.md`` for the architecture.
"""

from __future__ import annotations

from . import datasets, experiments, ledger, report, rewards, toy_games
from . import stopping as stop
from .data import Dataset
from .errors import (
    BudgetError,
    LedgerError,
    OpenAttribError,
    UnsupportedError,
    ValidationError,
    VerificationError,
)
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
from .result import Attribution, ContributorSums, package_version
from .rewards import Allocation, allocate

__version__ = package_version()

__all__ = [
    "InfluenceResult",
    "LDSResult",
    "PredictionExplanation",
    "attribute_prediction",
    "explain_prediction",
    "influence",
    "lds",
    "tracin",
    "trak",
    "KNNShapleyPerTest",
    "banzhaf",
    "beta_shapley",
    "data_oob",
    "knn_shapley",
    "knn_shapley_per_test",
    "permutation_shapley",
    "report",
    "semivalue",
    "stop",
    "Allocation",
    "Attribution",
    "BudgetError",
    "ContributorSums",
    "PerTestResult",
    "Dataset",
    "FunctionGame",
    "Game",
    "Ledger",
    "LedgerError",
    "ModelUtility",
    "OpenAttribError",
    "UnsupportedError",
    "ValidationError",
    "VerificationError",
    "__version__",
    "allocate",
    "datasets",
    "exact_banzhaf",
    "exact_semivalue",
    "exact_shapley",
    "experiments",
    "ledger",
    "loo",
    "rewards",
    "toy_games",
]
