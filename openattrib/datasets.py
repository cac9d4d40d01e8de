"""Ready-made data sets, label noise and contributor partitions (``oa.datasets``).

Loaders use the copies bundled with scikit-learn (no download); generators wrap
:mod:`sklearn.datasets`; :func:`flip_labels` plants known label noise (the standard
noisy-label detection benchmark of Ghorbani & Zou, 2019, "Data Shapley"); and
:func:`partition` gives a data set contributors, i.i.d. or label-skewed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._vocab import deprecated_keywords
from .data import Dataset
from .errors import ValidationError

__all__ = [
    "load",
    "load_breast_cancer",
    "load_digits",
    "load_wine",
    "load_iris",
    "load_diabetes",
    "load_demo",
    "make_classification",
    "make_regression",
    "flip_labels",
    "partition",
    "DATA_DIR",
    "LOADERS",
]


def _data_dir() -> Path:
    """The repository's ``data/`` folder, or where an installed wheel put its files.

    A source checkout (or editable install) reads ``data/`` beside the package. A wheel
    installs the same files as data files under ``<prefix>/share/openattrib/data`` (see
    ``[tool.setuptools.data-files]`` in ``pyproject.toml``).
    """
    checkout = Path(__file__).resolve().parent.parent / "data"
    if (checkout / "demo_contributors.csv").is_file():
        return checkout
    return Path(sys.prefix) / "share" / "openattrib" / "data"


#: Folder holding the committed demo files (the repository's ``data/`` folder).
DATA_DIR = _data_dir()


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _random_state(seed: Any) -> int:
    """A scikit-learn ``random_state`` derived from a numpy Generator seeded with ``seed``."""
    return int(np.random.default_rng(_check_seed(seed)).integers(0, 2**31 - 1))


# ---------------------------------------------------------------------------- bundled sets
def _from_sklearn(loader: Callable[..., Any], **kwargs: Any) -> Dataset:
    bunch = loader(**kwargs)
    names = getattr(bunch, "feature_names", None)
    return Dataset(
        bunch.data,
        bunch.target,
        feature_names=None if names is None else [str(n) for n in names],
    )


def load_breast_cancer() -> Dataset:
    """Wisconsin breast cancer (569 rows, 30 features, binary; 0 = malignant).

    Examples
    --------
    >>> load_breast_cancer().n_samples
    569
    """
    from sklearn import datasets as skd

    return _from_sklearn(skd.load_breast_cancer)


def load_digits() -> Dataset:
    """8x8 handwritten digits (1797 rows, 64 pixel features, 10 classes).

    Examples
    --------
    >>> load_digits().classes.size
    10
    """
    from sklearn import datasets as skd

    return _from_sklearn(skd.load_digits)


def load_wine() -> Dataset:
    """Wine recognition (178 rows, 13 features, 3 classes).

    Examples
    --------
    >>> load_wine().n_features
    13
    """
    from sklearn import datasets as skd

    return _from_sklearn(skd.load_wine)


def load_iris() -> Dataset:
    """Iris (150 rows, 4 features, 3 classes).

    Examples
    --------
    >>> load_iris().n_samples
    150
    """
    from sklearn import datasets as skd

    return _from_sklearn(skd.load_iris)


def load_diabetes() -> Dataset:
    """Diabetes progression (442 rows, 10 scaled features, regression target).

    Examples
    --------
    >>> load_diabetes().task
    'regression'
    """
    from sklearn import datasets as skd

    return _from_sklearn(skd.load_diabetes)


LOADERS: dict[str, Callable[[], Dataset]] = {
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
    "wine": load_wine,
    "iris": load_iris,
    "diabetes": load_diabetes,
}


def load(name: str) -> Dataset:
    """Load a bundled data set by name (``"breast_cancer"``, ``"digits"``, ``"wine"``, ...).

    Examples
    --------
    >>> load("iris").n_features
    4
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in LOADERS:
        raise ValidationError(
            f"unknown data set {name!r}; valid names: {', '.join(sorted(LOADERS))} "
            "(and oa.datasets.load_demo() for the contributor demo)"
        )
    return LOADERS[key]()


# ---------------------------------------------------------------------------- generators
@deprecated_keywords(
    positional=(
        "n_samples",
        "n_features",
        "n_informative",
        "n_redundant",
        "n_classes",
        "class_sep",
        "flip_y",
        "seed",
    )
)
def make_classification(
    *,
    n_samples: int = 200,
    n_features: int = 10,
    n_informative: int = 5,
    n_redundant: int = 0,
    n_classes: int = 2,
    class_sep: float = 1.0,
    flip_y: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """Synthetic classification data (:func:`sklearn.datasets.make_classification`).

    Examples
    --------
    >>> make_classification(n_samples=50, n_features=4, n_informative=2, seed=1).n_samples
    50
    """
    from sklearn import datasets as skd

    try:
        X, y = skd.make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_informative,
            n_redundant=n_redundant,
            n_classes=n_classes,
            class_sep=class_sep,
            flip_y=flip_y,
            random_state=_random_state(seed),
        )
    except ValueError as exc:
        raise ValidationError(f"make_classification: invalid parameters: {exc}") from None
    return Dataset(X, y, copy=False)


@deprecated_keywords(positional=("n_samples", "n_features", "n_informative", "noise", "seed"))
def make_regression(
    *,
    n_samples: int = 200,
    n_features: int = 10,
    n_informative: int = 5,
    noise: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """Synthetic linear regression data (:func:`sklearn.datasets.make_regression`).

    Examples
    --------
    >>> make_regression(n_samples=30, n_features=3, n_informative=2).task
    'regression'
    """
    from sklearn import datasets as skd

    try:
        X, y = skd.make_regression(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_informative,
            noise=noise,
            random_state=_random_state(seed),
        )
    except ValueError as exc:
        raise ValidationError(f"make_regression: invalid parameters: {exc}") from None
    return Dataset(X, y, copy=False)


# ---------------------------------------------------------------------------- label noise
@deprecated_keywords(positional=("seed",))
def flip_labels(ds: Dataset, fraction: float, *, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """Flip the labels of exactly ``round(fraction * n_samples)`` rows (half rounds up).

    Each chosen row gets a *different* class, drawn uniformly from the other classes
    present in ``ds``. Returns the noisy Dataset and the sorted int64 indices of the
    flipped rows (the ground truth for noisy-label detection, Ghorbani & Zou 2019).

    Examples
    --------
    >>> noisy, flipped = flip_labels(load_iris(), fraction=0.1, seed=0)
    >>> len(flipped)
    15
    >>> bool((noisy.y[flipped] != load_iris().y[flipped]).all())
    True
    """
    if ds.task != "classification":
        raise ValidationError(
            f"flip_labels needs a classification target; y has float dtype {ds.y.dtype} "
            "(regression). Convert class labels to int or str first"
        )
    classes = ds.classes
    if classes.size < 2:
        raise ValidationError(
            f"flip_labels needs at least 2 classes to flip between; y has only {classes.tolist()}"
        )
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(
        fraction, (int, float, np.integer, np.floating)
    ):
        raise ValidationError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValidationError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(_check_seed(seed))
    n = ds.n_samples
    n_flip = int(np.floor(float(fraction) * n + 0.5))
    flipped = np.sort(rng.choice(n, size=n_flip, replace=False)).astype(np.int64)
    y = np.array(ds.y, copy=True)
    position = np.searchsorted(classes, y[flipped])
    shift = rng.integers(1, classes.size, size=n_flip)  # 1..k-1: never the same class
    y[flipped] = classes[(position + shift) % classes.size]
    return ds.with_labels(y), flipped


# ---------------------------------------------------------------------------- contributors
def _equal_sizes(n: int, k: int) -> np.ndarray:
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


def _dirichlet_sizes(n: int, k: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Sizes ``1 + Multinomial(n - k, p)`` with ``p ~ Dirichlet(alpha)``: each at least 1."""
    proportions = rng.dirichlet(np.full(k, alpha))
    return 1 + rng.multinomial(n - k, proportions).astype(np.int64)


def _label_dirichlet(ds: Dataset, k: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Per-class Dirichlet split (Hsu, Qi & Brown 2019), then give empty contributors a row."""
    owner = np.empty(ds.n_samples, dtype=np.int64)
    for label in ds.classes:
        rows = rng.permutation(np.flatnonzero(ds.y == label))
        counts = rng.multinomial(rows.size, rng.dirichlet(np.full(k, alpha)))
        owner[rows] = np.repeat(np.arange(k), counts)
    for empty in np.flatnonzero(np.bincount(owner, minlength=k) == 0):
        counts = np.bincount(owner, minlength=k)
        donor_rows = np.flatnonzero(owner == np.argmax(counts))
        owner[donor_rows[rng.integers(donor_rows.size)]] = empty
    return owner


def partition(
    ds: Dataset,
    n_contributors: int,
    *,
    sizes: None | str | Sequence[int] = None,
    alpha: float = 1.0,
    by_label: bool = False,
    seed: int = 0,
    prefix: str = "c",
) -> Dataset:
    """Assign every row to one of ``n_contributors`` contributors ``prefix0, prefix1, ...``.

    Parameters
    ----------
    ds : Dataset
    n_contributors : int
        Between 1 and ``ds.n_samples``; every contributor gets at least one row.
    sizes : None, "equal", "dirichlet" or sequence of int
        ``None``/``"equal"``: sizes differ by at most one. ``"dirichlet"``: proportions drawn
        from a symmetric Dirichlet(``alpha``) (small ``alpha`` = very unequal). A sequence
        gives the exact size of each contributor (positive, summing to ``n_samples``).
    alpha : float
        Dirichlet concentration (used with ``sizes="dirichlet"``).
    by_label : bool
        Label-skewed (non-IID) partition. With ``"dirichlet"`` each class is split with its
        own Dirichlet(``alpha``) proportions (Hsu, Qi & Brown 2019); otherwise rows are
        sorted by label (ties shuffled) and cut into consecutive blocks of the requested
        sizes (McMahan et al. 2017).
    seed : int
    prefix : str
        Contributor ids are ``f"{prefix}{i}"``.

    Rows keep their order; only the contributor column is set, so row indices (for example
    from :func:`flip_labels`) stay valid. ``contributor_ids`` of the result lists ids in
    order of first appearance.

    Examples
    --------
    >>> ds = partition(load_iris(), 5, seed=0)
    >>> sorted(ds.contributor_ids), [len(g) for g in ds.groups().values()]
    (['c0', 'c1', 'c2', 'c3', 'c4'], [30, 30, 30, 30, 30])
    """
    n = ds.n_samples
    if isinstance(n_contributors, (bool, np.bool_)) or not isinstance(
        n_contributors, (int, np.integer)
    ):
        raise ValidationError(f"n_contributors must be an int, got {n_contributors!r}")
    k = int(n_contributors)
    if not 1 <= k <= n:
        raise ValidationError(
            f"n_contributors={k} is invalid for a Dataset with {n} rows: every contributor needs "
            f"at least one row, so use 1..{n}"
        )
    if not (isinstance(alpha, (int, float, np.integer, np.floating)) and alpha > 0):
        raise ValidationError(f"alpha must be a positive number, got {alpha!r}")
    rng = np.random.default_rng(_check_seed(seed))
    mode = "equal" if sizes is None else sizes
    if isinstance(mode, str) and mode not in ("equal", "dirichlet"):
        raise ValidationError(
            f"sizes={mode!r} is not understood; use None, 'equal', 'dirichlet' or a list of "
            f"{k} positive ints"
        )
    if mode == "dirichlet" and by_label:
        if ds.task != "classification":
            raise ValidationError(
                "by_label=True with sizes='dirichlet' needs class labels; y is a regression "
                "target (use by_label=True with equal sizes to split by sorted target value)"
            )
        owner = _label_dirichlet(ds, k, float(alpha), rng)
    else:
        if mode == "equal":
            block_sizes = _equal_sizes(n, k)
        elif mode == "dirichlet":
            block_sizes = _dirichlet_sizes(n, k, float(alpha), rng)
        else:
            block_sizes = np.asarray(list(mode))
            if (
                block_sizes.shape != (k,)
                or block_sizes.dtype.kind not in "iu"
                or (block_sizes < 1).any()
                or int(block_sizes.sum()) != n
            ):
                raise ValidationError(
                    f"sizes must be {k} positive ints summing to n_samples={n}; got {list(mode)!r}"
                )
        order = rng.permutation(n)
        if by_label:
            order = order[np.argsort(ds.y[order], kind="stable")]
        owner = np.empty(n, dtype=np.int64)
        owner[order] = np.repeat(np.arange(k), block_sizes)
    ids = np.array([f"{prefix}{i}" for i in range(k)], dtype=object)
    return ds.with_contributors(ids[owner])


# ---------------------------------------------------------------------------- demo
def load_demo(data_dir: str | Path | None = None) -> tuple[Dataset, Dataset]:
    """The committed contributor demo: ``(train, valid)``.

    ``train`` is ``data/demo_contributors.csv`` (8 contributors of deliberately different
    quality, see ``data/DATA_CARD.md``); ``valid`` is the clean held-out
    ``data/demo_validation.csv`` without contributors.

    Examples
    --------
    >>> train, valid = load_demo()
    >>> train.contributor_ids[:3]
    ['alice', 'bob', 'carol']
    """
    folder = DATA_DIR if data_dir is None else Path(data_dir)
    train_path = folder / "demo_contributors.csv"
    valid_path = folder / "demo_validation.csv"
    for path in (train_path, valid_path):
        if not path.is_file():
            raise ValidationError(
                f"demo data file not found: looked for {path}. The demo files live in the "
                "repository's data/ folder; regenerate them with `python data/make_demo_data.py`"
            )
    train = Dataset.from_csv(train_path, target="label", contributor="contributor")
    valid = Dataset.from_csv(valid_path, target="label")
    return train, valid
