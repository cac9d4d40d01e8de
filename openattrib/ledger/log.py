"""``Ledger``: an append-only, verifiable log of attribution runs and allocations in SQLite.

Storage design (one SQLite file, WAL journal, ``synchronous=FULL``, no server):

- ``entries(idx INTEGER PRIMARY KEY, data BLOB, leaf_hash BLOB)``: the canonical-JSON
  records and their RFC 6962 leaf hashes.
- ``nodes(level, idx, hash) WITHOUT ROWID``: every *perfect* subtree hash (``2**level``
  leaves starting at ``idx * 2**level``, ``level >= 1``), written when its last leaf is
  appended. That is ``n - popcount(n)`` rows for ``n`` entries (about one per entry), and an
  append writes one node on average (at most ``log2 n``).
- ``batch_leaves(entry, idx, data)``: the leaves of each ``batch`` entry (kept beside the
  tree: the entry holds only their Merkle root, so a batch of many records is one append).
- ``checkpoints``: every signed checkpoint the ledger issued; ``meta``: format, origin, size.
- ``contribution_rows(entry, position, digest)``: the sorted row digests of each
  ``contribution`` entry (:mod:`~openattrib.ledger.registry`), committed to by its
  ``rows_root``.

Any tree head, inclusion proof or consistency proof is a fold of ``O(log n)`` perfect
subtrees, so proofs in a log of a million entries cost a few dozen primary-key look-ups.
Each append is one ``BEGIN IMMEDIATE`` transaction (concurrent writers, even in other
processes, wait on the busy timeout and serialise; an entry's index is the size before it);
triggers refuse ``UPDATE`` and ``DELETE``. :meth:`Ledger.verify` trusts none of the stored
hashes: it recomputes every leaf and node from the entries and checks the signed checkpoints.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._io import canonical_json
from ..errors import LedgerError, ValidationError, VerificationError
from . import merkle, registry
from .audit import LedgerReport, audit
from .checkpoint import Checkpoint
from .keys import load_signing_key, read_signer_state, signer_state_path, write_signer_state
from .proofs import BatchProof, ConsistencyProof, InclusionProof
from .records import (
    LedgerEntry,
    allocation_record,
    batch_record,
    check_derivable,
    run_record,
)
from .registry import ContributionRegistry

__all__ = ["Ledger", "LedgerEntry"]

FORMAT = "openattrib.ledger/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL,
                                    leaf_hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,
                                  hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batch_leaves (entry INTEGER NOT NULL, idx INTEGER NOT NULL,
                                         data BLOB NOT NULL, PRIMARY KEY (entry, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY, size INTEGER NOT NULL,
                                        root BLOB NOT NULL, origin TEXT NOT NULL,
                                        text TEXT NOT NULL);
"""
_SCHEMA += registry.SCHEMA
_APPEND_ONLY = ("entries", "nodes", "checkpoints", "batch_leaves", "contribution_rows")


def _blob(value: Any, what: str, path: Path) -> bytes:
    """A stored BLOB cell; any other type means the file was damaged or edited."""
    if not isinstance(value, bytes):
        raise LedgerError(
            f"{what} in {path} is stored as {type(value).__name__}, not as bytes: the file is "
            "damaged or was edited; run `openattrib ledger verify` and restore it from a backup"
        )
    return value


def _connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open ``path`` without ever writing to it (or to its folder, when that is read-only).

    ``mode=ro`` is tried first. Reading a WAL database needs its ``-shm`` index, which SQLite
    cannot create in a read-only folder; there nobody can write either (a writer needs the
    same files), so the file is opened ``immutable``.
    """
    uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
        if not _folder_is_read_only(path.parent):
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)


def _folder_is_read_only(folder: Path) -> bool:
    """True when no file can be created in ``folder`` (tried, since root ignores modes)."""
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".openattrib-probe-")
    except OSError:
        return True
    os.close(handle)
    os.unlink(name)
    return False


class Ledger(ContributionRegistry):
    """Append-only, Merkle-verifiable log of runs and allocations in one SQLite file.

    Parameters
    ----------
    path : str or Path
        The database file; created (with its folder) unless ``create=False``.
    origin : str, optional
        The log's name in its checkpoints (fixed at creation; default a random
        ``openattrib/<hex>`` name). Must match when reopening.
    create : bool
        Create the file if missing (default True).
    busy_timeout : float
        Seconds to wait for another writer before failing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"
    >>> with Ledger(path) as led:
    ...     led.size
    0
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        origin: str | None = None,
        create: bool = True,
        busy_timeout: float = 60.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = bool(read_only)
        if self.path.is_dir():
            raise LedgerError(f"ledger path {str(self.path)!r} is a directory, not a ledger file")
        if not self.path.exists():
            if not create or self.read_only:
                raise LedgerError(f"ledger file not found: {self.path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.stat().st_size == 0:
            raise LedgerError(
                f"{self.path} is empty (0 bytes), so it is not a ledger (a ledger file is never "
                "empty); restore it from a backup, or delete it to start a new ledger"
            )
        self._closed = False
        try:
            self._connection = (
                _connect_read_only(self.path, busy_timeout)
                if self.read_only
                else sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from None
        try:
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._origin = self._read_meta(origin) if self.read_only else self._initialise(origin)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(f"{self.path} is not a usable openattrib ledger: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def _initialise(self, origin: str | None) -> str:
        with self._write():
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
            if "entries" in tables and "meta" not in tables:
                raise LedgerError(f"{self.path} is a SQLite file but not an openattrib ledger")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            for table in _APPEND_ONLY:
                for action in ("UPDATE", "DELETE"):
                    self._db.execute(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE "
                        f"{action} ON {table} BEGIN SELECT RAISE(ABORT, "
                        f"'the ledger is append-only: {action} on {table} is not allowed'); END"
                    )
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if not meta:
                if "entries" in tables and self._db.execute("SELECT 1 FROM entries").fetchone():
                    raise LedgerError(f"{self.path} has entries but no ledger metadata")
                stored = origin or f"openattrib/{secrets.token_hex(8)}"
                Checkpoint(stored, 0, merkle.EMPTY_ROOT)  # validates the origin
                self._db.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("origin", stored), ("size", "0")],
                )
                return stored
            return self._check_meta(meta, origin)

    def _read_meta(self, origin: str | None) -> str:
        """Check the metadata of an existing ledger without writing anything."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        missing = {"meta", "entries", "nodes", "checkpoints"} - tables
        if missing:
            raise LedgerError(
                f"{self.path} is not an openattrib ledger (no {', '.join(sorted(missing))} table)"
            )
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        return self._check_meta(meta, origin)

    def _check_meta(self, meta: dict[Any, Any], origin: str | None) -> str:
        if meta.get("format") != FORMAT:
            raise LedgerError(
                f"{self.path} has ledger format {meta.get('format')!r}, expected {FORMAT!r}"
            )
        stored = meta.get("origin")
        if not isinstance(stored, str) or not stored:
            raise LedgerError(f"{self.path} is damaged: its origin is {stored!r}, not a name")
        if origin is not None and origin != stored:
            raise LedgerError(
                f"{self.path} is the log {stored!r}, not {origin!r}; "
                "open it without origin= or with its own origin"
            )
        return stored

    @property
    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(
                f"the ledger {self.path} is closed; use it inside its `with` block "
                "(or open it again with oa.Ledger(path))"
            )
        return self._connection

    @contextmanager
    def _write(self) -> Iterator[None]:
        if self.read_only:
            raise LedgerError(f"the ledger {self.path} was opened read-only; it cannot be changed")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[None]:
        if self._db.in_transaction:  # already inside a snapshot
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _count(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()[0]

    def _perfect(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._db.execute("SELECT leaf_hash FROM entries WHERE idx = ?", (index,))
        else:
            row = self._db.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            )
        found = row.fetchone()
        if found is None:
            raise LedgerError(
                f"tree node (level {level}, index {index}) is missing from {self.path}; "
                "the file is damaged -- run Ledger.verify()"
            )
        return _blob(found[0], f"tree node ({level}, {index})", self.path)

    def _check_size(self, size: int | None, what: str = "size") -> int:
        current = self._count()
        if size is None:
            return current
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= current:
            raise ValidationError(
                f"{what} must be an int in 0..{current} (the ledger size), got {size!r}"
            )
        return size

    # -------------------------------------------------------------------- append
    def _append(
        self,
        builders: list[Callable[[int], dict[str, Any]]],
        then: Callable[[list[LedgerEntry]], None] | None = None,
    ) -> list[LedgerEntry]:
        """Append records in one transaction; ``builders[k](index)`` makes the k-th record.

        ``then(entries)`` runs inside the same transaction (side tables of the new entries).
        """
        out = []
        with self._write():
            size = self._count()
            recorded = self._db.execute("SELECT value FROM meta WHERE key='size'").fetchone()
            if recorded is None or str(recorded[0]) != str(size):
                raise LedgerError(
                    f"{self.path} is damaged: it records {recorded and recorded[0]!r} entries "
                    f"but holds {size}; "
                    "run Ledger.verify() and restore it from a backup"
                )
            fresh: dict[tuple[int, int], bytes] = {}
            for build in builders:
                record = build(size)
                record["index"] = size
                data = canonical_json(record)
                leaf = merkle.leaf_hash(data)
                self._db.execute(
                    "INSERT INTO entries(idx, data, leaf_hash) VALUES (?, ?, ?)", (size, data, leaf)
                )
                fresh[(0, size)] = leaf
                node, level, index = leaf, 0, size
                while index & 1:  # a right child completes its parent
                    left = fresh.get((level, index - 1)) or self._perfect(level, index - 1)
                    node = merkle.node_hash(left, node)
                    level, index = level + 1, index >> 1
                    fresh[(level, index)] = node
                    self._db.execute(
                        "INSERT INTO nodes(level, idx, hash) VALUES (?, ?, ?)", (level, index, node)
                    )
                out.append(LedgerEntry(size, leaf, data))
                size += 1
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'size'", (str(size),))
            if then is not None:
                then(out)
        return out

    def append_run(self, attribution: Any, allocation: Any = None) -> LedgerEntry:
        """Record an attribution run (and, optionally, the allocation made from it).

        With ``allocation`` both are appended in one transaction, the allocation right after
        the run (index ``entry.index + 1``) and pointing to it. Returns the run's entry.

        Examples
        --------
        >>> import tempfile, pathlib, openattrib as oa
        >>> attr = oa.Attribution([0.5, 0.5], names=["a", "b"], method="demo", seed=0)
        >>> with Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
        ...     entry = led.append_run(attr)
        >>> entry.index, entry.kind
        (0, 'run')
        """
        run = run_record(attribution)
        builders = [lambda index: dict(run)]
        if allocation is not None:
            alloc = allocation_record(allocation, run=None)
            check_derivable(allocation, run)
            builders.append(lambda index: {**alloc, "run": index - 1})
        return self._append(builders)[0]

    def append_allocation(self, allocation: Any, run: int | None = None) -> LedgerEntry:
        """Record an allocation, linked to the run entry at index ``run`` when given.

        A linked allocation must be derivable from the run: its values must be the run's
        (they reproduce the run's ``result_hash``) and recomputing it with its recorded
        policy and parameters must give it exactly; anything else is refused.
        """
        record = allocation_record(allocation, run=run)

        def build(index: int) -> dict[str, Any]:
            if run is not None:
                if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < index:
                    raise ValidationError(f"run must be the index of an earlier entry, got {run!r}")
                linked = self.entry(run).record
                if linked["kind"] != "run":
                    raise ValidationError(f"entry {run} is not an attribution run")
                check_derivable(allocation, linked)
            return dict(record)

        return self._append([build])[0]

    def append_batch(
        self, leaves: Sequence[bytes], *, context: Mapping[str, Any] | None = None
    ) -> LedgerEntry:
        """Record many leaves (e.g. one canonical record per inference) with one append.

        The entry holds the leaves' RFC 6962 Merkle root, their number and ``context``; the
        leaves are stored beside the log, so :meth:`batch_proof` can prove any one of them.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from openattrib import ledger
        >>> with Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
        ...     entry = led.append_batch([b"first", b"second", b"third"])
        ...     proof = led.batch_proof(entry.index, 1)
        ...     ledger.verify_batch_inclusion(proof, led.checkpoint(), b"second")
        True
        """
        data = []
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, (bytes, bytearray)):
                raise ValidationError(f"batch leaf {i} must be bytes, got {type(leaf).__name__}")
            data.append(bytes(leaf))
        if not data:
            raise ValidationError("a batch needs at least one leaf")
        record = batch_record(merkle.root(data), len(data), context)

        def build(index: int) -> dict[str, Any]:
            self._db.executemany(
                "INSERT INTO batch_leaves(entry, idx, data) VALUES (?, ?, ?)",
                [(index, i, leaf) for i, leaf in enumerate(data)],
            )
            return dict(record)

        return self._append([build])[0]

    def batch_leaves(self, index: int) -> list[bytes]:
        """The leaves of the batch entry at ``index``, checked against its recorded root."""
        record = self.entry(index).record
        if record["kind"] != "batch":
            raise ValidationError(f"entry {index} is a {record['kind']!r} entry, not a batch")
        rows = self._db.execute(
            "SELECT data FROM batch_leaves WHERE entry = ? ORDER BY idx", (index,)
        ).fetchall()
        leaves = [bytes(r[0]) for r in rows]
        if len(leaves) != record["size"] or merkle.root(leaves).hex() != record["root"]:
            raise LedgerError(
                f"the stored leaves of batch entry {index} do not match its recorded root; "
                "the file is damaged -- run Ledger.verify()"
            )
        return leaves

    def batch_proof(self, index: int, leaf: int, size: int | None = None) -> BatchProof:
        """Proof that leaf ``leaf`` of the batch entry ``index`` is in the log (of ``size``)."""
        with self._read():
            leaves = self.batch_leaves(index)
            if isinstance(leaf, bool) or not isinstance(leaf, int) or not 0 <= leaf < len(leaves):
                raise ValidationError(f"leaf must be an int in 0..{len(leaves) - 1}, got {leaf!r}")
            entry = self.entry(index)
            return BatchProof(
                leaf,
                len(leaves),
                tuple(merkle.inclusion_proof(leaves, leaf)),
                self.inclusion_proof(index, size),
                entry.data,
            )

    # --------------------------------------------------------------------- read
    @property
    def origin(self) -> str:
        """The log's name, the first line of its checkpoints."""
        return self._origin

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._count()

    def __len__(self) -> int:
        return self.size

    def entry(self, index: int) -> LedgerEntry:
        """The entry at ``index`` (``0 <= index < size``)."""
        with self._read():
            size = self._count()
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
                raise ValidationError(f"entry index must be an int in 0..{size - 1}, got {index!r}")
            row = self._db.execute(
                "SELECT data, leaf_hash FROM entries WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            raise LedgerError(f"entry {index} is missing from {self.path}; run Ledger.verify()")
        return LedgerEntry(
            index,
            _blob(row[1], f"leaf hash of entry {index}", self.path),
            _blob(row[0], f"entry {index}", self.path),
        )

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[LedgerEntry]:
        """Iterate over stored entries ``start <= index < end`` (streamed, not all in memory)."""
        stop = self.size if end is None else end
        query = "SELECT idx, data, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
        for idx, data, leaf in self._db.execute(query, (start, stop)):
            yield LedgerEntry(
                idx,
                _blob(leaf, f"leaf hash of entry {idx}", self.path),
                _blob(data, f"entry {idx}", self.path),
            )

    def kinds(self) -> dict[str, int]:
        """Number of entries of each kind (``{"run": 3, "allocation": 2}``)."""
        try:
            rows = self._db.execute(
                "SELECT json_extract(CAST(data AS TEXT), '$.kind'), COUNT(*) FROM entries GROUP BY 1"
            ).fetchall()
        except sqlite3.OperationalError:  # damaged entries, or SQLite without JSON functions
            counts: dict[str, int] = {}
            for entry in self.entries():
                counts[entry.kind] = counts.get(entry.kind, 0) + 1
            return counts
        return {str(kind): count for kind, count in rows}

    def check_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Refuse a checkpoint that is not a head of this ledger.

        Raises :class:`~openattrib.VerificationError` when the checkpoint names another log
        (origin), covers more entries than the ledger holds, or its root is not the root of
        the ledger's first ``checkpoint.size`` entries. The signature is not checked here.
        """
        if checkpoint.origin != self.origin:
            raise VerificationError(
                f"the checkpoint is for the log {checkpoint.origin!r}, but this ledger is the "
                f"log {self.origin!r}"
            )
        if checkpoint.size > self.size:
            raise VerificationError(
                f"checkpoint has {checkpoint.size} entries but the ledger only {self.size} "
                "(truncated?)"
            )
        if self.root(checkpoint.size) != checkpoint.root:
            raise VerificationError(
                f"the ledger's first {checkpoint.size} entries do not match the checkpoint's root"
            )

    def root(self, size: int | None = None) -> bytes:
        """RFC 6962 root hash of the first ``size`` entries (default: all)."""
        with self._read():
            return merkle.tree_root(self._perfect, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of the first ``size`` entries.

        Examples
        --------
        >>> import tempfile, pathlib, openattrib as oa
        >>> from openattrib import ledger
        >>> attr = oa.Attribution([1.0], names=["a"], method="demo")
        >>> with Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
        ...     entry = led.append_run(attr); _ = led.append_run(attr)
        ...     proof = led.inclusion_proof(entry.index)
        ...     ledger.verify_inclusion(proof, led.checkpoint())
        True
        """
        with self._read():
            size = self._check_size(size)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
                raise ValidationError(f"index must be an int in 0..{size - 1}, got {index!r}")
            path = merkle.tree_inclusion_proof(self._perfect, index, size)
            return InclusionProof(index, size, bytes(self._perfect(0, index)), tuple(path))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the first ``new_size`` entries extend the first ``old_size`` ones."""
        with self._read():
            new_size = self._check_size(new_size, "new_size")
            old_size = self._check_size(old_size, "old_size")
            if old_size > new_size:
                raise ValidationError(f"old_size {old_size} is larger than new_size {new_size}")
            path = merkle.tree_consistency_proof(self._perfect, old_size, new_size)
            return ConsistencyProof(old_size, new_size, tuple(path))

    # --------------------------------------------------------------- checkpoints
    def checkpoint(
        self,
        key: Any = None,
        *,
        origin: str | None = None,
        key_name: str | None = None,
        state: str | os.PathLike | None = None,
    ) -> Checkpoint:
        """The current tree head; signed (Ed25519) and recorded when ``key`` is given.

        A log must never sign two inconsistent heads (c2sp.org/tlog-checkpoint). Before
        signing, the whole ledger is verified (every leaf and tree node recomputed from the
        entries, every stored checkpoint compared), and the new head must be a consistent
        extension of the last head *this key* signed. That last head is kept where the signer
        controls it: the ``state`` file (default: the key file's path plus ``.state`` when
        ``key`` is a path), so an attacker who rewrites the ledger consistently and deletes
        its stored checkpoints still cannot get a conflicting head signed. Without a state
        file (a key object and no ``state=``) only the ledger's own checkpoints are checked.
        """
        origin = origin or self.origin
        if key is None:
            with self._read():
                size = self._count()
                return Checkpoint(origin, size, merkle.tree_root(self._perfect, size))
        signing_key = load_signing_key(key)
        state_path = signer_state_path(key, state)
        with self._write():
            report = audit(self._db, progress=False)
            if not report.ok:
                raise LedgerError(f"refusing to sign: {report.summary()}")
            size, root = report.size, report.root
            heads = read_signer_state(state_path) if state_path is not None else {}
            last = self._db.execute(
                "SELECT size, root FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
            previous = (
                [(int(last[0]), bytes(last[1]), "the ledger's last checkpoint")] if last else []
            )
            if origin in heads:
                previous.append((*heads[origin], f"the signer state {state_path}"))
            for old_size, old_root, where in previous:
                # every stored node was just recomputed from the entries, so roots are trusted
                if old_size > size or merkle.tree_root(self._perfect, old_size) != old_root:
                    raise LedgerError(
                        f"refusing to sign: the log (size {size}) is not a consistent extension "
                        f"of the head signed at size {old_size} (recorded in {where}); the "
                        "history was rewritten -- run Ledger.verify()"
                    )
            cp = Checkpoint(origin, size, root).sign(signing_key, key_name)
            self._db.execute(
                "INSERT INTO checkpoints(size, root, origin, text) VALUES (?, ?, ?, ?)",
                (size, root, origin, cp.text),
            )
            if state_path is not None:  # before COMMIT: a failed write signs nothing
                heads[origin] = (size, root)
                write_signer_state(state_path, heads)
        return cp

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint this ledger signed, oldest first."""
        rows = self._db.execute("SELECT id, text FROM checkpoints ORDER BY id").fetchall()
        for cp_id, text in rows:
            if not isinstance(text, str):
                raise LedgerError(
                    f"stored checkpoint #{cp_id} in {self.path} is a {type(text).__name__}, not "
                    "text: the file is damaged; run `openattrib ledger verify`"
                )
        return [Checkpoint.parse(text) for _, text in rows]

    # ------------------------------------------------------------------- verify
    def verify(self, *, public_key: Any = None, progress: bool = True) -> LedgerReport:
        """Recompute every leaf and tree node from the stored entries and check them.

        Detects changed bytes, deleted, inserted or reordered entries, damaged tree nodes and
        a log that no longer matches a checkpoint it signed (whose signatures are checked too
        when ``public_key`` is given). Returns a report whose ``first_bad_index`` is the first
        entry found wrong (``None`` when all is well); ``report.raise_if_bad()`` turns a
        failure into :class:`~openattrib.errors.VerificationError`.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with Ledger(pathlib.Path(tempfile.mkdtemp()) / "l.sqlite") as led:
        ...     led.verify().ok
        True
        """
        with self._read():
            return audit(self._db, progress=progress, public_key=public_key)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the database connection (further use raises :class:`LedgerError`)."""
        if not self._closed:
            self._connection.close()
            self._closed = True

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r}, origin={self.origin!r})"
