"""Gaussian and multinomial naive Bayes utilities from per-class sufficient statistics.

A naive Bayes fit is a function of per-class counts and per-class feature statistics
(Manning, Raghavan & Schuetze, *Introduction to Information Retrieval*, 2008, ch. 13;
Chan, Golub & LeVeque, "Algorithms for computing the sample variance", 1983):

* :class:`~sklearn.naive_bayes.GaussianNB`: per-class means and variances, plus
  ``epsilon = var_smoothing * max_j var(X[:, j])`` over *all* the coalition's rows, added to
  every variance; priors are the coalition's class frequencies. A prefix walk updates each
  class's mean and sum of squared deviations with Chan et al.'s pairwise formula (the one
  scikit-learn's ``partial_fit`` uses), so identical values give exactly zero variance, as
  scikit-learn's two-pass ``np.var`` does.
* :class:`~sklearn.naive_bayes.MultinomialNB`: per-class feature sums and class counts;
  ``log P(j | c) = log(N_cj + alpha) - log(sum_j (N_cj + alpha))``.

Only the classes present in a coalition take part in the argmax (the fitted model's
``classes_``); ties go to the first (smallest) class, as ``numpy.argmax`` does in
scikit-learn. A GaussianNB coalition whose features are all constant (``epsilon = 0``,
which makes scikit-learn divide by zero) is refitted generically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import FastPath
from .scoring import NotSupported

__all__ = ["GaussianNBFastPath", "MultinomialNBFastPath"]

_CELLS_PER_BLOCK = 2_000_000  # bound on block x classes x n_valid x n_features work arrays


def _check_params(estimator: Any, allowed: set[str]) -> dict[str, Any]:
    params = estimator.get_params()
    unknown = set(params) - allowed
    if unknown:
        raise NotSupported(f"unmodelled parameters {sorted(unknown)}")
    return params


def _merge(
    count: np.ndarray, mean: np.ndarray, ssd: np.ndarray, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chan et al.'s update of (count, mean, sum of squared deviations) with the rows X."""
    n_new = X.shape[0]
    new_mean = X.mean(axis=0)
    new_ssd = n_new * X.var(axis=0) if n_new > 1 else np.zeros_like(new_mean)
    if count == 0:
        return np.float64(n_new), new_mean, new_ssd
    total = count + n_new
    total_mean = (n_new * new_mean + count * mean) / total
    total_ssd = ssd + new_ssd + (n_new * count / total) * (mean - new_mean) ** 2
    return np.float64(total), total_mean, total_ssd


class _GaussianState:
    def __init__(self, n_classes: int, d: int) -> None:
        self.count = np.zeros(n_classes)
        self.mean = np.zeros((n_classes, d))
        self.ssd = np.zeros((n_classes, d))
        self.all_count = np.float64(0)
        self.all_mean = np.zeros(d)
        self.all_ssd = np.zeros(d)


class GaussianNBFastPath(FastPath):
    """Exact prefix walks and batches for :class:`sklearn.naive_bayes.GaussianNB`."""

    def __init__(self, utility: Any) -> None:
        params = _check_params(utility.estimator, {"priors", "var_smoothing"})
        if params["priors"] is not None:
            raise NotSupported("fixed priors are not modelled")
        smoothing = params["var_smoothing"]
        if not isinstance(smoothing, (int, float, np.number)) or not smoothing >= 0:
            raise NotSupported(f"var_smoothing={smoothing!r}")
        if not utility.is_classifier:
            raise NotSupported("GaussianNB on a regression task")
        super().__init__(utility)
        self.var_smoothing = float(smoothing)
        self.X = utility.train.X
        self.X_valid = utility.valid.X
        d = self.X.shape[1]
        self.max_block = max(1, min(64, _CELLS_PER_BLOCK // (self.n_classes * self.n_valid * d)))

    def start_walk(self) -> _GaussianState:
        return _GaussianState(self.n_classes, self.X.shape[1])

    def extend(
        self,
        state: _GaussianState,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        B, C, d = len(steps), self.n_classes, self.X.shape[1]
        counts = np.empty((B, C))
        means = np.empty((B, C, d))
        variances = np.empty((B, C, d))
        epsilons = np.empty(B)
        for j, step in enumerate(steps):
            labels = self.label_index[step]
            for c in np.unique(labels):
                rows = step[labels == c]
                state.count[c], state.mean[c], state.ssd[c] = _merge(
                    state.count[c], state.mean[c], state.ssd[c], self.X[rows]
                )
            state.all_count, state.all_mean, state.all_ssd = _merge(
                state.all_count, state.all_mean, state.all_ssd, self.X[step]
            )
            if needed[j]:
                counts[j] = state.count
                means[j] = state.mean
                with np.errstate(invalid="ignore", divide="ignore"):
                    variances[j] = state.ssd / state.count[:, None]
                epsilons[j] = self.var_smoothing * np.max(state.all_ssd / state.all_count)
        return self._predict(counts, means, variances, epsilons, needed)

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        B, C, d = len(row_sets), self.n_classes, self.X.shape[1]
        counts = np.zeros((B, C))
        means = np.zeros((B, C, d))
        variances = np.zeros((B, C, d))
        epsilons = np.empty(B)
        for j, rows in enumerate(row_sets):
            X, labels = self.X[rows], self.label_index[rows]
            epsilons[j] = self.var_smoothing * np.max(np.var(X, axis=0))
            for c in np.unique(labels):
                Xc = X[labels == c]
                counts[j, c] = Xc.shape[0]
                means[j, c] = Xc.mean(axis=0)
                variances[j, c] = Xc.var(axis=0)
        return self._predict(counts, means, variances, epsilons, np.ones(B, dtype=bool))

    def _predict(
        self,
        counts: np.ndarray,
        means: np.ndarray,
        variances: np.ndarray,
        epsilons: np.ndarray,
        needed: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        B = len(counts)
        outputs = np.zeros((B, self.n_valid), dtype=np.int64)
        troubles: list = [None] * B
        for j in np.flatnonzero(needed):
            if not epsilons[j] > 0:
                troubles[j] = "zero_variance"
                continue
            present = counts[j] > 0
            var = variances[j, present] + epsilons[j]  # (P, d)
            theta = means[j, present]
            prior = counts[j, present] / counts[j, present].sum()
            jll = np.log(prior)[None, :] - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)[None, :]
            sq = ((self.X_valid[:, None, :] - theta[None, :, :]) ** 2) / var[None, :, :]
            jll = jll - 0.5 * np.sum(sq, axis=2)
            outputs[j] = np.flatnonzero(present)[np.argmax(jll, axis=1)]
        return outputs, troubles


class _MultinomialState:
    def __init__(self, n_classes: int, d: int) -> None:
        self.count = np.zeros(n_classes)
        self.feature = np.zeros((n_classes, d))


class MultinomialNBFastPath(FastPath):
    """Exact prefix walks and batches for :class:`sklearn.naive_bayes.MultinomialNB`."""

    def __init__(self, utility: Any) -> None:
        params = _check_params(
            utility.estimator, {"alpha", "class_prior", "fit_prior", "force_alpha"}
        )
        if params["class_prior"] is not None:
            raise NotSupported("fixed class_prior is not modelled")
        alpha = params["alpha"]
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.number)):
            raise NotSupported(f"alpha={alpha!r} (only a scalar alpha is modelled)")
        alpha = float(alpha)
        if not params["force_alpha"] and alpha < 1e-10:
            alpha = 1e-10  # what scikit-learn substitutes (with a warning)
        if not alpha > 0 or not np.isfinite(alpha):
            raise NotSupported(f"alpha={alpha!r} (log of zero counts)")
        if not utility.is_classifier:
            raise NotSupported("MultinomialNB on a regression task")
        if (utility.train.X < 0).any():
            raise NotSupported("negative training features (MultinomialNB refuses them)")
        super().__init__(utility)
        self.alpha = alpha
        self.fit_prior = bool(params["fit_prior"])
        self.X = utility.train.X
        self.X_valid = utility.valid.X

    def start_walk(self) -> _MultinomialState:
        return _MultinomialState(self.n_classes, self.X.shape[1])

    def extend(
        self,
        state: _MultinomialState,
        steps: list[np.ndarray],
        needed: np.ndarray,
        *,
        present: np.ndarray | None,
        rows: np.ndarray,
    ) -> tuple[np.ndarray, list]:
        B, C, d = len(steps), self.n_classes, self.X.shape[1]
        counts = np.empty((B, C))
        features = np.empty((B, C, d))
        for j, step in enumerate(steps):
            labels = self.label_index[step]
            if len(step) == 1:
                state.count[labels[0]] += 1
                state.feature[labels[0]] += self.X[step[0]]
            else:
                state.count += np.bincount(labels, minlength=C)
                np.add.at(state.feature, labels, self.X[step])
            counts[j] = state.count
            features[j] = state.feature
        return self._predict(counts, features, needed)

    def outputs(self, row_sets: list[np.ndarray]) -> tuple[np.ndarray, list]:
        B, C, d = len(row_sets), self.n_classes, self.X.shape[1]
        counts = np.zeros((B, C))
        features = np.zeros((B, C, d))
        for j, rows in enumerate(row_sets):
            labels = self.label_index[rows]
            counts[j] = np.bincount(labels, minlength=C)
            onehot = (labels[:, None] == np.arange(C)[None, :]).astype(np.float64)
            features[j] = onehot.T @ self.X[rows]
        return self._predict(counts, features, np.ones(B, dtype=bool))

    def _predict(
        self, counts: np.ndarray, features: np.ndarray, needed: np.ndarray
    ) -> tuple[np.ndarray, list]:
        B = len(counts)
        outputs = np.zeros((B, self.n_valid), dtype=np.int64)
        keep = np.flatnonzero(needed)
        if keep.size:
            smoothed = features[keep] + self.alpha
            log_prob = np.log(smoothed) - np.log(smoothed.sum(axis=2))[:, :, None]
            present = counts[keep] > 0
            with np.errstate(divide="ignore"):
                if self.fit_prior:
                    prior = np.log(counts[keep]) - np.log(counts[keep].sum(axis=1))[:, None]
                else:
                    prior = np.broadcast_to(
                        -np.log(present.sum(axis=1))[:, None], present.shape
                    ).copy()
            jll = np.einsum("vd,bcd->bvc", self.X_valid, log_prob) + prior[:, None, :]
            jll = np.where(present[:, None, :], jll, -np.inf)
            outputs[keep] = np.argmax(jll, axis=2)
        return outputs, [None] * B
