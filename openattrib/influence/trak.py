"""TRAK: attributing model behaviour at scale (Park, Georgiev, Ilyas, Leclerc & Madry 2023).

For each model ``m`` of a small ensemble (independently trained models, or checkpoints):

1. features ``phi_i = P_m^T grad f(z_i; theta_m)`` - the gradient of the *margin*
   ``f = log p_y - log(1 - p_y)`` projected by a random Gaussian matrix ``P_m``
   (``n_params x k``, Johnson-Lindenstrauss);
2. the one-step Newton estimate of a linearised logistic model,
   ``tau_m(z) = phi(z)^T (Phi^T Phi)^{-1} Phi^T``;

then ``tau(z) = mean_m tau_m(z) * Q`` with ``Q_ii = 1 - p_i`` (probability of the correct
class of training point ``i``, averaged over models) - their Algorithm 1 without the optional
soft-thresholding. Positive = training on ``z_i`` raises the correct-class margin on ``z``:
the point helps, as elsewhere in the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError
from ..result import make_provenance
from . import _torch
from .result import InfluenceResult
from .solvers import DirectSolver

__all__ = ["trak"]


def _correct_probability(model: Any, params: dict[str, Any], X: Any, y: Any) -> np.ndarray:
    torch = _torch.require_torch("trak")
    from torch.func import functional_call

    others = {n: p.detach() for n, p in model.named_parameters() if n not in params}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = functional_call(model, {**others, **params, **buffers}, (X,))
    finally:
        model.train(was_training)
    if out.shape[1] == 1:
        p1 = torch.sigmoid(out[:, 0])
        p = torch.where(y == 1, p1, 1 - p1)
    else:
        p = torch.softmax(out, dim=1).gather(1, y[:, None])[:, 0]
    return p.double().numpy()


def _singular_kernel(detail: str, ridge: float) -> str:
    return (
        f"the TRAK kernel Phi^T Phi is singular ({detail}): the projected gradients span "
        "fewer than projection_dim directions (softmax models have class-shift directions "
        "no gradient moves along; fewer training points than projection_dim). Fix: leave "
        "damping=None (a small automatic ridge), pass damping=1e-3 or a smaller projection_dim"
    )


def trak(
    models: Any,
    train: Dataset,
    test: Any,
    *,
    checkpoints: Sequence[Any] | None = None,
    projection_dim: int = 512,
    damping: float | None = None,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
    seed: int = 0,
    memory_budget: int | str | None = None,
    progress: bool = True,
) -> InfluenceResult:
    """TRAK scores of every training point for every test point of a torch classifier.

    Parameters
    ----------
    models : torch.nn.Module or sequence of them
        The ensemble (Park et al. use a few independently trained models). With
        ``checkpoints``, a single module used as architecture for each state dict.
    train, test : Dataset
        Labels are class indices; ``test`` may be a feature array (labels = predictions).
    checkpoints : sequence of state dicts or paths, optional
    projection_dim : int
        ``k``, the random-projection dimension (per model).
    damping : float, optional
        Ridge ``n * damping * I`` added to ``Phi^T Phi``; default ``1e-6`` times the mean of
        the diagonal of ``Phi^T Phi / n`` (keeps the kernel invertible when ``k`` is close
        to ``n``).
    layers : sequence of str, optional
        Only parameters under these module names.
    batch_size : int
        Examples per ``vmap`` call.
    seed : int, default 0
        The projections are drawn from ``SeedSequence(seed)`` by model index.
    memory_budget : int or str, optional
        Bytes (or a string like ``"256MB"``) per block of later computations; default 256 MiB.
    progress : bool
        Progress bar.

    Returns
    -------
    InfluenceResult

    Examples
    --------
    >>> result = oa.trak([net_a, net_b, net_c], train, test, projection_dim=256)  # doctest: +SKIP
    >>> result.for_test(0).ranking()[:5]  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    torch = _torch.require_torch("trak")
    if isinstance(models, torch.nn.Module):
        modules = [models]
    else:
        modules = list(models)
        if not modules:
            raise ValidationError("models is empty; pass a torch.nn.Module or a list of them")
        if checkpoints is not None:
            raise ValidationError("pass either a list of models or one model with checkpoints")
    for module in modules:
        _torch.check_module(module, "trak")
    if not isinstance(train, Dataset):
        raise ValidationError("train must be an openattrib Dataset")
    template = modules[0]
    names = _torch.trainable_names(template, layers)

    def current(module: Any) -> dict[str, Any]:
        params = dict(module.named_parameters())
        return {n: params[n].detach() for n in names}

    if checkpoints is None:
        members = [(module, current(module)) for module in modules]
    else:
        members = [
            (template, _torch.load_checkpoint(c, names, i)) for i, c in enumerate(checkpoints)
        ]
        if not members:
            raise ValidationError("checkpoints is empty; pass state dicts or None")
    k = int(projection_dim)
    if k < 1:
        raise ValidationError(f"projection_dim must be a positive int, got {projection_dim!r}")

    X_train = _torch.features_tensor(template, train.X)
    width = _torch.n_outputs(template, X_train)
    y_train = _torch.labels_tensor(train.y, width, "train")
    X_test, y_test = _torch.dataset_tensors(template, test, width, "test")
    n = train.n_samples
    n_models = len(members)
    features, queries, weights, kernels = [], [], np.zeros(n), []
    for index, (module, state) in enumerate(
        tqdm(members, disable=not progress, desc="trak models")
    ):
        g_train = _torch.per_example_gradients(
            module, state, X_train, y_train, _torch.margin, batch_size
        )
        g_test = _torch.per_example_gradients(
            module, state, X_test, y_test, _torch.margin, batch_size
        )
        P = _torch.projection(g_train.shape[1], k, seed, index)
        phi, phi_test = g_train @ P, g_test @ P
        gram = phi.T @ phi
        if damping is None:
            ridge = 1e-6 * float(np.mean(np.diag(gram)))
        else:
            ridge = n * float(damping)
        gram[np.diag_indices_from(gram)] += ridge
        solver = DirectSolver(gram, damping=ridge, message=_singular_kernel)
        features.append(phi)
        queries.append(solver.solve(phi_test.T).T / n_models)
        kernels.append(solver)
        weights += 1.0 - _correct_probability(module, state, X_train, y_train)
    weights /= n_models
    Phi = np.hstack(features)
    Q = np.hstack(queries)

    def contract(query: np.ndarray, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        out = np.matmul(query, Phi[rows].T, out=out)
        out *= weights[rows][None, :]
        return out

    def self_influence(rows: slice) -> np.ndarray:
        total = np.zeros(Phi[rows].shape[0])
        for m, solver in enumerate(kernels):
            block = Phi[rows, m * k : (m + 1) * k]
            total += np.einsum("bj,jb->b", block, solver.solve(block.T)) / n_models
        return total * weights[rows]

    test_hash = test.content_hash() if isinstance(test, Dataset) else None
    return InfluenceResult(
        Q,
        contract,
        n,
        self_influence=self_influence,
        contributors=train.contributors,
        method="trak",
        parameters={
            "n_models": n_models,
            "projection_dim": k,
            "damping": damping,
            "layers": None if layers is None else list(layers),
            "seed": seed,
        },
        provenance=make_provenance(
            dataset_hash=train.content_hash(), test_dataset_hash=test_hash, model=repr(template)
        ),
        memory_budget=memory_budget,
        seed=seed,
    )
