"""Full verification of a stored ledger: recompute everything from the entries.

Nothing stored is trusted except the entry bytes: leaves and every perfect-subtree node are
recomputed level by level and compared with the stored ones, each entry must be canonical
JSON that names its own position, the leaves kept beside each batch entry must hash to its
recorded root, and every signed checkpoint must still match the tree recomputed at its size. Memory is about two levels of hashes (~100 MB at 10**6 entries).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ..errors import LedgerError, VerificationError
from . import merkle, registry
from .checkpoint import Checkpoint, verify_checkpoint
from .records import parse_entry

__all__ = ["LedgerReport", "audit"]

logger = logging.getLogger("openattrib")
_MAX_PROBLEMS = 100


@dataclass
class LedgerReport:
    """Outcome of :meth:`Ledger.verify <openattrib.ledger.Ledger.verify>`.

    Attributes
    ----------
    ok : bool
        True when no problem was found (the report is also truthy then).
    size : int
        Number of stored entries.
    root : bytes
        Root hash recomputed from the stored entries.
    first_bad_index : int or None
        First entry found wrong. Entry-level problems (bytes, order, gaps) give the exact
        index; when only a stored tree node or a checkpoint disagrees, it is the first index
        of the smallest range shown to have changed (``None`` if no range can be named).
    problems : list of (index or None, message)
        Up to 100 problems, in the order found.
    checkpoints_checked : int
        Signed checkpoints compared with the recomputed tree.
    """

    ok: bool
    size: int
    root: bytes
    first_bad_index: int | None
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    checkpoints_checked: int = 0

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line for logs and the command line."""
        if self.ok:
            return (
                f"ledger OK: {self.size} entries, root {self.root.hex()}, "
                f"{self.checkpoints_checked} checkpoint(s) consistent"
            )
        first = self.problems[0][1] if self.problems else "unknown problem"
        where = "" if self.first_bad_index is None else f" at entry {self.first_bad_index}"
        return f"ledger verification FAILED{where}: {first} ({len(self.problems)} problem(s))"

    def raise_if_bad(self) -> None:
        """Raise :class:`VerificationError` with :meth:`summary` unless the ledger is OK."""
        if not self.ok:
            raise VerificationError(self.summary())


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int | None, str]] = []
        self.entry_first: int | None = None  # exact, from entry-level checks
        self.range_best: tuple[int, int] | None = None  # (width, first index) of node problems

    def entry(self, index: int, message: str) -> None:
        self.entry_first = index if self.entry_first is None else min(self.entry_first, index)
        self._add(index, message)

    def range(self, index: int | None, message: str, width: int = 1) -> None:
        """A problem with the ``width`` entries from ``index`` (``None``: not localised)."""
        if index is not None:
            candidate = (width, index)
            self.range_best = (
                candidate if self.range_best is None else min(self.range_best, candidate)
            )
        self._add(index, message)

    def _add(self, index: int | None, message: str) -> None:
        if len(self.items) < _MAX_PROBLEMS:
            self.items.append((index, message))

    @property
    def first(self) -> int | None:
        if self.entry_first is not None:
            return self.entry_first
        return None if self.range_best is None else self.range_best[1]


def _check_entries(
    db: sqlite3.Connection,
    problems: _Problems,
    progress: bool,
    contributions: dict,
    batches: dict[int, dict],
) -> list[bytes]:
    total = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    rows = db.execute("SELECT idx, data, leaf_hash FROM entries ORDER BY idx")
    leaves: list[bytes] = []
    expected = 0
    for idx, data, stored_leaf in tqdm(
        rows, total=total, disable=not progress, desc="verify entries", unit="entry"
    ):
        if idx != expected:
            problems.entry(expected, f"entries {expected}..{idx - 1} are missing (deleted)")
        if not isinstance(data, bytes):  # a cell rewritten with another SQLite type
            problems.entry(idx, f"entry {idx} is stored as {type(data).__name__}, not as bytes")
            data = str(data).encode("utf-8")
        leaf = merkle.leaf_hash(data)
        try:
            record = parse_entry(data, idx)
            if record["kind"] == "contribution":
                contributions[idx] = record
            elif record["kind"] == "batch":
                batches[idx] = record
        except LedgerError as exc:
            problems.entry(idx, str(exc))
        if leaf != stored_leaf:
            problems.entry(idx, f"entry {idx} does not match its stored leaf hash (data changed)")
        leaves.append(leaf)
        expected = idx + 1
    return leaves


def _check_batches(db: sqlite3.Connection, batches: dict[int, dict], problems: _Problems) -> None:
    """The leaves stored beside each batch entry must be exactly ``size`` byte strings that
    hash to the entry's Merkle root; leaves of no batch entry are extra rows."""
    leaves: dict[int, list[tuple[Any, Any]]] = {}
    for entry, idx, data in db.execute(
        "SELECT entry, idx, data FROM batch_leaves ORDER BY entry, idx"
    ):
        leaves.setdefault(entry, []).append((idx, data))
    for entry in sorted(set(leaves) - set(batches), key=str):
        where = entry if isinstance(entry, int) else None
        problems.range(where, f"batch leaves are stored for entry {entry!r}, which is no batch")
    for entry, record in batches.items():
        rows = leaves.get(entry, [])
        positions = [idx for idx, _ in rows]
        if positions != list(range(record["size"])):
            problems.entry(
                entry,
                f"batch entry {entry} records {record['size']} leaves but leaves "
                f"{_ranges(positions)} are stored (leaves deleted or inserted)",
            )
            continue
        wrong = [idx for idx, data in rows if not isinstance(data, bytes)]
        if wrong:
            problems.entry(entry, f"leaves {wrong} of batch entry {entry} are not stored as bytes")
            continue
        if merkle.root([data for _, data in rows]).hex() != record["root"]:
            problems.entry(
                entry,
                f"the {record['size']} stored leaves of batch entry {entry} do not hash to its "
                "recorded root (a leaf was changed)",
            )


def _ranges(positions: list[Any]) -> str:
    if not positions:
        return "none"
    return ", ".join(str(p) for p in positions[:10]) + (" ..." if len(positions) > 10 else "")


def _check_nodes(
    db: sqlite3.Connection,
    leaves: list[bytes],
    problems: _Problems,
    wanted: dict[tuple[int, int], bytes | None],
) -> None:
    """Recompute each level, compare with stored nodes, keep the ``wanted`` perfect hashes."""
    n = len(leaves)
    level_hashes = leaves
    level = 0
    while True:
        for lvl, idx in wanted:
            if lvl == level:
                wanted[(lvl, idx)] = level_hashes[idx]
        if len(level_hashes) < 2:
            break
        level += 1
        level_hashes = [
            merkle.node_hash(level_hashes[i], level_hashes[i + 1])
            for i in range(0, len(level_hashes) - 1, 2)
        ]
        stored = db.execute(
            "SELECT idx, hash FROM nodes WHERE level = ? AND idx < ? ORDER BY idx",
            (level, len(level_hashes)),
        )
        expected = 0
        for idx, node in stored:
            if idx != expected:
                problems.range(
                    expected << level, f"stored tree node ({level}, {expected}) is missing"
                )
            if node != level_hashes[idx]:  # also catches a cell of another type
                first, last = idx << level, ((idx + 1) << level) - 1
                problems.range(
                    first,
                    f"entries {first}..{last} do not hash to the stored tree node ({level}, {idx}) "
                    "(entries or the node were changed)",
                    width=1 << level,
                )
            expected = idx + 1
        if expected != len(level_hashes):
            problems.range(
                expected << level,
                f"stored tree node ({level}, {expected}) is missing",
                width=1 << level,
            )
    extra = db.execute(
        "SELECT level, idx FROM nodes WHERE ((idx + 1) << level) > ? ORDER BY level DESC LIMIT 1",
        (n,),
    ).fetchone()
    if extra is not None:
        covered = (extra[1] + 1) << extra[0]
        problems.range(
            n,
            f"stored tree nodes cover {covered} entries but only {n} remain "
            "(entries were deleted from the end)",
        )


def _checkpoint_cells_ok(row: tuple[Any, ...]) -> bool:
    _, size, root, origin, text = row
    return (
        isinstance(size, int)
        and size >= 0
        and isinstance(root, bytes)
        and isinstance(origin, str)
        and isinstance(text, str)
    )


def _root(wanted: dict[tuple[int, int], bytes | None], size: int) -> bytes:
    return merkle.tree_root(lambda level, index: wanted[(level, index)], size)


def audit(
    db: sqlite3.Connection, *, progress: bool = False, public_key: Any = None
) -> LedgerReport:
    """Verify the ledger held by ``db`` (inside one read transaction); see :class:`LedgerReport`."""
    problems = _Problems()
    contributions: dict[int, dict] = {}
    batches: dict[int, dict] = {}
    leaves = _check_entries(db, problems, progress, contributions, batches)
    _check_batches(db, batches, problems)
    for index, message in registry.check_roots(db, contributions):
        problems.entry(index, message)
    n = len(leaves)
    recorded = db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()
    try:
        recorded = int(recorded[0]) if recorded else n
    except (TypeError, ValueError):
        problems.range(None, f"the ledger's recorded size {recorded[0]!r} is not a number")
        recorded = n
    if recorded > n:
        problems.range(n, f"the ledger recorded {recorded} entries but only {n} remain")
    elif recorded < n:
        problems.range(recorded, f"{n - recorded} entries were added outside the ledger")
    checkpoints = db.execute("SELECT id, size, root, origin, text FROM checkpoints ORDER BY id")
    checkpoints = checkpoints.fetchall()
    damaged = [row for row in checkpoints if not _checkpoint_cells_ok(row)]
    for row in damaged:
        problems.range(None, f"stored checkpoint #{row[0]} has cells of the wrong type")
    checkpoints = [row for row in checkpoints if _checkpoint_cells_ok(row)]
    wanted: dict[tuple[int, int], bytes | None] = {}
    for size in {n, *(row[1] for row in checkpoints if row[1] <= n)}:
        wanted.update(dict.fromkeys(merkle.perfect_pieces(0, size)))
    _check_nodes(db, leaves, problems, wanted)
    checked = 0
    for cp_id, size, root, origin, text in checkpoints:
        try:
            cp = Checkpoint.parse(text)
            if public_key is not None:
                verify_checkpoint(text, public_key)
        except VerificationError as exc:
            problems.range(None, f"stored checkpoint #{cp_id} is invalid: {exc}")
            continue
        if (cp.size, cp.root, cp.origin) != (size, root, origin):
            problems.range(None, f"stored checkpoint #{cp_id} text does not match its columns")
        if size > n:
            problems.range(
                n,
                f"checkpoint #{cp_id} signed {size} entries but only {n} remain (entries deleted)",
            )
        elif _root(wanted, size) != cp.root:
            problems.range(
                None,
                f"entries 0..{size - 1} no longer hash to the root signed in checkpoint #{cp_id} "
                "(entries were rewritten together with their hashes)",
            )
        checked += 1
    root = _root(wanted, n)
    report = LedgerReport(
        ok=not problems.items,
        size=n,
        root=root,
        first_bad_index=problems.first,
        problems=problems.items,
        checkpoints_checked=checked,
    )
    log = logger.info if report.ok else logger.warning
    log(report.summary())
    return report
