"""openattrib: how much did each piece of training data, and each contributor, contribute?

The public API is re-exported here; see ``DESIGN.md`` for the architecture.
"""

from __future__ import annotations

from . import datasets, toy_games
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
from .result import Attribution, package_version

__version__ = package_version()

__all__ = [
    "Attribution",
    "BudgetError",
    "Dataset",
    "FunctionGame",
    "Game",
    "LedgerError",
    "ModelUtility",
    "OpenAttribError",
    "UnsupportedError",
    "ValidationError",
    "VerificationError",
    "__version__",
    "datasets",
    "exact_banzhaf",
    "exact_semivalue",
    "exact_shapley",
    "loo",
    "toy_games",
]
