"""Estimators: how attribution values are computed from a game or from model and data."""

from .exact import exact_banzhaf, exact_semivalue, exact_shapley, loo
from .knn import KNNShapleyPerTest, knn_shapley, knn_shapley_per_test
from .oob import data_oob
from .semivalue import banzhaf, beta_shapley, permutation_shapley, semivalue

__all__ = [
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
]
