"""Exceptions raised by openattrib.

Every error the package raises on bad input is an :class:`OpenAttribError`.
Subclasses also derive from the built-in exception a Python user would expect
(``ValueError``, ``TypeError``, ``KeyError``), so ``except ValueError`` keeps working.
Messages name the input, the problem and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "OpenAttribError",
    "ValidationError",
    "UnsupportedError",
    "BudgetError",
    "LedgerError",
    "VerificationError",
]


class OpenAttribError(Exception):
    """Base class of every error raised by openattrib."""


class ValidationError(OpenAttribError, ValueError):
    """An input has the wrong shape, type or value."""


class UnsupportedError(OpenAttribError, TypeError):
    """A model, estimator or option is not supported by the requested method."""


class BudgetError(OpenAttribError, ValueError):
    """A computation would exceed a size or time limit (for example exact enumeration)."""


class LedgerError(OpenAttribError):
    """The ledger file cannot be read, written or is in an invalid state."""


class VerificationError(OpenAttribError, ValueError):
    """A proof, signature or stored entry failed verification, or is malformed."""
