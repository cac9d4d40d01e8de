"""Replication- and split-robust payouts: similarity-discounted Shapley, point sums by owner.

Shapley values reward replication: when a contributor's rows appear under ``k`` more
identities, the identities are perfect substitutes and their summed Shapley value can exceed
the original's (the replication experiment measures +124% on the demo). Agarwal, Dahleh and
Sarkar ("A Marketplace for Data: An Algorithmic Solution", EC 2019, the *Robust-Shapley*
allocation) discount each seller's Shapley value by its similarity to the others:

    psi_c = phi_c * exp(-strength * sum_{m != c} SIM(c, m)).

Here a contributor's similarity to another, ``SIM(c, m)``, is the fraction of ``c``'s rows
that have an exact (same content digest) or near duplicate (the gaming audit's KD-tree
search) among ``m``'s rows, so distinct data is never discounted.

**Guarantee** (for the default ``strength = ln 2``; our derivation, in the paper's spirit).
Let ``v`` be monotone (adding players never lowers it) with ``n`` players, and let player
``i`` be replaced by ``k + 1`` perfect replicas (identities holding the same rows, so any one
of them adds what ``i`` added and the others then add nothing). The replicas' summed
Shapley value is at most ``n(k+1)/(n+k)`` times ``phi_i``: the first replica in a random
order is preceded by ``s`` other players with probability at most ``n(k+1)/(n+k)`` times
the uniform ``1/n``, and the marginals it then collects are non-negative. Each replica has
``SIM = 1`` with the ``k`` others, so the discounted sum is at most
``(k+1) 2**-k n/(n+k) * phi_i <= phi_i`` for every ``k >= 1``: **replicating never raises a
player's total robust value above its honest Shapley value**. (It bounds the value, not
the share of a pool: other players' values move too; the replication experiment measures
shares.) Splitting one's distinct rows among identities is not replication, has
``SIM = 0`` and is not discounted; see :func:`openattrib.rewards.provenance` for copies
of other people's rows, which should be removed, not discounted.

**Splitting** is the manipulation no contributor-level value resists. When an owner deals
its rows among ``k + 1`` identities, the contributor game itself changes: coalitions can
now hold part of its rows. On the demo, contributor-level Shapley pays the split identities
+52/81/108% more share at k = 1, 2, 3. Banzhaf keeps the owner's *summed value* exactly
for a split in two (Lehrer 1988, "An axiomatization of the Banzhaf value", 2-efficiency:
two players merged into one get the sum of their values, in any game), but every other
player's Banzhaf value falls, so the owner's *share* still grows; for three or more parts
not even the sum is kept (merging two parts changes the third's value). Han, Wooldridge, Rogers,
Ohrimenko & Tschiatschek ("Replication Robust Payoff Allocation in Submodular Cooperative
Games", IEEE Trans. AI 2022, arXiv:2006.14583) study replication -- identities holding
perfect substitutes of one player's resource -- in monotone submodular games and give
conditions on a semivalue's weights under which the replicator's total does not grow
with the number of replicas; the Shapley value fails them. None of these speaks to a
split, which adds no substitute.

:func:`split_robust` values *points* and pays each owner the sum of its points' positive
values. **Guarantee** (exact, no assumption on the game): the point-level game's utility
reads rows, never the contributor column, so a point's value does not depend on who
holds the other points; a sum over an owner's points is additive, so any regrouping of
its rows among identities leaves the group's total and every other owner's value
unchanged, and so does the pool share under the proportional policy (the clip at 0 being
per point, not per identity). With registry deduplication first
(:meth:`~openattrib.rewards.Provenance.owned`), resubmitted rows are removed before
valuation, so resubmitting under one's own name or as sybils changes nothing either.
The price: a contributor's harmful rows are not charged against its useful ones (no
split-invariant non-negative payout can charge them: the owner would move them to a
separate identity), and point values are noisier than contributor values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..errors import ValidationError
from ..result import Attribution
from .audit import audit
from .policies import coerce_values

__all__ = [
    "contributor_similarity",
    "similarity_discount",
    "robust_shapley",
    "split_robust",
    "DEFAULT_STRENGTH",
]

#: ``ln 2``: replicas are discounted by ``2**-k``, the smallest strength with the guarantee.
DEFAULT_STRENGTH = math.log(2)


def contributor_similarity(dataset: Dataset, *, near_threshold: float = 0.05) -> pd.DataFrame:
    """``SIM[c, m]``: the fraction of ``c``'s rows with an exact or near duplicate in ``m``'s.

    Exact duplicates are rows with the same :meth:`~openattrib.Dataset.row_digests`; near
    duplicates come from :func:`openattrib.rewards.audit` with ``near_threshold``. The
    diagonal is 0. Rows are contributors (``c``), columns the others (``m``).

    Examples
    --------
    >>> import openattrib as oa
    >>> ds = oa.Dataset([[0.0], [9.0], [0.0]], [0, 1, 0], contributors=["a", "a", "b"])
    >>> sim = contributor_similarity(ds)
    >>> float(sim.loc["b", "a"]), float(sim.loc["a", "b"])
    (1.0, 0.5)
    """
    if not isinstance(dataset, Dataset) or dataset.contributors is None:
        raise ValidationError(
            "contributor_similarity needs a Dataset with a contributor column; "
            "build it with Dataset(..., contributors=...)"
        )
    owner = np.asarray(dataset.contributors, dtype=object)
    ids = dataset.contributor_ids
    code = {c: j for j, c in enumerate(ids)}
    hits = np.zeros((dataset.n_samples, len(ids)), dtype=bool)  # row r has a twin in m
    for row, others in enumerate(_twins(dataset, near_threshold)):
        hits[row, [code[c] for c in set(owner[sorted(others)].tolist())]] = True
    counts = np.array([np.sum(owner == c) for c in ids], dtype=float)
    matrix = np.vstack([hits[owner == c].sum(axis=0) for c in ids]) / counts[:, None]
    np.fill_diagonal(matrix, 0.0)
    return pd.DataFrame(matrix, index=pd.Index(ids, name="contributor"), columns=ids)


def _twins(dataset: Dataset, near_threshold: float) -> list[set[int]]:
    """Per row, the other rows that are exact (same digest) or near duplicates of it."""
    twins: list[set[int]] = [set() for _ in range(dataset.n_samples)]
    groups: dict[bytes, list[int]] = {}
    for row, digest in enumerate(dataset.row_digests()):
        groups.setdefault(digest, []).append(row)
    for rows in groups.values():
        for row in rows if len(rows) > 1 else ():
            twins[row].update(r for r in rows if r != row)
    near = audit(dataset, near_threshold=near_threshold).near_duplicates
    for row, other in zip(near["row"], near["near_row"], strict=True):
        twins[int(row)].add(int(other))
        twins[int(other)].add(int(row))
    return twins


def similarity_discount(
    values: Any, similarity: pd.DataFrame, *, strength: float = DEFAULT_STRENGTH
) -> Attribution:
    """Robust-Shapley: ``values[c] * exp(-strength * sum_m similarity[c, m])``.

    Parameters
    ----------
    values : Attribution, Series or dict
        Contributor-level values (Shapley values for the guarantee of this module).
    similarity : DataFrame
        Square, indexed and columned by contributor, entries in [0, 1]
        (:func:`contributor_similarity`).
    strength : float, default ln 2
        ``lambda`` of Agarwal et al.; ``>= ln 2`` keeps the replication guarantee.

    Examples
    --------
    >>> sim = pd.DataFrame([[0, 1.0], [1.0, 0]], index=["a", "b"], columns=["a", "b"])
    >>> similarity_discount({"a": 0.4, "b": 0.4}, sim).values.tolist()
    [0.2, 0.2]
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValidationError(f"strength must be a number >= 0, got {strength!r}")
    names, raw, stderr, _, _ = coerce_values(values)
    names = [str(n) for n in names]
    missing = [n for n in names if n not in similarity.index or n not in similarity.columns]
    if missing:
        raise ValidationError(
            f"similarity has no row/column for contributor(s) {missing[:5]}; compute it on the "
            "same data set with contributor_similarity(dataset)"
        )
    matrix = similarity.loc[names, names].to_numpy(dtype=float)
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0 or matrix.max() > 1:
        raise ValidationError("similarity entries must be finite numbers in [0, 1]")
    exposure = matrix.sum(axis=1) - np.diag(matrix)
    factor = np.exp(-float(strength) * exposure)
    base = values if isinstance(values, Attribution) else None
    return Attribution(
        np.asarray(raw, dtype=float) * factor,
        names,
        stderr=None if stderr is None else np.asarray(stderr, dtype=float) * factor,
        method=f"robust_shapley({base.method if base is not None else 'values'})",
        parameters={**(base.parameters if base else {}), "strength": float(strength)},
        seed=base.seed if base is not None else None,
        provenance=base.provenance if base is not None else {},
        players="contributors",
        diagnostics={"discount": dict(zip(names, factor.tolist(), strict=True))},
    )


def robust_shapley(
    values: Any,
    dataset: Dataset,
    *,
    strength: float = DEFAULT_STRENGTH,
    near_threshold: float = 0.05,
) -> Attribution:
    """Shapley ``values`` of ``dataset``'s contributors, discounted by their similarity.

    ``similarity_discount(values, contributor_similarity(dataset), strength=strength)``.
    """
    similarity = contributor_similarity(dataset, near_threshold=near_threshold)
    return similarity_discount(values, similarity, strength=strength)


def split_robust(
    values: Attribution,
    dataset: Dataset | None = None,
    *,
    strength: float = DEFAULT_STRENGTH,
    near_threshold: float = 0.05,
) -> Attribution:
    """Pay each owner the sum of its points' positive values: a payout splitting cannot game.

    ``psi_c = sum over c's points i of max(phi_i, 0) * exp(-strength * t_i)``, where
    ``phi`` are point-level values (any method of :mod:`openattrib.methods` with
    ``players="points"``, ideally on the registry-deduplicated data of
    :meth:`~openattrib.rewards.Provenance.owned`) and ``t_i`` is the number of other rows
    of ``dataset`` that are exact or near duplicates of row ``i`` (Agarwal, Dahleh &
    Sarkar's similarity discount at point level; no discount without ``dataset``).

    Properties (proofs and assumptions in the docstring of ``openattrib.rewards.robust``):

    * **split-invariance**: regrouping an owner's rows among any number of identities,
      with no row added or removed, leaves every identity group's total and every other
      contributor's value unchanged -- exactly (up to float rounding of the sums), for a
      point-level method whose values do not read the contributor column (tested for
      Monte Carlo permutation Shapley with the same seed and for KNN-Shapley).
      ``allocate(..., policy="proportional")`` then pays the group what the owner got:
      the clip at 0 is applied per point, so splitting off harmful rows gains nothing
      either (a per-identity clip would pay for it).
    * **replication**: a row present ``k + 1`` times gets ``k`` twins and each copy is
      discounted by ``2**-k``; for a monotone point game the copies' total never exceeds
      the honest point value (the guarantee of ``robust_shapley``, stated in the module
      ``openattrib.rewards.robust``, applied to points). Registry deduplication removes
      such copies before valuation.

    Parameters
    ----------
    values : Attribution
        Point-level values whose ``contributors`` name each point's owner.
    dataset : Dataset, optional
        The rows ``values`` were computed on (same order), for the replica discount.
    strength : float, default ln 2
    near_threshold : float, default 0.05
        Near-duplicate threshold of the discount (:func:`openattrib.rewards.audit`).

    Returns
    -------
    Attribution
        Contributor level, no standard errors (a clipped sum of estimates has none that
        the per-point errors give); ``diagnostics`` hold per contributor the positive and
        negative (unpaid) parts and the number of discounted points.

    Examples
    --------
    >>> import openattrib as oa
    >>> att = oa.Attribution(
    ...     [0.3, -0.1, 0.2], ["0", "1", "2"], players="points", contributors=["a", "a", "b"]
    ... )
    >>> split_robust(att).values.tolist()
    [0.3, 0.2]
    """
    if not isinstance(values, Attribution) or values.level != "points":
        raise ValidationError(
            "split_robust needs point-level values (an Attribution with players='points'); "
            "value the data with players='points' (e.g. oa.knn_shapley or permutation_shapley "
            "on a points game)"
        )
    if values.contributors is None:
        raise ValidationError(
            "split_robust needs the owner of every point: value a Dataset with contributors "
            "(for owned data, Provenance.owned())"
        )
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValidationError(f"strength must be a number >= 0, got {strength!r}")
    phi = np.asarray(values.values, dtype=float)
    twins = np.zeros(phi.size)
    if dataset is not None:
        if not isinstance(dataset, Dataset) or dataset.n_samples != phi.size:
            raise ValidationError(
                f"dataset must be the {phi.size} rows the values were computed on, in the "
                f"same order; got {getattr(dataset, 'n_samples', type(dataset).__name__)!r} rows"
            )
        recorded = (values.provenance or {}).get("dataset_hash")
        if recorded and recorded != dataset.content_hash():
            raise ValidationError(
                f"dataset is not the data the values were computed on: its content hash "
                f"{dataset.content_hash()[:12]} differs from the values' {str(recorded)[:12]} "
                "(same rows in the same order, with the same contributors, are needed to "
                "match each value to its row)"
            )
        twins = np.array([len(t) for t in _twins(dataset, near_threshold)], dtype=float)
    paid = np.maximum(phi, 0.0) * np.exp(-float(strength) * twins)
    owner = np.asarray([str(c) for c in values.contributors], dtype=object)
    position = {c: i for i, c in enumerate(dict.fromkeys(owner.tolist()))}  # first-seen order
    ids = list(position)
    codes = np.fromiter((position[c] for c in owner), dtype=np.int64, count=owner.size)
    total = np.bincount(codes, weights=paid, minlength=len(ids))
    unpaid = np.bincount(codes, weights=np.minimum(phi, 0.0), minlength=len(ids))
    discounted = np.bincount(codes, weights=(twins > 0).astype(float), minlength=len(ids))
    return Attribution(
        total,
        ids,
        method=f"split_robust({values.method})",
        parameters={
            **values.parameters,
            "strength": float(strength) if dataset is not None else 0.0,
            "near_threshold": float(near_threshold),
        },
        seed=values.seed,
        provenance=dict(values.provenance),
        players="contributors",
        diagnostics={
            "aggregation": "sum of positive point values by owner",
            "n_points": dict(zip(ids, np.bincount(codes).tolist(), strict=True)),
            "unpaid_negative": dict(zip(ids, unpaid.tolist(), strict=True)),
            "discounted_points": dict(zip(ids, discounted.astype(int).tolist(), strict=True)),
        },
    )
