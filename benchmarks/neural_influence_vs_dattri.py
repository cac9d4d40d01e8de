"""openattrib vs dattri 0.3.0: neural influence on the digits MLP and a tiny transformer.

``--setting mlp`` is dattri's MNIST+MLP setting on scikit-learn's digits; ``--setting lm`` a
tiny causal transformer (``transformers`` Llama config, trained from scratch, bytes as
tokens) on the standard-library docstring corpus (dattri's Shakespeare+nanoGPT setting);
``--setting lora`` the same transformer pretrained on half the corpus and LoRA-fine-tuned
(``peft``) on the other half, the fine-tuning windows being attributed
(:func:`openattrib.influence.neural_eval.causal_lm_setting`). The LDS ground truth of the
language-model settings is the negative summed next-token loss of each test window after
retraining (or re-fine-tuning) on each random half.

Same data, same trained checkpoint(s), same retrained-subset ground truth, for every method
both libraries have: TRAK (an ensemble of independently trained models), EK-FAC, DataInf
and TracIn (checkpoints saved during training). Reports LDS (mean +- standard error over
test points), wall time and peak RSS of each (library, method) run in its own process
under ``/usr/bin/time -v``, single-threaded, and the ratios.

dattri is installed in a separate benchmark environment, never in the project's venv::

    python3.11 -m venv /tmp/bench-dattri
    /tmp/bench-dattri/bin/pip install torch==2.13.0 dattri==0.3.0
    /tmp/bench-dattri/bin/pip install -e '.[llm]'   # openattrib (+ transformers, peft) in-process
    nice -n 10 /tmp/bench-dattri/bin/python benchmarks/neural_influence_vs_dattri.py

Conventions: both libraries score ``positive = the training point helps`` (dattri's
influence functions and TracIn use loss gradients ``g_test . H^-1 g_train``, its TRAK the
margin); scores are oriented (n_test, n_train) before the LDS; the LDS is openattrib's
:func:`openattrib.influence.lds` (Spearman per test point, as dattri's ``metric.lds``).
Damping: each library's default, except dattri's DataInf and EK-FAC defaults of 0
(degenerate), where the benchmark passes 1e-3. dattri's TRAK keeps its default
``regularization=0``: on the transformer (96 training windows, 512 projected dimensions)
its kernel ``Phi^T Phi`` has rank at most 96 and is solved as is in float32.

What dattri 0.3.0 cannot run here, and why:

* EK-FAC on the transformer: ``dattri.func.fisher._update_covariance`` binds its layer
  input only when that input is 2-D (``if a_prev_raw.ndim == 2``, no ``else``), so every
  Linear layer fed ``(batch, tokens, features)`` activations raises ``UnboundLocalError``;
* EK-FAC on the LoRA fine-tune: by default it hooks every ``torch.nn.Linear``, including
  the frozen base projections under the adapters, and ``outputs.retain_grad()`` raises
  ``RuntimeError: can't retain_grad on Tensor that has requires_grad=False``; restricted
  to the LoRA matrices it meets the 3-D input error above.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# "trak-ridge": dattri's TRAK given openattrib's default ridge (0.1 x the mean non-zero
# eigenvalue of its own kernel, from the gradient energy: its projection keeps norms)
METHODS = ("trak", "trak-ridge", "ekfac", "datainf", "tracin")
_RIDGE = {"value": 0.0}
N_MODELS = 5  # TRAK ensemble
N_CHECKPOINTS = 3  # TracIn
TRAK_DIM = 256  # dattri: one dense projection of the whole gradient, per model
# openattrib projects per layer (Kronecker, LoGra-style): 128 per layer of the 64-32-10 MLP
# gives 132 + 120 = 252 features per model, about dattri's 256
TRAK_DIM_PER_LAYER = 128


LM_TRAK_DIM = 512  # dattri's dense projection on the transformer; ours: the same total


def prepare_lm(workdir: Path, setting_name: str, n_train: int, n_test: int, n_subsets: int) -> None:
    import torch

    from openattrib.influence import neural_eval as ne
    from openattrib.influence import subset_masks

    torch.set_num_threads(1)
    start = time.perf_counter()
    setting = ne.causal_lm_setting(n_train=n_train, n_test=n_test, lora=setting_name == "lora")
    models = [setting.fit(setting.train, seed=1000 + m) for m in range(N_MODELS)]
    for m, model in enumerate(models):
        torch.save(_trainable_state(model), workdir / f"model{m}.pt")
    steps = setting.steps
    for c in range(N_CHECKPOINTS):  # TracIn: model 0's training stopped at thirds
        setting.steps = steps * (c + 1) // N_CHECKPOINTS
        torch.save(_trainable_state(setting.fit(setting.train, seed=1000)), workdir / f"ckpt{c}.pt")
    setting.steps = steps
    if setting.base_state is not None:
        torch.save(setting.base_state, workdir / "base.pt")
    masks = subset_masks(n_train, n_subsets=n_subsets, alpha=0.5, seed=0)
    actual = ne.retrained_outputs_torch(
        setting.fit, setting.train, setting.test, masks, output=setting.output, seed=0
    )
    print(
        f"prepared {setting_name}: {n_subsets} retrainings in {time.perf_counter() - start:.0f} s"
    )
    config = {"setting": setting_name, "hidden": setting.hidden, "layers": setting.layers}
    config.update(seq_len=setting.seq_len, lora_rank=setting.lora_rank, lr=setting.lr)
    (workdir / "config.json").write_text(json.dumps(config))
    np.savez(
        workdir / "data.npz", train=setting.train, test=setting.test, masks=masks, actual=actual
    )


def _trainable_state(model) -> dict:
    """The parameters that training changes (all, or the LoRA matrices of a peft model)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in trainable}


def _lm(workdir: Path, name: str | None):
    """A fresh tiny transformer (on the pretrained base, with an adapter, for LoRA) loaded
    with ``name``'s trained parameters."""
    import torch

    from openattrib.influence import neural_eval as ne

    config = json.loads((workdir / "config.json").read_text())
    model = ne.tiny_causal_lm(
        hidden=config["hidden"], layers=config["layers"], heads=4, seq_len=config["seq_len"]
    )
    if config["setting"] == "lora":
        model.load_state_dict(torch.load(workdir / "base.pt", weights_only=True))
        model = ne.add_lora(model, rank=config["lora_rank"], alpha=2 * config["lora_rank"])
    if name is not None:
        missing = model.load_state_dict(torch.load(workdir / name, weights_only=True), strict=False)
        assert not missing.unexpected_keys, missing
    return model.eval()


def prepare(workdir: Path, n_train: int, n_test: int, n_subsets: int, steps: int) -> None:
    import torch

    from openattrib.influence import neural_eval as ne
    from openattrib.influence import subset_masks

    torch.set_num_threads(1)
    setting = ne.digits_mlp_setting(n_train=n_train, n_test=n_test, hidden=32, steps=steps)
    models = [setting.fit(setting.train, seed=1000 + m) for m in range(N_MODELS)]
    for m, model in enumerate(models):
        torch.save(model.state_dict(), workdir / f"model{m}.pt")
    # TracIn checkpoints: the first model's training re-run, saved at thirds
    for c in range(N_CHECKPOINTS):
        part = ne.fit_mlp(
            setting.train, seed=1000, hidden=32, steps=steps * (c + 1) // N_CHECKPOINTS
        )
        torch.save(part.state_dict(), workdir / f"ckpt{c}.pt")
    masks = subset_masks(n_train, n_subsets=n_subsets, alpha=0.5, seed=0)
    start = time.perf_counter()
    actual = ne.retrained_outputs_torch(
        setting.fit, setting.train, setting.test, masks, output=setting.output, seed=0
    )
    print(f"retrained {n_subsets} MLPs in {time.perf_counter() - start:.1f} s", flush=True)
    np.savez(
        workdir / "data.npz",
        X_train=setting.train.X,
        y_train=setting.train.y,
        X_test=setting.test.X,
        y_test=setting.test.y,
        masks=masks,
        actual=actual,
    )


def _net():
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)
    ).double()


def _load(workdir: Path, name: str):
    import torch

    net = _net()
    net.load_state_dict(torch.load(workdir / name, weights_only=True))
    return net.eval()


def run_openattrib(workdir: Path, method: str, data: dict) -> np.ndarray:
    import openattrib as oa
    from openattrib.influence.torch_models import GradientEngine

    options = {"progress": False}
    if (workdir / "config.json").is_file():  # the transformer settings
        train, test = data["train"], data["test"]
        model = _lm(workdir, "model0.pt")
        options["memory_budget"] = "1GB"
        lr = json.loads((workdir / "config.json").read_text())["lr"]
        n_layers = len(GradientEngine(model).layers)
        total = sum(p.numel() for p in model.parameters() if p.requires_grad)
        # about LM_TRAK_DIM features per model, as dattri's dense projection (none if fewer)
        trak_dim = None if total <= LM_TRAK_DIM else max(1, LM_TRAK_DIM // n_layers)
    else:
        train = oa.Dataset(data["X_train"], data["y_train"])
        test = oa.Dataset(data["X_test"], data["y_test"])
        model = _load(workdir, "model0.pt")
        lr, trak_dim = 0.01, TRAK_DIM_PER_LAYER
    if method == "trak":  # the ensemble as checkpoint files on one model, as for dattri
        options.update(checkpoints=[workdir / f"model{m}.pt" for m in range(N_MODELS)])
        options.update(projection_dim=trak_dim)
    elif method == "tracin":
        options.update(checkpoints=[workdir / f"ckpt{c}.pt" for c in range(N_CHECKPOINTS)])
        options.update(learning_rates=lr)
    return oa.influence(model, train, test, method=method, **options).to_array()


def run_dattri_lm(workdir: Path, method: str, data: dict) -> np.ndarray:
    """dattri on the same transformer checkpoints; loss = summed next-token cross-entropy."""
    import torch

    train = torch.tensor(data["train"])
    test = torch.tensor(data["test"])
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(train), batch_size=16, shuffle=False
    )
    test_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(test), batch_size=16, shuffle=False
    )
    model = _lm(workdir, None)
    config = json.loads((workdir / "config.json").read_text())

    def token_logp(params, batch):
        tokens = batch[0].reshape(-1, batch[0].shape[-1])
        logits = torch.func.functional_call(model, params, (tokens,)).logits
        logp = torch.log_softmax(logits[:, :-1], -1)
        return logp.gather(-1, tokens[:, 1:, None])[..., 0]

    def loss_func(params, batch):  # summed over the tokens (and the batch)
        return -token_logp(params, batch).sum()

    def margin_func(params, batch):  # TRAK's margin, summed over the tokens
        chosen = token_logp(params, batch)
        return (chosen - torch.log1p(-chosen.exp())).sum()

    def correct_probability(params, batch):
        return token_logp(params, batch).exp().mean(-1)

    def state(name):
        loaded = torch.load(workdir / name, weights_only=True)
        return {**{k: v.detach() for k, v in model.named_parameters()}, **loaded}

    states = (
        [state(f"model{m}.pt") for m in range(N_MODELS)],
        [state(f"ckpt{c}.pt") for c in range(N_CHECKPOINTS)],
        state("model0.pt"),
    )
    funcs = (loss_func, margin_func, correct_probability, loss_func)
    loaders = (train_loader, test_loader)
    return _dattri_scores(method, model, funcs, states, loaders, LM_TRAK_DIM, config["lr"])


def _dattri_scores(method, model, funcs, states, loaders, proj_dim: int, lr: float) -> np.ndarray:
    """dattri's attributor for ``method``; ``funcs`` = (loss, margin, correct probability,
    batch loss for EK-FAC), ``states`` = (TRAK ensemble, TracIn checkpoints, the model)."""
    import torch
    from dattri.algorithm.influence_function import IFAttributorDataInf, IFAttributorEKFAC
    from dattri.algorithm.tracin import TracInAttributor
    from dattri.algorithm.trak import TRAKAttributor
    from dattri.task import AttributionTask

    loss_func, margin_func, correct_probability, batch_loss = funcs
    ensemble, checkpoints, state = states
    train_loader, test_loader = loaders
    if method in ("trak", "trak-ridge"):
        # dattri's TRAK differentiates loss_func on the training side: TRAK's f is the margin
        task = AttributionTask(
            loss_func=margin_func, model=model, checkpoints=ensemble, target_func=margin_func
        )
        attributor = TRAKAttributor(
            task=task,
            correct_probability_func=correct_probability,
            projector_kwargs={"proj_dim": proj_dim, "device": "cpu"},
            device="cpu",
            regularization=_RIDGE["value"] if method == "trak-ridge" else 0.0,
        )
        attributor.cache(train_loader)
        scores = attributor.attribute(test_loader)
    elif method == "tracin":
        task = AttributionTask(loss_func=loss_func, model=model, checkpoints=checkpoints)
        dtype = next(model.parameters()).dtype
        attributor = TracInAttributor(
            task=task,
            weight_list=torch.full((len(checkpoints),), lr, dtype=dtype),
            normalized_grad=False,
            device="cpu",
        )
        scores = attributor.attribute(train_loader, test_loader)
    elif method == "datainf":
        task = AttributionTask(loss_func=loss_func, model=model, checkpoints=state)
        attributor = IFAttributorDataInf(task=task, device="cpu", regularization=1e-3)
        attributor.cache(train_loader)
        scores = attributor.attribute(train_loader, test_loader)
    else:
        task = AttributionTask(loss_func=batch_loss, model=model, checkpoints=state)
        attributor = IFAttributorEKFAC(task=task, device="cpu", damping=1e-3)
        attributor.cache(train_loader)
        scores = attributor.attribute(train_loader, test_loader)
    return np.asarray(scores.detach().double().numpy()).T  # (n_test, n_train)


def run_dattri(workdir: Path, method: str, data: dict) -> np.ndarray:
    import torch

    X_train = torch.tensor(data["X_train"])
    y_train = torch.tensor(data["y_train"]).long()
    X_test = torch.tensor(data["X_test"])
    y_test = torch.tensor(data["y_test"]).long()
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X_train, y_train), batch_size=64, shuffle=False
    )
    test_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X_test, y_test), batch_size=64, shuffle=False
    )
    model = _net()

    def loss_func(params, batch):
        x, y = batch
        out = torch.func.functional_call(model, params, x.reshape(-1, 64))
        return torch.nn.functional.cross_entropy(out, y.reshape(-1))

    def margin_func(params, batch):  # TRAK's target: log p / (1 - p)
        x, y = batch
        out = torch.func.functional_call(model, params, x.reshape(-1, 64))
        logp = -torch.nn.functional.cross_entropy(out, y.reshape(-1))
        return logp - torch.log1p(-torch.exp(logp))

    def correct_probability(params, batch):
        x, y = batch
        out = torch.func.functional_call(model, params, x.reshape(-1, 64))
        return torch.exp(-torch.nn.functional.cross_entropy(out, y.reshape(-1)))

    def batch_loss(params, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, x), y)

    def load(name):
        return torch.load(workdir / name, weights_only=True)

    states = (
        [load(f"model{m}.pt") for m in range(N_MODELS)],
        [load(f"ckpt{c}.pt") for c in range(N_CHECKPOINTS)],
        load("model0.pt"),
    )
    loaders = (train_loader, test_loader)
    if method == "datainf":
        # dattri 0.3.0's DataInf mixes float32 into its products: run it in float32
        model.float()
        states = (None, None, {k: v.float() for k, v in states[2].items()})
        for loader in loaders:
            loader.dataset.tensors = (loader.dataset.tensors[0].float(), loader.dataset.tensors[1])
    funcs = (loss_func, margin_func, correct_probability, batch_loss)
    return _dattri_scores(method, model, funcs, states, loaders, TRAK_DIM, 0.01)


def _matched_ridge(workdir: Path, data: dict, lm: bool) -> float:
    """openattrib's default TRAK ridge for dattri's kernel: ``0.1 * sum_i |g_i|^2 /
    min(n, k)`` averaged over the ensemble, from per-example margin gradients of every
    trainable parameter (plain backward passes; dattri's projection preserves norms)."""
    import torch

    rows = data["train"] if lm else list(zip(data["X_train"], data["y_train"], strict=True))
    energies = []
    for m in range(N_MODELS):
        model = _lm(workdir, f"model{m}.pt") if lm else _load(workdir, f"model{m}.pt")
        params = [p for p in model.parameters() if p.requires_grad]
        total = 0.0
        for row in rows:
            model.zero_grad()
            if lm:
                tokens = torch.tensor(row[None])
                logp = torch.log_softmax(model(tokens).logits[0, :-1].double(), -1)
                chosen = logp.gather(-1, tokens[0, 1:, None])[:, 0]
            else:
                logp = torch.log_softmax(model(torch.tensor(row[0][None]))[0], -1)
                chosen = logp[int(row[1])][None]
            (chosen - torch.log1p(-chosen.exp())).sum().backward()
            total += sum(float((p.grad.double() ** 2).sum()) for p in params)
        energies.append(total)
    return 0.1 * float(np.mean(energies)) / min(len(rows), LM_TRAK_DIM if lm else TRAK_DIM)


def worker(workdir: Path, library: str, method: str) -> None:
    import torch

    torch.set_num_threads(1)
    data = dict(np.load(workdir / "data.npz"))
    lm = (workdir / "config.json").is_file()
    if lm:  # both libraries build the same transformers/peft models: import untimed
        import peft  # noqa: F401
        from transformers import LlamaConfig, LlamaForCausalLM  # noqa: F401
    if library == "openattrib":  # import outside the timed region
        import openattrib  # noqa: F401
        import openattrib.influence.neural  # noqa: F401
    else:
        import dattri.algorithm.influence_function  # noqa: F401
        import dattri.algorithm.tracin  # noqa: F401
        import dattri.algorithm.trak  # noqa: F401

        if method == "trak-ridge":  # choosing the hyperparameter is not timed
            _RIDGE["value"] = _matched_ridge(workdir, data, lm)
    start, cpu_start = time.perf_counter(), time.process_time()
    if library == "openattrib":
        run = run_openattrib
    else:
        run = run_dattri_lm if lm else run_dattri
    scores = run(workdir, method, data)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    np.save(workdir / f"scores_{library}_{method}.npy", scores)
    (workdir / f"time_{library}_{method}.json").write_text(
        json.dumps({"seconds": seconds, "cpu": cpu})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=("mlp", "lm", "lora"), default="mlp")
    parser.add_argument("--n-train", type=int, default=None, help="default 1000 (mlp), 96 (lm)")
    parser.add_argument("--n-test", type=int, default=None, help="default 200 (mlp), 24 (lm)")
    parser.add_argument("--n-subsets", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--worker", nargs=3, metavar=("WORKDIR", "LIBRARY", "METHOD"))
    parser.add_argument("--reuse", help="a work directory whose prepared data to reuse")
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker[0]), args.worker[1], args.worker[2])
        return
    from openattrib.influence import lds
    from openattrib.influence.neural_eval import lds_stderr

    lm = args.setting != "mlp"
    n_train = args.n_train or (96 if lm else 1000)
    n_test = args.n_test or (24 if lm else 200)
    if args.reuse:
        workdir = Path(args.reuse)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-neural-"))
        if lm:
            prepare_lm(workdir, args.setting, n_train, n_test, args.n_subsets)
        else:
            prepare(workdir, n_train, n_test, args.n_subsets, args.steps)
    print(f"work directory {workdir}")
    data = np.load(workdir / "data.npz")
    masks, actual = data["masks"], data["actual"]
    if lm:
        config = json.loads((workdir / "config.json").read_text())
        model = _lm(workdir, "model0.pt")
        n_params = sum(p.numel() for p in model.parameters())
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(
            f"tiny causal transformer ({config['setting']}): {n_params} parameters, "
            f"{trained} trained; {len(data['train'])} train / {len(data['test'])} test "
            f"windows of {config['seq_len']} bytes, {len(masks)} retrained halves"
        )
    else:
        print(
            f"digits MLP 64-32-10, {n_train} train / {n_test} test, "
            f"{args.n_subsets} retrained halves; single-threaded"
        )
    header = (
        f"{'method':10s} {'library':10s} {'LDS':>7s} {'s.e.':>6s} {'wall s':>8s} {'CPU s':>8s} "
        f"{'peak MiB':>9s}"
    )
    print(header)
    rows = {}
    for method in args.methods.split(","):
        for library in ("dattri",) if method == "trak-ridge" else ("openattrib", "dattri"):
            command = [
                "/usr/bin/time",
                "-v",
                sys.executable,
                __file__,
                "--worker",
                str(workdir),
                library,
                method,
            ]
            env = {**os.environ, "TQDM_DISABLE": "1"}
            proc = subprocess.run(command, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                errors = [
                    line
                    for line in proc.stderr.split("Command being timed")[0].splitlines()
                    if re.match(r"\w*(Error|Exception)\b", line)
                ]
                tail = errors[-1:] or proc.stderr.strip().splitlines()[-6:]
                print(f"{method:10s} {library:10s} FAILED:\n  " + "\n  ".join(tail))
                continue
            peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
            timing = json.loads((workdir / f"time_{library}_{method}.json").read_text())
            scores = np.load(workdir / f"scores_{library}_{method}.npy")
            score = lds(scores, masks, actual)
            rows[(method, library)] = (score.mean, lds_stderr(score), timing["cpu"], peak / 1024)
            print(
                f"{method:10s} {library:10s} {score.mean:7.3f} {lds_stderr(score):6.3f} "
                f"{timing['seconds']:8.2f} {timing['cpu']:8.2f} {peak / 1024:9.0f}",
                flush=True,
            )
    print("\nratios openattrib / dattri (CPU time, peak memory) and LDS difference:")
    for method in args.methods.split(","):
        ours = rows.get((method.removesuffix("-ridge"), "openattrib"))
        theirs = rows.get((method, "dattri"))
        if ours and theirs:
            print(
                f"{method:10s} CPU time x{ours[2] / theirs[2]:.2f}  memory x{ours[3] / theirs[3]:.2f}  "
                f"LDS {ours[0] - theirs[0]:+.3f} (s.e. {np.hypot(ours[1], theirs[1]):.3f})"
            )


if __name__ == "__main__":
    main()
