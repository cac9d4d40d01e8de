"""Kernels behind :func:`openattrib.knn_shapley`: exact neighbour order and the recursions.

Everything here works on a *block* of test points at once (2-D arrays, one row per test
point) and is elementwise along each row, so a row's result does not depend on which
block it was computed in: values are bit-identical for every batch size.

Neighbour order
---------------
Training points are ranked by an *exact* distance ``E`` computed elementwise in float64
in a fixed feature order (see :data:`METRICS`); equal distances are ranked by training
index (lower index = nearer). Computing ``E`` for every pair is slow, so the order is
found in two steps:

1. an approximate distance ``A`` (for euclidean and cosine the BLAS identity
   ``|x|^2 + |z|^2 - 2 x.z`` on centred data, whose rounding may depend on the block shape)
   with a proven error bound ``|A - E| <= delta``; the sort key packs the high bits of
   ``A`` with the training index into one ``uint64``, so a single fast ``np.sort`` orders
   a row;
2. adjacent sorted entries closer than ``2 * delta`` plus the key's truncation step are
   joined into *chains*; only chain members get their exact ``E``, and each chain is
   re-sorted by ``(E, index)``. Two entries in different chains are at least ``2 * delta``
   apart in ``A``, so their order is already the exact one.

Recursions (Jia et al., 2019, "Efficient task-specific data valuation for nearest
neighbor algorithms", PVLDB 12(11): Theorem 1 for classification and the paper's
KNN-regression result) are evaluated from the farthest point inwards with cumulative sums.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "NeighbourOrder", "classification_values", "regression_values"]

METRICS = ("euclidean", "cosine", "manhattan")
_EPS = float(np.finfo(np.float64).eps)
_TINY = 1e-300
_SIGN_CLEAR = np.uint64(0x7FFF_FFFF_FFFF_FFFF)


def _sequential_sum_of(columns: np.ndarray, op) -> np.ndarray:  # noqa: ANN001
    """Sum ``op(column)`` over the columns of a 2-D array, strictly left to right."""
    total = np.zeros(columns.shape[0], dtype=np.float64)
    for f in range(columns.shape[1]):
        total += op(columns[:, f])
    return total


class NeighbourOrder:
    """Ranks training points by exact distance to test points (ties by training index).

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
    metric : one of :data:`METRICS`
    """

    def __init__(self, X_train: np.ndarray, metric: str) -> None:
        X = np.ascontiguousarray(X_train, dtype=np.float64)
        self.X = X
        self.metric = metric
        self.n, self.d = X.shape
        self.index_bits = max(1, (self.n - 1).bit_length())
        self._low = np.uint64((1 << self.index_bits) - 1)
        self._high = np.uint64(~int(self._low) & 0xFFFF_FFFF_FFFF_FFFF)
        self._indices = np.arange(self.n, dtype=np.uint64)
        # relative width of the truncation step of the key, with a factor 4 of margin
        self._step = 2.0 ** (self.index_bits - 50)
        self._high &= _SIGN_CLEAR  # also maps -0.0 (or a tiny negative A) to its absolute value
        if metric == "euclidean":
            self.center = X.mean(axis=0)
            centred = X - self.center
            self.XT = np.ascontiguousarray(centred.T)
            self.sq = np.einsum("ij,ij->i", centred, centred)
            self.max_sq = float(self.sq.max())
        elif metric == "cosine":
            self.norm = np.sqrt(_sequential_sum_of(X, np.square))
            safe = np.where(self.norm > 0, self.norm, 1.0)
            self.XT = np.ascontiguousarray((X / safe[:, None]).T)
        elif metric == "manhattan":
            self.XT = np.ascontiguousarray(X.T)
        else:  # pragma: no cover - validated by the caller
            raise ValueError(metric)

    # ------------------------------------------------------------------ distances
    def exact(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Exact distance between rows ``x`` (m, d) and training points ``idx`` (m,)."""
        Z = self.X[idx]
        if self.metric == "euclidean":
            return _sequential_sum_of(x - Z, np.square)
        if self.metric == "manhattan":
            return _sequential_sum_of(x - Z, np.abs)
        dot = _sequential_sum_of(x * Z, lambda c: c)
        nx = np.sqrt(_sequential_sum_of(x, np.square))
        denom = nx * self.norm[idx]
        cos = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
        return 1.0 - cos

    def _approximate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Approximate distances (b, n) and a bound ``delta`` (b,) on ``|approx - exact|``."""
        b = x.shape[0]
        if self.metric == "euclidean":
            xc = x - self.center
            sq = np.einsum("ij,ij->i", xc, xc)
            D = (-2.0 * xc) @ self.XT  # scaling by -2 is exact
            D += sq[:, None]
            D += self.sq[None, :]
            # D may be slightly negative; order() uses |D|, which is as close to E >= 0
            delta = 8.0 * (self.d + 8) * _EPS * (sq + self.max_sq)
        elif self.metric == "cosine":
            nx = np.sqrt(_sequential_sum_of(x, np.square))
            xn = x / np.where(nx > 0, nx, 1.0)[:, None]
            D = xn @ self.XT
            np.subtract(1.0, D, out=D)
            delta = np.full(b, 16.0 * (self.d + 8) * _EPS)  # x2: E itself may be < 0
        else:  # manhattan: exact, same operation order as exact()
            D = np.zeros((b, self.n), dtype=np.float64)
            tmp = np.empty_like(D)
            for f in range(self.d):
                np.subtract(x[:, f][:, None], self.XT[f][None, :], out=tmp)
                np.abs(tmp, out=tmp)
                D += tmp
            delta = np.zeros(b)
        return D, delta

    def order(self, x: np.ndarray) -> np.ndarray:
        """Training indices sorted from nearest to farthest, one row per test point."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        D, delta = self._approximate(x)
        keys = D.view(np.uint64)  # bits of |D| sort like the numbers |D|
        keys &= self._high
        keys |= self._indices[None, :]
        keys.sort(axis=1)
        truncated = (keys & self._high).view(np.float64)
        keys &= self._low
        order = keys.view(np.int64)
        self._refine(x, order, truncated, delta)
        return order

    def _refine(
        self, x: np.ndarray, order: np.ndarray, truncated: np.ndarray, delta: np.ndarray
    ) -> None:
        """Re-sort chains of near-equal approximate distances by (exact distance, index)."""
        if self.n < 2:
            return
        # linked: next - this <= 2 delta + truncation step of this (rounding is covered
        # by the margin in _step and delta)
        reach = truncated[:, :-1] * (1.0 + self._step)
        reach += (2.0 * delta + _TINY)[:, None]
        linked = truncated[:, 1:] <= reach
        del reach
        rows, cols = np.nonzero(linked)  # link (r, c): positions c and c + 1 are close
        del linked
        if rows.size == 0:
            return
        # consecutive links in a row form one chain; a chain of L links has L + 1 members
        starts = np.ones(rows.size, dtype=bool)
        starts[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
        chain = np.cumsum(starts)
        ends = np.ones(rows.size, dtype=bool)
        ends[:-1] = starts[1:]
        rows = np.concatenate([rows, rows[ends]])
        cols = np.concatenate([cols, cols[ends] + 1])
        chain = np.concatenate([chain, chain[ends]])
        idx = order[rows, cols]
        exact = self.exact(x[rows], idx)
        slots = np.lexsort((cols, chain))  # member positions, chain by chain
        ranked = np.lexsort((idx, exact, chain))  # members by (chain, distance, index)
        order[rows[slots], cols[slots]] = idx[ranked]


def classification_values(match: np.ndarray, k: int) -> np.ndarray:
    """KNN-Shapley of each sorted training point for the classification utility.

    ``match[t, i]`` is 1.0 when the i-th nearest training point of test point t has the
    test label. Jia et al. (2019), Theorem 1, with ``1 / max(k, i) = min(k, i) / (k i)``::

        s_N = match_N / max(k, N)
        s_i = s_{i+1} + (match_i - match_{i+1}) / max(k, i)

    (``max(k, N)`` in the first line makes the value exact also when k > N, where the
    utility is additive and every point gets ``match_i / k``.)
    """
    b, n = match.shape
    # (match_i - match_{i+1}) is -1, 0 or 1, so multiplying by the rounded reciprocal
    # gives exactly the rounded quotient
    inverse = 1.0 / np.maximum(float(k), np.arange(1, n + 1, dtype=np.float64))
    terms = np.empty_like(match)
    np.subtract(match[:, :-1], match[:, 1:], out=terms[:, :-1])
    terms[:, :-1] *= inverse[:-1]
    terms[:, -1] = match[:, -1] * inverse[-1]
    flipped = terms[:, ::-1]
    np.cumsum(flipped, axis=1, out=flipped)
    return terms


def regression_values(y_sorted: np.ndarray, y_test: np.ndarray, k: int) -> np.ndarray:
    """KNN-Shapley of each sorted training point for the regression utility.

    Utility (Jia et al., 2019, unweighted KNN regression)::

        U(S) = -(sum_{j <= min(k, |S|)} y_(j)(S) / k - y_test)^2,   U(empty) = -y_test^2

    where ``y_(j)(S)`` is the target of the j-th nearest point of S. With ``a_i = y_i / k`` (points sorted nearest first, ranks
    1..N), the difference of adjacent values is::

        s_l - s_{l+1} = (a_{l+1} - a_l) * ((a_l + a_{l+1} - 2 y_test) min(k,l)/l + 2 E_l)
        E_l = pb(l) * sum_{j<l} a_j + sum_{j>=l+2} pa(j) a_j
        pb(l) = T(T+1) / (2 l (l-1)),      T = min(k-1, l-1)
        pa(j) = U(U+1) / (2 (j-1) (j-2)),  U = min(k-1, j-2)
        s_N = -a_N ((a_N - 2 y_test) min(k,N)/N + 2 pb(N) sum_{j<N} a_j)

    The paper states an equivalent recursion; this form is derived here from the utility
    with the probabilities that a point lies among the k-1 nearest of a Shapley-random
    coalition (a uniformly random predecessor set in a random permutation): ``E_l`` is the expected
    sum of ``a`` over the k-1 nearest points of a random coalition that leaves out l and
    l+1, counted when the swapped point would be among its k nearest. Derivation: swapping
    adjacent points l and l+1 changes U only when fewer than k coalition points precede
    them, and then by ``(a_{l+1} - a_l)(a_l + a_{l+1} - 2 y_test + 2 Q)`` with Q that sum.
    (Verified against brute-force enumeration in ``tests/test_knn.py``.)
    """
    b, n = y_sorted.shape
    a = y_sorted / float(k)
    t2 = 2.0 * y_test[:, None]
    rank = np.arange(1, n + 1, dtype=np.float64)
    top = np.minimum(float(k - 1), rank - 1.0)  # T for pb(l)
    with np.errstate(divide="ignore", invalid="ignore"):
        pb = np.where(rank >= 2, top * (top + 1.0) / (2.0 * rank * (rank - 1.0)), 0.0)
        up = np.minimum(float(k - 1), rank - 2.0)
        pa = np.where(rank >= 3, up * (up + 1.0) / (2.0 * (rank - 1.0) * (rank - 2.0)), 0.0)
    share = np.minimum(float(k), rank) / rank  # min(k, l) / l
    before = np.cumsum(a, axis=1)  # before[:, l-1] = sum_{j<=l} a_j
    weighted = a * pa[None, :]
    after = weighted[:, ::-1].cumsum(axis=1)[:, ::-1]  # after[:, j-1] = sum_{i>=j} pa a
    out = np.empty_like(a)
    if n >= 2:
        expect = np.zeros((b, n - 1))
        expect[:, 1:] = pb[None, 1 : n - 1] * before[:, : n - 2]
        expect[:, : n - 2] += after[:, 2:]
        left, right = a[:, :-1], a[:, 1:]
        diff = (right - left) * ((left + right - t2) * share[None, :-1] + 2.0 * expect)
        out[:, :-1] = diff
        prior = before[:, n - 2]
    else:
        prior = np.zeros(b)
    last = a[:, -1]
    out[:, -1] = -last * ((last - t2[:, 0]) * share[-1] + 2.0 * pb[-1] * prior)
    flipped = out[:, ::-1]
    np.cumsum(flipped, axis=1, out=flipped)
    return out
