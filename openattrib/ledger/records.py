"""The typed records a ledger stores: attribution runs, allocations and contributions.

Each entry is canonical JSON (sorted keys, UTF-8, no NaN; :func:`openattrib._io.canonical_json`)
of one record plus its own position ``index`` in the log, so reordering stored rows is
detected. Token amounts are written as decimal strings so that readers in languages with
53-bit numbers (JavaScript) keep them exact.

``run`` records hold everything needed to reproduce a result: the method, its parameters, the
seed, the full provenance dict (dataset content hash, model, scorer, versions, ...) and the
result's hash. ``batch`` records hold the RFC 6962 Merkle root of many leaves kept beside the
log (for example one record per paid inference), their number and a free-form ``context``
naming what the leaves are. ``allocation`` records hold the payout (contributor -> amount), the pool, the
policy, the allocation's hash, the index of the run it came from and (``source``) that run's
result hash when the allocation knows it. ``contribution`` records register what a
contributor submitted without the data: the contributor, the number of rows and the RFC 6962
Merkle root (hex) over the rows' 32-byte content digests in ascending byte order (so the root
does not depend on the order the rows were submitted in); the digests themselves are kept
beside the log (see :mod:`openattrib.ledger.registry`) so rows can be proven and looked up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..errors import LedgerError, UnsupportedError, ValidationError
from ..result import package_version

__all__ = [
    "SCHEMA",
    "KINDS",
    "LedgerEntry",
    "package_version",
    "run_record",
    "allocation_record",
    "contribution_record",
    "batch_record",
    "parse_entry",
]

SCHEMA = 1
KINDS = ("run", "allocation", "batch", "contribution")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _result_hash(obj: Any, what: str) -> str:
    value = obj.result_hash()
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ValidationError(
            f"{what}.result_hash() must return a lower-case hex SHA-256 (64 characters), "
            f"got {value!r}"
        )
    return value


def _counts(counts: Any) -> list[int] | None:
    return None if counts is None else [int(c) for c in counts]


def run_record(attribution: Any) -> dict[str, Any]:
    """The ledger record of an attribution run (without its ``index``).

    ``attribution`` is anything with ``method``, ``parameters`` (dict), ``seed``,
    ``provenance`` (dict) and ``result_hash()`` -- an :class:`openattrib.Attribution`.
    """
    try:
        method = attribution.method
        parameters = attribution.parameters
        seed = attribution.seed
        provenance = attribution.provenance
        result_hash = _result_hash(attribution, "attribution")
    except AttributeError as exc:
        raise UnsupportedError(
            "append_run needs an Attribution-like object with method, parameters, seed, "
            f"provenance and result_hash(); {type(attribution).__name__} lacks {exc.name!r}"
        ) from None
    if not isinstance(parameters, Mapping) or not isinstance(provenance, Mapping):
        raise ValidationError("attribution.parameters and attribution.provenance must be dicts")
    provenance = dict(provenance)
    record = {
        "kind": "run",
        "schema": SCHEMA,
        "method": str(method),
        "parameters": dict(parameters),
        "seed": seed,
        "provenance": provenance,
        "result_hash": result_hash,
        "level": getattr(attribution, "level", None),
        "counts": _counts(getattr(attribution, "counts", None)),
        "dataset_hash": provenance.get("dataset_hash"),
        "estimator": provenance.get("model", provenance.get("estimator")),
        "package_version": provenance.get("package_version") or package_version(),
        "recorded_by": f"openattrib {package_version()}",
    }
    return record


def allocation_record(allocation: Any, run: int | None) -> dict[str, Any]:
    """The ledger record of an allocation (without its ``index``).

    ``allocation`` is anything with ``amounts`` (contributor -> int), ``pool`` (int),
    ``policy`` (str) and ``result_hash()``.
    """
    try:
        amounts = allocation.amounts
        pool = allocation.pool
        policy = allocation.policy
        allocation_hash = _result_hash(allocation, "allocation")
    except AttributeError as exc:
        raise UnsupportedError(
            "append_allocation needs an Allocation-like object with amounts, pool, policy and "
            f"result_hash(); {type(allocation).__name__} lacks {exc.name!r}"
        ) from None
    if not isinstance(amounts, Mapping):
        raise ValidationError(f"allocation.amounts must be a dict, got {type(amounts).__name__}")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        raise ValidationError(f"allocation.pool must be a non-negative int, got {pool!r}")
    clean: dict[str, str] = {}
    for name, amount in amounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValidationError(
                f"allocation amount for {name!r} must be a non-negative int (token base units), "
                f"got {amount!r}"
            )
        clean[str(name)] = str(amount)
    total = sum(int(v) for v in clean.values())
    if total > pool:
        raise ValidationError(
            f"allocation pays out {total} but its pool is only {pool}; amounts must sum to at "
            "most the pool"
        )
    source = getattr(allocation, "source", None)
    if source is not None and not (isinstance(source, str) and _HEX64.match(source)):
        raise ValidationError(
            f"allocation.source must be the result_hash of an attribution, got {source!r}"
        )
    return {
        "kind": "allocation",
        "schema": SCHEMA,
        "amounts": clean,
        "pool": str(pool),
        "total": str(total),
        "policy": str(policy),
        "allocation_hash": allocation_hash,
        "run": run,
        "source": source,
        "recorded_by": f"openattrib {package_version()}",
    }


def contribution_record(contributor: str, digests: list[bytes]) -> dict[str, Any]:
    """The ledger record of a contribution (without its ``index``).

    ``digests`` are the rows' 32-byte content digests, already sorted; the record keeps
    their count and Merkle root, not the digests.
    """
    from .merkle import root

    return {
        "kind": "contribution",
        "schema": SCHEMA,
        "contributor": contributor,
        "n_rows": len(digests),
        "rows_root": root(digests).hex(),
        "recorded_by": f"openattrib {package_version()}",
    }


def batch_record(root: bytes, size: int, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ledger record of a batch of ``size`` leaves whose Merkle root is ``root``."""
    if not isinstance(root, bytes) or len(root) != 32:
        raise ValidationError("a batch root must be a 32-byte SHA-256 hash")
    if context is not None and not isinstance(context, Mapping):
        raise ValidationError(f"batch context must be a dict, got {type(context).__name__}")
    return {
        "kind": "batch",
        "schema": SCHEMA,
        "root": root.hex(),
        "size": int(size),
        "context": dict(context or {}),
        "recorded_by": f"openattrib {package_version()}",
    }


def parse_entry(data: bytes, index: int) -> dict[str, Any]:
    """Decode stored entry bytes and check they are a canonical record for position ``index``.

    Raises :class:`LedgerError` naming the problem.
    """
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"entry {index} is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(record, dict):
        raise LedgerError(f"entry {index} is not a JSON object")
    try:  # the same bytes canonical_json gives, minus its numpy handling (not needed here)
        canonical = json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except ValueError as exc:
        raise LedgerError(f"entry {index} cannot be canonical JSON: {exc}") from None
    if canonical != data:
        raise LedgerError(f"entry {index} is not in canonical JSON form")
    if record.get("index") != index:
        raise LedgerError(
            f"entry stored at position {index} says it is entry {record.get('index')!r} "
            "(entries were reordered or replaced)"
        )
    if record.get("kind") not in KINDS:
        raise LedgerError(f"entry {index} has unknown kind {record.get('kind')!r}")
    return record


def check_source(allocation_record: dict[str, Any], run: dict[str, Any]) -> None:
    """Refuse to link an allocation to a run whose result it was not computed from."""
    source = allocation_record.get("source")
    if source is not None and source != run.get("result_hash"):
        raise ValidationError(
            f"the allocation was computed from result {source[:12]}..., but run entry "
            f"{run.get('index', '(new)')} holds result {str(run.get('result_hash'))[:12]}...; "
            "link it to the run it came from"
        )


def check_derivable(allocation: Any, run: dict[str, Any]) -> None:
    """Refuse to link an allocation that does not follow from the run record ``run``.

    The allocation's values (and standard errors) must be the run's: together with the run's
    recorded level, counts, method, parameters, seed and dataset hash they must give the
    run's ``result_hash``. Then :func:`~openattrib.rewards.allocate` is run again on them
    with the allocation's recorded policy and parameters (``allocation.recompute``; the
    ledger does not import the rewards package), and every field of the result
    (shares, amounts, status, grid, parameters) must equal the allocation's.
    """
    from ..result import Attribution

    where = f"run entry {run['index']}" if "index" in run else "the run appended with it"
    check_source({"source": getattr(allocation, "source", None)}, run)
    if not callable(getattr(allocation, "recompute", None)):
        raise UnsupportedError(
            f"linking an allocation to a run needs an openattrib Allocation (its values and "
            f"policy are recomputed from the run), got {type(allocation).__name__}"
        )
    if run.get("level") is None:
        raise ValidationError(
            f"{where} does not record its result's level and counts (an older ledger, or not "
            "an openattrib Attribution), so an allocation cannot be checked against it; "
            "append the allocation without linking it to a run"
        )
    try:
        candidate = Attribution(
            list(allocation.values.values()),
            allocation.names,
            stderr=None if allocation.stderr is None else list(allocation.stderr.values()),
            counts=run.get("counts"),
            method=run.get("method", "unknown"),
            parameters=run.get("parameters"),
            seed=run.get("seed"),
            provenance={"dataset_hash": run.get("dataset_hash")},
            players=run["level"],
        )
    except (ValidationError, TypeError, ValueError) as exc:
        raise ValidationError(f"the allocation's values cannot be {where}'s: {exc}") from None
    if candidate.result_hash() != run.get("result_hash"):
        raise ValidationError(
            f"the allocation's values are not the values of {where} (with the run's level, "
            "counts, method, parameters and seed they do not give its result_hash); "
            "allocate from the run's own Attribution"
        )
    try:
        again = allocation.recompute(candidate)
    except (ValidationError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValidationError(
            f"the allocation cannot be recomputed from {where} with its recorded policy "
            f"{allocation.policy!r} and parameters: {exc}"
        ) from None
    mine, theirs = allocation.to_dict(), again.to_dict()
    differ = [k for k in mine if k not in ("source", "method") and mine[k] != theirs[k]]
    if differ:
        raise ValidationError(
            f"the allocation differs from the one {where} gives under its recorded policy "
            f"{allocation.policy!r} and parameters (field(s) {', '.join(differ)}); it cannot "
            "be linked to that run"
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One stored entry: its position ``index``, RFC 6962 ``leaf_hash`` and raw ``data``."""

    index: int
    leaf_hash: bytes
    data: bytes

    @cached_property
    def record(self) -> dict[str, Any]:
        """The decoded record (a dict whose ``kind`` is one of ``KINDS``)."""
        return parse_entry(self.data, self.index)

    @property
    def kind(self) -> str:
        return self.record["kind"]

    def __repr__(self) -> str:
        return f"LedgerEntry(index={self.index}, kind={self.kind!r}, leaf_hash={self.leaf_hash.hex()[:16]}...)"
