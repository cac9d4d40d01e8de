"""Influence of training data on torch models: ``"ekfac"``, ``"datainf"``, ``"identity"``,
``"tracin"`` and ``"trak"``, on tabular data and token sequences, fitted once and queried
cheaply.

Every method here scores ``S[t, i] = q_t . phi_i``: ``phi_i`` are *training features* (the
per-example gradients of the covered layers, whitened by the curvature and/or projected;
see ``openattrib.influence.torch_models``) computed once, in batches, kept in memory or
memory-mapped in ``cache_dir``; ``q_t`` is the *query factor* of a test example (one
forward/backward pass and, for DataInf, one pass over the stored features).

* ``"identity"`` - gradient dot product ``g_t . g_i`` (TracIn with one checkpoint).
* ``"tracin"`` - ``sum_c eta_c g_t(theta_c) . g_i(theta_c)`` over ``checkpoints`` (Pruthi et
  al. 2020).
* ``"ekfac"`` - ``g_t^T (F + lambda)^{-1} g_i / n`` with EK-FAC curvature (George et al.
  2018; Grosse et al. 2023), see ``openattrib.influence.ekfac``; ``curvature="exact"``
  uses the dense Hessian instead.
* ``"datainf"`` - the closed form of Kwon et al. 2023, see
  ``openattrib.influence.datainf``.
* ``"trak"`` - Park et al. 2023 over an ensemble (``checkpoints``): margin gradients,
  whitened by each model's ridge-regularised kernel and weighted by ``1 - p``, see
  ``openattrib.influence.trak``.

Sign: positive = the training example helps (removing it raises the test loss).
Projection (``projection_dim``): per-layer Kronecker Gaussian (LoGra, Choe et al. 2024),
applied after whitening for EK-FAC, so inner products of whitened gradients are preserved
in expectation.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._vocab import parse_memory_budget
from ..data import Dataset
from ..errors import BudgetError, ValidationError
from ..result import make_provenance
from . import _torch
from .cache import CacheEntry
from .datainf import datainf_damping, datainf_query
from .ekfac import EKFACFactors, dense_hessian, exact_whitener, fit_ekfac
from .result import InfluenceResult
from .torch_models import (
    Examples,
    GradientEngine,
    as_examples,
    correct_probability,
    kronecker_projection,
    layer_gradients,
    model_hash,
    project,
    projected_width,
)
from .trak import trak_kernel

__all__ = ["NeuralInfluence", "neural_influence", "attribute_generation", "NEURAL_METHODS"]

log = logging.getLogger("openattrib")

NEURAL_METHODS = ("ekfac", "datainf", "identity", "tracin", "trak")


def _layer_features(
    a: Any, g: Any, proj: tuple[Any, Any], whiten: Callable[[Any, Any], np.ndarray] | None
) -> np.ndarray:
    """Features of one layer for a batch: ``R_out^T W(G) R_in`` flattened."""
    if whiten is None and (proj[0] is not None or proj[1] is not None):
        # project a and g first: the d_out x d_in gradient is never formed (LoGra)
        r_out, r_in = proj
        g = g.double().numpy()
        a = a.double().numpy()
        if r_out is not None:
            g = g @ r_out
        if r_in is not None:
            a = a @ r_in
        return (np.ascontiguousarray(np.swapaxes(g, 1, 2)) @ a).reshape(g.shape[0], -1)
    G = layer_gradients(a, g) if whiten is None else whiten(a, g)
    return project(G, proj)


class NeuralInfluence:
    """The training side of one influence method on one torch model, fitted once.

    Built by ``neural_influence`` (through ``oa.influence``) and by
    :func:`attribute_generation`; holds the training features and the curvature so
    :meth:`query` costs one gradient per test example.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; a HuggingFace ``transformers`` model (``.logits`` is used) or a ``peft``
        model (only its trainable LoRA matrices are attributed).
    train : Dataset, token ids or DataLoader
        See ``openattrib.influence.torch_models``.
    method : {"ekfac", "datainf", "identity", "tracin", "trak"}
        ``"trak"``: see ``openattrib.influence.trak``; its ensemble is ``checkpoints``
        (``neural_influence`` takes ``models=``), default the model alone.
    loss : "cross_entropy" or callable ``(outputs_i, targets_i) -> scalar``
        Per-example loss (summed over tokens for sequences). ``"trak"`` differentiates
        TRAK's margin instead unless a callable is given.
    damping : float, optional
        Default per method (see ``openattrib.influence.ekfac``,
        ``openattrib.influence.datainf``, ``openattrib.influence.trak``).
    projection_dim : int, optional
        Per-layer projection size (entries per layer gradient), see module docstring.
    fisher : {"empirical", "true"}, optional
        EK-FAC only: curvature from gradients at the given labels (default) or at labels
        sampled from the model (Grosse et al.; cross-entropy only). On the digits MLP the
        empirical Fisher gave the higher LDS (0.63 vs 0.58 at 150 points, 50 subsets).
    curvature : {"ekfac", "exact"}
        EK-FAC only: ``"exact"`` uses the dense Hessian (small models).
    checkpoints, learning_rates
        TracIn: state dicts (or ``torch.save`` paths) and ``eta_c``; TRAK: the ensemble
        members' state dicts.
    layers : sequence of str, optional
        Module names: attribute through these layers (and those nested in them) only.
    contributors : array-like, optional
        One contributor per training sequence (Datasets carry their own).
    batch_size : int, optional
        Examples per forward/backward pass; default from ``memory_budget``.
    memory_budget : int or str, optional
        Default 256 MiB. Bytes for one batch of gradients and for the in-memory training features (above it
        pass ``cache_dir`` or ``projection_dim``).
    cache_dir : path, optional
        Keep the training side on disk (memory-mapped, with a manifest; a cache built for
        another model or data is refused).
    seed : int
        Seeds the projections and the Fisher's sampled targets.
    progress : bool
    """

    def __init__(
        self,
        model: Any,
        train: Any,
        *,
        method: str = "ekfac",
        loss: str | Callable = "cross_entropy",
        damping: float | None = None,
        projection_dim: int | None = None,
        fisher: str | None = None,
        curvature: str = "ekfac",
        checkpoints: Sequence[Any] | None = None,
        learning_rates: float | Sequence[float] = 1.0,
        layers: Sequence[str] | None = None,
        contributors: Any = None,
        batch_size: int | None = None,
        memory_budget: int | str | None = None,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        from tqdm.auto import tqdm

        if method not in NEURAL_METHODS:
            raise ValidationError(
                f"method must be one of {', '.join(map(repr, NEURAL_METHODS))} for a torch "
                f"model, got {method!r}"
            )
        if curvature not in ("ekfac", "exact"):
            raise ValidationError(f"curvature must be 'ekfac' or 'exact', got {curvature!r}")
        if projection_dim is not None and (
            isinstance(projection_dim, bool) or int(projection_dim) < 1
        ):
            raise ValidationError(f"projection_dim must be a positive int, got {projection_dim!r}")
        if method == "ekfac" and curvature == "exact" and projection_dim is not None:
            raise ValidationError("curvature='exact' works on full gradients; drop projection_dim")
        if checkpoints is not None and method not in ("tracin", "trak"):
            raise ValidationError(
                "checkpoints are used by method='tracin' (and 'trak': the ensemble) only"
            )
        started = time.perf_counter()
        self.model = model
        self.method = method
        self.curvature = curvature if method == "ekfac" else None
        self.memory_budget = (
            256 * 2**20 if memory_budget is None else parse_memory_budget(memory_budget)
        )
        self.seed = int(seed)
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        if method == "trak" and not callable(loss):
            loss = "margin"  # TRAK's f (a callable loss replaces it)
        self.engine = GradientEngine(model, loss, layers)
        self.train = as_examples(model, train, "train", contributors=contributors)
        if fisher is None:
            fisher = "empirical"
        self.fisher = fisher
        self.damping = damping
        n_params = self.engine.n_params
        if batch_size is None:
            per_example = 8 * 4 * max(n_params, 1)
            batch_size = int(np.clip(self.memory_budget // per_example, 1, 256))
        self.batch_size = int(batch_size)

        states = [None] if checkpoints is None else list(checkpoints)
        if not states:
            raise ValidationError("checkpoints is empty; pass state dicts or None")
        if method == "tracin":
            rates = np.atleast_1d(np.asarray(learning_rates, dtype=np.float64))
            if rates.size == 1:
                rates = np.full(len(states), float(rates[0]))
            if rates.shape != (len(states),) or np.any(rates < 0) or not np.all(np.isfinite(rates)):
                raise ValidationError(
                    f"learning_rates must be one non-negative number or one per checkpoint "
                    f"({len(states)}), got {learning_rates!r}"
                )
        else:
            rates = np.ones(len(states))
        self.states, self.rates = states, rates
        n_layers = len(self.engine.layers)
        # TRAK draws an independent projection per ensemble member (Park et al.)
        self.projections = [
            [
                kronecker_projection(
                    layer,
                    self.projection_dim,
                    self.seed,
                    j + (c * n_layers if method == "trak" else 0),
                )
                for j, layer in enumerate(self.engine.layers)
            ]
            for c in range(len(states))
        ]
        self.widths = [
            projected_width(layer, p)
            for layer, p in zip(self.engine.layers, self.projections[0], strict=True)
        ]
        if method == "ekfac" and curvature == "exact":
            self.widths = [n_params]
        width = sum(self.widths)
        shape = (self.train.n, width * len(states))

        hashes = []
        for state in states:
            with self._loaded(state):
                hashes.append(model_hash(model))
        self.model_hash = "+".join(hashes)
        self.configuration = {
            "method": method,
            "curvature": self.curvature,
            "loss": loss if isinstance(loss, str) else getattr(loss, "__qualname__", "custom"),
            "damping": damping,
            "projection_dim": self.projection_dim,
            "fisher": fisher if method == "ekfac" else None,
            "learning_rates": rates.tolist(),
            "layers": None if layers is None else [str(name) for name in layers],
            "seed": self.seed,
        }
        entry = None
        loaded = None
        if cache_dir is not None:
            entry = CacheEntry(
                cache_dir, self.configuration, self.model_hash, self.train.content_hash
            )
            loaded = entry.load()
        self.factors: EKFACFactors | None = None
        self.whitener: np.ndarray | None = None
        self.trak_self: np.ndarray | None = None
        self.trak_damping: np.ndarray | None = None
        if loaded is not None:
            self.features, arrays, _ = loaded
            self._restore(arrays)
            self.from_cache = True
        else:
            self.from_cache = False
            needed = 8 * shape[0] * shape[1]
            if entry is None and needed > self.memory_budget:
                raise BudgetError(
                    f"the training features need {needed / 2**20:.1f} MiB ({shape[0]} x "
                    f"{shape[1]} float64) above memory_budget={self.memory_budget / 2**20:.1f} "
                    "MiB; pass projection_dim (e.g. 1024), a larger memory_budget, or "
                    "cache_dir= to keep them memory-mapped on disk"
                )
            if entry is not None:
                entry.prepare()
                with entry.features_writer(shape) as out:
                    self._fit(out, tqdm, progress)
                entry.commit(shape, self._arrays(), {"n_params": n_params})
                self.features, _, _ = entry.load()
            else:
                self.features = np.empty(shape)
                self._fit(self.features, tqdm, progress)
        if method == "datainf":
            self.lambdas, self.norms = datainf_damping(
                np.asarray(self.features), self.widths, damping
            )
        self.fit_seconds = time.perf_counter() - started
        self.cache_path = None if entry is None else str(entry.path)

    # ------------------------------------------------------------------ fitting
    def _loaded(self, state: Any) -> Any:
        """Context manager that loads a checkpoint into the model and restores it."""
        model = self.model

        class _Swap:
            def __enter__(self_inner) -> None:
                if state is None:
                    return
                self_inner.saved = copy.deepcopy(model.state_dict())
                loaded = _checkpoint(state)
                model.load_state_dict({**self_inner.saved, **loaded})

            def __exit__(self_inner, *exc: Any) -> None:
                if state is not None:
                    model.load_state_dict(self_inner.saved)

        return _Swap()

    def _whiten_functions(self) -> list[Callable | None]:
        if self.method != "ekfac" or self.curvature != "ekfac":
            return [None] * len(self.engine.layers)
        factors = self.factors
        return [(lambda a, g, j=j: factors.whiten(j, a, g)) for j in range(len(self.engine.layers))]

    def _features_of(self, examples: Examples, out: np.ndarray, column: int, c: int = 0) -> None:
        """Write the features of ``examples`` at state ``c`` into ``out[:, column:]``."""
        whiteners = self._whiten_functions()
        for rows, pairs in self.engine.batches(examples, batch_size=self.batch_size):
            if self.whitener is not None:
                G = np.hstack([layer_gradients(a, g).reshape(a.shape[0], -1) for a, g in pairs])
                out[rows, column : column + G.shape[1]] = G @ self.whitener.T
                continue
            offset = column
            for (a, g), proj, whiten, width in zip(
                pairs, self.projections[c], whiteners, self.widths, strict=True
            ):
                out[rows, offset : offset + width] = _layer_features(a, g, proj, whiten)
                offset += width

    def _fit(self, out: np.ndarray, tqdm: Any, progress: bool) -> None:
        width = sum(self.widths)
        n, n_states = self.train.n, len(self.states)
        if self.method == "trak":
            weights, self.trak_self, dampings = np.zeros(n), np.zeros(n), []
        for c, state in enumerate(
            tqdm(self.states, disable=not progress or len(self.states) < 2, desc="checkpoints")
        ):
            with self._loaded(state):
                if self.method == "ekfac" and self.curvature == "ekfac":
                    self.factors = fit_ekfac(
                        self.engine,
                        self.train,
                        damping=self.damping,
                        fisher=self.fisher,
                        batch_size=self.batch_size,
                        seed=self.seed,
                    )
                elif self.method == "ekfac":
                    H = dense_hessian(self.engine, self.train)
                    self.whitener = exact_whitener(H, self.damping)
                self._features_of(self.train, out, c * width, c)
                if self.method == "trak":
                    columns = slice(c * width, (c + 1) * width)
                    psi, own, delta = trak_kernel(np.asarray(out[:, columns]), self.damping)
                    out[:, columns] = psi
                    self.trak_self += own / n_states
                    dampings.append(delta)
                    p = correct_probability(self.model, self.train, self.batch_size)
                    weights += (1.0 - p) / n_states
        if self.method == "trak":
            # Q = diag(1 - p) and the ensemble mean, folded into the training side
            for start in range(0, n, 1024):
                rows = slice(start, start + 1024)
                out[rows] = np.asarray(out[rows]) * (weights[rows] / n_states)[:, None]
            self.trak_self *= weights
            self.trak_damping = np.asarray(dampings)

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.factors is not None:
            return self.factors.arrays()
        if self.whitener is not None:
            return {"whitener": self.whitener}
        if self.trak_self is not None:
            return {"self_influence": self.trak_self, "damping": self.trak_damping}
        return {"none": np.zeros(0)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        if self.method == "ekfac" and self.curvature == "ekfac":
            self.factors = EKFACFactors.from_arrays(arrays, len(self.engine.layers))
        elif self.method == "ekfac":
            self.whitener = np.asarray(arrays["whitener"])
        elif self.method == "trak":
            self.trak_self = np.asarray(arrays["self_influence"])
            self.trak_damping = np.asarray(arrays["damping"])

    # ------------------------------------------------------------------ queries
    def test_features(self, examples: Examples) -> np.ndarray:
        width = sum(self.widths)
        out = np.empty((examples.n, width * len(self.states)))
        for c, state in enumerate(self.states):
            with self._loaded(state):
                self._features_of(examples, out, c * width, c)
        return out

    def query_factors(self, examples: Examples) -> np.ndarray:
        psi = self.test_features(examples)
        n = self.train.n
        if self.method == "ekfac":
            return psi / n
        if self.method == "datainf":
            return datainf_query(psi, self.features, self.widths, self.lambdas, self.norms)
        if self.method == "trak":
            return psi
        return psi * np.repeat(self.rates, sum(self.widths))[None, :]

    def self_influence_rows(self, rows: slice) -> np.ndarray:
        if self.method == "trak":
            return np.asarray(self.trak_self[rows])
        block = np.asarray(self.features[rows], dtype=np.float64)
        if self.method == "ekfac":
            return np.einsum("ij,ij->i", block, block) / self.train.n
        if self.method == "datainf":
            q = datainf_query(block, self.features, self.widths, self.lambdas, self.norms)
            return np.einsum("ij,ij->i", q, block)
        scale = np.repeat(self.rates, sum(self.widths))
        return (block**2) @ scale

    def query(
        self, test: Any, *, test_names: list[str] | None = None, test_hash: str | None = None
    ) -> InfluenceResult:
        """Influence of every training example on every example of ``test``."""
        started = time.perf_counter()
        examples = test if isinstance(test, Examples) else as_examples(self.model, test, "test")
        if examples.kind != self.train.kind:
            raise ValidationError(
                f"test is {examples.kind} data but train is {self.train.kind} data; give both "
                "as Datasets (tabular) or both as token ids / DataLoaders (sequences)"
            )
        Q = self.query_factors(examples)
        features = self.features

        def contract(query: np.ndarray, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
            return np.matmul(query, np.asarray(features[rows]).T, out=out)

        diagnostics = {
            "n_params": self.engine.n_params,
            "ignored_parameters": self.engine.left_out,
            "fit_seconds": self.fit_seconds,
            "query_seconds": time.perf_counter() - started,
            "from_cache": self.from_cache,
            "cache_path": self.cache_path,
        }
        if self.method == "datainf":
            diagnostics["damping_per_layer"] = self.lambdas.tolist()
        if self.factors is not None:
            diagnostics["damping_per_layer"] = list(self.factors.damping)
        if self.trak_damping is not None:
            diagnostics["damping_per_model"] = self.trak_damping.tolist()
        return InfluenceResult(
            Q,
            contract,
            self.train.n,
            self_influence=self.self_influence_rows,
            train_names=self.train.names,
            contributors=self.train.contributors,
            test_names=test_names,
            method=self.method if self.curvature != "exact" else "ekfac-exact",
            parameters={**self.configuration, "n_layers": len(self.engine.layers)},
            provenance=make_provenance(
                dataset_hash=self.train.content_hash,
                test_dataset_hash=test_hash or examples.content_hash,
                model=f"{type(self.model).__name__} sha256:{self.model_hash[:16]}",
            ),
            diagnostics=diagnostics,
            memory_budget=self.memory_budget,
        )


def _checkpoint(state: Any) -> dict[str, Any]:
    torch = _torch.require_torch("tracin")
    if isinstance(state, (str, Path)):
        path = Path(state)
        if not path.is_file():
            raise ValidationError(f"checkpoint not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not hasattr(state, "items"):
        raise ValidationError(
            f"a checkpoint must be a state dict or a path to one, got {type(state).__name__}"
        )
    return dict(state)


# ---------------------------------------------------------------------------- entry points
_PREPARED: OrderedDict[tuple, NeuralInfluence] = OrderedDict()


def _state_digest(state: Any) -> str:
    """Content key of one checkpoint: a path with its size and modification time, or the
    SHA-256 of a state dict's names, shapes, dtypes and values (a ``repr`` would elide the
    middle of large tensors)."""
    torch = _torch.require_torch("neural influence")
    if isinstance(state, (str, Path)):
        path = Path(state)
        if not path.is_file():
            return f"missing:{path}"
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if not hasattr(state, "items"):
        return repr(state)
    digest = hashlib.sha256()
    for name in sorted(state):
        t = torch.as_tensor(state[name]).detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _prepared(model: Any, train: Any, options: dict[str, Any]) -> NeuralInfluence:
    """A fitted :class:`NeuralInfluence`, reused while model, data and options are unchanged."""
    contrib = options.get("contributors")
    key_data = train.content_hash() if isinstance(train, Dataset) else None
    if key_data is None and isinstance(train, np.ndarray):
        key_data = (train.shape, hashlib.sha256(train.tobytes()).hexdigest())
    elif key_data is None and isinstance(train, (list, tuple)):
        digest = hashlib.sha256()
        for row in train:
            digest.update(np.asarray(row).tobytes() + b"|")
        key_data = (len(train), digest.hexdigest())
    key = (
        id(model),
        model_hash(model),
        key_data,
        repr(
            sorted(
                (k, repr(v)) for k, v in options.items() if k not in ("contributors", "checkpoints")
            )
        ),
        tuple(_state_digest(state) for state in options.get("checkpoints") or ()),
        None if contrib is None else hashlib.sha256(np.asarray(contrib).tobytes()).hexdigest(),
    )
    if key_data is not None and key in _PREPARED:
        _PREPARED.move_to_end(key)
        return _PREPARED[key]
    prepared = NeuralInfluence(model, train, **options)
    if key_data is not None:
        _PREPARED[key] = prepared
        while len(_PREPARED) > 4:
            _PREPARED.popitem(last=False)
    return prepared


def neural_influence(
    model: Any, train: Any, test: Any, *, models: Sequence[Any] | None = None, **options: Any
) -> InfluenceResult:
    """Influence of every training example on every test example of a torch model.

    Called by ``oa.influence(module, train, test, ...)`` when ``module`` is a
    ``torch.nn.Module``. The options are those of :class:`NeuralInfluence`; the training
    side is fitted once per ``(model, train, options)`` and reused by later calls.

    Parameters
    ----------
    model : torch.nn.Module
    train, test : Dataset, token ids or DataLoader
        A tabular ``test`` may be a bare feature array (then the model's predicted classes
        are explained).
    models : sequence of torch.nn.Module, optional
        ``method="trak"``: the ensemble (same architecture as ``model``; default
        ``[model]``); their parameters become the ``checkpoints``.
    **options
        ``method``, ``loss``, ``damping``, ``projection_dim``, ... (:class:`NeuralInfluence`).

    Returns
    -------
    InfluenceResult
        ``to_array()[t, i] > 0``: training example ``i`` helps test example ``t``.

    Examples
    --------
    >>> import openattrib as oa
    >>> import torch
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    >>> result = oa.influence(net, train, test, method="ekfac", progress=False)
    >>> result.to_array().shape  # (n_test, n_train)
    (30, 120)

    With contributor ids on ``train``, ``result.for_test(0).by_contributor()`` sums a test
    point's scores per contributor.
    """
    _torch.check_module(model, "oa.influence on a torch model")
    if models is not None:
        if options.get("method", "ekfac") != "trak":
            raise ValidationError("models= (an ensemble) is used by method='trak' only")
        if options.get("checkpoints") is not None:
            raise ValidationError("pass either models= (an ensemble) or checkpoints=, not both")
        options["checkpoints"] = _ensemble_states(models)
    prepared = _prepared(model, train, options)
    test_hash = test.content_hash() if isinstance(test, Dataset) else None
    return prepared.query(test, test_hash=test_hash)


def _ensemble_states(models: Any) -> list[dict[str, Any]]:
    torch = _torch.require_torch("trak")
    members = [models] if isinstance(models, torch.nn.Module) else list(models)
    if not members:
        raise ValidationError("models is empty; pass a torch.nn.Module or a list of them")
    for member in members:
        _torch.check_module(member, "trak")
    return [{k: v.detach() for k, v in member.state_dict().items()} for member in members]


def trak(
    models: Any,
    train: Any,
    test: Any,
    *,
    checkpoints: Sequence[Any] | None = None,
    projection_dim: int | None = None,
    damping: float | None = None,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
    seed: int = 0,
    memory_budget: int | str | None = None,
    progress: bool = True,
) -> InfluenceResult:
    """TRAK scores of every training example for every test example of a torch model.

    ``oa.influence(model, train, test, method="trak", models=...)`` under another name; the
    method and its conventions (margin, ensemble, ridge) are in
    ``openattrib.influence.trak``.

    Parameters
    ----------
    models : torch.nn.Module or sequence of them
        The ensemble (Park et al. use a few independently trained models). With
        ``checkpoints``, a single module used as architecture for each state dict.
    train, test : Dataset, token ids or DataLoader
        Tabular labels are class indices; a tabular ``test`` may be a feature array (labels
        = predictions). Token ids: TRAK of the per-sequence summed margin.
    checkpoints : sequence of state dicts or paths, optional
    projection_dim : int, optional
        Per-layer projection size (see ``openattrib.influence.torch_models``); default
        the whole gradient (exact; pass one for large models).
    damping : float, optional
        Ridge ``n * damping * I`` on ``Phi^T Phi``; default derived from the gradients (see
        ``openattrib.influence.trak``).
    layers : sequence of str, optional
        Only these modules (by name) and the layers nested in them.
    batch_size : int
        Examples per forward/backward pass.
    seed : int, default 0
        The projections are drawn from ``SeedSequence(seed)`` by model and layer index.
    memory_budget : int or str, optional
        Bytes for the in-memory training features; default 256 MiB.
    progress : bool
        Progress bar.

    Returns
    -------
    InfluenceResult

    Examples
    --------
    >>> import openattrib as oa
    >>> import torch
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> _ = torch.manual_seed(0)
    >>> nets = [  # an ensemble: same architecture, independent initialisations
    ...     torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    ...     for _ in range(3)
    ... ]
    >>> result = oa.trak(nets, train, test, projection_dim=32, progress=False)
    >>> result.to_array().shape  # (n_test, n_train)
    (30, 120)
    """
    torch = _torch.require_torch("trak")
    members = [models] if isinstance(models, torch.nn.Module) else list(models or [])
    if not members:
        raise ValidationError("models is empty; pass a torch.nn.Module or a list of them")
    if checkpoints is not None and not isinstance(models, torch.nn.Module):
        raise ValidationError("pass either a list of models or one model with checkpoints")
    for member in members:
        _torch.check_module(member, "trak")
    return neural_influence(
        members[0],
        train,
        test,
        models=None if checkpoints is not None else members,
        method="trak",
        checkpoints=checkpoints,
        projection_dim=projection_dim,
        damping=damping,
        layers=layers,
        batch_size=batch_size,
        seed=seed,
        memory_budget=memory_budget,
        progress=progress,
    )


def attribute_generation(
    model: Any,
    train: Any,
    prompt: Any,
    completion: Any,
    *,
    tokens: Sequence[str] | None = None,
    **options: Any,
) -> InfluenceResult:
    """Which training sequences (and contributors) are behind one generated completion.

    Row 0 of the result explains the loss of the whole completion given the prompt
    (``-log p(completion | prompt)``); row ``1 + k`` explains completion token ``k`` alone,
    so the per-token rows add up to row 0. The training side is fitted once per
    ``(model, train, options)`` and reused, so each call costs one batched
    forward/backward pass over ``1 + len(completion)`` copies of the sequence.

    Parameters
    ----------
    model : torch.nn.Module
        A causal language model (``transformers`` or any module mapping token ids to
        ``(batch, length, vocab)`` logits).
    train : token ids or DataLoader
    prompt, completion : 1-D integer arrays of token ids
    tokens : sequence of str, optional
        Display names of the completion tokens (test names of the per-token rows).
    **options
        As for ``neural_influence`` (``method``, ``contributors``, ``cache_dir``, ...).

    Returns
    -------
    InfluenceResult
        ``for_test(0).by_contributor()`` is ready for ``oa.rewards.split_fee``.
    """
    prompt = np.asarray(prompt).reshape(-1)
    completion = np.asarray(completion).reshape(-1)
    for name, ids in (("prompt", prompt), ("completion", completion)):
        if ids.dtype.kind not in "iu" or ids.size < 1:
            raise ValidationError(f"{name} must be a non-empty 1-D array of integer token ids")
    if tokens is not None and len(tokens) != completion.size:
        raise ValidationError(f"tokens must name the {completion.size} completion tokens")
    torch = _torch.require_torch("attribute_generation")
    sequence = np.concatenate([prompt, completion]).astype(np.int64)
    T, start = completion.size, prompt.size
    labels = np.full((1 + T, sequence.size), -100, dtype=np.int64)
    labels[0, start:] = sequence[start:]
    for k in range(T):
        labels[1 + k, start + k] = sequence[start + k]
    examples = Examples(
        [(torch.tensor(np.tile(sequence, (1 + T, 1))), torch.tensor(labels))],
        "sequence",
        1 + T,
        hashlib.sha256(labels.tobytes() + sequence.tobytes()).hexdigest(),
    )
    names = ["completion"] + [
        f"token {k}" + ("" if tokens is None else f": {tokens[k]!r}") for k in range(T)
    ]
    options.setdefault("progress", False)
    prepared = _prepared(model, train, options)
    result = prepared.query(examples, test_names=names)
    result.parameters["prompt_length"] = int(start)
    result.parameters["completion_length"] = int(T)
    return result
