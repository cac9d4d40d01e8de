"""Curvature for neural influence: EK-FAC factors per layer, and the exact Hessian.

EK-FAC (George, Laurent, Bouthillier, Ballas & Vincent 2018, "Fast Approximate Natural
Gradient Descent in a Kronecker-factored Eigenbasis"; used for influence by Grosse et al.
2023, "Studying Large Language Model Generalization with Influence Functions"). For a layer
with inputs ``a`` and output gradients ``g`` (per token), K-FAC approximates the layer's
Fisher block by ``A (x) S`` with ``A = E[a a^T]`` and ``S = E[g g^T]``. EK-FAC keeps the
eigenbases ``Q_A``, ``Q_S`` of these factors and refits the diagonal in that basis to the
per-example gradients ``G_i = sum_t g_t a_t^T``:

.. math::

    \\Lambda = \\frac{1}{n} \\sum_i (Q_S^T G_i Q_A)^{\\odot 2}, \\qquad
    (F + \\lambda I)^{-1} \\mathrm{vec}(V)
        = \\mathrm{vec}\\Big(Q_S \\frac{Q_S^T V Q_A}{\\Lambda + \\lambda} Q_A^T\\Big).

Conventions here:

* ``F`` approximates the Fisher (Gauss-Newton) of the **average** per-example loss, so the
  influence ``g_t^T (F + \\lambda)^{-1} g_i / n`` is the predicted rise of the test loss when
  training point ``i`` is removed (Koh & Liang 2017) - positive = helps.
* ``fisher="empirical"`` (the default) builds ``S`` and ``Lambda`` from gradients at the
  given labels; ``"true"`` at targets *sampled from the model* (Grosse et al. section 2.2).
* Damping: ``damping=None`` adds ``lambda_l = 0.1 * mean(Lambda_l)`` per layer (Grosse et
  al.'s heuristic); a float is an absolute ``lambda`` for every layer.
* The factors are fitted once on the training data; train and test gradients are both
  whitened, ``(F + lambda)^{-1/2} G``, in the eigenbasis, so a query is one gradient and a
  dot product with the stored training features.

``curvature="exact"`` replaces EK-FAC by the dense Hessian of the average training loss over
the same parameters (:func:`dense_hessian`, via ``torch.func``): no Kronecker, no
block-diagonal approximation; for validation on small models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError
from . import _torch
from .torch_models import Examples, GradientEngine, Layer, per_example_loss

__all__ = ["EKFACFactors", "fit_ekfac", "dense_hessian", "hessian_vector_product", "flat_to_params"]


@dataclass
class EKFACFactors:
    """Per-layer eigenbases ``Q_A``, ``Q_S`` and corrected eigenvalues ``Lambda``."""

    q_a: list[np.ndarray]
    q_s: list[np.ndarray]
    eigenvalues: list[np.ndarray]  # (d_out, d_in) each
    damping: list[float]

    def whiten(self, index: int, a: Any, g: Any) -> np.ndarray:
        """``(Q_S^T G_b Q_A) / sqrt(Lambda + lambda)`` for a batch, shape (B, d_out, d_in).

        Rotates the layer inputs ``a`` and output gradients ``g`` first (two large matrix
        products), then forms ``G_b`` in the eigenbasis.
        """
        rotated = rotated_gradients(a, g, self.q_a[index], self.q_s[index])
        return rotated / np.sqrt(self.eigenvalues[index] + self.damping[index])[None]

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"damping": np.asarray(self.damping)}
        for j in range(len(self.q_a)):
            out[f"q_a_{j}"], out[f"q_s_{j}"] = self.q_a[j], self.q_s[j]
            out[f"eig_{j}"] = self.eigenvalues[j]
        return out

    @classmethod
    def from_arrays(cls, arrays: Any, n_layers: int) -> EKFACFactors:
        return cls(
            [np.asarray(arrays[f"q_a_{j}"]) for j in range(n_layers)],
            [np.asarray(arrays[f"q_s_{j}"]) for j in range(n_layers)],
            [np.asarray(arrays[f"eig_{j}"]) for j in range(n_layers)],
            [float(d) for d in np.asarray(arrays["damping"])],
        )


def rotated_gradients(a: Any, g: Any, q_a: np.ndarray, q_s: np.ndarray) -> np.ndarray:
    """``Q_S^T G_b Q_A = sum_t (Q_S^T g_bt)(Q_A^T a_bt)^T`` for a batch (B, d_out, d_in)."""
    a = a.double().numpy()
    g = g.double().numpy()
    a = (a.reshape(-1, a.shape[-1]) @ q_a).reshape(a.shape)
    g = (g.reshape(-1, g.shape[-1]) @ q_s).reshape(g.shape)
    return np.ascontiguousarray(np.swapaxes(g, 1, 2)) @ a  # contiguous: batched BLAS


def fit_ekfac(
    engine: GradientEngine,
    train: Examples,
    *,
    damping: float | None,
    fisher: str,
    batch_size: int,
    seed: int,
) -> EKFACFactors:
    """Fit EK-FAC on ``train``: two passes (factors, then eigenvalue correction)."""
    if fisher not in ("true", "empirical"):
        raise ValidationError(f"fisher must be 'true' or 'empirical', got {fisher!r}")
    targets = "sampled" if fisher == "true" else "given"
    layers: list[Layer] = engine.layers
    A = [np.zeros((layer.d_in, layer.d_in)) for layer in layers]
    S = [np.zeros((layer.d_out, layer.d_out)) for layer in layers]
    for _, pairs in engine.batches(train, batch_size=batch_size, targets=targets, seed=seed):
        for j, (a, g) in enumerate(pairs):
            a2 = a.double().reshape(-1, a.shape[-1]).numpy()
            g2 = g.double().reshape(-1, g.shape[-1]).numpy()
            A[j] += a2.T @ a2
            S[j] += g2.T @ g2
    q_a = [np.linalg.eigh(m / train.n)[1] for m in A]
    q_s = [np.linalg.eigh(m / train.n)[1] for m in S]
    eig = [np.zeros((layer.d_out, layer.d_in)) for layer in layers]
    for _, pairs in engine.batches(train, batch_size=batch_size, targets=targets, seed=seed):
        for j, (a, g) in enumerate(pairs):
            rotated = rotated_gradients(a, g, q_a[j], q_s[j])
            eig[j] += (rotated**2).sum(axis=0)
    eig = [e / train.n for e in eig]
    if damping is None:
        lambdas = [0.1 * float(e.mean()) if e.mean() > 0 else 1e-8 for e in eig]
    else:
        if not float(damping) > 0:
            raise ValidationError(f"damping must be a positive float or None, got {damping!r}")
        lambdas = [float(damping)] * len(layers)
    return EKFACFactors(q_a, q_s, eig, lambdas)


# ---------------------------------------------------------------------------- exact
def flat_to_params(layers: list[Layer], vector: Any) -> dict[str, Any]:
    """Map a flat vector in the layer-gradient layout to ``{parameter name: tensor}``."""
    out, offset = {}, 0
    for layer in layers:
        block = vector[offset : offset + layer.size].reshape(layer.d_out, layer.d_in)
        offset += layer.size
        prefix = f"{layer.name}." if layer.name else ""
        weight = block[:, : layer.d_in - 1] if layer.bias else block
        if layer.kind == "conv1d":
            weight = weight.T
        out[prefix + "weight"] = weight.reshape(tuple(layer.module.weight.shape))
        if layer.bias:
            out[prefix + "bias"] = block[:, -1]
    return out


def _flat_parameters(engine: GradientEngine) -> Any:
    torch = _torch.require_torch("neural influence")
    parts = []
    for layer in engine.layers:
        w = layer.module.weight.detach()
        if layer.kind == "conv1d":
            w = w.T
        w = w.reshape(layer.d_out, -1)
        if layer.bias:
            w = torch.cat([w, layer.module.bias.detach()[:, None]], dim=1)
        parts.append(w.reshape(-1))
    return torch.cat(parts)


def mean_loss_function(engine: GradientEngine, train: Examples) -> tuple[Callable, Any]:
    """``(f, theta)``: the average training loss as a function of the covered parameters."""
    torch = _torch.require_torch("neural influence")
    from torch.func import functional_call

    model = engine.model
    theta = _flat_parameters(engine)
    batches = list(train.iter_batches(max(train.n, 1)))
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    fixed = {n: p.detach() for n, p in model.named_parameters()}

    def f(vector: Any) -> Any:
        state = {**fixed, **flat_to_params(engine.layers, vector), **buffers}
        total = torch.zeros((), dtype=vector.dtype)
        for _, inputs, targets in batches:
            out = functional_call(model, state, (inputs,))
            if hasattr(out, "logits"):
                out = out.logits
            total = total + per_example_loss(out, targets, train.kind, engine.loss).sum()
        return total / train.n

    return f, theta


def hessian_vector_product(engine: GradientEngine, train: Examples, vector: Any) -> np.ndarray:
    """``H v`` for the Hessian of the average training loss (forward-over-reverse)."""
    torch = _torch.require_torch("neural influence")
    from torch.func import grad, jvp

    f, theta = mean_loss_function(engine, train)
    v = torch.as_tensor(np.asarray(vector), dtype=theta.dtype)
    was_training = engine.model.training
    engine.model.eval()
    try:
        return jvp(grad(f), (theta,), (v,))[1].detach().double().numpy()
    finally:
        engine.model.train(was_training)


def dense_hessian(engine: GradientEngine, train: Examples, max_params: int = 6000) -> np.ndarray:
    """The dense Hessian of the average training loss over the covered parameters."""
    from torch.func import hessian

    if engine.n_params > max_params:
        raise ValidationError(
            f"curvature='exact' forms a dense {engine.n_params} x {engine.n_params} Hessian, "
            f"above the {max_params}-parameter limit; use curvature='ekfac'"
        )
    f, theta = mean_loss_function(engine, train)
    was_training = engine.model.training
    engine.model.eval()
    try:
        H = hessian(f)(theta).detach().double().numpy()
    finally:
        engine.model.train(was_training)
    return (H + H.T) / 2


def exact_whitener(H: np.ndarray, damping: float | None) -> np.ndarray:
    """``W`` with ``W^T W = (H + lambda I)^{-1}`` (``W = diag(1/sqrt(w + lambda)) V^T``)."""
    w, V = np.linalg.eigh(H)
    lam = 0.1 * float(np.mean(np.abs(w))) if damping is None else float(damping)
    if w.min() + lam <= 0:
        raise ValidationError(
            f"the Hessian has eigenvalue {w.min():.3g} and damping {lam:.3g} does not make "
            "H + damping I positive definite (a non-convex point); pass a larger damping or "
            "use curvature='ekfac' (a Gauss-Newton approximation, always positive)"
        )
    return (V / np.sqrt(w + lam)).T
