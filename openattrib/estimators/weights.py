"""Coalition weights of semivalues: Shapley, Banzhaf, Beta(alpha, beta) and custom.

``weights[k]`` multiplies every marginal contribution ``v(S + i) - v(S)`` with ``|S| = k``,
the convention of :func:`openattrib.exact_semivalue`.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import numpy as np
from scipy.special import betaln, gammaln

from ..errors import ValidationError

__all__ = ["beta_weights", "semivalue_weights", "position_factors", "check_alpha_beta"]


def beta_weights(n_players: int, alpha: float, beta: float) -> np.ndarray:
    """Beta(alpha, beta) Shapley weight of a coalition of size k = 0..n-1 (Kwon & Zou 2022).

    ``w[k] = B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``, the paper's eq. (5)
    ``w(j) = n * B(j + beta - 1, n - j + alpha) / B(alpha, beta)`` for ``j = k + 1``
    divided by n (the paper's semivalue carries a 1/n in front). It is the probability
    that a coalition of size k forms when players join independently with a probability
    t drawn from the density proportional to ``t**(beta-1) * (1-t)**(alpha-1)``. So
    **alpha > beta up-weights small coalitions** (Beta(16, 1), the paper's choice for
    noisy labels) and ``alpha = beta = 1`` gives Shapley's weights.

    Examples
    --------
    >>> w = beta_weights(4, 16, 1)
    >>> bool(w[0] > w[1] > w[2] > w[3])
    True
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    k = np.arange(int(n_players), dtype=np.float64)
    return np.exp(betaln(k + beta, n_players - 1 - k + alpha) - betaln(alpha, beta))


def check_alpha_beta(alpha: Any, beta: Any) -> tuple[float, float]:
    out = []
    for name, value in (("alpha", alpha), ("beta", beta)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a positive number, got {value!r}") from None
        if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
            raise ValidationError(
                f"{name} must be a positive number, got {value!r}: Beta({name}) weights need alpha > 0 and "
                "beta > 0 (alpha > beta up-weights small coalitions; alpha = beta = 1 is Shapley)"
            )
        out.append(number)
    return out[0], out[1]


def semivalue_weights(weights: Any, n_players: int) -> tuple[str, np.ndarray | None]:
    """Resolve a weights spec into ``(id, log weights)``; the log weights are ``None`` for Shapley.

    Accepted: ``"shapley"``, ``"banzhaf"``, ``"beta(16,1)"`` / ``("beta", 16, 1)``, an array of
    ``n_players`` non-negative weights (``weights[k]`` for coalitions of size k), or a
    callable ``f(n_players) -> array``.
    """
    n = int(n_players)
    if isinstance(weights, str):
        text = weights.strip().lower().replace(" ", "")
        if text == "shapley":
            return "shapley", None
        if text == "banzhaf":
            return "banzhaf", np.full(n, -(n - 1) * math.log(2.0))
        match = re.fullmatch(r"beta[(:]?([^,()]+),([^,()]+)\)?", text)
        if match:
            return _beta_spec(match.group(1), match.group(2), n)
        raise ValidationError(
            f"unknown weights {weights!r}; use 'shapley', 'banzhaf', 'beta(16,1)', or an array of {n} weights"
        )
    if isinstance(weights, tuple) and len(weights) == 3 and str(weights[0]).lower() == "beta":
        return _beta_spec(weights[1], weights[2], n)
    if callable(weights):
        weights = weights(n)
    array = np.asarray(weights, dtype=np.float64).reshape(-1)
    if array.shape != (n,):
        raise ValidationError(
            f"weights must have one entry per coalition size 0..{n - 1}, got {array.shape[0]}"
        )
    if not (np.isfinite(array).all() and (array >= 0).all()) or not array.any():
        raise ValidationError("weights must be finite, non-negative and not all zero")
    digest = hashlib.sha256(array.tobytes()).hexdigest()[:16]
    with np.errstate(divide="ignore"):
        return f"custom:{digest}", np.log(array)


def _beta_spec(alpha: Any, beta: Any, n: int) -> tuple[str, np.ndarray]:
    a, b = check_alpha_beta(alpha, beta)
    k = np.arange(n, dtype=np.float64)
    return f"beta({a!r},{b!r})", betaln(k + b, n - 1 - k + a) - betaln(a, b)


def position_factors(log_weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """Importance weight ``n * C(n-1, k) * w(k)`` of the marginal at permutation position k."""
    if log_weights is None:
        return None
    k = np.arange(n, dtype=np.float64)
    log_count = gammaln(n) - gammaln(k + 1) - gammaln(n - k)
    with np.errstate(invalid="ignore"):
        factors = np.exp(math.log(n) + log_count + log_weights)
    factors[np.isneginf(log_weights)] = 0.0
    if not np.isfinite(factors).all():
        raise ValidationError("weights are too large: n * C(n-1, k) * weights[k] overflows float64")
    return factors
