"""openattrib: how much did each piece of training data, and each contributor, contribute?

The public API is re-exported here; see ``DESIGN.md`` for the architecture.
"""

from __future__ import annotations

from . import datasets, ledger, rewards, toy_games
from .data import Dataset
from .errors import (
    BudgetError,
    LedgerError,
    OpenAttribError,
    UnsupportedError,
    ValidationError,
    VerificationError,
)
from .estimators import exact_banzhaf, exact_semivalue, exact_shapley, loo
from .games import FunctionGame, Game, ModelUtility
from .ledger import Ledger
from .result import Attribution, package_version
from .rewards import Allocation, allocate

__version__ = package_version()

__all__ = [
    "Allocation",
    "Attribution",
    "BudgetError",
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
    "ledger",
    "loo",
    "rewards",
    "toy_games",
]
