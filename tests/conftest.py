"""Shared test helpers and data fixtures.

One place for the small data sets several test modules use, so that a change of a shared
fixture is made once. Module-scoped fixtures are read-only: ``oa.Dataset`` arrays are not
writeable, so no test can alter what another one sees.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

import openattrib as oa


def standardised(ds: oa.Dataset, target: bool = False) -> oa.Dataset:
    """``ds`` with zero-mean, unit-variance features (and target, with ``target=True``)."""
    X = StandardScaler().fit_transform(ds.X)
    y = (ds.y - ds.y.mean()) / ds.y.std() if target else ds.y
    return oa.Dataset(X, y, contributors=ds.contributors)


def random_arrays(n: int = 12, d: int = 3, seed: int = 0, contributors: bool = True):
    """Gaussian features, alternating binary labels and three contributors ``c0..c2``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.arange(n) % 2
    ids = [f"c{i % 3}" for i in range(n)] if contributors else None
    return X, y, ids


@pytest.fixture
def tiny_pair() -> tuple[oa.Dataset, oa.Dataset]:
    """20 Gaussian training points and 5 test points with random binary labels."""
    rng = np.random.default_rng(0)
    train = oa.Dataset(rng.normal(size=(20, 3)), rng.integers(0, 2, 20))
    test = oa.Dataset(rng.normal(size=(5, 3)), rng.integers(0, 2, 5))
    return train, test


@pytest.fixture(scope="module")
def cancer_split() -> tuple[oa.Dataset, oa.Dataset]:
    """Standardised breast cancer, 6 contributors; 100 training and 60 validation rows."""
    raw = oa.datasets.load_breast_cancer()
    ds = oa.datasets.partition(standardised(raw), 6, seed=1)
    rows = np.random.default_rng(0).choice(ds.n_samples, 160, replace=False)
    return ds.subset(rows[:100]), ds.subset(rows[100:])


@pytest.fixture(scope="module")
def partitioned_split() -> tuple[oa.Dataset, oa.Dataset]:
    """80 synthetic points among 5 contributors, split half and half."""
    ds = oa.datasets.make_classification(80, 4, 2, class_sep=1.0, seed=3)
    return oa.datasets.partition(ds, 5, seed=3).split(0.5, seed=0)
