"""Gaming checks: duplicated data across contributors.

A contributor paid in proportion to its data's value has a reason to submit someone else's
data, or its own data again under other names. :func:`audit` finds

* **exact duplicates**: rows with the same content digest
  (:meth:`~openattrib.Dataset.row_digests`: canonical bytes of the features and the label),
  grouped in one pass (O(n));
* **near duplicates**: pairs of rows whose distance on standardised features (z-scores with
  the data set's own mean and standard deviation) is below a threshold, found with a KD-tree
  radius query (scikit-learn ``NearestNeighbors``), never an n x n matrix.

Rows are attributed to the *later* contributor in submission order (the order in which
contributors first appear in the data set, unless ``order=`` says otherwise): the earlier
one is presumed to be the original.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..errors import ValidationError

__all__ = ["audit", "AuditReport"]


@dataclass
class AuditReport:
    """Result of :func:`audit`.

    Attributes
    ----------
    exact_duplicates : DataFrame
        One row per duplicated row: ``row``, ``contributor``, ``duplicate_of`` (the first
        occurrence), ``original_contributor`` and ``cross_contributor``.
    near_duplicates : DataFrame
        Pairs ``row``, ``contributor``, ``near_row``, ``near_contributor``, ``distance``
        (Euclidean on standardised features) and ``rms_distance`` (divided by
        sqrt(n_features)), for pairs closer than the threshold that are not exact duplicates.
    contributors : DataFrame
        Per contributor: rows, rows that duplicate an earlier contributor's rows exactly
        (``exact_copies``) or nearly (``near_copies``), rows that repeat one of its own rows
        exactly (``self_copies``: replication under its own name), the fraction of its rows
        that are copies of any kind, its value when an attribution is given, and ``flagged``.
    """

    exact_duplicates: pd.DataFrame
    near_duplicates: pd.DataFrame
    contributors: pd.DataFrame
    parameters: dict[str, Any]

    @property
    def flagged(self) -> list[str]:
        """Contributors with at least ``min_fraction`` of their rows copied (from others or
        from their own rows)."""
        frame = self.contributors
        return [] if frame.empty else frame.index[frame["flagged"]].tolist()

    @property
    def clean(self) -> bool:
        """True when no duplicate across contributors was found."""
        return not self.flagged and self.n_cross_exact == 0 and self.near_duplicates.empty

    @property
    def n_cross_exact(self) -> int:
        frame = self.exact_duplicates
        return int(frame["cross_contributor"].sum()) if not frame.empty else 0

    def pairs(self, kind: str = "exact") -> set[tuple[int, int]]:
        """Duplicate pairs as ``(row, other_row)`` with ``row > other_row``."""
        if kind == "exact":
            frame, a, b = self.exact_duplicates, "row", "duplicate_of"
        elif kind == "near":
            frame, a, b = self.near_duplicates, "row", "near_row"
        else:
            raise ValidationError(f"kind must be 'exact' or 'near', got {kind!r}")
        return {(max(r, s), min(r, s)) for r, s in zip(frame[a], frame[b], strict=True)}

    def __repr__(self) -> str:
        return (
            f"AuditReport(exact duplicates across contributors={self.n_cross_exact}, "
            f"near-duplicate pairs={len(self.near_duplicates)}, flagged={self.flagged})"
        )

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>Audit</b> &middot; {self.n_cross_exact} exact duplicate rows across "
            f"contributors &middot; {len(self.near_duplicates)} near-duplicate pairs "
            f"(RMS distance &lt; {self.parameters['near_threshold']}) &middot; flagged: "
            f"{html.escape(', '.join(self.flagged) or 'none')}</p>"
        )
        return head + self.contributors.to_html(float_format=lambda v: f"{v:.4g}")


def _exact(dataset: Dataset, owner: np.ndarray, include_label: bool) -> pd.DataFrame:
    first: dict[bytes, int] = {}
    records = []
    for row, digest in enumerate(dataset.row_digests(include_label=include_label)):
        if digest in first:
            original = first[digest]
            records.append(
                (row, owner[row], original, owner[original], owner[row] != owner[original])
            )
        else:
            first[digest] = row
    columns = ["row", "contributor", "duplicate_of", "original_contributor", "cross_contributor"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype({"row": np.int64, "duplicate_of": np.int64, "cross_contributor": bool})


def _near(
    dataset: Dataset, owner: np.ndarray, rank: dict[str, int], threshold: float, exact: set
) -> pd.DataFrame:
    from sklearn.neighbors import NearestNeighbors

    X = dataset.X
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - X.mean(axis=0)) / scale
    radius = threshold * np.sqrt(dataset.n_features)
    tree = NearestNeighbors(radius=radius, algorithm="kd_tree").fit(Z)
    distances, neighbours = tree.radius_neighbors(Z, sort_results=True)
    records = []
    for row in range(dataset.n_samples):
        for other, distance in zip(neighbours[row], distances[row], strict=True):
            if other == row or owner[other] == owner[row]:
                continue
            # report each pair once, attributed to the later contributor (then the later row)
            later = (rank[owner[row]], row) > (rank[owner[other]], other)
            if not later or (max(row, other), min(row, other)) in exact:
                continue
            records.append(
                (
                    row,
                    owner[row],
                    int(other),
                    owner[other],
                    float(distance),
                    float(distance) / np.sqrt(dataset.n_features),
                )
            )
    columns = ["row", "contributor", "near_row", "near_contributor", "distance", "rms_distance"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype({"row": np.int64, "near_row": np.int64})


def audit(
    dataset: Dataset,
    attribution: Any = None,
    *,
    near_threshold: float = 0.05,
    include_label: bool = True,
    min_fraction: float = 0.1,
    order: Sequence[str] | None = None,
) -> AuditReport:
    """Look for contributors that submitted copies of other contributors' rows.

    Parameters
    ----------
    dataset : Dataset
        The training data. Without contributors every row counts as its own contributor.
    attribution : Attribution, Series or dict, optional
        Contributor-level values, added to the per-contributor table.
    near_threshold : float, default 0.05
        Near-duplicate threshold on the root-mean-square per-feature difference in standard
        deviations, ``||z_i - z_j|| / sqrt(n_features)`` (0.05 = rows differ on average by
        5% of a standard deviation per feature; distinct real rows are typically much
        farther apart). ``0`` disables the near-duplicate search.
    include_label : bool, default True
        Exact duplicates must also have the same label.
    min_fraction : float, default 0.1
        A contributor is flagged when at least this fraction of its rows are exact or near
        copies of an earlier contributor's rows, or exact repeats of its own rows.
    order : sequence of str, optional
        Submission order of the contributors (earlier = presumed original); default the
        order in which they first appear in ``dataset``.

    Examples
    --------
    >>> import openattrib as oa
    >>> train, _ = oa.datasets.load_demo()
    >>> audit(train).flagged  # the data card's planted copier and near-copier
    ['dave', 'erin']
    """
    if not isinstance(dataset, Dataset):
        raise ValidationError(
            f"dataset must be an openattrib Dataset, got {type(dataset).__name__}"
        )
    for name, value in (("near_threshold", near_threshold), ("min_fraction", min_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValidationError(f"{name} must be a number >= 0, got {value!r}")
    if dataset.contributors is None:
        owner = np.array([f"row{i}" for i in range(dataset.n_samples)], dtype=object)
    else:
        owner = np.asarray(dataset.contributors, dtype=object)
    ids = list(dict.fromkeys(owner.tolist()))
    if order is not None:
        order = [str(c) for c in order]
        missing = [c for c in ids if c not in order]
        if missing:
            raise ValidationError(f"order does not list contributor(s) {missing[:5]}")
        ids = [c for c in order if c in set(ids)]
    rank = {c: i for i, c in enumerate(ids)}
    exact = _exact(dataset, owner, include_label)
    if not exact.empty:  # attribute each copy to the later contributor in submission order
        swap = exact["contributor"].map(rank) < exact["original_contributor"].map(rank)
        exact.loc[swap, ["row", "duplicate_of"]] = exact.loc[
            swap, ["duplicate_of", "row"]
        ].to_numpy()
        exact.loc[swap, ["contributor", "original_contributor"]] = exact.loc[
            swap, ["original_contributor", "contributor"]
        ].to_numpy()
    exact_pairs = {
        (max(r, s), min(r, s)) for r, s in zip(exact["row"], exact["duplicate_of"], strict=True)
    }
    if near_threshold > 0 and dataset.n_samples > 1:
        near = _near(dataset, owner, rank, float(near_threshold), exact_pairs)
    else:
        near = _near_empty()
    table = _contributor_table(owner, ids, exact, near, attribution, min_fraction)
    parameters = {
        "near_threshold": float(near_threshold),
        "include_label": include_label,
        "min_fraction": float(min_fraction),
        "order": ids,
        "n_samples": dataset.n_samples,
        "dataset_hash": dataset.content_hash(),
    }
    return AuditReport(exact, near, table, parameters)


def _near_empty() -> pd.DataFrame:
    columns = ["row", "contributor", "near_row", "near_contributor", "distance", "rms_distance"]
    return pd.DataFrame(columns=columns)


def _contributor_table(
    owner: np.ndarray,
    ids: list[str],
    exact: pd.DataFrame,
    near: pd.DataFrame,
    attribution: Any,
    min_fraction: float,
) -> pd.DataFrame:
    rows = pd.Series(owner).value_counts().reindex(ids).astype(int)
    cross = exact[exact["cross_contributor"]] if not exact.empty else exact
    own = exact[~exact["cross_contributor"]] if not exact.empty else exact
    exact_rows = cross.groupby("contributor")["row"].nunique().reindex(ids, fill_value=0)
    self_rows = own.groupby("contributor")["row"].nunique().reindex(ids, fill_value=0)
    near_rows = (
        near.groupby("contributor")["row"].nunique().reindex(ids, fill_value=0)
        if not near.empty
        else pd.Series(0, index=ids)
    )
    copied = {c: set() for c in ids}
    for frame in (cross, own, near):
        for row, contributor in zip(frame["row"], frame["contributor"], strict=True):
            copied[contributor].add(int(row))
    n_copied = pd.Series({c: len(copied[c]) for c in ids})
    table = pd.DataFrame(
        {
            "rows": rows.to_numpy(),
            "exact_copies": exact_rows.to_numpy().astype(int),
            "near_copies": near_rows.to_numpy().astype(int),
            "self_copies": self_rows.to_numpy().astype(int),
            "copied_fraction": (n_copied / rows).to_numpy(),
        },
        index=pd.Index(ids, name="contributor"),
    )
    if attribution is not None:
        from .policies import coerce_values

        names, values, _, _, _ = coerce_values(attribution)
        table["value"] = pd.Series(values, index=names).reindex(ids).to_numpy()
    table["flagged"] = (n_copied.to_numpy() > 0) & (table["copied_fraction"] >= min_fraction)
    return table
