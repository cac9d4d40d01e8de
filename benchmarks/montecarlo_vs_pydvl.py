"""TMC-Shapley, openattrib vs pyDVL 0.10, on the same utility and the same number of permutations.

Utility: logistic regression trained on a coalition of 100 breast-cancer training points,
scored by accuracy on a 200-point validation set (features standardised with the training
mean and spread); v(empty) = 0 and coalitions with a single class score 0, as pyDVL's
``Utility(default_score=0, catch_errors=True)`` does. Truncation: both stop a permutation
once the prefix score is within 1% of the full score (pyDVL ``RelativeTruncation(rtol=0.01)``,
openattrib ``truncation="rtol=0.01,atol=1e-8,burn_in=0"``, the same test). Both run
single-threaded in one process, on the same arrays.

openattrib runs twice: the generic path (``ModelUtility(fast=False)``, a fresh clone fitted
per coalition, like pyDVL) and the default path (``fast=True``, which uses an incremental
solver when one exists for the model).

The anchor is not a dependency of openattrib; build a separate environment::

    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install "pydvl==0.10.*"
    /tmp/bench-venv/bin/pip install -e /work/main "numpy<2"   # pyDVL 0.10 needs numpy < 2
    /tmp/bench-venv/bin/python benchmarks/montecarlo_vs_pydvl.py --permutations 50
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402


def make_arrays(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    train, valid = order[:100], order[100:300]
    mean, scale = X[train].mean(axis=0), X[train].std(axis=0)
    scale[scale == 0] = 1.0
    return (X[train] - mean) / scale, y[train], (X[valid] - mean) / scale, y[valid]


def run_pydvl(arrays, n_permutations: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    from pydvl.utils import Dataset, Utility
    from pydvl.value import MaxUpdates, ShapleyMode, compute_shapley_values
    from pydvl.value.shapley.truncated import RelativeTruncation

    x_train, y_train, x_valid, y_valid = arrays
    utility = Utility(
        LogisticRegression(),
        Dataset(x_train, y_train, x_valid, y_valid),
        "accuracy",
        default_score=0.0,
        catch_errors=True,
    )
    started = time.perf_counter()
    result = compute_shapley_values(
        utility,
        mode=ShapleyMode.TruncatedMontecarlo,
        done=MaxUpdates(n_permutations),
        truncation=RelativeTruncation(utility, rtol=0.01),
        n_jobs=1,
        seed=seed,
    )
    seconds = time.perf_counter() - started
    assert int(result.counts.max()) == n_permutations, result.counts
    return np.asarray(result.values, dtype=float), np.asarray(result.stderr, dtype=float), seconds


def run_openattrib(arrays, n_permutations: int, seed: int, fast: bool):
    import openattrib as oa

    x_train, y_train, x_valid, y_valid = arrays
    game = oa.ModelUtility(
        LogisticRegression(),
        oa.Dataset(x_train, y_train),
        oa.Dataset(x_valid, y_valid),
        scorer="accuracy",
        players="points",
        empty_value=0.0,
        single_class="default",
        cache_size=0,  # pyDVL's Utility runs without a cache by default
        fast=fast,
    )
    started = time.perf_counter()
    result = oa.permutation_shapley(
        game,
        truncation="rtol=0.01,atol=1e-8,burn_in=0",
        stop=oa.stop.MaxSamples(n_permutations),
        seed=seed,
        progress=False,
    )
    seconds = time.perf_counter() - started
    return result.values, result.stderr, seconds, result.diagnostics["utility_evaluations"]


def agreement(a: np.ndarray, b: np.ndarray, se_a: np.ndarray, se_b: np.ndarray) -> str:
    diff = a - b
    combined = np.sqrt(se_a**2 + se_b**2)
    within = np.mean(np.abs(diff) <= 1.96 * combined + 1e-12)
    return (
        f"max |diff| {np.abs(diff).max():.4f}, mean |diff| {np.abs(diff).mean():.4f}, "
        f"Pearson r {stats.pearsonr(a, b).statistic:.3f}, Spearman rho {stats.spearmanr(a, b).statistic:.3f}, "
        f"{100 * within:.0f}% of points within 1.96 combined stderr, "
        f"sums {a.sum():.4f} vs {b.sum():.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--permutations", type=int, default=50)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per library (alternating order)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    arrays = make_arrays(args.seed)
    n = args.permutations
    print(
        f"breast cancer: {len(arrays[1])} training points, {len(arrays[3])} validation points; "
        f"{n} permutations; TMC rtol=0.01; {args.repeats} timed runs each, order alternating"
    )
    times: dict[str, list[float]] = {"generic": [], "default": [], "pydvl": []}
    first: dict[str, tuple] = {}
    for repeat in range(args.repeats):
        order = (
            ["generic", "pydvl", "default"] if repeat % 2 == 0 else ["pydvl", "generic", "default"]
        )
        for name in order:
            if name == "pydvl":
                out = run_pydvl(arrays, n, args.seed)
                values, stderr, seconds = out
            else:
                values, stderr, seconds, evaluations = run_openattrib(
                    arrays, n, args.seed, fast=name == "default"
                )
                first.setdefault(f"{name}_evaluations", evaluations)
            times[name].append(seconds)
            first.setdefault(name, (values, stderr))
    for name, label in (
        ("generic", "openattrib generic (fast=False)"),
        ("default", "openattrib default (fast=True) "),
        ("pydvl", f"pyDVL {__import__('pydvl').__version__} TMC-Shapley        "),
    ):
        extra = f", {first[name + '_evaluations']} utility evaluations" if name != "pydvl" else ""
        print(
            f"{label}: median {np.median(times[name]):7.2f} s, min {min(times[name]):7.2f} s{extra}"
        )
    print(
        f"ratio pyDVL / openattrib generic (median): {np.median(times['pydvl']) / np.median(times['generic']):.2f}x"
    )
    print(
        f"ratio pyDVL / openattrib default (median): {np.median(times['pydvl']) / np.median(times['default']):.2f}x"
    )
    print(
        "agreement generic vs pyDVL:",
        agreement(first["generic"][0], first["pydvl"][0], first["generic"][1], first["pydvl"][1]),
    )
    print(
        "agreement default vs pyDVL:",
        agreement(first["default"][0], first["pydvl"][0], first["default"][1], first["pydvl"][1]),
    )
    print(
        "agreement generic vs default (same seed):",
        agreement(
            first["generic"][0], first["default"][0], first["generic"][1], first["default"][1]
        ),
    )


if __name__ == "__main__":
    main()
