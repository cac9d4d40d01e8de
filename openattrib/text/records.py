"""Per-inference records: canonical bytes a ledger batch commits to, and ``reproduce``.

An inference record is canonical JSON (:func:`openattrib._io.canonical_json`) of::

    {"format": "openattrib.text.inference/1", "index": <index manifest SHA-256>,
     "corpus_hash": ..., "token_dtype": "u8", "tokens": <hex of the little-endian ids>,
     "parameters": {...}, "spans": [[start, end, count, weight, [documents]], ...],
     "values": {contributor: value}, "result_hash": ..., "inference": <id or null>,
     "fee": <decimal string or null>, "split": {party or contributor: decimal string} or null}

Many records are committed to the ledger at once (``Ledger.append_batch``: one entry holding
their RFC 6962 Merkle root); :func:`reproduce` recomputes a record from the index and checks
it is the same, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._io import canonical_json
from ..errors import ValidationError, VerificationError
from .index import SpanIndex
from .scoring import TextAttribution, attribute_output

__all__ = ["inference_record", "batch_context", "reproduce", "RECORD_FORMAT"]

RECORD_FORMAT = "openattrib.text.inference/1"


def inference_record(
    attribution: TextAttribution,
    *,
    fee: int | None = None,
    split: Any = None,
    inference: str | None = None,
) -> bytes:
    """Canonical bytes of one attributed (and optionally paid) inference.

    ``split`` is the :class:`~openattrib.rewards.FeeSplit` of ``fee`` (its parties and
    contributor amounts are recorded as decimal strings).
    """
    if not isinstance(attribution, TextAttribution):
        raise ValidationError(
            f"inference_record needs the result of oa.text.attribute_output, got "
            f"{type(attribution).__name__}"
        )
    if split is not None and fee is not None and getattr(split, "fee", fee) != fee:
        raise ValidationError(f"the split is of a fee of {split.fee}, not {fee}")
    record = {
        "format": RECORD_FORMAT,
        "index": attribution.provenance["index_manifest_hash"],
        "corpus_hash": attribution.provenance["dataset_hash"],
        "token_dtype": attribution.tokens.dtype.str.lstrip("<|"),
        "tokens": attribution.tokens.astype(attribution.tokens.dtype.newbyteorder("<"))
        .tobytes()
        .hex(),
        "parameters": attribution.parameters,
        "spans": [s.to_list() for s in attribution.spans],
        "values": {n: float(v) for n, v in zip(attribution.names, attribution.values, strict=True)},
        "result_hash": attribution.result_hash(),
        "inference": inference,
        "fee": None if fee is None else str(int(fee)),
        "split": None if split is None else _split_dict(split),
    }
    return canonical_json(record)


def _split_dict(split: Any) -> dict[str, Any]:
    return {
        "parties": {p: str(a) for p, a in split.parties.items()},
        "contributors": {c: str(a) for c, a in split.contributors.items()},
    }


def batch_context(index: SpanIndex) -> dict[str, Any]:
    """What a ledger batch of this index's inference records says about them."""
    return {
        "format": RECORD_FORMAT,
        "index": index.manifest_hash,
        "corpus_hash": index.manifest["corpus_hash"],
    }


def reproduce(index: SpanIndex, record: bytes, *, rewards: Any = None) -> TextAttribution:
    """Recompute the attribution of a recorded inference and check it matches bit for bit.

    Raises :class:`~openattrib.errors.VerificationError` when the record was made with
    another index or when recomputing gives different bytes. ``rewards``, if given, is a
    callable ``(fee, attribution) -> FeeSplit`` used to recompute a recorded split (for
    example ``lambda fee, att: oa.rewards.split_fee(fee, att, shares=...)``).
    """
    try:
        data = json.loads(bytes(record).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise VerificationError(f"not an inference record ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise VerificationError(
            f"not an inference record (format {data.get('format') if isinstance(data, dict) else None!r})"
        )
    if data["index"] != index.manifest_hash:
        raise VerificationError(
            f"the inference was recorded against index {data['index'][:12]}..., but this index "
            f"is {index.manifest_hash[:12]}... (corpus {index.manifest['corpus_hash'][:12]}...); "
            "open the index it was recorded with"
        )
    dtype = np.dtype(data["token_dtype"]).newbyteorder("<")
    tokens = np.frombuffer(bytes.fromhex(data["tokens"]), dtype=dtype)
    parameters = {k: v for k, v in data["parameters"].items() if k != "rule"}
    attribution = attribute_output(index, tokens, **parameters)
    split = None
    if data["split"] is not None:
        if rewards is None:
            raise ValidationError("the record holds a fee split; pass rewards= to recompute it")
        split = rewards(int(data["fee"]), attribution)
    again = inference_record(
        attribution,
        fee=None if data["fee"] is None else int(data["fee"]),
        split=split,
        inference=data["inference"],
    )
    if again != bytes(record):
        raise VerificationError(
            "recomputing the inference from the index gives a different record; the record "
            "or the index was altered"
        )
    return attribution
