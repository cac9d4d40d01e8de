"""Prefix walks of the logistic-regression fast path (:class:`.logistic.LogisticFastPath`).

Along a walk the class set only grows; consecutive prefixes with the same class set are
solved together from starts predicted by one quasi-Newton step per added row, and when a
new class appears the previous solution is mapped onto the larger class set as the next
start (see :mod:`.logistic` for the objective and solvers). Two-class problems with one row
per player are solved prefix by prefix as the walk reaches them (:mod:`.binary_walk`).
When the path values scikit-learn's replayed fit (``game == "fit"``) each needed prefix
is fitted on its own, from zero, as scikit-learn does.

:class:`LogisticWalks` is a mixin: the host class provides the data (``X``, ``X_valid``,
``label_index``, ``penalty``, ``n_classes``, ``n_valid``), the scoring, and the solver
hooks ``_solve``, ``_parts``, ``_convert``, ``_predict``, ``_hessian_free``,
``_binary_walker``, ``_damped_newton``, ``_single_class``, ``_replayed_outputs`` and
``game`` (``"generic"``: every needed prefix is reported for the generic refit).
"""

from __future__ import annotations

import numpy as np

from .binary_walk import BinaryWalker
from .multinomial import predictor_starts
from .scoring import ForeignInput

__all__ = ["LogisticWalks"]

ClassSet = tuple[int, ...]


def n_vectors(classes: ClassSet) -> int:
    """Coefficient vectors scikit-learn fits for a class set: 1 for two classes, else one each."""
    return 1 if len(classes) == 2 else len(classes)


class _WalkState:
    """A prefix walk's latest solution (optimal on its first ``n_fitted`` rows)."""

    def __init__(self) -> None:
        self.coef: np.ndarray | None = None
        self.classes: ClassSet | None = None
        self.n_fitted = 0
        self.walker: BinaryWalker | None = None


class LogisticWalks:
    """Prefix walks (the :class:`~openattrib.fast.base.FastPath` walk hooks)."""

    def start_walk(self) -> _WalkState:
        return _WalkState()

    def extend(
        self,
        state: _WalkState,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        sizes = np.array([len(s) for s in steps])
        ends = len(rows) - sizes.sum() + np.cumsum(sizes)
        outputs = np.zeros((len(steps), self.n_valid), dtype=np.int64)
        troubles: list = [None] * len(steps)
        if self.game != "optimum":  # every needed prefix is its own fit from zero
            chosen = [j for j in np.flatnonzero(needed) if present[j].sum() >= 2]
            if self.game == "generic":
                for j in chosen:
                    troubles[j] = "lbfgs_replay_mismatch"
            elif chosen:
                out, _ = self._replayed_outputs([rows[: ends[j]] for j in chosen], None)
                outputs[chosen] = out
            return outputs, troubles
        if self._sequential:
            return self._walk_sequential(state, rows, ends, needed, outputs, troubles)
        first = 0
        while first < len(steps):  # segments of consecutive steps with the same class set
            last = first
            while last + 1 < len(steps) and (present[last + 1] == present[first]).all():
                last += 1
            classes: ClassSet = tuple(int(c) for c in np.flatnonzero(present[first]))
            segment = np.arange(first, last + 1)
            keep = segment[needed[segment]]
            if keep.size and len(classes) >= 2:
                out, trouble = self._walk_segment(state, rows, ends[keep], classes)
                outputs[keep] = out
                for position, j in enumerate(keep):
                    troubles[j] = trouble[position]
            first = last + 1
        return outputs, troubles

    def prefix_walk(self, permutation, truncation=None):
        """Two classes, one row per player: each prefix solved only when the walk reaches it.

        Same contract as :meth:`FastPath.prefix_walk`; the lean loop computes no prefix past
        the truncation point and skips the block book-keeping (other cases: the base walk).
        """
        if not self._sequential or self.utility.player_rows is not None or self.game != "optimum":
            return super().prefix_walk(permutation, truncation)
        utility = self.utility
        failures = utility.failures
        n = utility.n_players
        permutation = np.asarray(permutation, dtype=np.int64)
        values = np.empty(n + 1, dtype=np.float64)
        values[0] = utility.empty_value
        failures["empty"] += 1
        X, labels = self.X[permutation], self.label_index[permutation]
        y = labels.astype(np.float64)
        walker = self._binary_walker()
        present = np.zeros((1, self.n_classes), dtype=bool)
        score = self.scoring.score
        # accuracy (the common case) straight from the decision values: the validation
        # points whose label is class 1 are those to predict positive (when every
        # validation label is a training class)
        positive = None
        if self.scoring.mode == "accuracy" and (self.scoring.y_index >= 0).all():
            positive = self.scoring.y_index == 1
        X_valid_T = walker.X_valid_T
        for k in range(1, n + 1):
            if truncation is not None and truncation(k - 1, values[k - 1]):
                values[k:] = values[k - 1]
                return values, k
            present[0, labels[k - 1]] = True
            rows = permutation[:k]
            if not present[0, 1 - labels[0]]:  # one class so far
                values[k], delta = self._single_class(int(labels[0]), rows)
            elif walker.solve(X[:k], y[:k]):
                if positive is not None:
                    hits = np.count_nonzero((walker.w @ X_valid_T > 0) == positive)
                    values[k], delta = hits / self.n_valid, None
                    continue
                try:
                    values[k], delta = score(walker.outputs()[None, :], present)[0], None
                except (ForeignInput, ValueError):
                    values[k], delta = self._generic(rows)
            else:
                values[k], delta = self._fallback("not_converged", rows)
            if delta:
                failures.update(delta)
        return values, n + 1

    def _walk_sequential(self, state, rows, ends, needed, outputs, troubles):
        """Two classes: each needed prefix solved from the previous one (:mod:`.binary_walk`)."""
        if state.walker is None:
            state.walker = self._binary_walker()
        walker = state.walker
        X, y = self.X[rows], self.label_index[rows].astype(np.float64)
        for j in np.flatnonzero(needed):
            end = int(ends[j])
            if walker.solve(X[:end], y[:end]):
                outputs[j] = walker.outputs()
            else:
                troubles[j] = "not_converged"
        return outputs, troubles

    def _walk_segment(
        self, state: _WalkState, rows: np.ndarray, ends: np.ndarray, classes: ClassSet
    ) -> tuple[np.ndarray, list]:
        """Solve the prefixes ending at ``ends`` (all with class set ``classes``)."""
        used = rows[: ends[-1]]
        mask = (np.arange(len(used))[:, None] < ends[None, :]).astype(np.float64)
        start = self._convert(state.coef, state.classes, classes)
        starts = np.broadcast_to(start, (len(ends), start.size))
        if self._hessian_free(n_vectors(classes)):
            W, converged = self._solve(used, mask, starts, classes)
        else:
            W, converged = self._dense_walk_solve(state, used, mask, ends, starts, classes)
        if converged.any():
            best = int(np.flatnonzero(converged)[-1])
            state.coef, state.classes = W[best].copy(), classes
            state.n_fitted = int(ends[best])
        return self._predict(W, converged, classes)

    def _dense_walk_solve(self, state, used, mask, ends, starts, classes):
        """Dense Newton on the prefixes, from starts predicted row by row when possible."""
        objective, derivatives = self._parts(used, classes)
        if state.classes == classes and state.coef is not None and state.n_fitted > 0:
            old = (np.arange(len(used)) < state.n_fitted).astype(np.float64)[:, None]
            hessian = derivatives(old, state.coef[None, :])[2][0]
            labels = np.searchsorted(np.asarray(classes), self.label_index[used])
            try:
                predicted = predictor_starts(
                    hessian,
                    state.coef,
                    self.X[used[state.n_fitted :]],
                    labels[state.n_fitted :],
                    n_vectors(classes),
                    ends - state.n_fitted,
                )
            except np.linalg.LinAlgError:
                predicted = None
            if predicted is not None and np.isfinite(predicted).all():
                # keep a prediction only where it beats the previous solution
                better = objective(mask, predicted) < objective(mask, starts)
                starts = np.where(better[:, None], predicted, starts)
        return self._damped_newton(objective, derivatives, mask, starts)
