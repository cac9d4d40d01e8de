"""The contribution registry: who submitted which rows first, without storing the rows.

A contribution is one ``"contribution"`` entry of the log (contributor, number of rows and
the Merkle root of the rows' content digests) plus the digests themselves in the table
``contribution_rows(entry, position, digest)``, sorted by digest within a registration and
bound to the log by the entry's ``rows_root``: :meth:`Ledger.verify
<openattrib.ledger.Ledger.verify>` recomputes every root from the stored digests.

The ledger knows nothing about what a row *is*: it receives 32-byte digests (or anything
with a ``row_digests()`` method, such as :class:`openattrib.Dataset`, whose
:meth:`~openattrib.Dataset.row_digests` defines the canonical encoding) and answers
questions about them: which registration holds a digest first, and a Merkle proof that a
row is in a registration (:class:`RowProof`). A digest is a SHA-256 of the row's content;
it hides the row only as well as the row is hard to guess.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError, VerificationError
from . import merkle
from .merkle import HASH_SIZE
from .records import LedgerEntry, contribution_record

__all__ = ["ContributionRegistry", "Registration", "RowProof", "verify_row", "as_digests"]

logger = logging.getLogger("openattrib")

SCHEMA = """
CREATE TABLE IF NOT EXISTS contribution_rows (entry INTEGER NOT NULL, position INTEGER NOT NULL,
                                              digest BLOB NOT NULL,
                                              PRIMARY KEY (entry, position)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contribution_rows_by_digest ON contribution_rows (digest, entry);
"""
_CHUNK = 500  # SQLite host parameters per IN (...) query


@dataclass(frozen=True)
class Registration:
    """One registered contribution (what ``Ledger.append_contribution`` returns).

    Attributes
    ----------
    index : int
        The log entry of the registration (registrations are ordered by it).
    contributor : str
    n_rows : int
    rows_root : bytes
        RFC 6962 root over the sorted row digests.
    created : bool
        False when the same contributor had already registered exactly these rows: nothing
        was appended and ``index`` is the earlier registration.
    collisions : list of (index, contributor, n_rows)
        Earlier registrations by *other* contributors that already hold some of these rows
        (exact content), with how many: reported, never refused -- provenance decides who
        owns them.
    """

    index: int
    contributor: str
    n_rows: int
    rows_root: bytes
    created: bool = True
    collisions: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def n_colliding(self) -> int:
        return sum(count for _, _, count in self.collisions)


@dataclass(frozen=True)
class RowProof:
    """Proof that a row digest is in registration ``index`` (``n_rows`` rows, ``rows_root``).

    The registration entry itself is proven in the log with
    :meth:`Ledger.inclusion_proof <openattrib.ledger.Ledger.inclusion_proof>`; its record
    holds ``rows_root``.
    """

    index: int
    contributor: str
    digest: bytes
    position: int
    n_rows: int
    rows_root: bytes
    path: tuple[bytes, ...]

    def verify(self, digest: bytes | None = None) -> bool:
        """True when ``digest`` (default the proof's own) is at ``position`` under ``rows_root``."""
        return verify_row(self, self.digest if digest is None else digest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "openattrib-row-inclusion",
            "index": self.index,
            "contributor": self.contributor,
            "digest": self.digest.hex(),
            "position": self.position,
            "n_rows": self.n_rows,
            "rows_root": self.rows_root.hex(),
            "path": [h.hex() for h in self.path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowProof:
        try:
            return cls(
                index=_count(data["index"], "index"),
                contributor=str(data["contributor"]),
                digest=_digest(bytes.fromhex(data["digest"]), "digest"),
                position=_count(data["position"], "position"),
                n_rows=_count(data["n_rows"], "n_rows"),
                rows_root=_digest(bytes.fromhex(data["rows_root"]), "rows_root"),
                path=tuple(bytes.fromhex(h) for h in data["path"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, VerificationError):
                raise
            raise VerificationError(f"malformed row proof: {exc!r}") from None


def _digest(value: Any, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        raise VerificationError(
            f"{name} must be a {HASH_SIZE}-byte SHA-256 digest, got {value!r:.40}"
        )
    return bytes(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationError(f"{name} must be a non-negative int, got {value!r}")
    return value


def verify_row(proof: RowProof, digest: bytes, rows_root: bytes | None = None) -> bool:
    """Check that ``digest`` is in the registration whose Merkle root is ``rows_root``.

    ``rows_root`` defaults to the proof's; pass the one read from the (proven) ledger entry
    to not trust the proof's copy. False for any other digest, position or root.
    """
    root = proof.rows_root if rows_root is None else _digest(rows_root, "rows_root")
    return merkle.verify_inclusion(
        merkle.leaf_hash(_digest(digest, "digest")),
        proof.position,
        proof.n_rows,
        list(proof.path),
        root,
    )


def as_digests(rows: Any) -> list[bytes]:
    """Sorted 32-byte digests of ``rows``: an object with ``row_digests()`` or digests."""
    if hasattr(rows, "row_digests"):
        digests = list(rows.row_digests())
    elif isinstance(rows, (bytes, str)) or not isinstance(rows, Iterable):
        raise ValidationError(
            "dataset_rows must be a Dataset (anything with row_digests()) or a sequence of "
            f"32-byte row digests, got {type(rows).__name__}"
        )
    else:
        digests = list(rows)
    for position, digest in enumerate(digests):
        if not isinstance(digest, (bytes, bytearray)) or len(digest) != HASH_SIZE:
            raise ValidationError(
                f"row digest {position} must be {HASH_SIZE} bytes (a SHA-256 from "
                f"Dataset.row_digests()), got {type(digest).__name__} {digest!r:.40}"
            )
    if not digests:
        raise ValidationError("a contribution needs at least one row; got none")
    return sorted(bytes(d) for d in digests)


def store_rows(db: sqlite3.Connection, index: int, digests: Sequence[bytes]) -> None:
    db.executemany(
        "INSERT INTO contribution_rows(entry, position, digest) VALUES (?, ?, ?)",
        [(index, position, digest) for position, digest in enumerate(digests)],
    )


def stored_rows(db: sqlite3.Connection, index: int) -> list[bytes]:
    rows = db.execute(
        "SELECT digest FROM contribution_rows WHERE entry = ? ORDER BY position", (index,)
    )
    return [bytes(d) for (d,) in rows]


def holders(db: sqlite3.Connection, digests: Iterable[bytes]) -> dict[bytes, list[int]]:
    """For each registered digest, the registration entries holding it, in log order."""
    unique = list(dict.fromkeys(bytes(d) for d in digests))
    found: dict[bytes, list[int]] = {}
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        query = (
            f"SELECT DISTINCT digest, entry FROM contribution_rows WHERE digest IN ({marks}) "
            "ORDER BY entry"
        )
        for digest, entry in db.execute(query, chunk):
            found.setdefault(bytes(digest), []).append(int(entry))
    return found


def collisions(
    db: sqlite3.Connection, digests: Sequence[bytes], contributor: str, owners: dict[int, str]
) -> list[tuple[int, str, int]]:
    """Earlier registrations by other contributors holding some of ``digests``."""
    counts: dict[int, int] = {}
    for digest, entries in holders(db, digests).items():
        entry = entries[0]
        if owners[entry] != contributor:
            counts[entry] = counts.get(entry, 0) + sum(1 for d in digests if d == digest)
    return [(entry, owners[entry], count) for entry, count in sorted(counts.items())]


def row_path(digests: Sequence[bytes], digest: bytes) -> tuple[int, list[bytes]]:
    """Position of ``digest`` in the sorted ``digests`` and its Merkle audit path."""
    import bisect

    position = bisect.bisect_left(digests, digest)
    if position == len(digests) or digests[position] != digest:
        raise ValidationError(
            f"row digest {digest.hex()[:16]}... is not in this registration; check the row's "
            "content (features and label) or the registration index"
        )
    return position, merkle.inclusion_proof(list(digests), position)


def check_roots(
    db: sqlite3.Connection, records: dict[int, dict[str, Any]]
) -> list[tuple[int, str]]:
    """Problems between contribution records and their stored digests (for ``verify``)."""
    problems = []
    for index, record in records.items():
        digests = stored_rows(db, index)
        if len(digests) != record.get("n_rows") or merkle.root(digests).hex() != record.get(
            "rows_root"
        ):
            problems.append(
                (
                    index,
                    f"contribution {index}: the stored row digests ({len(digests)}) do not hash "
                    "to the registered rows_root (digests were changed, added or removed)",
                )
            )
    for (entry,) in db.execute("SELECT DISTINCT entry FROM contribution_rows ORDER BY entry"):
        if entry not in records:
            problems.append(
                (entry, f"row digests are stored for entry {entry}, not a contribution")
            )
    return problems


class _AlreadyRegisteredError(Exception):
    """Internal: abort an idempotent re-registration (the transaction rolls back)."""


class ContributionRegistry:
    """The contribution-registry methods of :class:`~openattrib.ledger.Ledger` (a mixin).

    They use the ledger's connection and its one append path (``_append``), so a
    registration and its row digests are written in one transaction.
    """

    _db: sqlite3.Connection
    _append: Callable[..., list[LedgerEntry]]
    _read: Callable[[], Any]
    _write: Callable[[], Any]
    entry: Callable[[int], LedgerEntry]

    def append_contribution(self, contributor: str, dataset_rows: Any) -> Registration:
        """Register the rows ``contributor`` submitted, in submission order (log order).

        Stores the number of rows and the Merkle root over their content digests (the
        digests sorted, so the row order does not matter), and the digests beside the log;
        never the data. Registering exactly the same rows again under the same name is
        idempotent (returns the earlier registration with ``created=False``). Rows already
        registered by someone else are *reported* in ``collisions`` (and logged), never
        refused: :func:`openattrib.rewards.provenance` gives them to the first registrant.

        Parameters
        ----------
        contributor : str
            The contributor's id (as in the data set's contributor column).
        dataset_rows : Dataset or sequence of bytes
            The submitted rows: a :class:`~openattrib.Dataset` (its
            :meth:`~openattrib.Dataset.row_digests` define a row's content) or their
            32-byte digests.

        Examples
        --------
        >>> import tempfile, pathlib, openattrib as oa
        >>> rows = oa.Dataset([[0.0, 1.0], [2.0, 3.0]], [0, 1])
        >>> with oa.Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
        ...     first = led.append_contribution("alice", rows)
        ...     again = led.append_contribution("alice", rows)
        >>> first.index, first.n_rows, again.created
        (0, 2, False)
        """
        if not isinstance(contributor, str) or not contributor:
            raise ValidationError(f"contributor must be a non-empty str, got {contributor!r}")
        digests = as_digests(dataset_rows)
        record = contribution_record(contributor, digests)
        found: dict[str, Any] = {}

        def build(index: int) -> dict[str, Any]:  # runs inside the append transaction
            owners = self._contributors()
            for earlier, name in owners.items():
                if (
                    name == contributor
                    and self.entry(earlier).record["rows_root"] == (record["rows_root"])
                ):
                    found["earlier"] = earlier
                    raise _AlreadyRegisteredError
            found["clashes"] = collisions(self._db, digests, contributor, owners)
            return dict(record)

        try:
            entry = self._append(
                [build], then=lambda new: store_rows(self._db, new[0].index, digests)
            )[0]
        except _AlreadyRegisteredError:
            return Registration(
                found["earlier"],
                contributor,
                len(digests),
                bytes.fromhex(record["rows_root"]),
                created=False,
            )
        clashes = found["clashes"]
        if clashes:
            logger.info(
                "contribution %d by %r: %d of its %d rows were registered earlier by %s",
                entry.index,
                contributor,
                sum(c for _, _, c in clashes),
                len(digests),
                ", ".join(f"{name!r} (entry {index})" for index, name, _ in clashes),
            )
        return Registration(
            entry.index,
            contributor,
            len(digests),
            bytes.fromhex(record["rows_root"]),
            collisions=clashes,
        )

    def _contributors(self) -> dict[int, str]:
        rows = self._db.execute(
            "SELECT idx, data FROM entries WHERE idx IN (SELECT DISTINCT entry FROM "
            "contribution_rows) ORDER BY idx"
        )
        return {idx: LedgerEntry(idx, b"", bytes(data)).record["contributor"] for idx, data in rows}

    def contributions(self) -> list[Registration]:
        """Every registration, in log (submission) order."""
        with self._read():
            out = []
            for index in self._contributors():
                record = self.entry(index).record
                out.append(
                    Registration(
                        index,
                        record["contributor"],
                        record["n_rows"],
                        bytes.fromhex(record["rows_root"]),
                    )
                )
            return out

    def holders(self, digests: Sequence[bytes]) -> dict[bytes, list[Registration]]:
        """For each registered row digest, every registration holding it, in log order.

        The first is the row's first registrant (its owner under
        :func:`openattrib.rewards.provenance`); digests never registered are absent.
        """
        with self._read():
            found = holders(self._db, digests)
            by_index = {r.index: r for r in self.contributions()}
            return {digest: [by_index[i] for i in entries] for digest, entries in found.items()}

    def row_proof(self, index: int, row: Any) -> RowProof:
        """Merkle proof that ``row`` (a one-row Dataset or a digest) is in registration ``index``.

        Verify it with ``proof.verify(digest)`` or :func:`openattrib.ledger.verify_row`
        against the ``rows_root`` of the entry, itself proven by :meth:`inclusion_proof`.
        """
        digests = as_digests(row)
        if len(digests) != 1:
            raise ValidationError(f"row must be one row or one digest, got {len(digests)} rows")
        with self._read():
            record = self.entry(index).record
            if record["kind"] != "contribution":
                raise ValidationError(f"entry {index} is a {record['kind']!r}, not a contribution")
            stored = stored_rows(self._db, index)
        position, path = row_path(stored, digests[0])
        return RowProof(
            index,
            record["contributor"],
            digests[0],
            position,
            len(stored),
            bytes.fromhex(record["rows_root"]),
            tuple(path),
        )
