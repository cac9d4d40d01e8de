"""Evaluation of neural influence by retraining: LDS, leave-one-out correlation, mislabels.

* :func:`retrained_outputs_torch` - retrain a torch model on each random subset
  (:func:`~openattrib.influence.lds.subset_masks`) with fixed per-subset seeds, in parallel
  through :mod:`openattrib.parallel`; the linear datamodeling score (Ilyas et al. 2022;
  Park et al. 2023) is then :func:`~openattrib.influence.lds.lds`, and
  :func:`lds_stderr` gives its standard error over test points.
* :func:`loo_correlation` - Spearman correlation of scores with the actual effect of
  removing single points (retrained with several seeds to average out training noise).
* :func:`mislabel_detection` - how well self-influence ranks flipped labels first.

Two CPU settings in the style of dattri's benchmarks:

* :func:`digits_mlp_setting` - an MLP on scikit-learn's bundled digits (dattri: MNIST+MLP);
* :func:`text_corpus` / :func:`tiny_causal_lm` / :func:`train_causal_lm` - a tiny causal
  transformer (a ``transformers`` Llama configuration, trained from scratch, bytes as tokens)
  on the docstrings of Python's own standard library (Python 3.11, PSF License v2; no
  download), one contributor per standard-library module; :func:`add_lora` wraps it in a
  ``peft`` LoRA adapter for fine-tuning; :func:`causal_lm_setting` packs both settings
  (from scratch, LoRA fine-tune) for the LDS (dattri: Shakespeare+nanoGPT).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError
from ..parallel import map_batches
from . import _torch
from .lds import LDSResult

__all__ = [
    "retrained_outputs_torch",
    "lds_stderr",
    "loo_correlation",
    "mislabel_detection",
    "MLPSetting",
    "digits_mlp_setting",
    "text_corpus",
    "tiny_causal_lm",
    "train_causal_lm",
    "add_lora",
    "sequence_neg_loss",
    "CausalLMSetting",
    "causal_lm_setting",
]


def _task_seeds(seed: int, n: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def _retrain_one(shared: tuple, j: int) -> np.ndarray:
    fit, train, test, masks, output, seeds = shared
    torch = _torch.require_torch("retraining")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one task per core: no intra-op oversubscription
    try:
        rows = np.flatnonzero(masks[j])
        part = train.subset(rows) if isinstance(train, Dataset) else train[rows]
        return np.asarray(output(fit(part, seeds[j]), test), dtype=np.float64).reshape(-1)
    finally:
        torch.set_num_threads(threads)


def retrained_outputs_torch(
    fit: Callable[[Any, int], Any],
    train: Any,
    test: Any,
    masks: np.ndarray,
    *,
    output: Callable[[Any, Any], np.ndarray],
    seed: int = 0,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
) -> np.ndarray:
    """Outputs ``(n_subsets, n_test)`` of models retrained on each subset.

    Parameters
    ----------
    fit : callable ``(train_subset, seed) -> model``
        Trains from scratch; ``train_subset`` is ``train.subset(rows)`` for a Dataset and
        ``train[rows]`` for token ids.
    train, test
    masks : bool ndarray (n_subsets, n_train)
    output : callable ``(model, test) -> (n_test,)``
        Larger = better (the negative test loss, or a margin).
    seed : int
        Subset ``j`` trains with the seed ``SeedSequence(seed).spawn(n_subsets)[j]``, so the
        result does not depend on ``n_jobs``.
    n_jobs, backend, client
        Parallel map (:mod:`openattrib.parallel`).
    """
    masks = np.asarray(masks, dtype=bool)
    n_train = train.n_samples if isinstance(train, Dataset) else len(train)
    if masks.ndim != 2 or masks.shape[1] != n_train:
        raise ValidationError(f"masks must have shape (n_subsets, {n_train}), got {masks.shape}")
    seeds = _task_seeds(seed, masks.shape[0])
    results = map_batches(
        _retrain_one,
        list(range(masks.shape[0])),
        n_jobs=n_jobs,
        backend=backend,
        client=client,
        shared=(fit, train, test, masks, output, seeds),
    )
    return np.vstack(results)


def lds_stderr(result: LDSResult) -> float:
    """Standard error of the mean LDS over test points (``std / sqrt(n_test)``)."""
    values = result.per_test[np.isfinite(result.per_test)]
    if values.size < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(values.size))


def loo_correlation(
    scores: np.ndarray,
    fit: Callable[[Any, int], Any],
    train: Any,
    test: Any,
    indices: Sequence[int],
    *,
    output: Callable[[Any, Any], np.ndarray],
    n_seeds: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
) -> tuple[float, np.ndarray]:
    """Spearman correlation between ``scores[:, indices]`` and actual leave-one-out effects.

    The effect of removing point ``i`` on test point ``t`` is
    ``mean_s output(full_s)[t] - output(without i, seed s)[t]`` (positive = the point
    helped), averaged over ``n_seeds`` training seeds shared by the full and the reduced
    models. Returns ``(correlation over all (t, i) pairs, effects (n_test, len(indices)))``.
    """
    from scipy.stats import spearmanr

    n_train = train.n_samples if isinstance(train, Dataset) else len(train)
    indices = [int(i) for i in indices]
    masks = np.ones((1 + len(indices), n_train), dtype=bool)
    for row, i in enumerate(indices):
        masks[1 + row, i] = False
    effects = 0.0
    for s in range(n_seeds):
        base_seed = _task_seeds(seed, n_seeds)[s]
        seeds_all = [base_seed] * masks.shape[0]
        outputs = np.vstack(
            map_batches(
                _retrain_one,
                list(range(masks.shape[0])),
                n_jobs=n_jobs,
                shared=(fit, train, test, masks, output, seeds_all),
            )
        )
        effects = effects + (outputs[0][None, :] - outputs[1:]).T / n_seeds
    scores = np.asarray(scores, dtype=np.float64)[:, indices]
    return float(spearmanr(scores.ravel(), np.asarray(effects).ravel())[0]), np.asarray(effects)


def mislabel_detection(self_influence: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    """Ranking quality of self-influence (high = suspicious) for flipped labels.

    Returns the ROC AUC, the precision among the top ``n_flipped`` and the fraction of
    flipped points found in the top 10%.
    """
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(self_influence, dtype=np.float64)
    flipped = np.asarray(flipped, dtype=bool)
    k = int(flipped.sum())
    if k == 0 or k == flipped.size:
        raise ValidationError("flipped must mark some but not all points")
    order = np.argsort(-scores, kind="stable")
    top10 = order[: max(1, int(round(0.1 * scores.size)))]
    return {
        "auc": float(roc_auc_score(flipped, scores)),
        "precision_at_k": float(flipped[order[:k]].mean()),
        "found_in_top_10pct": float(flipped[top10].sum() / k),
    }


# ---------------------------------------------------------------------------- MLP on digits
@dataclass
class MLPSetting:
    """Digits MLP: ``train``/``test`` Datasets, ``fit(train, seed)``, ``output(model, test)``."""

    train: Dataset
    test: Dataset
    hidden: int
    steps: int
    flipped: np.ndarray

    def fit(self, train: Dataset, seed: int) -> Any:
        return fit_mlp(train, seed=seed, hidden=self.hidden, steps=self.steps)

    @staticmethod
    def output(model: Any, test: Dataset) -> np.ndarray:
        """Negative cross-entropy per test point (larger = better)."""
        torch = _torch.require_torch("digits_mlp_setting")
        with torch.no_grad():
            logits = model(torch.tensor(np.asarray(test.X)))
            return -torch.nn.functional.cross_entropy(
                logits, torch.tensor(np.asarray(test.y)), reduction="none"
            ).numpy()


def fit_mlp(train: Dataset, *, seed: int, hidden: int = 32, steps: int = 300) -> Any:
    """A ``n_features-hidden-n_classes`` tanh MLP (float64), full-batch Adam, weight decay."""
    torch = _torch.require_torch("fit_mlp")
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    n_in, n_out = train.X.shape[1], 10
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n_out)
    ).double()
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1.0 / np.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
    X = torch.tensor(np.asarray(train.X))
    y = torch.tensor(np.asarray(train.y))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        optimiser.step()
    return net


def digits_mlp_setting(
    n_train: int = 500,
    n_test: int = 100,
    *,
    hidden: int = 32,
    steps: int = 300,
    flip: float = 0.0,
    n_contributors: int = 10,
    seed: int = 0,
) -> MLPSetting:
    """scikit-learn's digits (8x8, 10 classes), standardised, split, optionally label noise.

    ``flip`` of the training labels get a different random class
    (:func:`openattrib.datasets.flip_labels`, recorded in ``setting.flipped``); training points are spread over ``n_contributors`` contributors.
    """
    from ..datasets import flip_labels, load_digits

    digits = load_digits()
    X, y = np.asarray(digits.X, dtype=np.float64), np.asarray(digits.y)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    order = rng.permutation(len(y))
    if n_train + n_test > len(y):
        raise ValidationError(f"n_train + n_test must be at most {len(y)}")
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0) + 1e-6
    X = (X - mean) / std
    contributors = np.array([f"c{j % n_contributors}" for j in range(n_train)])
    train = Dataset(X[tr], y[tr], contributors=contributors)
    flipped = np.zeros(n_train, dtype=bool)
    if flip:
        train, indices = flip_labels(train, flip, seed=seed)
        flipped[indices] = True
    test = Dataset(X[te], y[te])
    return MLPSetting(train, test, hidden, steps, flipped)


# ---------------------------------------------------------------------------- tiny causal LM
TEXT_MODULES = (
    "json",
    "csv",
    "argparse",
    "textwrap",
    "statistics",
    "fractions",
    "heapq",
    "bisect",
    "functools",
    "collections",
    "pathlib",
    "shutil",
    "string",
    "calendar",
    "random",
    "decimal",
)


def text_corpus(
    seq_len: int = 64, modules: Sequence[str] = TEXT_MODULES, max_per_module: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Byte-level token ids ``(n_sequences, seq_len)`` and their contributors.

    The text is the docstrings of the public functions and classes of Python standard
    library modules (Python Software Foundation License v2), printable ASCII with
    whitespace collapsed, cut into non-overlapping ``seq_len``-byte windows; the
    contributor of a window is its module. Deterministic for a given Python version.
    """
    ids, owners = [], []
    for name in modules:
        module = importlib.import_module(name)
        texts = []
        for attr in sorted(vars(module)):
            if attr.startswith("_"):
                continue
            obj = getattr(module, attr)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(
                obj, "__module__", ""
            ).split(".")[0] == name.split(".")[0]:
                doc = inspect.getdoc(obj)
                if doc:
                    texts.append(doc)
        text = re.sub(r"\s+", " ", " ".join(texts))
        data = np.frombuffer(text.encode("ascii", "ignore"), dtype=np.uint8)
        count = data.size // seq_len
        if max_per_module is not None:
            count = min(count, max_per_module)
        for k in range(count):
            ids.append(data[k * seq_len : (k + 1) * seq_len].astype(np.int64))
            owners.append(name)
    return np.vstack(ids), np.asarray(owners)


def tiny_causal_lm(
    *, hidden: int = 64, layers: int = 2, heads: int = 4, seq_len: int = 64, seed: int = 0
) -> Any:
    """A byte-level (vocabulary 256) ``transformers`` Llama model from a config (float32)."""
    torch = _torch.require_torch("tiny_causal_lm")
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=256,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def train_causal_lm(
    model: Any,
    ids: np.ndarray,
    *,
    steps: int = 200,
    batch_size: int | None = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> Any:
    """Train (or fine-tune: only parameters with ``requires_grad``) with AdamW on next tokens.

    ``batch_size=None`` (or at least the number of sequences): full-batch steps, so that
    the only randomness is the model's initialisation.
    """
    torch = _torch.require_torch("train_causal_lm")
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    tokens = torch.tensor(np.asarray(ids, dtype=np.int64))
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    full = batch_size is None or batch_size >= tokens.shape[0]
    model.train()
    for _ in range(steps):
        if full:
            batch = tokens
        else:
            batch = tokens[torch.randint(0, tokens.shape[0], (batch_size,), generator=generator)]
        optimiser.zero_grad()
        logits = model(batch).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)
        )
        loss.backward()
        optimiser.step()
    model.eval()
    return model


def sequence_neg_loss(model: Any, ids: np.ndarray) -> np.ndarray:
    """Negative summed next-token cross-entropy per sequence (larger = better)."""
    torch = _torch.require_torch("sequence_neg_loss")
    tokens = torch.tensor(np.asarray(ids, dtype=np.int64))
    with torch.no_grad():
        logits = model(tokens).logits
        logp = torch.log_softmax(logits[:, :-1].double(), -1)
        return logp.gather(-1, tokens[:, 1:, None])[..., 0].sum(1).numpy()


def add_lora(model: Any, *, rank: int = 4, alpha: int = 8, seed: int = 0) -> Any:
    """Wrap ``model`` in a ``peft`` LoRA adapter on the attention projections (q, v)."""
    torch = _torch.require_torch("add_lora")
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, bias="none"
    )
    return get_peft_model(model, config)


@dataclass
class CausalLMSetting:
    """Tiny causal LM (or its LoRA fine-tune) on the standard-library docstring corpus.

    ``train``/``test`` are token ids, ``contributors`` one module name per training
    sequence; ``fit(train_ids, seed)`` trains from scratch (``base_state is None``) or
    fine-tunes a rank-``lora_rank`` adapter on the pretrained ``base_state``;
    ``output(model, test)`` is the negative summed next-token loss per test sequence.
    Training is full-batch AdamW, so ``seed`` only sets the initialisation (the model's, or
    the adapter's).
    """

    train: np.ndarray
    test: np.ndarray
    contributors: np.ndarray
    hidden: int
    layers: int
    seq_len: int
    steps: int
    lr: float
    base_state: dict | None = None
    lora_rank: int = 4

    def fit(self, train: np.ndarray, seed: int) -> Any:
        torch = _torch.require_torch("CausalLMSetting")
        model = tiny_causal_lm(
            hidden=self.hidden,
            layers=self.layers,
            heads=4,
            seq_len=self.seq_len,
            seed=int(seed) % 2**63 if self.base_state is None else 0,
        )
        if self.base_state is not None:
            model.load_state_dict({k: torch.as_tensor(v) for k, v in self.base_state.items()})
            model = add_lora(model, rank=self.lora_rank, alpha=2 * self.lora_rank, seed=seed)
        return train_causal_lm(model, train, steps=self.steps, batch_size=None, lr=self.lr)

    @staticmethod
    def output(model: Any, test: np.ndarray) -> np.ndarray:
        return sequence_neg_loss(model, test)


def causal_lm_setting(
    n_train: int = 96,
    n_test: int = 24,
    *,
    seq_len: int = 32,
    hidden: int = 64,
    layers: int = 2,
    steps: int = 50,
    lr: float = 3e-3,
    lora: bool = False,
    lora_rank: int = 4,
    lora_lr: float = 1e-2,
    pretrain_windows: int = 256,
    pretrain_steps: int = 150,
    seed: int = 0,
) -> CausalLMSetting:
    """The tiny-transformer settings of the neural benchmark (dattri's Shakespeare+nanoGPT).

    :func:`text_corpus` windows of ``seq_len`` bytes, shuffled by ``seed``. From scratch
    (``lora=False``): ``n_train`` training and ``n_test`` test windows from every module.
    With ``lora=True`` the modules are split in two halves: a base model is pretrained
    (``pretrain_steps``, full batch) on ``pretrain_windows`` of the first half's windows
    and frozen, and the
    attributed data are LoRA fine-tuning windows of the second half, so the fine-tune
    learns text the base has not seen.
    """
    ids, owners = text_corpus(seq_len=seq_len)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    base_state = None
    if lora:
        second = np.isin(owners, TEXT_MODULES[len(TEXT_MODULES) // 2 :])
        pretrain = ids[~second][rng.permutation(int((~second).sum()))[:pretrain_windows]]
        ids, owners = ids[second], owners[second]
        base = tiny_causal_lm(hidden=hidden, layers=layers, heads=4, seq_len=seq_len, seed=seed)
        train_causal_lm(base, pretrain, steps=pretrain_steps, batch_size=None, lr=lr)
        base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    if n_train + n_test > len(ids):
        raise ValidationError(f"n_train + n_test must be at most {len(ids)} windows")
    order = rng.permutation(len(ids))
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    return CausalLMSetting(
        ids[tr],
        ids[te],
        owners[tr],
        hidden,
        layers,
        seq_len,
        steps,
        lora_lr if lora else lr,
        base_state,
        lora_rank,
    )
