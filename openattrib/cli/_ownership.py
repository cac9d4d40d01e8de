"""Ownership for command-line runs: provenance of the rows a recipe values (value, reproduce)."""

from __future__ import annotations

from typing import Any

from ..data import Dataset

__all__ = ["ownership_of"]


def ownership_of(
    recipe: dict[str, Any], data: Dataset, valid: Dataset | None, ledger: Any, **options: Any
) -> Any:
    """Provenance of the training rows the recipe values, from ``ledger``'s registry.

    Ownership is decided on all of ``data`` as registered (raw features), then restricted
    to the recipe's training part (:meth:`~openattrib.rewards.Provenance.subset`);
    ``options`` (``near_threshold``, ``unregistered``) default to those the
    recipe recorded. Pass the result to :func:`openattrib.recipe.compute` as ``ownership``.
    """
    from ..recipe import prepare_data
    from ..rewards import provenance

    found = provenance(data, ledger, **{**(recipe.get("ownership") or {}), **options})
    raw_train, _ = prepare_data({**recipe, "standardize": False}, data, valid)
    if raw_train.n_samples == data.n_samples:
        return found
    # the training part is a subsequence of the data's rows: locate it by content
    digests, wanted = data.row_digests(), raw_train.row_digests()
    rows, at = [], 0
    for digest in wanted:
        while digests[at] != digest:
            at += 1
        rows.append(at)
        at += 1
    return found.subset(rows)
