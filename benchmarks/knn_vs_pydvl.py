"""KNN-Shapley: openattrib against pyDVL 0.10's KNNShapleyValuation, side by side.

Usage (from the repository root)::

    python benchmarks/knn_vs_pydvl.py            # comparison, 10,000 train x 1,000 test
    python benchmarks/knn_vs_pydvl.py --large    # also 1,000,000 x 1,000 under /usr/bin/time -v

The large run times openattrib alone (by default with the project's .venv interpreter) in
a child process under ``/usr/bin/time -v``, which reports wall time, CPU time and peak RSS.

The script builds its own environment for the anchor (``--venv``, default
``/tmp/bench-venv-pydvl``: pyDVL 0.10.0, numpy < 2, and this package installed editable)
and re-executes itself there, so both libraries run in one process on the same arrays.
Everything is single-threaded (OMP_NUM_THREADS=1 and friends, joblib n_jobs=1).

Data: ``sklearn.datasets.make_classification(n_samples=11000, n_features=20,
n_informative=10, n_classes=3, random_state=0)``; first 10,000 rows train, last 1,000 test;
k = 5. pyDVL's recursion is the paper's (``s_N = 1[y_N = y] / N``, steps divided by
``max(k, i)``) with neighbours from ``KNeighborsClassifier.kneighbors``; values are the
mean over test points, the same definition as ``oa.knn_shapley``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PYDVL = "pydvl==0.10.0"


def ensure_environment(venv: Path) -> None:
    """Re-run this script inside ``venv`` (created on first use) unless pyDVL imports here."""
    try:
        import pydvl  # noqa: F401

        import openattrib  # noqa: F401

        return
    except ImportError:
        pass
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {PYDVL} (one-off)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import pydvl, openattrib"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PYDVL, "numpy<2", "-e", str(REPO)],
            check=True,
        )
    os.execv(str(python), [str(python), *sys.argv])


def compare(k: int) -> None:
    import numpy as np
    from joblib import parallel_config
    from pydvl.valuation import Dataset as PyDVLDataset
    from pydvl.valuation import KNNShapleyValuation
    from sklearn.datasets import make_classification
    from sklearn.neighbors import KNeighborsClassifier

    import openattrib as oa
    from openattrib.estimators.knn import knn_shapley

    X, y = make_classification(
        n_samples=11000, n_features=20, n_informative=10, n_classes=3, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:10000], y[:10000], X[10000:], y[10000:]
    print(f"numpy {np.__version__}, pyDVL {__import__('pydvl').__version__}")
    print(f"train {X_train.shape}, test {X_test.shape}, k={k}, single-threaded")

    start, cpu = time.perf_counter(), time.process_time()
    ours = knn_shapley(
        oa.Dataset(X_train, y_train), oa.Dataset(X_test, y_test), k=k, n_jobs=1, progress=False
    )
    ours_time, ours_cpu = time.perf_counter() - start, time.process_time() - cpu

    valuation = KNNShapleyValuation(
        KNeighborsClassifier(n_neighbors=k), PyDVLDataset(X_test, y_test), progress=False
    )
    start, cpu = time.perf_counter(), time.process_time()
    with parallel_config(n_jobs=1):
        valuation.fit(PyDVLDataset(X_train, y_train))
    theirs_time, theirs_cpu = time.perf_counter() - start, time.process_time() - cpu
    result = valuation.values()
    theirs = np.zeros(len(y_train))
    theirs[np.asarray(result.indices, dtype=int)] = result.values

    diff = np.abs(ours.values - theirs)
    print(f"openattrib knn_shapley : {ours_time:8.3f} s wall, {ours_cpu:8.3f} s CPU")
    print(f"pyDVL KNNShapley       : {theirs_time:8.3f} s wall, {theirs_cpu:8.3f} s CPU")
    print(
        f"speed-up               : {theirs_time / ours_time:8.1f}x wall, "
        f"{theirs_cpu / ours_cpu:.1f}x CPU"
    )
    print(f"max |difference|       : {diff.max():.3e} (mean {diff.mean():.3e})")
    print(f"equal bit for bit      : {int((diff == 0).sum())} of {diff.size} values")
    print(f"sum ours / pyDVL       : {ours.values.sum():.15f} / {theirs.sum():.15f}")
    ok_values = diff.max() <= 1e-12
    ok_speed = min(theirs_time / ours_time, theirs_cpu / ours_cpu) >= 30
    print(f"values within 1e-12: {ok_values}; at least 30x faster: {ok_speed}")


def large_worker(n_train: int, n_test: int, k: int) -> None:
    import numpy as np

    import openattrib as oa
    from openattrib.estimators.knn import knn_shapley

    rng = np.random.default_rng(0)
    train = oa.Dataset(rng.standard_normal((n_train, 20)), rng.integers(0, 3, n_train))
    test = oa.Dataset(rng.standard_normal((n_test, 20)), rng.integers(0, 3, n_test))
    start = time.perf_counter()
    result = knn_shapley(train, test, k=k, n_jobs=1, progress=False)
    elapsed = time.perf_counter() - start
    print(
        f"numpy {np.__version__}; knn_shapley {n_train:,} x {n_test:,}: {elapsed:.1f} s "
        f"(sum of values {result.values.sum():.6f}, batch_size "
        f"{result.diagnostics['batch_size']})",
        flush=True,
    )


def large(n_train: int, n_test: int, k: int, python: Path) -> None:
    command = [
        "/usr/bin/time",
        "-v",
        str(python),
        __file__,
        "--large-worker",
        "--n-train",
        str(n_train),
        "--n-test",
        str(n_test),
        "--k",
        str(k),
    ]
    print("running:", " ".join(command), flush=True)
    run = subprocess.run(command, capture_output=True, text=True)
    print(run.stdout.strip())
    if run.returncode != 0:
        print(run.stderr)
        raise SystemExit(run.returncode)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", run.stderr).group(1)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", run.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", run.stderr).group(1))
    share = re.search(r"Percent of CPU this job got: (\S+)", run.stderr).group(1)
    print(f"wall time (whole process, incl. data generation): {wall}")
    print(
        f"CPU time: user {user:.1f} s + system {system:.1f} s (CPU share {share}; below "
        "100% means other processes competed for the core)"
    )
    print(f"peak RSS: {rss_kb / 2**20:.2f} GiB ({rss_kb:,} kB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/bench-venv-pydvl"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--large", action="store_true", help="also time 1e6 x 1e3")
    parser.add_argument("--large-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n-train", type=int, default=1_000_000)
    parser.add_argument("--n-test", type=int, default=1_000)
    project_python = REPO / ".venv" / "bin" / "python"
    parser.add_argument(
        "--large-python",
        type=Path,
        default=project_python if project_python.exists() else Path(sys.executable),
        help="interpreter of the large run (default: the project's .venv; only openattrib runs)",
    )
    args = parser.parse_args()
    if args.large_worker:
        large_worker(args.n_train, args.n_test, args.k)
        return
    ensure_environment(args.venv)
    compare(args.k)
    if args.large:
        large(args.n_train, args.n_test, args.k, args.large_python)


if __name__ == "__main__":
    main()
