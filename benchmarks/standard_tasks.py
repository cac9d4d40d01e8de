"""openattrib against pyDVL 0.10 and OpenDataVal 1.3.0 on the standard tasks (issue 18).

Four tasks, each run side by side in one invocation on the same arrays, single-threaded:

``oob``
    Data-OOB, ``LogisticRegression()`` bags, noisy digits: 1,000 training rows (a seeded
    permutation of scikit-learn's digits, pixels divided by 16, or raw 0-16 with
    ``--raw-pixels``), 10% of the labels flipped (``oa.datasets.flip_labels(..., seed=0)``),
    500 bags. Anchor: OpenDataVal ``DataOob``.
``msr``
    MSR Banzhaf on the same task, 500 sampled coalitions, accuracy on the first half of the
    remaining digits. Anchor: OpenDataVal ``DataBanzhaf`` (the same MSR estimator).
``loo``
    Leave-one-out on the same task and validation set. Anchor: pyDVL ``compute_loo``.
``tmc``
    TMC-Shapley, breast cancer (100 training, 200 validation points, standardised with the
    training statistics), 200 permutations, pyDVL's game (empty and one-class coalitions
    score 0, no cache) and truncation (``RelativeTruncation(rtol=0.01)``). Anchor: pyDVL
    ``compute_shapley_values(mode=TruncatedMontecarlo)``. Accuracy: Spearman correlation of
    each side's values with a long plain Monte Carlo reference (openattrib, no truncation,
    ``--reference-permutations``, cached under ``--cache``).

Flipped-label detection is scored by ROC-AUC (low value = flagged). On the digits tasks the
openattrib worker also reports, untimed, on how many of 20 coalitions its utility equals a
fresh scikit-learn fit's, and how many L-BFGS iterations scikit-learn's full fit takes: on
raw pixels scikit-learn stops at ``max_iter=100`` short of the optimum, so the fast path
replays scikit-learn's L-BFGS on every coalition and both sides value "accuracy of a
100-iteration L-BFGS fit"; on pixels/16 scikit-learn converges and the fast path solves
for the optimum (equal to scikit-learn's fit within its tolerance). For LOO it
reports the cost in units of one full scikit-learn fit (CPU). Each side runs in its
own subprocess (the anchors need their own environments) under ``/usr/bin/time -v``; the
worker times the valuation alone (wall, and CPU of the worker and all its descendant
processes, e.g. pyDVL's joblib workers), ``time -v`` gives the peak RSS. The machine's load
average is printed before and after each run: on a shared machine CPU time is the fairer
figure (wall time stretches with the other processes' load, by a factor that differs
between the two runs when the load changes; pyDVL's joblib worker processes add their own
scheduling delays).

Environments (not project dependencies)::

    python3.11 -m venv /tmp/bench-venv-pydvl
    /tmp/bench-venv-pydvl/bin/pip install "pydvl==0.10.*" "numpy<2" scikit-learn
    # OpenDataVal 1.3.0 (numpy<1.26, pandas<2, transformers<4.38): built on first use by
    # benchmarks/oob_vs_opendataval.py's ensure_odv() into /tmp/bench-venv-odv, i.e.
    python3.11 -m venv /tmp/bench-venv-odv
    /tmp/bench-venv-odv/bin/pip install torch
    /tmp/bench-venv-odv/bin/pip install --no-deps opendataval==1.3.0
    /tmp/bench-venv-odv/bin/pip install "numpy<1.26,>=1.22.4" "pandas<2,>=1.5.3" \\
        "pandera~=0.15.1" "geomloss~=0.2.6" "pykeops~=2.1.2" "scikit-learn>=1.3,<1.6" \\
        "scipy~=1.11" "torcheval~=0.0.7" "tqdm>=4.64" "transformers>=4.35,<4.38" \\
        "typer~=0.9.0" requests "matplotlib~=3.8" torchvision

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/standard_tasks.py oob msr loo tmc
    nice -n 10 .venv/bin/python benchmarks/standard_tasks.py --raw-pixels oob msr loo
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("oob", "msr", "loo", "tmc")
ANCHOR = {"oob": "odv", "msr": "odv", "loo": "pydvl", "tmc": "pydvl"}
ANCHOR_NAME = {"odv": "OpenDataVal 1.3.0", "pydvl": "pyDVL 0.10"}


# -- data ----------------------------------------------------------------------------------
def digits_task(raw: bool = False) -> dict[str, np.ndarray]:
    import openattrib as oa

    digits = oa.datasets.load_digits()
    permutation = np.random.default_rng(0).permutation(digits.n_samples)
    X = digits.X if raw else digits.X / 16.0
    train = oa.Dataset(X[np.sort(permutation[:1000])], digits.y[np.sort(permutation[:1000])])
    rest = np.sort(permutation[1000:])
    noisy, flipped = oa.datasets.flip_labels(train, 0.1, seed=0)
    half = len(rest) // 2
    return {
        "X": noisy.X,
        "y": noisy.y.astype(np.int64),
        "X_valid": X[rest[:half]],
        "y_valid": digits.y[rest[:half]].astype(np.int64),
        "X_test": X[rest[half:]],
        "y_test": digits.y[rest[half:]].astype(np.int64),
        "flipped": np.asarray(flipped),
    }


def breast_cancer_task() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    train, valid = order[:100], order[100:300]
    mean, scale = X[train].mean(axis=0), X[train].std(axis=0)
    scale[scale == 0] = 1.0
    return {
        "X": (X[train] - mean) / scale,
        "y": y[train].astype(np.int64),
        "X_valid": (X[valid] - mean) / scale,
        "y_valid": y[valid].astype(np.int64),
    }


# -- CPU of a process tree -----------------------------------------------------------------
def tree_cpu() -> float:
    """CPU seconds of this process, its reaped children, and its live descendants."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    parents: dict[int, int] = {}
    ticks: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    for pid in ticks:
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, me):
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += ticks[pid]
    return total


# -- workers (each runs in its own environment) -------------------------------------------
def ours(task: str, data: dict, out: dict) -> None:
    from sklearn.linear_model import LogisticRegression

    import openattrib as oa

    train, valid = oa.Dataset(data["X"], data["y"]), oa.Dataset(data["X_valid"], data["y_valid"])
    if task == "oob":
        result = oa.data_oob(
            train,
            estimator=LogisticRegression(),
            n_estimators=int(data["n"]),
            seed=0,
            progress=False,
        )
    elif task == "msr":
        game = oa.ModelUtility(LogisticRegression(), train, valid, cache_size=0)
        result = oa.banzhaf(game, stop=oa.stop.MaxSamples(int(data["n"])), seed=0, progress=False)
    elif task == "loo":
        game = oa.ModelUtility(LogisticRegression(), train, valid, cache_size=0)
        result = oa.loo(game, progress=False)
    else:  # tmc, pyDVL's game: v(empty) = 0, one-class coalitions 0, no cache
        game = oa.ModelUtility(
            LogisticRegression(),
            train,
            valid,
            empty_value=0.0,
            single_class="default",
            cache_size=0,
        )
        truncation = "rtol=0.01,atol=1e-8,burn_in=0" if data["truncate"] else None
        result = oa.permutation_shapley(
            game,
            truncation=truncation,
            stop=oa.stop.MaxSamples(int(data["n"])),
            seed=int(data["seed"]),
            progress=False,
        )
        out["fallbacks"] = sum(v for k, v in game.failures.items() if k.startswith("fast_fallback"))
    out["values"] = np.asarray(result.values, dtype=np.float64)


def agreement(task: str, data: dict, out: dict) -> None:
    """Untimed: how often the fast path's utility equals a fresh scikit-learn fit's.

    20 coalitions of the task's kind (leave-one-out: 20 left-out rows; otherwise random
    halves, as MSR samples) scored by the fast path and by the generic refit
    (``fast=False``, the scikit-learn estimator with its own ``max_iter`` and ``tol``),
    plus whether scikit-learn's full fit converged within ``max_iter``.
    """
    from sklearn.linear_model import LogisticRegression

    import openattrib as oa

    train, valid = oa.Dataset(data["X"], data["y"]), oa.Dataset(data["X_valid"], data["y_valid"])
    fast = oa.ModelUtility(LogisticRegression(), train, valid, cache_size=0)
    slow = oa.ModelUtility(LogisticRegression(), train, valid, cache_size=0, fast=False)
    n = train.n_samples
    rng = np.random.default_rng(1)
    if task == "loo":
        masks = ~np.eye(n, dtype=bool)[rng.choice(n, 20, replace=False)]
    else:
        masks = rng.random((20, n)) < 0.5
    got, want = fast.evaluate_batch(masks), slow.evaluate_batch(masks)
    out["agree"] = float(np.mean(np.isclose(got, want)))
    out["max_gap"] = float(np.max(np.abs(got - want)))
    seconds = []
    for _ in range(3):  # one full scikit-learn fit, the unit of "LOO at the cost of one fit"
        start = time.process_time()
        model = LogisticRegression().fit(train.X, train.y)
        seconds.append(time.process_time() - start)
    out["fit_cpu"] = float(np.median(seconds))
    out["sk_iter"] = int(np.max(model.n_iter_))
    out["sk_max_iter"] = int(model.max_iter)


def odv(task: str, data: dict, out: dict) -> None:
    import torch
    from opendataval.dataloader import DataFetcher
    from opendataval.dataval import DataBanzhaf, DataOob
    from opendataval.model import ClassifierSkLearnWrapper
    from sklearn.linear_model import LogisticRegression

    torch.set_num_threads(1)
    hot = np.eye(10)
    fetcher = DataFetcher.from_data_splits(
        data["X"], hot[data["y"]], data["X_valid"], hot[data["y_valid"]],
        data["X_test"], hot[data["y_test"]], one_hot=True,
    )  # fmt: skip
    model = ClassifierSkLearnWrapper(LogisticRegression, 10)
    n = int(data["n"])
    evaluator = DataOob(num_models=n, random_state=0) if task == "oob" else DataBanzhaf(n, 0)
    evaluator.train(fetcher, pred_model=model)
    out["values"] = np.asarray(evaluator.data_values, dtype=np.float64)


def pydvl(task: str, data: dict, out: dict) -> None:
    from pydvl.utils import Dataset, Utility
    from sklearn.linear_model import LogisticRegression

    dataset = Dataset(data["X"], data["y"], data["X_valid"], data["y_valid"])
    if task == "loo":
        from pydvl.value import compute_loo

        utility = Utility(LogisticRegression(), dataset, "accuracy")
        result = compute_loo(utility, n_jobs=1, progress=False)
    else:
        from pydvl.value import MaxUpdates, ShapleyMode, compute_shapley_values
        from pydvl.value.shapley.truncated import RelativeTruncation

        utility = Utility(
            LogisticRegression(), dataset, "accuracy", default_score=0.0, catch_errors=True
        )
        result = compute_shapley_values(
            utility,
            mode=ShapleyMode.TruncatedMontecarlo,
            done=MaxUpdates(int(data["n"])),
            truncation=RelativeTruncation(utility, rtol=0.01),
            n_jobs=1,
            seed=int(data["seed"]),
        )
    out["values"] = np.asarray(result.values, dtype=np.float64)


#: modules each side imports before its clock starts (the valuation alone is timed)
IMPORTS = {
    "ours": ("openattrib", "openattrib.fast.logistic", "sklearn.linear_model", "sklearn.metrics"),
    "odv": ("torch", "opendataval.dataloader", "opendataval.dataval", "opendataval.model"),
    "pydvl": (
        "pydvl.utils",
        "pydvl.value",
        "pydvl.value.shapley.truncated",
        "sklearn.linear_model",
    ),
}


def worker(side: str, task: str, data_path: str, out_path: str) -> None:
    import importlib

    warnings.simplefilter("ignore")
    for module in IMPORTS[side]:
        importlib.import_module(module)
    data = dict(np.load(data_path))
    out: dict = {}
    run = {"ours": ours, "odv": odv, "pydvl": pydvl}[side]
    start, cpu = time.perf_counter(), tree_cpu()
    run(task, data, out)
    out["seconds"], out["cpu"] = time.perf_counter() - start, tree_cpu() - cpu
    if side == "ours" and task != "tmc":
        agreement(task, data, out)
    np.savez(out_path, **out)


# -- driver --------------------------------------------------------------------------------
def run_side(python: str, side: str, task: str, data: dict, tmp: str) -> dict:
    data_path = os.path.join(tmp, f"{task}-data.npz")
    out_path = os.path.join(tmp, f"{task}-{side}.npz")
    np.savez(data_path, **data)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = ["/usr/bin/time", "-v", python, __file__, "--worker", side, task, data_path, out_path]
    load = os.getloadavg()[0]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {task} failed:\n{done.stderr[-3000:]}")
    result = dict(np.load(out_path))
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    result["rss_mb"] = int(rss.group(1)) / 1024 if rss else float("nan")
    result["load"] = (load, os.getloadavg()[0])
    return result


def auc(values: np.ndarray, flipped: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    truth = np.isin(np.arange(len(values)), flipped)
    return float(roc_auc_score(truth, -values))


def tmc_reference(n: int, cache: Path, data: dict, tmp: str) -> np.ndarray:
    path = cache / f"tmc_reference_{n}.npz"
    if not path.exists():
        print(f"  computing the plain Monte Carlo reference ({n} permutations, cached)", flush=True)
        result = run_side(
            sys.executable, "ours", "tmc", dict(data, n=n, truncate=False, seed=12345), tmp
        )
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, values=result["values"], seconds=result["seconds"])
    return np.load(path)["values"]


def report(task: str, sizes: str, rows: list[tuple[str, dict]], quality: dict[str, str]) -> None:
    print(f"\n== {task}: {sizes}")
    print(
        f"  {'':24s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MB':>11s} {'load avg':>12s}  quality"
    )
    for name, r in rows:
        load = f"{r['load'][0]:.1f}->{r['load'][1]:.1f}"
        print(
            f"  {name:24s} {float(r['seconds']):8.2f} {float(r['cpu']):8.2f} "
            f"{float(r['rss_mb']):11.0f} {load:>12s}  {quality[name]}"
        )
    (_, a), (_, b) = rows
    print(
        f"  ratio anchor / openattrib: wall {float(b['seconds']) / float(a['seconds']):.1f}x, "
        f"CPU {float(b['cpu']) / float(a['cpu']):.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", default=list(TASKS), help=f"any of {TASKS}")
    parser.add_argument("--pydvl-python", default="/tmp/bench-venv-pydvl/bin/python")
    parser.add_argument("--odv-python", default="/tmp/bench-venv-odv/bin/python")
    parser.add_argument("--bags", type=int, default=500)
    parser.add_argument("--msr-samples", type=int, default=500)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--reference-permutations", type=int, default=4000)
    parser.add_argument(
        "--raw-pixels",
        action="store_true",
        help="digits tasks on raw pixels 0-16 (the issue's anchor figures) instead of /16",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/openattrib-bench-cache"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        parser.error(f"unknown tasks {sorted(unknown)}; choose from {TASKS}")
    warnings.simplefilter("ignore")
    anchors = {"pydvl": args.pydvl_python, "odv": args.odv_python}
    print(f"single-threaded; load average at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            anchor = ANCHOR[task]
            if task == "tmc":
                data = dict(breast_cancer_task(), n=args.permutations, truncate=True, seed=0)
                sizes = f"breast cancer, 100 points, {args.permutations} permutations, rtol=0.01"
            else:
                data = dict(digits_task(raw=args.raw_pixels))
                data["n"] = {"oob": args.bags, "msr": args.msr_samples, "loo": 0}[task]
                pixels = "raw pixels 0-16" if args.raw_pixels else "pixels/16"
                sizes = f"noisy digits ({pixels}), 1,000 points, 64 features, 10 classes, "
                sizes += f"n={data['n']}"
            mine = run_side(sys.executable, "ours", task, data, tmp)
            theirs = run_side(anchors[anchor], anchor, task, data, tmp)
            rows = [("openattrib", mine), (ANCHOR_NAME[anchor], theirs)]
            if task == "tmc":
                from scipy.stats import spearmanr

                reference = tmc_reference(args.reference_permutations, args.cache, data, tmp)
                quality = {
                    name: f"Spearman vs {args.reference_permutations}-permutation reference "
                    f"{spearmanr(r['values'], reference).statistic:.3f}"
                    for name, r in rows
                }
                quality["openattrib"] += f", fast-path fallbacks {int(mine['fallbacks'])}"
            else:
                quality = {
                    name: f"flipped-label ROC-AUC {auc(r['values'], data['flipped']):.3f}"
                    for name, r in rows
                }
                quality["openattrib"] += (
                    f"; utility equal to a fresh scikit-learn fit on {mine['agree']:.0%} of 20 "
                    f"coalitions (max gap {float(mine['max_gap']):.3f}); scikit-learn's full "
                    f"fit took {int(mine['sk_iter'])} of max_iter={int(mine['sk_max_iter'])}"
                )
                if task == "loo":
                    fit = float(mine["fit_cpu"])
                    quality["openattrib"] += (
                        f"; one scikit-learn fit {fit:.3f} s CPU: LOO costs "
                        f"{float(mine['cpu']) / fit:.0f} fits (pyDVL {float(theirs['cpu']) / fit:.0f})"
                    )
            report(task, sizes, rows, quality)
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
