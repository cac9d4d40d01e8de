"""Which model the logistic-regression fast path values, and scikit-learn's fit replayed.

Where scikit-learn's fit converges, the fast path (:class:`.logistic.LogisticFastPath`)
values the optimum of its objective, solved with warm starts; that is scikit-learn's model
within its solver tolerance. Where its L-BFGS stops short, the optimum is another model,
so every coalition is fitted by the replay of :mod:`.lbfgs_replay` instead, and where
the replay does not reproduce scikit-learn on the full data, by scikit-learn itself.
:class:`ModelChoice` makes that choice once (:attr:`ModelChoice.game`) and produces the
replayed outputs.

:class:`ModelChoice` is a mixin: the host class provides the data (``X``, ``label_index``,
``n_classes``, ``n_valid``, ``utility``), the estimator's parameters (``solver``, ``C``,
``fit_intercept``, ``max_iter``, ``tol``), ``_game`` (None until chosen) and ``_predict``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from .lbfgs_replay import LbfgsResult, lbfgs_fit
from .logistic_walk import ClassSet, n_vectors

__all__ = ["ModelChoice"]

log = logging.getLogger("openattrib")


class ModelChoice:
    """The ``game`` property and the replayed fits (see the module docstring)."""

    @property
    def game(self) -> str:
        """How coalitions are solved: ``"optimum"``, ``"fit"`` or ``"generic"``.

        Decided on first use from one scikit-learn fit of the estimator on the full
        training data. ``"optimum"``: the exact optimum of scikit-learn's objective by
        warm-started Newton, which is scikit-learn's model within its solver tolerance.
        ``"fit"``: scikit-learn's L-BFGS fit replayed on every coalition
        (:mod:`.lbfgs_replay`), for ``solver="lbfgs"`` estimators that stop short of the
        optimum: ``max_iter < 100``, ``tol > 1e-4``, or a full-data fit that ends with a
        ConvergenceWarning (``max_iter`` reached, or a failed line search) rather than by a
        convergence test. There the optimum would value another model than the one the
        estimator fits (digits on raw 0-16 pixels: the optimum's accuracy differs from
        scikit-learn's 100-iteration fit on most coalitions). ``"generic"``: the replay of
        that full-data fit does not reproduce scikit-learn's (its iteration count, or its
        coefficients to 1e-3 of the largest, e.g. after a change in scikit-learn's solver
        settings), so every coalition is refitted by scikit-learn, counted as
        ``failures["fast_fallback: lbfgs_replay_mismatch"]``.
        """
        if self._game is None:
            self._game = self._choose_game()
        return self._game

    def _choose_game(self) -> str:
        if self.solver != "lbfgs" or self.n_classes < 2:  # one class: no coalition is fitted
            return "optimum"
        model, warned = self._sklearn_full_fit()
        if self.max_iter < 100 or self.tol > 1e-4:
            reason = f"max_iter={self.max_iter}, tol={self.tol:g}"
        elif warned:
            reason = (
                f"its fit on the full training data warns ({int(np.max(model.n_iter_))} iterations)"
            )
        else:
            return "optimum"
        full, _ = self._replay(np.arange(self.X.shape[0]), None)
        reference = (
            np.hstack([model.coef_, model.intercept_[:, None]])
            if self.fit_intercept
            else model.coef_
        )
        scale = max(1.0, float(np.max(np.abs(reference))))
        if (
            full.n_iter != int(np.max(model.n_iter_))
            or full.W.shape != reference.shape
            or np.max(np.abs(full.W - reference)) > 1e-3 * scale
        ):
            log.warning(
                "the replay of scikit-learn's L-BFGS does not reproduce its fit on the full "
                "training data (%d iterations against %d); every coalition is refitted by "
                "scikit-learn",
                full.n_iter,
                int(np.max(model.n_iter_)),
            )
            return "generic"
        log.info(
            "LogisticRegression stops short of the optimum here (%s): every coalition's fit "
            "is scikit-learn's L-BFGS, replayed (no warm starts). Standardise the features or "
            "raise max_iter to value the converged model.",
            reason,
        )
        return "fit"

    def _sklearn_full_fit(self) -> tuple[Any, bool]:
        """A clone of the estimator fitted on all training rows; whether it warned."""
        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning

        train = self.utility.train
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = clone(self.utility.estimator).fit(train.X, train.y)
        warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return model, warned

    def _replay(self, rows: np.ndarray, weights: np.ndarray | None) -> tuple[LbfgsResult, ClassSet]:
        """scikit-learn's L-BFGS fit on ``rows`` (with ``weights``) and its class set."""
        present = self.label_index[rows]
        classes = np.unique(present)
        fit = lbfgs_fit(
            self.X[rows],
            np.searchsorted(classes, present),
            n_vectors(tuple(classes)),
            np.ones(len(rows)) if weights is None else weights,
            C=self.C,
            intercept=self.fit_intercept,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        return fit, tuple(int(c) for c in classes)

    def _unsolved(self, count: int) -> tuple[np.ndarray, list]:
        """No outputs: every coalition is refitted by the generic path (``game == "generic"``)."""
        outputs = np.zeros((count, self.n_valid), dtype=np.int64)
        return outputs, ["lbfgs_replay_mismatch"] * count

    def _replayed_outputs(
        self, row_sets: list[np.ndarray], row_weights: list[np.ndarray] | None
    ) -> tuple[np.ndarray, list]:
        """Validation outputs of scikit-learn's fit on each coalition, replayed."""
        outputs = np.zeros((len(row_sets), self.n_valid), dtype=np.int64)
        for j, rows in enumerate(row_sets):
            fit, classes = self._replay(rows, None if row_weights is None else row_weights[j])
            outputs[j] = self._predict(fit.W.reshape(1, -1), np.ones(1, dtype=bool), classes)[0][0]
        self.utility.failures["lbfgs_replay"] += len(row_sets)
        return outputs, [None] * len(row_sets)
