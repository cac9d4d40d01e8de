"""Per-example gradients of torch models, layer by layer, for the neural influence methods.

The engine behind ``oa.influence(module, ...)`` for ``"ekfac"``, ``"datainf"``,
``"identity"`` and ``"tracin"`` on any ``torch.nn.Module``: a HuggingFace ``transformers``
model, a ``peft`` LoRA adapter or a plain network. It hooks every *covered* layer - a
``torch.nn.Linear``, a ``torch.nn.Conv2d`` (``groups=1``) or a ``transformers`` ``Conv1D``
whose weight is trainable - records the layer inputs ``a`` and the gradients ``g`` of the
per-example loss with respect to the layer outputs, and forms the per-example weight
gradient ``G_i = sum_t g_{i,t} a_{i,t}^T`` (``t`` runs over tokens or spatial positions; a
trainable bias is a column of ones appended to ``a``). One forward and one backward pass per
batch give every example's gradient; nothing is materialised per parameter.

Influence is taken over the trainable parameters of covered layers (with ``peft`` only the
LoRA matrices are trainable); other trainable parameters (embeddings, norms) are listed in
the result's diagnostics and ignored, as in Kronfluence and LoGra. A weight shared with an
uncovered module (an output layer tied to the input embeddings) contributes only its
covered use; untie it (``tie_word_embeddings=False``) for exact gradients.

Data: an :class:`~openattrib.data.Dataset` (tabular features, class labels), token ids (a
2-D integer array or a list of 1-D arrays, right-padded; the loss is the summed next-token
cross-entropy) or a ``torch.utils.data.DataLoader`` yielding ``(inputs, targets)`` pairs or
``{"input_ids": ..., "labels": ...}`` dicts, in a fixed order (``shuffle=False``).

Optional projection (LoGra, Choe et al. 2024): each layer's ``d_out x d_in`` gradient is
compressed to ``R_out^T G R_in`` with independent Gaussian ``R`` (entries ``N(0, 1/k)``),
so inner products are preserved in expectation (Johnson-Lindenstrauss) and the full gradient
is never formed when no curvature is applied before projecting.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import UnsupportedError, ValidationError
from . import _torch

__all__ = [
    "is_torch_module",
    "Examples",
    "as_examples",
    "Layer",
    "covered_layers",
    "GradientEngine",
    "layer_gradients",
    "model_hash",
]

log = logging.getLogger("openattrib")


def is_torch_module(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


# ---------------------------------------------------------------------------- data
@dataclass
class Examples:
    """Examples as ``(inputs, targets)`` batches held in memory, with their content hash.

    ``kind`` is ``"tabular"`` (float features, class labels) or ``"sequence"`` (token ids;
    targets are the ids with ``-100`` at positions that carry no loss).
    """

    batches: list[tuple[Any, Any]]
    kind: str
    n: int
    content_hash: str
    contributors: np.ndarray | None = None
    names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def iter_batches(self, batch_size: int) -> Iterator[tuple[int, Any, Any]]:
        """``(start_row, inputs, targets)`` re-chunked to at most ``batch_size`` rows."""
        torch = _torch.require_torch("neural influence")
        inputs = torch.cat([b[0] for b in self.batches]) if len(self.batches) > 1 else None
        if inputs is None:
            inputs, targets = self.batches[0]
        else:
            targets = torch.cat([b[1] for b in self.batches])
        for start in range(0, self.n, batch_size):
            yield start, inputs[start : start + batch_size], targets[start : start + batch_size]


def _hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256(b"openattrib-examples-v1")
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype.str).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _pad_sequences(sequences: Sequence[Any], role: str) -> np.ndarray:
    rows = []
    for j, seq in enumerate(sequences):
        arr = np.asarray(seq)
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or arr.size < 2:
            raise ValidationError(
                f"{role} sequence {j} must be a 1-D integer array of at least 2 token ids, "
                f"got shape {arr.shape} dtype {arr.dtype}"
            )
        rows.append(arr.astype(np.int64))
    width = max(r.size for r in rows)
    out = np.full((len(rows), width), -100, dtype=np.int64)
    for j, r in enumerate(rows):
        out[j, : r.size] = r
    return out


def _sequence_examples(ids: np.ndarray, role: str, contributors: Any) -> Examples:
    torch = _torch.require_torch("neural influence")
    if ids.size and (ids.min() < -100 or (ids < 0).any() and not (ids[ids < 0] == -100).all()):
        raise ValidationError(f"{role} token ids must be non-negative (-100 marks padding)")
    labels = torch.tensor(ids)
    inputs = torch.tensor(np.where(ids < 0, 0, ids))
    contrib = None if contributors is None else np.asarray(contributors)
    if contrib is not None and contrib.shape != (ids.shape[0],):
        raise ValidationError(
            f"contributors must have one entry per {role} sequence ({ids.shape[0]}), got "
            f"shape {contrib.shape}"
        )
    return Examples([(inputs, labels)], "sequence", int(ids.shape[0]), _hash_arrays(ids), contrib)


def as_examples(
    model: Any, data: Any, role: str, *, contributors: Any = None, labels: str = "given"
) -> Examples:
    """Normalise ``data`` (Dataset, token ids or DataLoader) into in-memory batches.

    ``labels="predicted"`` is used for a bare tabular feature array on the test side: the
    explained output is then the model's own predicted class.
    """
    torch = _torch.require_torch("neural influence")
    if isinstance(data, Dataset):
        X = _torch.features_tensor(model, data.X)
        width = _torch.n_outputs(model, X)
        y = _torch.labels_tensor(data.y, width, role)
        return Examples(
            [(X, y)],
            "tabular",
            data.n_samples,
            data.content_hash(),
            data.contributors if contributors is None else np.asarray(contributors),
            list(data.names) if hasattr(data, "names") else None,
        )
    if isinstance(data, torch.utils.data.DataLoader):
        return _loader_examples(data, role, contributors)
    if isinstance(data, np.ndarray) and data.dtype.kind == "f":
        if data.ndim != 2:
            raise ValidationError(f"{role} feature array must be 2-D, got shape {data.shape}")
        X, y = _torch.dataset_tensors(model, data, 0, role)
        return Examples([(X, y)], "tabular", int(X.shape[0]), _hash_arrays(data))
    if isinstance(data, np.ndarray) and data.dtype.kind in "iu" and data.ndim == 2:
        return _sequence_examples(data.astype(np.int64), role, contributors)
    if isinstance(data, (list, tuple)) and data and not isinstance(data[0], (int, np.integer)):
        return _sequence_examples(_pad_sequences(data, role), role, contributors)
    if isinstance(data, np.ndarray) and data.dtype.kind in "iu" and data.ndim == 1:
        return _sequence_examples(_pad_sequences([data], role), role, contributors)
    raise ValidationError(
        f"{role} must be an openattrib Dataset (tabular), token ids (2-D integer array or a "
        f"list of 1-D integer arrays) or a torch DataLoader, got {type(data).__name__}"
    )


def _loader_examples(loader: Any, role: str, contributors: Any) -> Examples:
    torch = _torch.require_torch("neural influence")
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, torch.utils.data.RandomSampler):
        raise ValidationError(
            f"the {role} DataLoader shuffles (RandomSampler); influence rows must keep a fixed "
            "order: build it with shuffle=False"
        )
    batches, arrays = [], []
    for b, batch in enumerate(loader):
        if isinstance(batch, dict):
            if "input_ids" not in batch:
                raise ValidationError(f"{role} DataLoader batch {b} has no 'input_ids' key")
            inputs = torch.as_tensor(batch["input_ids"]).long()
            targets = torch.as_tensor(batch.get("labels", batch["input_ids"])).long()
            if "attention_mask" in batch:
                targets = targets.masked_fill(torch.as_tensor(batch["attention_mask"]) == 0, -100)
        elif isinstance(batch, (list, tuple)) and len(batch) == 2:
            inputs, targets = (torch.as_tensor(t) for t in batch)
        else:
            raise ValidationError(
                f"{role} DataLoader batch {b} must be (inputs, targets) or a dict with "
                f"'input_ids', got {type(batch).__name__}"
            )
        batches.append((inputs, targets))
        arrays += [inputs.numpy(), targets.numpy()]
    if not batches:
        raise ValidationError(f"the {role} DataLoader is empty")
    kind = "tabular" if batches[0][0].is_floating_point() else "sequence"
    if kind == "sequence":
        batches = [(x.clamp_min(0), t) for x, t in batches]
    n = sum(int(x.shape[0]) for x, _ in batches)
    contrib = None if contributors is None else np.asarray(contributors)
    if contrib is not None and contrib.shape != (n,):
        raise ValidationError(f"contributors must have {n} entries (one per {role} example)")
    return Examples(batches, kind, n, _hash_arrays(*arrays), contrib)


# ---------------------------------------------------------------------------- layers
@dataclass
class Layer:
    """One covered layer: its module, kind and gradient shape ``(d_out, d_in [+ 1])``."""

    name: str
    module: Any
    kind: str  # "linear", "conv2d", "conv1d" (transformers' transposed Linear)
    bias: bool
    d_out: int
    d_in: int  # including the bias column

    @property
    def size(self) -> int:
        return self.d_out * self.d_in


def covered_layers(model: Any, only: Sequence[str] | None = None) -> tuple[list[Layer], list[str]]:
    """Covered layers (trainable weight) and the names of trainable parameters left out.

    ``only``: module names; keep only the layers named so or nested under one of them (the
    trainable parameters of the others are then left out on purpose, not reported).
    """
    torch = _torch.require_torch("neural influence")
    layers: list[Layer] = []
    covered: set[str] = set()
    chosen = None if only is None else [str(prefix) for prefix in only]
    for name, module in model.named_modules():
        if chosen is not None and not any(
            name == prefix or name.startswith(prefix + ".") for prefix in chosen
        ):
            continue
        weight = getattr(module, "weight", None)
        if weight is None or not isinstance(weight, torch.nn.Parameter) or not weight.requires_grad:
            continue
        bias = getattr(module, "bias", None)
        has_bias = isinstance(bias, torch.nn.Parameter) and bias.requires_grad
        if isinstance(module, torch.nn.Linear):
            kind, d_out, d_in = "linear", module.out_features, module.in_features
        elif isinstance(module, torch.nn.Conv2d):
            if (
                module.groups != 1
                or module.padding_mode != "zeros"
                or isinstance(module.padding, str)
            ):
                continue
            kind = "conv2d"
            d_out = module.out_channels
            d_in = module.in_channels * int(np.prod(module.kernel_size))
        elif type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
            kind, d_out, d_in = "conv1d", int(weight.shape[1]), int(weight.shape[0])
        else:
            continue
        layers.append(Layer(name, module, kind, has_bias, d_out, d_in + has_bias))
        prefix = f"{name}." if name else ""
        covered.add(prefix + "weight")
        if has_bias:
            covered.add(prefix + "bias")
    left_out = [n for n, p in model.named_parameters() if p.requires_grad and n not in covered]
    if chosen is not None:
        if not layers:
            names = [n for n, m in model.named_modules() if n and hasattr(m, "weight")]
            raise ValidationError(
                f"layers={chosen!r} names no trainable Linear, Conv2d or Conv1D module; "
                f"modules with weights: {names[:20]}"
            )
        left_out = []
    if not layers:
        raise UnsupportedError(
            f"{type(model).__name__} has no trainable Linear, Conv2d or transformers Conv1D "
            "layer, so there is no gradient to attribute; unfreeze at least one such layer"
        )
    return layers, left_out


def layer_gradient_to_parameters(layer: Layer, G: np.ndarray) -> dict[str, np.ndarray]:
    """Split a ``(d_out, d_in)`` layer gradient into the module's parameter shapes."""
    weight = G[:, : layer.d_in - layer.bias] if layer.bias else G
    shape = tuple(layer.module.weight.shape)
    if layer.kind == "conv1d":
        weight = weight.T
    out = {"weight": weight.reshape(shape)}
    if layer.bias:
        out["bias"] = G[:, -1]
    return out


# ---------------------------------------------------------------------------- losses
def model_outputs(model: Any, inputs: Any) -> Any:
    out = model(inputs)
    if hasattr(out, "logits"):
        out = out.logits
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out


def per_example_loss(
    outputs: Any, targets: Any, kind: str, loss: str | Callable, token_weights: Any = None
) -> Any:
    """Per-example losses (shape ``(batch,)``).

    ``"cross_entropy"``: softmax cross-entropy of logits (binary logit for one output); for
    sequences the next-token cross-entropy *summed* over the positions whose target is not
    ``-100`` (optionally weighted per position by ``token_weights``). ``"margin"``: TRAK's
    ``-(log p_y - log(1 - p_y))`` (negated, so that like a loss, lower = better fitted). A
    callable ``loss(outputs_i, targets_i) -> scalar`` is applied to each example on its own.
    """
    torch = _torch.require_torch("neural influence")
    import torch.nn.functional as F

    if callable(loss):
        values = [loss(outputs[i : i + 1], targets[i : i + 1]) for i in range(outputs.shape[0])]
        for v in values[:1]:
            if not torch.is_tensor(v) or v.numel() != 1:
                raise ValidationError(
                    "loss must return a scalar tensor for one example (outputs[i:i+1], "
                    "targets[i:i+1])"
                )
        return torch.stack([v.reshape(()) for v in values])
    if kind == "sequence":
        logits = outputs[:, :-1]
        labels = targets[:, 1:]
        valid = labels != -100
        safe = labels.clamp_min(0)
        logp = torch.log_softmax(logits.double() if logits.dtype == torch.float64 else logits, -1)
        chosen = logp.gather(-1, safe[..., None])[..., 0]
        if loss == "margin":
            others = torch.logsumexp(logp.scatter(-1, safe[..., None], float("-inf")), dim=-1)
            per_token = -(chosen - others)
        else:
            per_token = -chosen
        per_token = per_token * valid
        if token_weights is not None:
            per_token = per_token * token_weights[:, 1:]
        return per_token.sum(dim=1)
    if outputs.ndim != 2:
        raise UnsupportedError(
            f"tabular data needs a model mapping (batch, n_features) to (batch, n_classes) "
            f"logits; got output shape {tuple(outputs.shape)}"
        )
    if loss == "margin":
        if outputs.shape[1] == 1:
            sign = 2.0 * targets.to(outputs.dtype) - 1.0
            return -(sign * outputs[:, 0])
        correct = outputs.gather(1, targets[:, None])[:, 0]
        others = outputs.scatter(1, targets[:, None], float("-inf"))
        return -(correct - torch.logsumexp(others, dim=1))
    if outputs.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(
            outputs[:, 0], targets.to(outputs.dtype), reduction="none"
        )
    return F.cross_entropy(outputs, targets, reduction="none")


def correct_probability(model: Any, examples: Examples, batch_size: int = 256) -> np.ndarray:
    """Probability the model gives each example's target, ``(n,)`` float64.

    Tabular: ``p(y_i | x_i)`` (sigmoid for one output). Sequences: the mean over the
    positions that carry a loss of ``p(next token)``. The model is evaluated in ``eval()``
    mode and restored.
    """
    torch = _torch.require_torch("neural influence")
    out = np.empty(examples.n)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start, inputs, target in examples.iter_batches(batch_size):
                logits = model_outputs(model, inputs).double()
                rows = slice(start, start + inputs.shape[0])
                if examples.kind == "sequence":
                    labels = target[:, 1:]
                    valid = labels != -100
                    logp = torch.log_softmax(logits[:, :-1], -1)
                    p = logp.gather(-1, labels.clamp_min(0)[..., None])[..., 0].exp()
                    count = valid.sum(1).clamp_min(1)
                    out[rows] = ((p * valid).sum(1) / count).numpy()
                elif logits.shape[1] == 1:
                    p1 = torch.sigmoid(logits[:, 0])
                    out[rows] = torch.where(target == 1, p1, 1 - p1).numpy()
                else:
                    out[rows] = torch.softmax(logits, 1).gather(1, target[:, None])[:, 0].numpy()
    finally:
        model.train(was_training)
    return out


def check_loss(loss: Any) -> str | Callable:
    if callable(loss) or loss in ("cross_entropy", "margin"):
        return loss
    raise ValidationError(
        f"loss must be 'cross_entropy' or a callable (outputs, targets) -> scalar, got {loss!r}"
    )


def sample_targets(outputs: Any, targets: Any, kind: str, generator: Any) -> Any:
    """Targets drawn from the model's predictive distribution (the *true* Fisher)."""
    torch = _torch.require_torch("neural influence")
    if kind == "sequence":
        probs = torch.softmax(outputs[:, :-1].detach().double(), -1)
        flat = probs.reshape(-1, probs.shape[-1])
        draws = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
        sampled = targets.clone()
        shifted = sampled[:, 1:]
        shifted[targets[:, 1:] != -100] = draws[targets[:, 1:] != -100]
        return sampled
    if outputs.shape[1] == 1:
        p = torch.sigmoid(outputs[:, 0].detach().double())
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype) < p).long()
    probs = torch.softmax(outputs.detach().double(), -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


# ---------------------------------------------------------------------------- gradients
def model_hash(model: Any) -> str:
    """SHA-256 of the model's class, parameter names, shapes, trainability and values."""
    torch = _torch.require_torch("neural influence")
    h = hashlib.sha256(b"openattrib-torch-model-v1" + type(model).__qualname__.encode())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}:{tensor.requires_grad}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class GradientEngine:
    """Per-example layer gradients of one model, by hooks on the covered layers.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated in ``eval()`` mode (restored afterwards).
    loss : "cross_entropy", "margin" or callable
    layers : sequence of str, optional
        Module names: attribute through these layers only (default every covered layer).
    """

    def __init__(
        self,
        model: Any,
        loss: str | Callable = "cross_entropy",
        layers: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self.loss = check_loss(loss)
        self.layers, self.left_out = covered_layers(model, layers)
        if self.left_out:
            log.info(
                "neural influence ignores %d trainable parameter(s) outside Linear/Conv layers: %s",
                len(self.left_out),
                ", ".join(self.left_out[:8]),
            )

    @property
    def n_params(self) -> int:
        return sum(layer.size for layer in self.layers)

    def _capture(self) -> tuple[dict[str, Any], list[Any]]:
        store: dict[str, Any] = {}
        handles = []
        torch = _torch.require_torch("neural influence")
        import torch.nn.functional as F

        for layer in self.layers:

            def forward_hook(module: Any, args: Any, output: Any, layer: Layer = layer) -> None:
                a = args[0].detach()
                if layer.kind == "conv2d":
                    m = module
                    a = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)
                    a = a.transpose(1, 2)  # (B, L, C*kh*kw)
                else:
                    a = a.reshape(a.shape[0], -1, a.shape[-1])
                if layer.bias:
                    a = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)
                store[layer.name + ":a"] = a

                def grad_hook(g: Any) -> None:
                    g = g.detach()
                    if layer.kind == "conv2d":
                        g = g.reshape(g.shape[0], g.shape[1], -1).transpose(1, 2)
                    else:
                        g = g.reshape(g.shape[0], -1, g.shape[-1])
                    store[layer.name + ":g"] = g

                if output.requires_grad:
                    output.register_hook(grad_hook)

            handles.append(layer.module.register_forward_hook(forward_hook))
        return store, handles

    def batches(
        self,
        examples: Examples,
        *,
        batch_size: int = 64,
        targets: str = "given",
        seed: int = 0,
        token_weights: Any = None,
    ) -> Iterator[tuple[slice, list[tuple[Any, Any]]]]:
        """Yield ``(rows, [(a, g) per layer])`` for each batch.

        ``a``: ``(B, T, d_in)`` layer inputs, ``g``: ``(B, T, d_out)`` gradients of the
        per-example loss w.r.t. the layer outputs; ``G_i = g_i^T a_i``. ``targets="sampled"``
        draws the targets from the model (true Fisher), seeded by ``seed``.
        """
        torch = _torch.require_torch("neural influence")
        model = self.model
        was_training = model.training
        model.eval()
        generator = torch.Generator().manual_seed(int(seed))
        store, handles = self._capture()
        try:
            for start, inputs, target in examples.iter_batches(batch_size):
                store.clear()
                model.zero_grad(set_to_none=True)
                out = model_outputs(model, inputs)
                if targets == "sampled":
                    if callable(self.loss):
                        raise ValidationError(
                            "fisher='true' samples targets from the model and needs "
                            "loss='cross_entropy'; with a custom loss use fisher='empirical'"
                        )
                    target = sample_targets(out, target, examples.kind, generator)
                weights = None
                if token_weights is not None:
                    weights = token_weights[start : start + inputs.shape[0]]
                losses = per_example_loss(out, target, examples.kind, self.loss, weights)
                losses.sum().backward()
                pairs = []
                for layer in self.layers:
                    g = store.get(layer.name + ":g")
                    a = store[layer.name + ":a"]
                    if g is None:
                        g = torch.zeros(a.shape[0], a.shape[1], layer.d_out, dtype=a.dtype)
                    pairs.append((a, g))
                yield slice(start, start + inputs.shape[0]), pairs
        finally:
            for h in handles:
                h.remove()
            model.zero_grad(set_to_none=True)
            model.train(was_training)

    def per_example_gradients(self, examples: Examples, batch_size: int = 64) -> np.ndarray:
        """Full ``(n, n_params)`` per-example gradients (small models and tests)."""
        out = np.empty((examples.n, self.n_params))
        for rows, pairs in self.batches(examples, batch_size=batch_size):
            out[rows] = np.hstack([layer_gradients(a, g).reshape(a.shape[0], -1) for a, g in pairs])
        return out


def layer_gradients(a: Any, g: Any) -> np.ndarray:
    """Per-example ``G_b = sum_t g_bt a_bt^T`` of shape (B, d_out, d_in), float64."""
    g = np.ascontiguousarray(np.swapaxes(g.double().numpy(), 1, 2))  # batched BLAS needs it
    return g @ a.double().numpy()


# ---------------------------------------------------------------------------- projection
def kronecker_projection(layer: Layer, dim: int | None, seed: int, index: int) -> tuple[Any, Any]:
    """Per-layer Gaussian projections ``(R_out, R_in)`` to about ``dim`` entries, or Nones.

    A layer with at most ``dim`` entries is kept whole. Otherwise ``k_in = min(d_in,
    ceil(sqrt(dim)))`` and ``k_out = min(d_out, ceil(dim / k_in))``, entries ``N(0, 1/k)``
    from ``SeedSequence(seed, spawn_key=(index,))``.
    """
    if dim is None or layer.size <= dim:
        return None, None
    k_in = min(layer.d_in, math.ceil(math.sqrt(dim)))
    k_out = min(layer.d_out, math.ceil(dim / k_in))
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(index,)))
    r_out = rng.standard_normal((layer.d_out, k_out)) / math.sqrt(k_out)
    r_in = rng.standard_normal((layer.d_in, k_in)) / math.sqrt(k_in)
    if k_out == layer.d_out:
        r_out = None
    if k_in == layer.d_in:
        r_in = None
    return r_out, r_in


def projected_width(layer: Layer, proj: tuple[Any, Any]) -> int:
    r_out, r_in = proj
    return (layer.d_out if r_out is None else r_out.shape[1]) * (
        layer.d_in if r_in is None else r_in.shape[1]
    )


def project(G: np.ndarray, proj: tuple[Any, Any]) -> np.ndarray:
    """``R_out^T G_b R_in`` for a batch ``G`` of shape ``(B, d_out, d_in)``, flattened."""
    r_out, r_in = proj
    if r_out is not None:
        G = r_out.T @ G
    if r_in is not None:
        G = G @ r_in
    return G.reshape(G.shape[0], -1)
