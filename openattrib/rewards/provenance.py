"""Provenance: who owns each row, by first registration in the ledger's contribution registry.

A contributor paid for its data's value gains by submitting someone else's rows (or its own
again). Copies carry no new information, so a payout should value each piece of content
once and credit it to whoever registered it first. :func:`provenance` decides that per row:

1. each row's content digest (:meth:`openattrib.Dataset.row_digests`) is looked up in the
   ledger's registry (``openattrib.ledger.Ledger.append_contribution``): the
   registration that holds it first is its *first registration*;
2. rows are linked to their exact duplicates (same digest) and near duplicates (the gaming
   audit's KD-tree search, :func:`openattrib.rewards.audit`, with the same
   ``near_threshold``: RMS difference in standard deviations per feature);
3. rows are ranked by (first registration, row position). A row is *kept* unless one of its
   exact or near duplicates ranks before it; a dropped row is a copy of the earliest-ranked
   duplicate, and its owner is that row's owner. A kept row is owned by the contributor of
   its first registration -- so a copy whose original is not in the data set (for example
   in the validation split) is still credited to the original's registrant.

The result lists, per row, the owner and whether it is kept; per copy, the evidence (the
row, the original row, exact or near, the distance, both registrations); and per contributor
what it submitted, owns and copied from whom. :meth:`Provenance.owned` is the
deduplicated data set (each piece of content once, labelled by owner) to value, and
:meth:`Provenance.credit` maps a result on it back to the submitted rows and contributors,
so a copier's copied rows earn nothing.

The ledger is duck-typed (anything with ``holders(digests)``): rewards does not
import the ledger, which sits to its right in the data flow.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..errors import ValidationError
from ..result import Attribution
from .audit import audit

__all__ = ["provenance", "Provenance", "UNREGISTERED"]

#: How rows missing from the registry are treated: refuse, or the submitter's own (last).
UNREGISTERED = ("error", "own")
_LATE = np.iinfo(np.int64).max  # rank of an unregistered row treated as its submitter's own

_EVIDENCE = [
    "row",
    "contributor",
    "kind",
    "original_row",
    "owner",
    "distance",
    "rms_distance",
    "registration",
    "owner_registration",
    "kept",
]


@dataclass
class Provenance:
    """Result of :func:`provenance`.

    Attributes
    ----------
    owner : ndarray of str, shape (n_samples,)
        Who owns each row's content (its first registrant, or the original's owner).
    submitter : ndarray of str
        Who submitted each row (the data set's contributor column).
    registration : ndarray of int
        Ledger index of the first registration holding the row's exact content (-1 for an
        unregistered row accepted with ``unregistered="own"``).
    kept : ndarray of bool
        The deduplicated rows: each piece of content once.
    original : ndarray of int
        For a dropped row, the row it copies; -1 for kept rows.
    copies : DataFrame
        The evidence, one row per row not owned by its submitter or dropped as a copy:
        ``row``, ``contributor`` (the submitter), ``kind`` (``"exact"`` or ``"near"``),
        ``original_row`` (-1 when the original is registered but not in the data set),
        ``owner``, ``distance`` and ``rms_distance`` (0 for exact copies), ``registration``
        (the submitter's own registration holding this row, -1 if it never registered it),
        ``owner_registration`` (the first registration of the original) and ``kept``.
    contributors : DataFrame
        Per contributor (submitters and owners): ``submitted`` rows, ``owned`` (kept rows
        it owns), ``copied`` rows (submitted but owned by someone else or dropped as an own
        duplicate), ``copied_from`` (``"alice: 30"``).
    parameters : dict
    """

    owner: np.ndarray
    submitter: np.ndarray
    registration: np.ndarray
    kept: np.ndarray
    original: np.ndarray
    copies: pd.DataFrame
    contributors: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def dropped(self) -> list[int]:
        """Rows left out of the deduplicated data (copies of a kept row)."""
        return np.flatnonzero(~self.kept).tolist()

    @property
    def n_samples(self) -> int:
        return int(self.owner.shape[0])

    def owned(self, dataset: Dataset | None = None) -> Dataset:
        """The deduplicated data set: kept rows only, each labelled with its owner.

        ``dataset`` (default the one provenance was computed on) may be a transformed copy
        with the same rows in the same order, e.g. with standardised features.
        """
        data = self._check_rows(dataset)
        return data.subset(np.flatnonzero(self.kept)).with_contributors(self.owner[self.kept])

    def subset(self, rows: Any) -> Provenance:
        """Provenance of ``rows`` (positions, in order) of the data, e.g. a training split.

        Owners do not change (ownership was decided on all the submitted rows, so a near
        copy is caught even when its original went to the validation part). A copy is
        dropped only when its original is among ``rows`` too; otherwise it is kept, and
        still credited to the original's owner.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_samples):
            raise ValidationError(f"rows must be positions in 0..{self.n_samples - 1}")
        position = {int(r): i for i, r in enumerate(rows)}
        original = np.array([position.get(int(self.original[r]), -1) for r in rows], np.int64)
        kept = original < 0
        evidence = self.copies[self.copies["row"].isin(position)].copy()
        evidence["row"] = evidence["row"].map(position)
        evidence["original_row"] = [position.get(int(r), -1) for r in evidence["original_row"]]
        evidence["kept"] = kept[evidence["row"].to_numpy(dtype=np.int64)]
        evidence = evidence.astype({"row": np.int64, "original_row": np.int64})
        owner, submitter = self.owner[rows], self.submitter[rows]
        order = [c for c in self.contributors.index if c in set(submitter.tolist())]
        data = None if self._dataset is None else self._dataset.subset(rows)
        parameters = {
            **self.parameters,
            "n_samples": int(rows.size),
            "n_kept": int(kept.sum()),
            "dataset_hash": None if data is None else data.content_hash(),
        }
        return Provenance(
            owner,
            submitter,
            self.registration[rows],
            kept,
            original,
            evidence.reset_index(drop=True),
            _contributor_table(submitter, owner, kept, order),
            parameters,
            data,
        )

    def recipe(self) -> dict[str, Any]:
        """The parameters a recipe records to recompute this provenance from the ledger."""
        return {k: self.parameters[k] for k in ("near_threshold", "unregistered")}

    def _check_rows(self, dataset: Dataset | None) -> Dataset:
        if dataset is None:
            return self._dataset
        if not isinstance(dataset, Dataset) or dataset.n_samples != self.n_samples:
            raise ValidationError(
                f"dataset must be the {self.n_samples} rows this provenance was computed "
                f"for (in the same order), got {getattr(dataset, 'n_samples', dataset)!r}"
            )
        return dataset

    def who_copied_whom(self) -> pd.DataFrame:
        """Copies grouped by (copier, owner, kind): rows, distances, registrations."""
        frame = self.copies[self.copies["contributor"] != self.copies["owner"]]
        columns = ["copier", "owner", "kind", "rows", "max_rms_distance", "registrations"]
        if frame.empty:
            return pd.DataFrame(columns=columns)
        records = []
        for (copier, owner, kind), group in frame.groupby(
            ["contributor", "owner", "kind"], sort=False
        ):
            regs = sorted({int(r) for r in group["registration"]})
            owner_regs = sorted({int(r) for r in group["owner_registration"]})
            records.append(
                (
                    copier,
                    owner,
                    kind,
                    len(group),
                    float(group["rms_distance"].max()),
                    f"{copier} {regs} after {owner} {owner_regs}",
                )
            )
        return pd.DataFrame.from_records(records, columns=columns)

    def credit(self, attribution: Attribution, dataset: Dataset | None = None) -> Attribution:
        """Map a result computed on :meth:`owned` back to the submitted data.

        Point level: one value per submitted row (named ``"0", "1", ...`` like the
        estimators), dropped rows valued 0, each row's contributor set to its *owner* so
        ``by_contributor()`` pays owners. Contributor level: every submitter and owner,
        those owning nothing at 0. ``provenance["ownership"]`` lists the dropped rows;
        ``provenance["dataset_hash"]`` becomes that of the submitted ``dataset`` (default the
        one provenance was computed on) and the owned data's is kept in the ownership record.
        """
        data = self._check_rows(dataset)
        ownership = {
            **self.summary(),
            "owned_dataset_hash": attribution.provenance.get("dataset_hash"),
        }
        if attribution.players == "points":
            n_kept = int(self.kept.sum())
            if len(attribution) != n_kept:
                raise ValidationError(
                    f"the attribution has {len(attribution)} points but the owned data has "
                    f"{n_kept}; value Provenance.owned() and pass that result"
                )
            values = np.zeros(self.n_samples)
            values[self.kept] = attribution.values
            stderr = None
            if attribution.stderr is not None:
                stderr = np.zeros(self.n_samples)
                stderr[self.kept] = attribution.stderr
            counts = None
            if attribution.counts is not None:
                counts = np.zeros(self.n_samples, dtype=np.int64)
                counts[self.kept] = attribution.counts
            names = [str(i) for i in range(self.n_samples)]
            contributors: Any = self.owner
        else:
            ids = list(self.contributors.index)
            by_name = dict(zip(attribution.names, range(len(attribution)), strict=True))
            missing = [n for n in attribution.names if n not in ids]
            if missing:
                raise ValidationError(
                    f"attribution players {missing[:5]} are not contributors of the data set "
                    "this provenance was computed for"
                )

            def pick(array: np.ndarray | None, dtype: Any) -> np.ndarray | None:
                if array is None:
                    return None
                return np.array(
                    [array[by_name[c]] if c in by_name else 0 for c in ids], dtype=dtype
                )

            values = pick(attribution.values, float)
            stderr = pick(attribution.stderr, float)
            counts = pick(attribution.counts, np.int64)
            names, contributors = ids, None
        return Attribution(
            values,
            names,
            stderr=stderr,
            counts=counts,
            method=attribution.method,
            parameters=attribution.parameters,
            seed=attribution.seed,
            provenance={
                **attribution.provenance,
                "dataset_hash": data.content_hash(),
                "ownership": ownership,
            },
            players=attribution.players,
            contributors=contributors,
            diagnostics=attribution.diagnostics,
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: parameters, dropped rows and copies per (copier, owner)."""
        pairs = self.who_copied_whom()
        return {
            **self.parameters,
            "dropped_rows": self.dropped,
            "copies": [
                {"copier": r.copier, "owner": r.owner, "kind": r.kind, "rows": int(r.rows)}
                for r in pairs.itertuples()
            ],
        }

    def __repr__(self) -> str:
        pairs = self.who_copied_whom()
        said = "; ".join(f"{r.copier} <- {r.owner}: {r.rows} {r.kind}" for r in pairs.itertuples())
        return (
            f"Provenance({self.n_samples} rows, {int(self.kept.sum())} kept, "
            f"copies: {said or 'none'})"
        )

    def _repr_html_(self) -> str:
        head = f"<p><b>Provenance</b> &middot; {html.escape(repr(self))}</p>"
        return head + self.contributors.to_html()


def provenance(
    dataset: Dataset,
    ledger: Any,
    *,
    near_threshold: float = 0.05,
    unregistered: str = "error",
) -> Provenance:
    """Decide who owns each row of ``dataset``: the first registrant of it or of a copy of it.

    Parameters
    ----------
    dataset : Dataset
        The submitted rows, with the contributor column naming who submitted each.
    ledger : Ledger
        A :class:`~openattrib.ledger.Ledger` whose contribution registry
        (``append_contribution``) holds the submissions.
    near_threshold : float, default 0.05
        Rows whose root-mean-square difference, in standard deviations per feature, is
        below this are near duplicates (the audit's ``near_threshold``); 0 keeps exact
        duplicates only.
    unregistered : {"error", "own"}
        Rows whose content no registration holds: refuse (the error names them), or treat
        them as their submitter's own, ranked after every registered row.

    Returns
    -------
    Provenance

    Examples
    --------
    >>> import tempfile, pathlib, openattrib as oa
    >>> ds = oa.Dataset([[0.0], [5.0], [0.0]], [0, 1, 0], contributors=["a", "a", "b"])
    >>> with oa.Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
    ...     _ = led.append_contribution("a", ds.subset([0, 1]))
    ...     _ = led.append_contribution("b", ds.subset([2]))
    ...     prov = provenance(ds, led)
    >>> prov.owner.tolist(), prov.kept.tolist()
    (['a', 'a', 'a'], [True, True, False])
    """
    if not isinstance(dataset, Dataset):
        raise ValidationError(
            f"dataset must be an openattrib Dataset, got {type(dataset).__name__}"
        )
    if not hasattr(ledger, "holders"):
        raise ValidationError(
            "ledger must be an openattrib Ledger (with a contribution registry), got "
            f"{type(ledger).__name__}; open one with oa.Ledger(path)"
        )
    if unregistered not in UNREGISTERED:
        raise ValidationError(f"unregistered must be one of {UNREGISTERED}, got {unregistered!r}")
    n = dataset.n_samples
    if dataset.contributors is None:
        submitter = np.array([f"row{i}" for i in range(n)], dtype=object)
    else:
        submitter = np.asarray(dataset.contributors, dtype=object)
    digests = dataset.row_digests()
    holding = ledger.holders(digests)
    first = {digest: found[0] for digest, found in holding.items()}
    missing = [i for i, d in enumerate(digests) if d not in first]
    if missing and unregistered == "error":
        raise ValidationError(
            f"{len(missing)} row(s) of the data set were never registered in the ledger "
            f"(rows {missing[:10]}{' ...' if len(missing) > 10 else ''}, submitted by "
            f"{sorted(set(submitter[missing].tolist()))[:5]}); register them with "
            "Ledger.append_contribution (or `openattrib ledger register`), or pass "
            "unregistered='own' to treat them as their submitter's own"
        )
    registration = np.array([first[d].index if d in first else -1 for d in digests], np.int64)
    registrant = np.array(
        [first[d].contributor if d in first else submitter[i] for i, d in enumerate(digests)],
        dtype=object,
    )
    # the submitter's own registration of each row (-1: it never registered that content)
    own = np.array(
        [
            next((r.index for r in holding.get(d, ()) if r.contributor == submitter[i]), -1)
            for i, d in enumerate(digests)
        ],
        dtype=np.int64,
    )
    rank = np.where(registration >= 0, registration, _LATE)
    order = list(dict.fromkeys(submitter.tolist()))
    found = audit(dataset, near_threshold=near_threshold)  # the one duplicate detector
    neighbours: dict[int, dict[int, tuple[str, float, float]]] = {i: {} for i in range(n)}
    for row, other in zip(
        found.exact_duplicates["row"], found.exact_duplicates["duplicate_of"], strict=True
    ):
        neighbours[int(row)][int(other)] = ("exact", 0.0, 0.0)
        neighbours[int(other)][int(row)] = ("exact", 0.0, 0.0)
    near = found.near_duplicates
    for row, other, distance, rms in zip(
        near["row"], near["near_row"], near["distance"], near["rms_distance"], strict=True
    ):
        neighbours[int(row)][int(other)] = ("near", float(distance), float(rms))
        neighbours[int(other)][int(row)] = ("near", float(distance), float(rms))
    owner = registrant.copy()
    kept = np.ones(n, dtype=bool)
    original = np.full(n, -1, dtype=np.int64)
    records = []
    for row in sorted(range(n), key=lambda i: (rank[i], i)):  # originals before their copies
        earlier = [s for s in neighbours[row] if (rank[s], s) < (rank[row], row)]
        if earlier:
            source = min(earlier, key=lambda s: (rank[s], s))
            kind, distance, rms = neighbours[row][source]
            kept[row], original[row], owner[row] = False, source, owner[source]
            own_registration = int(registration[source])
        elif owner[row] != submitter[row]:  # registered first by someone else, original absent
            source, kind, distance, rms = -1, "exact", 0.0, 0.0
            own_registration = int(registration[row])
        else:
            continue
        records.append(
            (
                row,
                submitter[row],
                kind,
                source,
                owner[row],
                distance,
                rms,
                int(own[row]),
                own_registration,
                bool(kept[row]),
            )
        )
    copies = pd.DataFrame.from_records(records, columns=_EVIDENCE).sort_values("row")
    copies = copies.reset_index(drop=True).astype({"row": np.int64, "original_row": np.int64})
    table = _contributor_table(submitter, owner, kept, order)
    parameters = {
        "near_threshold": float(near_threshold),
        "unregistered": unregistered,
        "n_unregistered": len(missing),
        "n_samples": n,
        "n_kept": int(kept.sum()),
        "dataset_hash": dataset.content_hash(),
    }
    return Provenance(
        owner, submitter, registration, kept, original, copies, table, parameters, dataset
    )


def _contributor_table(
    submitter: np.ndarray, owner: np.ndarray, kept: np.ndarray, order: list[str]
) -> pd.DataFrame:
    ids = list(dict.fromkeys([*order, *owner.tolist()]))
    rows = []
    for c in ids:
        mine = submitter == c
        copied = mine & ((owner != c) | ~kept)
        sources = pd.Series(owner[copied]).value_counts()
        rows.append(
            (
                int(mine.sum()),
                int(((owner == c) & kept).sum()),
                int(copied.sum()),
                ", ".join(f"{name}: {count}" for name, count in sources.items()),
            )
        )
    return pd.DataFrame.from_records(
        rows,
        columns=["submitted", "owned", "copied", "copied_from"],
        index=pd.Index(ids, name="contributor"),
    )
