"""Noisy-label detection: do low values point at the training rows whose labels were flipped?

The benchmark of Ghorbani & Zou (2019, "Data Shapley", section 4.3): flip the labels of a
fraction of the training rows (:func:`openattrib.datasets.flip_labels`), value the data, and
check that the flipped rows get low values. Reported, per method:

* ``auc`` - ROC-AUC of ``-values`` as a score for "flipped" (1 = every flipped row is
  valued below every clean row, 0.5 = chance);
* ``precision_at_k`` / ``recall_at_k`` - over the ``k`` lowest-valued rows, ``k`` = number of
  flipped rows by default (``round(fraction * n)``), so the two coincide;
* ``kmeans_f1`` - F1 of the two-cluster rule of OpenDataVal (Jiang et al. 2023, "OpenDataVal:
  a Unified Benchmark for Data Valuation"): split the values into two clusters by exact
  one-dimensional 2-means and call the *lower* cluster noisy.

The two-cluster rule follows OpenDataVal >= 1.1 (``opendataval.experiment.util.
oned_twonn_clustering``): the optimal 2-means split of the sorted values, computed exactly
(Gronlund et al. 2017) rather than by Lloyd iterations, so it has no ``n_init`` or
``random_state``; ties between equally good splits go to the split with the fewest points in
the lower cluster; F1 is ``2 tp / (2 tp + fp + fn)``. (OpenDataVal 1.0 ran
``sklearn.cluster.KMeans(n_clusters=2, n_init="auto")`` with no fixed seed; on values with
two clear groups both find the same global optimum.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ._base import ExperimentResult, as_value_dict, as_values

__all__ = ["noisy_label_detection", "two_means_split", "detection_scores", "noisy_mask"]


def two_means_split(values: Any) -> np.ndarray:
    """Boolean mask of the *lower* cluster of the exact one-dimensional 2-means clustering.

    Minimises the total within-cluster sum of squares over the ``n - 1`` splits of the
    sorted values (optimal for k-means in one dimension); the first optimal split wins.

    Examples
    --------
    >>> two_means_split([0.9, 0.1, 1.0, 0.0, 0.95]).tolist()
    [False, True, False, True, False]
    """
    vals = as_values(values)
    n = vals.shape[0]
    if n < 2:
        raise ValidationError(f"two-cluster split needs at least 2 values, got {n}")
    order = np.argsort(vals, kind="stable")
    x = vals[order] - vals.mean()  # centring changes no split, only improves rounding
    csum = np.concatenate([[0.0], np.cumsum(x)])
    csq = np.concatenate([[0.0], np.cumsum(x * x)])
    sizes = np.arange(1, n)  # points in the lower cluster
    low_sse = csq[sizes] - csum[sizes] ** 2 / sizes
    high_sse = (csq[n] - csq[sizes]) - (csum[n] - csum[sizes]) ** 2 / (n - sizes)
    split = int(sizes[np.argmin(low_sse + high_sse)])
    mask = np.zeros(n, dtype=bool)
    mask[order[:split]] = True
    return mask


def noisy_mask(flipped: Any, n: int) -> np.ndarray:
    """Boolean mask of length ``n`` from flipped-row indices or an existing boolean mask."""
    arr = np.asarray(flipped)
    if arr.dtype.kind == "b":
        if arr.shape != (n,):
            raise ValidationError(f"flipped mask has shape {arr.shape}, expected ({n},)")
        return arr.copy()
    if arr.size == 0:
        return np.zeros(n, dtype=bool)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValidationError("flipped must be integer row indices or a boolean mask")
    if arr.min() < 0 or arr.max() >= n:
        raise ValidationError(f"flipped index {int(arr.max())} is out of range for {n} rows")
    if np.unique(arr).size != arr.size:
        raise ValidationError("flipped indices contain duplicates")
    mask = np.zeros(n, dtype=bool)
    mask[arr] = True
    return mask


def detection_scores(values: Any, flipped: Any, k: int | None = None) -> dict[str, float]:
    """Detection metrics of one value vector against the flipped rows (see module docstring).

    Examples
    --------
    >>> scores = detection_scores([0.5, -1.0, 0.7, -0.9], flipped=[1, 3])
    >>> scores["auc"], scores["kmeans_f1"], scores["precision_at_k"]
    (1.0, 1.0, 1.0)
    """
    from sklearn.metrics import roc_auc_score

    vals = as_values(values)
    n = vals.shape[0]
    noisy = noisy_mask(flipped, n)
    n_noisy = int(noisy.sum())
    if n_noisy == 0 or n_noisy == n:
        raise ValidationError(
            f"noisy-label detection needs both flipped and clean rows; got {n_noisy} flipped of "
            f"{n} (use a noise fraction strictly between 0 and 1)"
        )
    k = n_noisy if k is None else int(k)
    if not 1 <= k <= n:
        raise ValidationError(f"k must be between 1 and {n}, got {k}")
    lowest = np.argsort(vals, kind="stable")[:k]
    hits = int(noisy[lowest].sum())
    low_cluster = two_means_split(vals)
    tp = int((low_cluster & noisy).sum())
    fp = int((low_cluster & ~noisy).sum())
    fn = int((~low_cluster & noisy).sum())
    return {
        "auc": float(roc_auc_score(noisy, -vals)),
        "precision_at_k": hits / k,
        "recall_at_k": hits / n_noisy,
        "kmeans_f1": 2 * tp / (2 * tp + fp + fn),
        "k": k,
        "n": n,
        "n_flipped": n_noisy,
        "kmeans_n_low": int(low_cluster.sum()),
    }


def _discovery_curve(vals: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of flipped rows found after inspecting the j lowest-valued rows, j = 0..n."""
    order = np.argsort(vals, kind="stable")
    found = np.concatenate([[0], np.cumsum(noisy[order])]) / noisy.sum()
    return np.arange(vals.shape[0] + 1) / vals.shape[0], found


def noisy_label_detection(values: Any, flipped: Any, *, k: int | None = None) -> ExperimentResult:
    """Evaluate how well one or several value vectors detect flipped labels.

    Parameters
    ----------
    values : Attribution, array-like, or mapping of method name to either
        Point values (one per training row), e.g. ``{"tmc": tmc, "loo": loo}``.
    flipped : array-like of int or bool mask
        The rows whose labels were flipped (second output of
        :func:`openattrib.datasets.flip_labels`).
    k : int, optional
        Rows inspected for precision/recall (default: the number of flipped rows).

    Returns
    -------
    ExperimentResult
        ``summary``: one row per method with ``auc``, ``precision_at_k``, ``recall_at_k``,
        ``kmeans_f1`` and counts. ``frame``: the discovery curve (``method``,
        ``fraction_inspected``, ``fraction_found``), lowest values inspected first.
        ``figure``: the discovery curves with the optimal and random baselines.

    Examples
    --------
    >>> import numpy as np
    >>> flipped = np.array([0, 3])
    >>> res = noisy_label_detection({"perfect": -np.isin(np.arange(6), flipped).astype(float)}, flipped)
    >>> res.summary.loc["perfect", ["auc", "kmeans_f1"]].tolist()
    [1.0, 1.0]
    """
    table = as_value_dict(values)
    n = next(iter(table.values())).shape[0]
    noisy = noisy_mask(flipped, n)
    rows, curves = [], []
    for method, vals in table.items():
        rows.append({"method": method, **detection_scores(vals, noisy, k=k)})
        inspected, found = _discovery_curve(vals, noisy)
        curves.append(
            pd.DataFrame(
                {"method": method, "fraction_inspected": inspected, "fraction_found": found}
            )
        )
    summary = pd.DataFrame(rows).set_index("method")
    frame = pd.concat(curves, ignore_index=True)
    fraction = float(noisy.mean())

    def draw(ax: Any) -> Any:
        from ..plots import plot_detection

        return plot_detection(frame, noise_fraction=fraction, summary=summary, ax=ax)

    return ExperimentResult("noisy_label_detection", frame, summary, draw)
