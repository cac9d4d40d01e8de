"""TracIn over saved checkpoints (Pruthi, Liu, Kale & Sundararajan 2020, NeurIPS).

TracInCP (their eq. 3) estimates how much training on ``z_i`` reduced the loss on ``z``:

.. math::

    \\mathrm{TracIn}(z_i, z) = \\sum_c \\eta_c\\, \\nabla_\\theta \\ell(z_i; \\theta_c) \\cdot
    \\nabla_\\theta \\ell(z; \\theta_c),

over checkpoints ``theta_c`` saved every few steps with learning rate ``eta_c``. Positive
("proponents") = the point helps the test prediction, as elsewhere in the package.
Per-example gradients come from ``torch.func`` (``functional_call``, ``vmap``, ``grad``).
An optional random projection (their section 3.2, TracIn-CP with random projections)
keeps the stored training gradients small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._vocab import deprecated_keywords, parse_memory_budget
from ..data import Dataset
from ..errors import ValidationError
from ..result import make_provenance
from . import _torch
from .result import InfluenceResult, available_memory

__all__ = ["tracin"]


def _learning_rates(learning_rates: Any, n_checkpoints: int) -> np.ndarray:
    rates = np.atleast_1d(np.asarray(learning_rates, dtype=np.float64))
    if rates.size == 1:
        rates = np.full(n_checkpoints, float(rates[0]))
    if rates.shape != (n_checkpoints,) or not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ValidationError(
            f"learning_rates must be one non-negative number or one per checkpoint "
            f"({n_checkpoints}), got {learning_rates!r}"
        )
    return rates


@deprecated_keywords(max_bytes="memory_budget")
def tracin(
    model: Any,
    train: Dataset,
    test: Any,
    *,
    checkpoints: Sequence[Any] | None = None,
    learning_rates: float | Sequence[float] = 1.0,
    loss: Callable[[Any, Any], Any] | None = None,
    layers: Sequence[str] | None = None,
    projection_dim: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    memory_budget: int | str | None = None,
    progress: bool = True,
) -> InfluenceResult:
    """TracIn influence of every training point on every test point of a torch classifier.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor (batch, n_features) to logits (batch, n_classes) (one column =
        binary logit). Used as the architecture; its own parameters are the single
        checkpoint when ``checkpoints`` is None.
    train, test : Dataset
        Labels are class indices ``0..n_classes-1``; ``test`` may also be a feature array
        (then its labels are the model's predictions).
    checkpoints : sequence of state dicts or ``torch.save`` paths, optional
    learning_rates : float or sequence of float
        ``eta_c`` per checkpoint.
    loss : callable ``(logits, targets) -> scalar``, optional
        Default cross-entropy (binary cross-entropy for one output).
    layers : sequence of str, optional
        Only parameters under these module names (Pruthi et al. often use the last layer).
    projection_dim : int, optional
        Project gradients to this many dimensions (Gaussian, seeded by ``seed``).
    batch_size : int
        Examples per ``vmap`` call.
    seed : int, default 0
        Seed of the random projection (unused without ``projection_dim``).
    memory_budget : int or str, optional
        Bytes (or a string like ``"2GB"``) the stored training gradients and each block of
        later computations may use; storing more is refused. Default: gradients up to half
        the free memory, blocks of 256 MiB. Replaces ``max_bytes`` (deprecated).
    progress : bool
        Progress bar over checkpoints.

    Returns
    -------
    InfluenceResult

    Examples
    --------
    >>> import copy
    >>> import openattrib as oa
    >>> import torch
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> X, y = torch.tensor(train.X, dtype=torch.float32), torch.tensor(train.y)
    >>> checkpoints = []
    >>> for step in range(20):  # plain gradient descent; keep the weights every 10th step
    ...     net.zero_grad()
    ...     torch.nn.functional.cross_entropy(net(X), y).backward()
    ...     with torch.no_grad():
    ...         for p in net.parameters():
    ...             p -= 0.1 * p.grad
    ...     if step % 10 == 9:
    ...         checkpoints.append(copy.deepcopy(net.state_dict()))
    >>> result = oa.tracin(net, train, test, checkpoints=checkpoints, learning_rates=0.1,
    ...                    progress=False)
    >>> result.to_array().shape  # (n_test, n_train)
    (30, 120)
    """
    from tqdm.auto import tqdm

    _torch.check_module(model, "tracin")
    if not isinstance(train, Dataset):
        raise ValidationError("train must be an openattrib Dataset")
    loss_fn = _torch.cross_entropy_loss if loss is None else loss
    names = _torch.trainable_names(model, layers)
    X_train = _torch.features_tensor(model, train.X)
    width = _torch.n_outputs(model, X_train)
    y_train = _torch.labels_tensor(train.y, width, "train")
    X_test, y_test = _torch.dataset_tensors(model, test, width, "test")
    current = {n: p.detach() for n, p in model.named_parameters() if n in names}
    if checkpoints is None:
        states = [current]
    else:
        states = [_torch.load_checkpoint(c, names, i) for i, c in enumerate(checkpoints)]
    if not states:
        raise ValidationError("checkpoints is empty; pass at least one state dict or None")
    rates = _learning_rates(learning_rates, len(states))
    n_params = sum(int(p.numel()) for p in current.values())
    dim = n_params if projection_dim is None else int(projection_dim)
    if dim < 1:
        raise ValidationError(f"projection_dim must be a positive int, got {projection_dim!r}")
    if memory_budget is None:
        limit, block = available_memory() // 2, 256 * 2**20
    else:
        limit = block = parse_memory_budget(memory_budget)
    _torch.check_memory(train.n_samples, dim * len(states), limit, "tracin")

    train_parts, test_parts, scale_parts = [], [], []
    for c, state in enumerate(tqdm(states, disable=not progress, desc="tracin checkpoints")):
        g_train = _torch.per_example_gradients(model, state, X_train, y_train, loss_fn, batch_size)
        g_test = _torch.per_example_gradients(model, state, X_test, y_test, loss_fn, batch_size)
        if projection_dim is not None:
            P = _torch.projection(n_params, dim, seed, c)
            g_train, g_test = g_train @ P, g_test @ P
        train_parts.append(g_train)
        test_parts.append(rates[c] * g_test)
        scale_parts.append(np.full(dim, rates[c]))
    G = np.hstack(train_parts)
    Q = np.hstack(test_parts)
    rate_per_column = np.concatenate(scale_parts)

    def contract(query: np.ndarray, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        return np.matmul(query, G[rows].T, out=out)

    def self_influence(rows: slice) -> np.ndarray:
        return (G[rows] ** 2) @ rate_per_column

    test_hash = test.content_hash() if isinstance(test, Dataset) else None
    return InfluenceResult(
        Q,
        contract,
        train.n_samples,
        self_influence=self_influence,
        contributors=train.contributors,
        method="tracin",
        parameters={
            "n_checkpoints": len(states),
            "learning_rates": rates.tolist(),
            "layers": None if layers is None else list(layers),
            "projection_dim": projection_dim,
            "seed": seed,
            "loss": "cross_entropy" if loss is None else getattr(loss, "__name__", "custom"),
        },
        provenance=make_provenance(
            dataset_hash=train.content_hash(), test_dataset_hash=test_hash, model=repr(model)
        ),
        diagnostics={"n_params": n_params},
        memory_budget=block,
        seed=seed,
    )
