"""L2 logistic regression utilities (binary and multinomial) by warm-started batched Newton.

scikit-learn's :class:`~sklearn.linear_model.LogisticRegression` (solvers ``lbfgs``,
``newton-cg``, ``newton-cholesky``; see ``_logistic_regression_path`` in
``sklearn/linear_model/_logistic.py``, version 1.9) fits on a coalition's ``n`` rows with
the classes *present in those rows* (``classes_ = unique(y)``):

* two classes ``a < b``: one coefficient vector, binary log-loss with ``b`` positive;
* three or more: one vector per present class, multinomial (softmax) log-loss in the
  symmetric parameterisation (no reference class);

minimising the mean loss plus ``||W||^2 / (2 C n)`` with the intercepts unpenalised.
Multiplied by ``n`` this is ``F = sum_i loss_i + ||W||^2 / (2C)``, which we solve by
Newton's method with step halving (:mod:`.multinomial` gives the two link functions, the
treatment of the multinomial intercepts' free shift, and the solver). ``F`` is strictly
convex (up to that shift), so Newton converges quadratically from any start (Nocedal &
Wright, *Numerical Optimization*, 2nd ed., 2006, ch. 3).

A coalition is solved for exactly its own class set, as scikit-learn does: a coalition of a
three-class problem that holds two classes is a binary fit. Along a prefix walk the class
set only grows; consecutive prefixes with the same class set are solved together (their
Hessians are one matrix product) from starts predicted by one quasi-Newton step per added
row, and when a new class appears the previous solution is mapped onto the larger class
set as the next start (:mod:`.logistic_walk`). Batches of unrelated coalitions are grouped by class set and start
from the full-data solution restricted to that set. Each coalition is iterated until a full
Newton step is below ``STEP_TOL`` relative to the coefficients: the remaining error is then
of order ``STEP_TOL ** 2``, far below scikit-learn's own optimisation tolerance.

Problems above ``MAX_DENSE_COEFFICIENTS`` coefficients (vectors x (features + 1): digits'
10 classes x 65 = 650) are solved by Hessian-free Newton-CG (:mod:`.newton_cg`),
preconditioned by the inverse Hessian of the full data at its solution; a dense solve there
would cost more than scikit-learn's L-BFGS. Two-class walks solve prefix by prefix
(:mod:`.binary_walk`). Coalitions missing one row (leave-one-out) are solved together by a
chord iteration from the full solution with one inverse Hessian and a Woodbury correction
per row (:mod:`.logistic_loo`). Fits with
sample weights (bootstrap bags) go through :meth:`LogisticFastPath.weighted_outputs`.

The result is the exact optimum of scikit-learn's objective. scikit-learn's own solvers stop
at ``tol`` (L-BFGS: projected gradient below 1e-4 by default), so its coefficients differ
from the optimum by about that much: predictions agree except for validation points within
that distance of a decision boundary ("equal to scikit-learn's fit within tolerance").
A coalition whose iterations do not converge is refitted generically and counted as
``failures["fast_fallback: not_converged"]``.

Where scikit-learn's L-BFGS stops far from the optimum the optimum is another model than
the estimator's, so the path values scikit-learn's fit itself instead (``game == "fit"``,
see :mod:`.logistic_model`): every coalition is fitted from zero by the replay of
:mod:`.lbfgs_replay` (the same iterates as scikit-learn, several times faster), counted as
``failures["lbfgs_replay"]``, with no warm starts. That is the case for ``solver="lbfgs"``
with ``max_iter < 100`` or ``tol > 1e-4``, or when the fit on the full training data ends by
``max_iter`` or a failed line search (digits on raw 0-16 pixels: 100 of 100 iterations, and
the optimum's accuracy differs from the 100-iteration fit's on most coalitions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ValidationError
from .base import FastPath
from .binary_walk import BinaryWalker
from .logistic_loo import leave_one_out_chord
from .logistic_model import ModelChoice
from .logistic_walk import ClassSet, LogisticWalks, n_vectors
from .multinomial import damped_newton, link_parts
from .newton_cg import LogisticProblem, dense_preconditioner, newton_cg
from .scoring import NotSupported

__all__ = ["LogisticFastPath"]


STEP_TOL = 1e-7
MAX_NEWTON_ITER = 100
SUPPORTED_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")
#: above this many coefficients (vectors x (features + 1)) a dense Newton solve costs more
#: than scikit-learn's L-BFGS refit: such class sets use the Hessian-free Newton-CG solver
MAX_DENSE_COEFFICIENTS = 256
#: largest problem whose Newton-CG preconditioner is a dense inverse Hessian (else Jacobi)
MAX_DENSE_PRECONDITIONER = 2000
MAX_CG_ITER = 250
_CELLS = 4_000_000  # bound on the work arrays of one block of coalitions (float64 entries)


def _check_params(estimator: Any) -> tuple[float, bool]:
    params = estimator.get_params()
    allowed = {"C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio"}
    allowed |= {"max_iter", "n_jobs", "penalty", "random_state", "solver", "tol", "verbose"}
    allowed |= {"warm_start"}
    unknown = set(params) - allowed  # e.g. multi_class="ovr" in older scikit-learn
    if unknown:
        raise NotSupported(f"unmodelled parameters {sorted(unknown)}")
    if params["penalty"] not in ("deprecated", "l2"):
        raise NotSupported(f"penalty={params['penalty']!r} (only L2 is modelled)")
    if params["l1_ratio"] not in (0, 0.0, None):
        raise NotSupported(f"l1_ratio={params['l1_ratio']!r} (only L2 is modelled)")
    if params["solver"] not in SUPPORTED_SOLVERS:
        raise NotSupported(f"solver={params['solver']!r} (different objective or stochastic)")
    if params["class_weight"] is not None:
        raise NotSupported("class_weight is not modelled")
    if params["dual"]:
        raise NotSupported("dual=True")
    C = params["C"]
    if isinstance(C, (bool, np.bool_)) or not isinstance(C, (int, float, np.number)):
        raise NotSupported(f"C={C!r}")
    if not (0 < C < np.inf):
        raise NotSupported(f"C={C!r} (unpenalised fits may diverge)")
    max_iter, tol = params["max_iter"], params["tol"]
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, (int, np.integer)):
        raise NotSupported(f"max_iter={max_iter!r}")
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.number)):
        raise NotSupported(f"tol={tol!r}")
    if max_iter < 1 or not 0 <= tol < np.inf:
        raise NotSupported(f"max_iter={max_iter!r}, tol={tol!r}")
    if params["solver"] != "lbfgs":  # no replay of these solvers: only their optimum
        if max_iter < 100:
            raise NotSupported(f"max_iter={max_iter!r} < 100 (scikit-learn stops short)")
        if tol > 1e-4:
            raise NotSupported(f"tol={tol!r} > 1e-4 (scikit-learn stops short)")
    if params["fit_intercept"] not in (True, False):
        raise NotSupported(f"fit_intercept={params['fit_intercept']!r}")
    return float(C), bool(params["fit_intercept"])


class LogisticFastPath(ModelChoice, LogisticWalks, FastPath):
    """Prefix walks and batches for L2 :class:`sklearn.linear_model.LogisticRegression`."""

    def __init__(self, utility: Any) -> None:
        if not utility.is_classifier:
            raise NotSupported("LogisticRegression on a regression task")
        self.C, self.fit_intercept = _check_params(utility.estimator)
        params = utility.estimator.get_params()
        self.solver = params["solver"]
        self.max_iter, self.tol = int(params["max_iter"]), float(params["tol"])
        self._game: str | None = None
        super().__init__(utility)
        X = utility.train.X
        self.X = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X.copy()
        self.X_valid = (
            np.hstack([utility.valid.X, np.ones((self.n_valid, 1))])
            if self.fit_intercept
            else utility.valid.X
        )
        p = self.X.shape[1]
        self.penalty = np.full(p, 1.0 / self.C)
        if self.fit_intercept:
            self.penalty[-1] = 0.0
        m = n_vectors(tuple(range(self.n_classes))) if self.n_classes >= 2 else 1
        if self._hessian_free(m):
            # per coalition: scores, probabilities and CG products (rows x m), vectors (q)
            cost = X.shape[0] * 4 * m + 8 * m * p
        else:
            # per coalition: scores and weights (rows x m x m), gradient, Hessian and its solve
            cost = X.shape[0] * max(p, m * m + 2 * m) + 3 * (m * p) ** 2
        self.max_block = int(max(1, min(32, _CELLS // cost)))
        self.max_batch = self.max_block
        self._full: np.ndarray | None = None
        self._preconditioners: dict[tuple, Any] = {}
        self._full_inverse: np.ndarray | None = None
        self.loo_passes = 0  # data passes of the leave-one-out chord iteration
        # two classes and a dense problem: walks solve prefix by prefix (.binary_walk)
        self._sequential = self.n_classes == 2 and not self._hessian_free(1)
        if self._sequential:
            self.truncated_block, self.grow_truncated_blocks = 8, False

    def _hessian_free(self, m: int) -> bool:
        return m * self.X.shape[1] > MAX_DENSE_COEFFICIENTS

    def _binary_walker(self) -> BinaryWalker:
        return BinaryWalker(self.penalty, self.X_valid, MAX_NEWTON_ITER, STEP_TOL)

    def _damped_newton(self, objective, derivatives, mask, starts):
        return damped_newton(objective, derivatives, mask, starts, MAX_NEWTON_ITER, STEP_TOL)

    # -- one class set -------------------------------------------------------------------
    def _solve(
        self, rows: np.ndarray, mask: np.ndarray, W0: np.ndarray, classes: ClassSet
    ) -> tuple[np.ndarray, np.ndarray]:
        """Newton on ``F`` for the coalitions in the columns of ``mask`` (weights over ``rows``)."""
        if self._hessian_free(n_vectors(classes)):
            labels = np.searchsorted(np.asarray(classes), self.label_index[rows])
            problem = LogisticProblem(
                self.X[rows], labels, n_vectors(classes), self.penalty, self.fit_intercept
            )
            ratio = float(mask.sum(axis=0).mean()) / max(1, self._n_rows_of(classes))
            return newton_cg(
                problem,
                mask,
                W0,
                preconditioner=self._preconditioner(classes, ratio),
                max_iter=MAX_NEWTON_ITER,
                step_tol=STEP_TOL,
                max_cg=MAX_CG_ITER,
            )
        objective, derivatives = self._parts(rows, classes)
        return damped_newton(objective, derivatives, mask, W0, MAX_NEWTON_ITER, STEP_TOL)

    def _n_rows_of(self, classes: ClassSet) -> int:
        return int(np.isin(self.label_index, classes).sum())

    def _preconditioner(self, classes: ClassSet, ratio: float, at: np.ndarray | None = None):
        """Inverse dense Hessian of the rows of ``classes`` at the full solution, weighted
        ``ratio`` (bucketed to 1/40), shared by a batch of coalitions; None: Jacobi."""
        m = n_vectors(classes)
        if m * self.X.shape[1] > MAX_DENSE_PRECONDITIONER:
            return None
        bucket = max(1, round(40 * ratio))
        key = (classes, bucket)
        if at is None and key in self._preconditioners:
            return self._preconditioners[key]
        rows = np.flatnonzero(np.isin(self.label_index, classes))
        labels = np.searchsorted(np.asarray(classes), self.label_index[rows])
        problem = LogisticProblem(self.X[rows], labels, m, self.penalty, self.fit_intercept)
        point = at
        if point is None:
            everything = tuple(range(self.n_classes))
            point = self._convert(self._full_solution(), everything, classes)
        hessian = problem.dense_hessian(np.full(len(rows), bucket / 40.0), point)
        apply = dense_preconditioner(hessian)
        if at is None:
            if len(self._preconditioners) >= 16:
                self._preconditioners.pop(next(iter(self._preconditioners)))
            self._preconditioners[key] = apply
        return apply

    def _parts(self, rows: np.ndarray, classes: ClassSet):
        labels = np.searchsorted(np.asarray(classes), self.label_index[rows])
        return link_parts(
            self.X[rows], labels, n_vectors(classes), self.penalty, self.fit_intercept
        )

    def _convert(self, coef: np.ndarray | None, source: ClassSet | None, target: ClassSet):
        """A start for class set ``target`` from a solution for ``source``.

        Both are written as per-class scores (a binary ``w`` as ``-w/2, w/2``, absent classes
        zero); a binary target takes the difference of its two scores, a multinomial one
        the rows of its classes, centred.
        """
        p = self.X.shape[1]
        if coef is None or source is None:
            return np.zeros(n_vectors(target) * p)
        scores = np.zeros((self.n_classes, p))
        if len(source) == 2:
            scores[source[1]], scores[source[0]] = 0.5 * coef, -0.5 * coef
        else:
            scores[list(source)] = coef.reshape(len(source), p)
        if len(target) == 2:
            return scores[target[1]] - scores[target[0]]
        chosen = scores[list(target)]
        return (chosen - chosen.mean(axis=0)).ravel()

    def _predict(
        self, W: np.ndarray, converged: np.ndarray, classes: ClassSet
    ) -> tuple[np.ndarray, list]:
        labels = np.asarray(classes)
        if len(classes) == 2:
            outputs = labels[(W @ self.X_valid.T > 0).astype(np.int64)]
        else:
            p = self.X.shape[1]
            scores = W.reshape(len(W), len(classes), p) @ self.X_valid.T  # (B, m, n_valid)
            outputs = labels[np.argmax(scores, axis=1)]
        troubles: list = [None if ok else "not_converged" for ok in converged]
        return outputs.astype(np.int64), troubles

    # -- batches -------------------------------------------------------------------------
    def _full_solution(self) -> np.ndarray:
        """The solution on all training rows (all classes), the start of batch coalitions."""
        if self._full is None:
            everything: ClassSet = tuple(range(self.n_classes))
            rows = np.arange(self.X.shape[0])
            start = np.zeros((1, n_vectors(everything) * self.X.shape[1]))
            ones = np.ones((len(rows), 1))
            if self._hessian_free(n_vectors(everything)):
                labels = self.label_index
                problem = LogisticProblem(
                    self.X, labels, n_vectors(everything), self.penalty, self.fit_intercept
                )
                W, ok = newton_cg(
                    problem,
                    ones,
                    start,
                    preconditioner=self._preconditioner(everything, 1.0, at=start[0]),
                    max_iter=MAX_NEWTON_ITER,
                    step_tol=STEP_TOL,
                    max_cg=MAX_CG_ITER,
                )
            else:
                W, ok = self._solve(rows, ones, start, everything)
            self._full = W[0] if ok[0] else np.zeros_like(start[0])
        return self._full

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        return self._grouped(row_sets, None)

    def weighted_outputs(self, weights: np.ndarray) -> tuple[np.ndarray, list]:
        """Validation outputs of fits with sample weights, one row of ``weights`` per fit.

        Integer weights are repeated rows: a bootstrap bag is its draw counts on the full
        training data, no rows copied (scikit-learn's objective with ``sample_weight`` is
        the same sum with the penalty scaled by the weights' total). A fit's class set is
        the classes of its positively weighted rows; every fit must have two or more.
        """
        row_sets = [np.flatnonzero(w > 0) for w in weights]
        return self._grouped(row_sets, [w[r] for w, r in zip(weights, row_sets, strict=True)])

    def _grouped(
        self, row_sets: list[np.ndarray], row_weights: list[np.ndarray] | None
    ) -> tuple[np.ndarray, list]:
        """Solve coalitions grouped by class set, from the full-data solution."""
        if self.game == "fit":
            return self._replayed_outputs(row_sets, row_weights)
        if self.game == "generic":
            return self._unsolved(len(row_sets))
        outputs = np.zeros((len(row_sets), self.n_valid), dtype=np.int64)
        troubles: list = [None] * len(row_sets)
        groups: dict[ClassSet, list[int]] = {}
        for j, rows in enumerate(row_sets):
            counts = np.bincount(self.label_index[rows], minlength=self.n_classes)
            groups.setdefault(tuple(int(c) for c in np.flatnonzero(counts)), []).append(j)
        full = self._full_solution()
        everything: ClassSet = tuple(range(self.n_classes))
        n = self.X.shape[0]
        for classes, members in groups.items():
            if classes == everything and row_weights is None and self._leave_one_out_ready():
                missing = [j for j in members if len(row_sets[j]) == n - 1]
                if missing:
                    total = n * (n - 1) // 2
                    removed = np.array([total - int(row_sets[j].sum()) for j in missing])
                    W, converged = self.leave_one_out_coefficients(removed)
                    out, trouble = self._predict(W, converged, classes)
                    outputs[missing] = out
                    for position, j in enumerate(missing):
                        troubles[j] = trouble[position]
                    members = [j for j in members if len(row_sets[j]) != n - 1]
                    if not members:
                        continue
            union = np.unique(np.concatenate([row_sets[j] for j in members]))
            mask = np.zeros((len(union), len(members)))
            for column, j in enumerate(members):
                where = np.searchsorted(union, row_sets[j])
                mask[where, column] = 1.0 if row_weights is None else row_weights[j]
            start = self._convert(full, everything, classes)
            W0 = np.broadcast_to(start, (len(members), start.size))
            W, converged = self._solve(union, mask, W0, classes)
            out, trouble = self._predict(W, converged, classes)
            outputs[members] = out
            for position, j in enumerate(members):
                troubles[j] = trouble[position]
        return outputs, troubles

    # -- leave-one-out -------------------------------------------------------------------
    def _leave_one_out_ready(self) -> bool:
        """Whether the full Hessian's inverse (``q x q``) exists and is small enough."""
        m = n_vectors(tuple(range(self.n_classes)))
        if m * self.X.shape[1] > MAX_DENSE_PRECONDITIONER:
            return False
        if self._full_inverse is None:
            # the batch preconditioner of the full class set at weight 1 is this inverse
            apply = self._preconditioner(tuple(range(self.n_classes)), 1.0)
            self._full_inverse = np.zeros((0, 0)) if apply is None else apply.inverse
        return self._full_inverse.size > 0

    def leave_one_out_coefficients(self, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact fits leaving out each training row in ``removed``: ``(W, converged)``.

        All classes must stay present. Solved together by the chord iteration of
        :mod:`.logistic_loo` (one inverse Hessian, Woodbury per row); problems it does not
        converge are solved by full Newton from its last iterate and counted in
        ``utility.failures["fast_loo_newton"]``. ``W`` is flattened per fit as in
        :meth:`fit_coefficients`; ``self.loo_passes`` counts the data passes made.
        """
        removed = np.asarray(removed, dtype=np.int64)
        everything: ClassSet = tuple(range(self.n_classes))
        m, n = n_vectors(everything), self.X.shape[0]
        if not self._leave_one_out_ready():
            raise NotSupported("the full Hessian is too large or not positive definite")
        problem = LogisticProblem(self.X, self.label_index, m, self.penalty, self.fit_intercept)
        W, converged, passes = leave_one_out_chord(
            problem, self._full_solution(), self._full_inverse, removed, step_tol=STEP_TOL
        )
        self.loo_passes += passes
        rest = np.flatnonzero(~converged)
        if rest.size:
            self.utility.failures["fast_loo_newton"] += int(rest.size)
            mask = np.ones((n, rest.size))
            mask[removed[rest], np.arange(rest.size)] = 0.0
            W[rest], converged[rest] = self._solve(np.arange(n), mask, W[rest], everything)
        return W, converged

    def fit_coefficients(self, rows: np.ndarray) -> tuple[np.ndarray, ClassSet]:
        """Coefficients of the fit on ``rows`` (for tests): ``(W, classes)``, W per class row.

        ``W`` has one row per coefficient vector scikit-learn fits (intercept last when
        fitted): one row for two classes, one per class otherwise, multinomial intercepts
        summing to zero. Raises ValidationError for rows of one class and RuntimeError when
        Newton does not converge.
        """
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        counts = np.bincount(self.label_index[rows], minlength=self.n_classes)
        classes: ClassSet = tuple(int(c) for c in np.flatnonzero(counts))
        if len(classes) < 2:
            raise ValidationError(
                f"rows hold only class {classes}; a logistic fit needs at least two classes"
            )
        start = np.zeros((1, n_vectors(classes) * self.X.shape[1]))
        W, ok = self._solve(rows, np.ones((len(rows), 1)), start, classes)
        if not ok[0]:
            raise RuntimeError("Newton iterations did not converge")
        return W[0].reshape(n_vectors(classes), self.X.shape[1]), classes
