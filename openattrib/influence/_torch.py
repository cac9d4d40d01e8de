"""Shared torch helpers for TracIn (and the torch paths of other methods): per-example gradients with ``torch.func``.

torch is an optional dependency (``pip install 'openattrib[torch]'``); it is imported only
inside these functions, so ``import openattrib`` works without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import BudgetError, UnsupportedError, ValidationError

__all__ = [
    "require_torch",
    "check_module",
    "labels_tensor",
    "features_tensor",
    "trainable_names",
    "load_checkpoint",
    "per_example_gradients",
    "cross_entropy_loss",
    "projection",
    "check_memory",
]


def require_torch(what: str) -> Any:
    try:
        import torch
    except ImportError:
        raise UnsupportedError(
            f"{what} needs PyTorch; install the extra with pip install 'openattrib[torch]' "
            "(torch==2.13.0, CPU build)"
        ) from None
    return torch


def check_module(model: Any, what: str) -> None:
    torch = require_torch(what)
    if not isinstance(model, torch.nn.Module):
        raise UnsupportedError(
            f"{what} needs a torch.nn.Module classifier, got {type(model).__name__}; for "
            "scikit-learn linear models use oa.influence"
        )


def features_tensor(model: Any, X: np.ndarray) -> Any:
    torch = require_torch("this method")
    dtype = next(model.parameters()).dtype
    return torch.tensor(np.asarray(X), dtype=dtype)  # a copy: Dataset arrays are read-only


def labels_tensor(y: np.ndarray, n_outputs: int, role: str) -> Any:
    """Class indices as a long tensor; labels must already be ``0..n_outputs-1``."""
    torch = require_torch("this method")
    y = np.asarray(y)
    n_classes = max(n_outputs, 2)
    if y.dtype.kind not in "biu" or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise ValidationError(
            f"{role} labels must be integer class indices 0..{n_classes - 1} matching the "
            f"model's {n_outputs} output(s); encode them with sklearn.preprocessing.LabelEncoder"
        )
    return torch.tensor(y.astype(np.int64))


def trainable_names(model: Any, layers: Sequence[str] | None) -> list[str]:
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if layers is not None:
        chosen = [
            n for n in names if any(n == prefix or n.startswith(prefix + ".") for prefix in layers)
        ]
        if not chosen:
            raise ValidationError(
                f"layers={list(layers)!r} matches no trainable parameter; available: {names}"
            )
        names = chosen
    if not names:
        raise ValidationError("the model has no trainable parameters")
    return names


def load_checkpoint(checkpoint: Any, names: list[str], index: int) -> dict[str, Any]:
    """Parameters ``names`` of a checkpoint given as a state dict or a ``torch.save`` file."""
    torch = require_torch("this method")
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise ValidationError(f"checkpoint {index} not found: {path}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValidationError(
            f"checkpoint {index} must be a state dict (model.state_dict()) or a path to one, "
            f"got {type(checkpoint).__name__}"
        )
    missing = [n for n in names if n not in checkpoint]
    if missing:
        raise ValidationError(f"checkpoint {index} lacks parameters {missing}")
    return {n: torch.as_tensor(checkpoint[n]).detach() for n in names}


def cross_entropy_loss(outputs: Any, targets: Any) -> Any:
    """Cross-entropy of logits (one output: binary logit with ``BCEWithLogits``)."""
    import torch.nn.functional as F

    if outputs.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(outputs[:, 0], targets.to(outputs.dtype))
    return F.cross_entropy(outputs, targets)


def n_outputs(model: Any, X: Any) -> int:
    """Width of the model's output (logits) on one example."""
    torch = require_torch("this method")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(X[:1])
    finally:
        model.train(was_training)
    if out.ndim != 2:
        raise UnsupportedError(
            f"the model must map (batch, n_features) to (batch, n_classes) logits; got output "
            f"shape {tuple(out.shape)}"
        )
    return int(out.shape[1])


def per_example_gradients(
    model: Any,
    params: dict[str, Any],
    X: Any,
    y: Any,
    function: Callable[[Any, Any], Any],
    batch_size: int = 256,
) -> np.ndarray:
    """Gradients of ``function(model(x_i), y_i)`` in ``params``, one row per example.

    Uses ``torch.func.functional_call`` under ``vmap(grad(...))``; the model is put in
    eval mode (no dropout noise, running batch-norm statistics) and restored afterwards.
    """
    torch = require_torch("this method")
    from torch.func import functional_call, grad, vmap

    names = list(params)
    others = {n: p.detach() for n, p in model.named_parameters() if n not in params}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def one(trainable: dict[str, Any], x: Any, target: Any) -> Any:
        state = {**others, **trainable, **buffers}
        out = functional_call(model, state, (x.unsqueeze(0),))
        return function(out, target.unsqueeze(0))

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()
    rows = []
    try:
        for start in range(0, X.shape[0], batch_size):
            grads = per_example(
                params, X[start : start + batch_size], y[start : start + batch_size]
            )
            rows.append(
                torch.cat([grads[n].reshape(grads[n].shape[0], -1) for n in names], dim=1)
                .detach()
                .cpu()
                .numpy()
                .astype(np.float64)
            )
    finally:
        model.train(was_training)
    return np.vstack(rows)


def projection(n_params: int, dim: int, seed: int, index: int) -> np.ndarray:
    """Gaussian Johnson-Lindenstrauss matrix ``(n_params, dim)`` scaled by ``1/sqrt(dim)``.

    Drawn from the stream ``SeedSequence(entropy=seed, spawn_key=(index,))``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(index,)))
    return rng.standard_normal((n_params, dim)) / np.sqrt(dim)


def check_memory(n_rows: int, n_columns: int, memory_budget: int, what: str) -> None:
    needed = 8 * n_rows * n_columns
    if needed > memory_budget:
        raise BudgetError(
            f"{what} would store {n_rows} x {n_columns} float64 gradients "
            f"({needed / 2**20:.1f} MiB) above memory_budget={memory_budget / 2**20:.1f} MiB; "
            "pass projection_dim (random projection), layers= (fewer parameters) or a larger "
            "memory_budget"
        )


def dataset_tensors(model: Any, ds: Dataset | Any, n_outputs: int, role: str) -> tuple[Any, Any]:
    """``(X, y)`` tensors; for a bare feature array ``y`` is the model's predicted class."""
    torch = require_torch("this method")
    if isinstance(ds, Dataset):
        return features_tensor(model, ds.X), labels_tensor(ds.y, n_outputs, role)
    X = features_tensor(model, np.asarray(ds, dtype=np.float64))
    if X.ndim != 2:
        raise ValidationError(f"{role} must be a Dataset or a 2-D feature array")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(X)
    finally:
        model.train(was_training)
    y = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(dim=1)
    return X, y
