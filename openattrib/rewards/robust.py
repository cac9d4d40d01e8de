"""Replication-robust payouts: similarity-discounted Shapley (Agarwal, Dahleh & Sarkar 2019).

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

__all__ = ["contributor_similarity", "similarity_discount", "robust_shapley", "DEFAULT_STRENGTH"]

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
    groups: dict[bytes, list[int]] = {}
    for row, digest in enumerate(dataset.row_digests()):
        groups.setdefault(digest, []).append(row)
    for rows in groups.values():
        if len(rows) > 1:
            present = [code[c] for c in set(owner[rows].tolist())]
            for row in rows:
                hits[row, present] = True
    near = audit(dataset, near_threshold=near_threshold).near_duplicates
    for row, other in zip(near["row"], near["near_row"], strict=True):
        hits[row, code[owner[other]]] = True
        hits[other, code[owner[row]]] = True
    counts = np.array([np.sum(owner == c) for c in ids], dtype=float)
    matrix = np.vstack([hits[owner == c].sum(axis=0) for c in ids]) / counts[:, None]
    np.fill_diagonal(matrix, 0.0)
    return pd.DataFrame(matrix, index=pd.Index(ids, name="contributor"), columns=ids)


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
