"""Data-OOB: openattrib against OpenDataVal 1.3.0's DataOob, side by side.

Usage (from the repository root, with the project's environment)::

    .venv/bin/python benchmarks/oob_vs_opendataval.py

Data: scikit-learn's digits, 1,000 training rows (a seeded permutation), 10% of their
labels flipped with ``oa.datasets.flip_labels(..., seed=0)``; 500 bags of a decision tree.
Both sides get the same arrays and report the time of the valuation alone (imports and
data loading excluded), single-threaded (OMP_NUM_THREADS=1 and friends, torch 1 thread).

Why two processes: OpenDataVal 1.3.0 pins ``numpy<1.26`` and ``pandas<2`` while openattrib
needs ``numpy>=1.26`` and ``pandas>=2.1``, so they cannot share one environment. This
script runs openattrib in-process and OpenDataVal in its own virtualenv (``--venv``,
default ``/tmp/bench-venv-odv``, built on first use: the CPU torch wheel,
``opendataval==1.3.0`` without its exact pins, and its dependencies with
``transformers<4.38``, the last series it imports with). The arrays travel in a ``.npz``
file. OpenDataVal stores covariates as float32; digits pixels are small integers, so that
conversion is exact here.

Noisy-label detection is scored by ROC-AUC (low value = flagged), by F1 of the lowest 10%
(the true noise rate), and by F1 of 2-means clustering of the values, the lower cluster
flagged (OpenDataVal's ``noisy_detection``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import glob  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ODV = "opendataval==1.3.0"
ODV_DEPS = [
    "numpy<1.26,>=1.22.4",
    "pandas<2,>=1.5.3",
    "pandera~=0.15.1",
    "geomloss~=0.2.6",
    "pykeops~=2.1.2",
    "scikit-learn>=1.3,<1.6",
    "scipy~=1.11",
    "torcheval~=0.0.7",
    "tqdm>=4.64",
    "transformers>=4.35,<4.38",
    "typer~=0.9.0",
    "requests",
    "matplotlib~=3.8",
    "torchvision",
]


def ensure_odv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "from opendataval.dataval.oob import DataOob"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"building {venv} for {ODV} (one-off; downloads torch)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    local_torch = sorted(glob.glob("/opt/wheels/torch-*+cpu-*.whl"))
    subprocess.run([*pip, *(local_torch[-1:] or ["torch"])], check=True)
    subprocess.run([*pip, "--no-deps", ODV], check=True)
    subprocess.run([*pip, *ODV_DEPS], check=True)
    subprocess.run(probe, check=True)
    return python


def odv_worker(data_path: str, out_path: str) -> None:
    """Runs inside the OpenDataVal environment."""
    import numpy as np
    import torch
    from opendataval.dataloader import DataFetcher
    from opendataval.dataval import DataOob
    from opendataval.model import ClassifierSkLearnWrapper
    from sklearn.tree import DecisionTreeClassifier

    torch.set_num_threads(1)
    data = np.load(data_path)
    X, y, X_rest, y_rest = data["X"], data["y"], data["X_rest"], data["y_rest"]
    n_classes = 10
    one_hot = np.eye(n_classes)[y]
    rest_hot = np.eye(n_classes)[y_rest]
    half = len(X_rest) // 2
    fetcher = DataFetcher.from_data_splits(
        X, one_hot, X_rest[:half], rest_hot[:half], X_rest[half:], rest_hot[half:], one_hot=True
    )
    model = ClassifierSkLearnWrapper(DecisionTreeClassifier, n_classes)
    start, cpu = time.perf_counter(), time.process_time()
    evaluator = DataOob(num_models=int(data["n_bags"]), random_state=0)
    evaluator.train(fetcher, pred_model=model)
    values = evaluator.data_values
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.savez(out_path, values=np.asarray(values, dtype=np.float64), seconds=elapsed, cpu=cpu)


def detection_scores(values, flipped, n):
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import f1_score, roc_auc_score

    truth = np.isin(np.arange(n), flipped)
    auc = roc_auc_score(truth, -values)
    lowest = np.zeros(n, dtype=bool)
    lowest[np.argsort(values, kind="stable")[: len(flipped)]] = True
    clusters = KMeans(n_clusters=2, n_init=10, random_state=0).fit(values.reshape(-1, 1))
    low_cluster = np.argmin(clusters.cluster_centers_.ravel())
    return auc, f1_score(truth, lowest), f1_score(truth, clusters.labels_ == low_cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/bench-venv-odv"))
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--bags", type=int, default=500)
    parser.add_argument("--odv-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.odv_worker:
        odv_worker(*args.odv_worker)
        return

    import numpy as np

    import openattrib as oa
    from openattrib.estimators.oob import data_oob

    digits = oa.datasets.load_digits()
    permutation = np.random.default_rng(0).permutation(digits.n_samples)
    train = digits.subset(np.sort(permutation[: args.n_train]))
    rest = digits.subset(np.sort(permutation[args.n_train :]))
    noisy, flipped = oa.datasets.flip_labels(train, 0.1, seed=0)
    print(
        f"digits: {noisy.n_samples} training rows, {len(flipped)} flipped labels, "
        f"{args.bags} bags of a decision tree, single-threaded"
    )

    start, cpu = time.perf_counter(), time.process_time()
    ours = data_oob(noisy, n_estimators=args.bags, seed=0, n_jobs=1, progress=False)
    ours_time, ours_cpu = time.perf_counter() - start, time.process_time() - cpu

    python = ensure_odv(args.venv)
    with tempfile.TemporaryDirectory() as tmp:
        data_path, out_path = os.path.join(tmp, "data.npz"), os.path.join(tmp, "out.npz")
        np.savez(
            data_path,
            X=noisy.X,
            y=noisy.y.astype(np.int64),
            X_rest=rest.X,
            y_rest=rest.y.astype(np.int64),
            n_bags=args.bags,
        )
        subprocess.run(
            [str(python), __file__, "--odv-worker", data_path, out_path],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        theirs = np.load(out_path)
        theirs_values, theirs_time = theirs["values"], float(theirs["seconds"])
        theirs_cpu = float(theirs["cpu"])

    from scipy.stats import spearmanr

    n = noisy.n_samples
    rows = [
        ("openattrib data_oob", ours.values, ours_time, ours_cpu),
        ("OpenDataVal DataOob", theirs_values, theirs_time, theirs_cpu),
    ]
    header = f"{'':22s} {'wall s':>8s} {'CPU s':>8s} {'ROC-AUC':>8s} {'F1@10%':>7s}"
    print(header + f" {'F1 2-means':>10s}")
    for name, values, seconds, cpu_seconds in rows:
        auc, f1_rate, f1_kmeans = detection_scores(values, flipped, n)
        print(
            f"{name:22s} {seconds:8.2f} {cpu_seconds:8.2f} {auc:8.3f} {f1_rate:7.3f} "
            f"{f1_kmeans:10.3f}"
        )
    print(
        f"ratio OpenDataVal / openattrib: wall {theirs_time / ours_time:.2f}x, "
        f"CPU {theirs_cpu / ours_cpu:.2f}x"
    )
    print(
        f"Spearman correlation of the two value vectors: "
        f"{spearmanr(ours.values, theirs_values).statistic:.3f}"
    )
    print(f"points never out of bag: openattrib {len(ours.diagnostics['never_out_of_bag'])}")


if __name__ == "__main__":
    main()
