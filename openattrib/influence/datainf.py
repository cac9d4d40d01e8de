"""DataInf: closed-form, layer-wise influence (Kwon, Wu, Wu & Zou 2023, ICLR 2024).

For each layer ``l`` with per-example gradients ``v_{il}`` (``d_l`` entries), DataInf
approximates the damped Fisher ``(1/n) sum_i v_il v_il^T + lambda_l I`` and swaps the order
of the inverse and the average (their eq. 5), which the Sherman-Morrison formula makes
closed form:

.. math::

    (H_l + \\lambda_l I)^{-1} v \\approx \\frac{1}{\\lambda_l}\\Big(v - \\frac{1}{n}\\sum_i
        \\frac{v_{il}^T v}{\\lambda_l + v_{il}^T v_{il}}\\, v_{il}\\Big).

The influence of training point ``k`` on test point ``t`` is
``sum_l v_tl^T (H_l + lambda_l)^{-1} v_kl / n`` (positive = helps; the paper's
``-I(x_k)`` with its ``1/n`` upweighting scale).

Damping: ``damping=None`` uses the paper's ``lambda_l = 0.1 * (n d_l)^{-1} sum_i
v_il^T v_il``; a float is an absolute ``lambda`` for every layer. With a projection the
``v_il`` are the projected layer gradients and ``d_l`` their width.
"""

from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["datainf_damping", "datainf_query"]


def datainf_damping(
    features: np.ndarray, widths: list[int], damping: float | None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-layer ``lambda_l`` and squared norms ``||v_il||^2`` of stored features ``(n, D)``."""
    lambdas, norms, offset = [], [], 0
    n = features.shape[0]
    for width in widths:
        block = features[:, offset : offset + width]
        sq = np.einsum("ij,ij->i", block, block)
        norms.append(sq)
        if damping is None:
            lam = 0.1 * float(sq.sum()) / (n * width)
            lambdas.append(lam if lam > 0 else 1e-12)
        else:
            if not float(damping) > 0:
                raise ValidationError(f"damping must be a positive float or None, got {damping!r}")
            lambdas.append(float(damping))
        offset += width
    return np.asarray(lambdas), norms


def datainf_query(
    test: np.ndarray,
    features: np.ndarray,
    widths: list[int],
    lambdas: np.ndarray,
    norms: list[np.ndarray],
) -> np.ndarray:
    """Query factors ``q_t = (H + lambda)^{-1} v_t / n`` per layer, shape ``(m, D)``.

    ``features`` may be a memory map; it is read once per layer block.
    """
    n = features.shape[0]
    out = np.empty_like(test, dtype=np.float64)
    offset = 0
    for layer, width in enumerate(widths):
        cols = slice(offset, offset + width)
        V = np.asarray(features[:, cols], dtype=np.float64)
        vt = test[:, cols]
        lam = lambdas[layer]
        coef = (vt @ V.T) / (lam + norms[layer])[None, :]
        out[:, cols] = (vt - coef @ V / n) / (lam * n)
        offset += width
    return out
