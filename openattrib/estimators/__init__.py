"""Estimators: how attribution values are computed from a game or from model and data."""

from .exact import exact_banzhaf, exact_semivalue, exact_shapley, loo

__all__ = ["exact_banzhaf", "exact_semivalue", "exact_shapley", "loo"]
