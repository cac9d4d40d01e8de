"""The shared driver of all fast paths: prefix walks, batches, conventions and fallbacks.

A model-specific fast path subclasses :class:`FastPath` and implements three hooks:

``start_walk()``
    A fresh incremental state (no rows yet).
``extend(state, steps, needed, present=..., rows=...)``
    Add the rows of each step in ``steps`` (a list of row-index arrays) in turn and return
    the validation outputs after each step, shape ``(len(steps), n_valid)``, plus one
    ``trouble`` entry per step (``None`` when the output is exact). Rows of steps whose
    ``needed`` entry is False must still be added, but their outputs are ignored. The walk
    keeps the book for every path: ``present[j]`` says which classes the prefix up to step
    ``j`` contains (``None`` for regressors) and ``rows`` holds every row of the walk so far,
    this block's included, in order.
``outputs(row_sets)``
    The same for unrelated coalitions (a list of row-index arrays), vectorised where the
    algebra allows.

Outputs are class indices into ``utility.classes_`` for classifiers and predictions for
regressors. A ``trouble`` entry is either a reason string (numerical trouble: the coalition
is refitted generically and counted as ``failures["fast_fallback: <reason>"]``) or a tuple
``("replay", key)`` for a coalition the generic path would itself score with a documented
default (for example KNN with fewer rows than neighbours): it is scored once by the generic
path and its value and failure counts are replayed for every later coalition with the same key.

The driver applies the generic path's conventions: the empty coalition is
``utility.empty_value`` (counted as ``failures["empty"]``), classification coalitions with
one class are scored as the generic path scores them (counted as ``failures["single_class"]``),
and in a prefix walk failures are counted only for prefixes the walk actually uses.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from .scoring import ForeignInput, make_scoring

__all__ = ["FastPath"]

log = logging.getLogger("openattrib")

Trouble = str | tuple[str, Any] | None


class FastPath:
    """Base class of exact fast evaluation paths of a :class:`~openattrib.games.ModelUtility`."""

    #: largest number of prefixes computed together in a prefix walk
    max_block = 64
    #: largest number of coalitions computed together in a batch
    max_batch = 256
    #: prefixes per block in a truncated walk: the first block, doubled on each next block
    #: when ``grow_truncated_blocks`` (paths whose cost per prefix falls with the block
    #: size), else constant (paths that solve prefix by prefix: fewer wasted past the
    #: truncation point)
    truncated_block = 4
    grow_truncated_blocks = True

    def __init__(self, utility: Any) -> None:
        self.utility = utility
        self.scoring = make_scoring(utility)
        self.n_valid = utility.valid.n_samples
        self.classifier = bool(utility.is_classifier)
        if self.classifier:
            classes = utility.classes_
            self.n_classes = len(classes)
            self.label_index = np.searchsorted(classes, utility.train.y)
        self._memo: dict[Any, tuple[float, Counter]] = {}

    # -- hooks -------------------------------------------------------------------------
    def start_walk(self) -> Any:
        raise NotImplementedError

    def extend(
        self,
        state: Any,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list[Trouble]]:
        raise NotImplementedError

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list[Trouble]]:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------
    def _player_rows(self, player: int) -> np.ndarray:
        groups = self.utility.player_rows
        if groups is None:
            return np.array([player], dtype=np.int64)
        return groups[player]

    def _generic(self, rows: np.ndarray) -> tuple[float, Counter]:
        """Score ``rows`` with the generic refit; return the value and the failures it counted."""
        failures = self.utility.failures
        saved = Counter(failures)
        value = self.utility.score_rows(np.sort(rows))
        delta = failures - saved
        failures.clear()
        failures.update(saved)
        return value, delta

    def _memo_generic(self, key: Any, rows: np.ndarray) -> tuple[float, Counter]:
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._generic(rows)
        return hit

    def _fallback(self, reason: str, rows: np.ndarray) -> tuple[float, Counter]:
        value, delta = self._generic(rows)
        delta[f"fast_fallback: {reason}"] += 1
        key = f"fast_fallback: {reason}"
        if key not in self.utility.failures:
            log.debug("fast path %s fell back to a refit (%s)", type(self).__name__, reason)
        return value, delta

    def _resolve(self, trouble: Trouble, rows: np.ndarray) -> tuple[float, Counter]:
        if isinstance(trouble, tuple):
            return self._memo_generic(trouble, rows)
        return self._fallback(str(trouble), rows)

    def _score_rows_of(
        self,
        outputs: np.ndarray,
        troubles: list[Trouble],
        rows_of: Callable[[int], np.ndarray],
        present: np.ndarray | None,
        select: np.ndarray,
    ) -> tuple[np.ndarray, list[Counter | None]]:
        """Scores of the selected rows of ``outputs``; troubled ones refitted generically."""
        values = np.empty(len(select))
        deltas: list[Counter | None] = [None] * len(select)
        ok = np.array([troubles[j] is None for j in select], dtype=bool)
        if not self.classifier and ok.any():
            finite = np.isfinite(outputs[select[ok]]).all(axis=1)
            ok[np.flatnonzero(ok)[~finite]] = False
            for j in select[~ok]:
                if troubles[j] is None:
                    troubles[j] = "non_finite"
        if ok.any():
            chosen = select[ok]
            try:
                values[ok] = self.scoring.score(
                    outputs[chosen], None if present is None else present[chosen]
                )
            except (ForeignInput, ValueError):
                for position in np.flatnonzero(ok):
                    values[position], deltas[position] = self._generic(rows_of(select[position]))
        for position in np.flatnonzero(~ok):
            j = select[position]
            values[position], deltas[position] = self._resolve(troubles[j], rows_of(j))
        return values, deltas

    def _single_class(self, label: int, rows: np.ndarray) -> tuple[float, Counter]:
        return self._memo_generic(("single_class", label), rows)

    # -- prefix walk -------------------------------------------------------------------
    def prefix_walk(
        self,
        permutation: np.ndarray,
        truncation: Callable[[int, float], bool] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Same contract as :meth:`openattrib.games.Game.prefix_walk`."""
        utility = self.utility
        n = utility.n_players
        permutation = np.asarray(permutation, dtype=np.int64)
        values = np.empty(n + 1, dtype=np.float64)
        values[0] = utility.empty_value
        utility.failures["empty"] += 1
        evaluated = 1
        state = self.start_walk()
        walk = _Walk(self)
        deltas: list[Counter | None] = []
        computed = 0
        block = self.truncated_block if truncation is not None else self.max_block
        for k in range(1, n + 1):
            if truncation is not None and truncation(k - 1, values[k - 1]):
                values[k:] = values[k - 1]
                return values, evaluated
            if k > computed:
                stop = min(n, computed + block)
                block_values, deltas = walk.block(state, permutation[computed:stop])
                values[computed + 1 : stop + 1] = block_values
                first = computed + 1
                computed = stop
                if self.grow_truncated_blocks:
                    block = min(2 * block, self.max_block)
            delta = deltas[k - first]
            if delta:
                utility.failures.update(delta)
            evaluated += 1
        return values, evaluated

    # -- batch -------------------------------------------------------------------------
    def evaluate_batch(self, masks: np.ndarray) -> np.ndarray:
        """Values of the coalitions in the rows of ``masks`` (already validated)."""
        utility = self.utility
        values = np.empty(len(masks), dtype=np.float64)
        for start in range(0, len(masks), self.max_batch):
            chunk = range(start, min(start + self.max_batch, len(masks)))
            row_sets = [utility.rows(masks[i]) for i in chunk]
            regular: list[int] = []
            present_rows = []
            for j, rows in enumerate(row_sets):
                i = start + j
                if rows.size == 0:
                    values[i] = utility.empty_value
                    utility.failures["empty"] += 1
                    continue
                if self.classifier:
                    present = np.zeros(self.n_classes, dtype=bool)
                    present[self.label_index[rows]] = True
                    if present.sum() < 2:
                        values[i], delta = self._single_class(int(np.flatnonzero(present)[0]), rows)
                        utility.failures.update(delta)
                        continue
                    present_rows.append(present)
                regular.append(j)
            if not regular:
                continue
            chosen = [row_sets[j] for j in regular]
            outputs, troubles = self.outputs(chosen)
            present = np.array(present_rows) if self.classifier else None
            scores, deltas = self._score_rows_of(
                outputs, troubles, chosen.__getitem__, present, np.arange(len(chosen))
            )
            for position, j in enumerate(regular):
                values[start + j] = scores[position]
                if deltas[position]:
                    utility.failures.update(deltas[position])
        return values


class _Walk:
    """Book-keeping of one prefix walk: rows so far and class counts."""

    def __init__(self, path: FastPath) -> None:
        self.path = path
        self.rows: list[np.ndarray] = []
        self.n_rows = 0
        if path.classifier:
            self.class_counts = np.zeros(path.n_classes, dtype=np.int64)

    def block(self, state: Any, players: np.ndarray) -> tuple[np.ndarray, list[Counter | None]]:
        path = self.path
        if path.utility.player_rows is None:  # points: one row per player
            steps = list(players[:, None])
        else:
            steps = [path._player_rows(int(p)) for p in players]
        starts = self.n_rows + np.cumsum([0] + [len(s) for s in steps])
        self.rows.extend(steps)
        self.n_rows = int(starts[-1])
        all_rows = np.concatenate(self.rows) if len(self.rows) > 1 else self.rows[0]
        self.rows = [all_rows]

        def rows_of(j: int) -> np.ndarray:
            return all_rows[: starts[j + 1]]

        present = None
        needed = np.ones(len(steps), dtype=bool)
        single: dict[int, int] = {}
        if path.classifier:
            counts = np.empty((len(steps), path.n_classes), dtype=np.int64)
            running = self.class_counts
            for j, step in enumerate(steps):
                running = running + np.bincount(path.label_index[step], minlength=path.n_classes)
                counts[j] = running
            self.class_counts = running
            present = counts > 0
            n_present = present.sum(axis=1)
            for j in np.flatnonzero(n_present < 2):
                needed[j] = False
                single[int(j)] = int(np.flatnonzero(present[j])[0])
        outputs, troubles = path.extend(state, steps, needed, present=present, rows=all_rows)
        values = np.empty(len(steps))
        deltas: list[Counter | None] = [None] * len(steps)
        for j, label in single.items():
            values[j], deltas[j] = path._single_class(label, rows_of(j))
        select = np.flatnonzero(needed)
        if select.size:
            scores, chosen_deltas = path._score_rows_of(outputs, troubles, rows_of, present, select)
            values[select] = scores
            for position, j in enumerate(select):
                deltas[j] = chosen_deltas[position]
        return values, deltas
