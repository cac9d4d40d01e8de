"""Fast utility paths (openattrib.fast) against pyDVL 0.10 on the same data, one process.

Four measurements (issue 4), each printing both times, the ratio and the agreement of the
estimates:

1. ``tmc_logistic``: permutation Shapley, breast cancer (standardised), LogisticRegression,
   100 training points, 200 validation points, 200 permutations, no truncation on either
   side (pyDVL: ``TMCShapleyValuation(truncation=NoTruncation())``).
2. ``ridge``: permutation Shapley, diabetes, Ridge, 400 training points (42 validation), r2.
3. ``knn``: permutation Shapley, KNeighborsClassifier(5), 1,000 training points of a
   generated 3-class problem, 200 validation points.
4. ``msr_logistic``: MSR Banzhaf, 2,000 sampled coalitions, the data of (1).

pyDVL is slow: when a full pyDVL run would exceed ``--pydvl-budget`` seconds (estimated
from a calibration run), it runs a subset of the permutations and its time is extrapolated
linearly; the output says so. Both sides run single-threaded (``OMP_NUM_THREADS=1`` etc.,
joblib ``n_jobs=1``). The estimates come from different random streams, so they agree only
within Monte Carlo noise: we print their correlation and the mean absolute difference in
units of our standard error.

Environment (pyDVL 0.10 needs numpy < 2; openattrib runs there too)::

    python3 -m venv /tmp/bench-venv-fast
    /tmp/bench-venv-fast/bin/pip install "pydvl==0.10.*" -e /work/main "numpy<2"
    /tmp/bench-venv-fast/bin/python benchmarks/fast_utility_vs_pydvl.py [--case all]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import openattrib as oa  # noqa: E402
from openattrib.estimators.semivalue import banzhaf, permutation_shapley  # noqa: E402
from openattrib.stopping import MaxSamples  # noqa: E402


def breast_cancer(seed=0):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    order = np.random.default_rng(seed).permutation(len(y))
    return X[order[:100]], y[order[:100]], X[order[100:300]], y[order[100:300]]


def diabetes(seed=0):
    X, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    return X[order[:400]], y[order[:400]], X[order[400:]], y[order[400:]]


def knn_data(seed=0):
    X, y = make_classification(
        n_samples=1200, n_features=10, n_informative=6, n_classes=3, flip_y=0.05, random_state=seed
    )
    return X[:1000], y[:1000], X[1000:], y[1000:]


CASES = {
    "tmc_logistic": dict(
        data=breast_cancer,
        model=LogisticRegression,
        scorer="accuracy",
        method="permutation",
        samples=200,
        target=20,
    ),
    "ridge": dict(
        data=diabetes, model=Ridge, scorer="r2", method="permutation", samples=100, target=100
    ),
    "knn": dict(
        data=knn_data,
        model=KNeighborsClassifier,
        scorer="accuracy",
        method="permutation",
        samples=20,
        target=50,
    ),
    "msr_logistic": dict(
        data=breast_cancer,
        model=LogisticRegression,
        scorer="accuracy",
        method="msr",
        samples=2000,
        target=10,
    ),
}


# -- openattrib -------------------------------------------------------------------------
def run_openattrib(case, arrays, samples, fast=True):
    X, y, Xv, yv = arrays
    game = oa.ModelUtility(
        case["model"](), oa.Dataset(X, y), oa.Dataset(Xv, yv), scorer=case["scorer"], fast=fast
    )
    stop = MaxSamples(samples)
    start, cpu = time.perf_counter(), time.process_time()
    if case["method"] == "permutation":
        result = permutation_shapley(game, stop=stop, seed=0, n_jobs=1, progress=False)
    else:
        result = banzhaf(game, stop=stop, seed=0, n_jobs=1, progress=False)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    path = type(game._fast_path).__name__ if game._fast_path is not None else "generic"
    return result, elapsed, path


# -- pyDVL -------------------------------------------------------------------------------
def run_pydvl(case, arrays, samples):
    from joblib import parallel_config
    from pydvl.valuation import (
        Dataset,
        MaxUpdates,
        MSRBanzhafValuation,
        NoTruncation,
        SupervisedScorer,
        TMCShapleyValuation,
    )
    from pydvl.valuation import ModelUtility as PyDVLUtility

    X, y, Xv, yv = arrays
    train, test = Dataset(X, y), Dataset(Xv, yv)
    scorer = SupervisedScorer(case["scorer"], test, default=0.0)
    utility = PyDVLUtility(case["model"](), scorer, catch_errors=True, show_warnings=False)
    if case["method"] == "permutation":
        valuation = TMCShapleyValuation(
            utility, truncation=NoTruncation(), is_done=MaxUpdates(samples), seed=0, progress=False
        )
    else:
        from pydvl.valuation import MaxSamples as PyDVLMaxSamples

        valuation = MSRBanzhafValuation(utility, is_done=MaxUpdates(10**9), seed=0, progress=False)
        valuation.is_done = PyDVLMaxSamples(valuation.sampler, samples)
    start, cpu = time.perf_counter(), time.process_time()
    with parallel_config(n_jobs=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valuation.fit(train)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    result = valuation.result if hasattr(valuation, "result") else valuation.values()
    values = np.asarray(result.values, dtype=float)
    order = np.argsort(np.asarray(result.indices))
    return values[order], elapsed, int(valuation.sampler.n_samples)


def compare(name, case, budget, scale):
    arrays = case["data"]()
    samples = max(1, int(case["samples"] * scale))
    ours, (ours_wall, ours_cpu), path = run_openattrib(case, arrays, samples)
    calib = 1 if case["method"] == "permutation" else 50
    _, (calib_wall, _), calib_done = run_pydvl(case, arrays, calib)
    estimate = calib_wall / max(calib_done, 1) * samples
    pydvl_samples = samples if estimate <= budget else max(calib, int(budget / estimate * samples))
    values, (pydvl_wall, pydvl_cpu), done = run_pydvl(case, arrays, pydvl_samples)
    factor = samples / max(done, 1)
    wall_ratio, cpu_ratio = pydvl_wall * factor / ours_wall, pydvl_cpu * factor / ours_cpu
    unit = "permutations" if case["method"] == "permutation" else "coalitions"
    print(
        f"\n== {name}: {case['model'].__name__}, {len(arrays[1])} training points, "
        f"{len(arrays[3])} validation points, scorer={case['scorer']}"
    )
    print(f"openattrib ({path}): {samples} {unit} in {ours_wall:.2f} s wall, {ours_cpu:.2f} s CPU")
    if done < samples:
        print(
            f"pyDVL 0.10: ran {done} of {samples} {unit} in {pydvl_wall:.2f} s wall, "
            f"{pydvl_cpu:.2f} s CPU; EXTRAPOLATED linearly to {samples}: "
            f"{pydvl_wall * factor:.1f} s wall, {pydvl_cpu * factor:.1f} s CPU"
        )
    else:
        print(f"pyDVL 0.10: {done} {unit} in {pydvl_wall:.2f} s wall, {pydvl_cpu:.2f} s CPU")
    verdict = "met" if min(wall_ratio, cpu_ratio) >= case["target"] else "NOT met"
    print(
        f"speed-up: {wall_ratio:.1f}x wall, {cpu_ratio:.1f}x CPU "
        f"(target >= {case['target']}x: {verdict})"
    )
    ours_values, stderr = ours.values, ours.stderr
    pearson = pearsonr(ours_values, values)[0]
    spearman = spearmanr(ours_values, values)[0]
    noise = np.sqrt(np.mean(stderr**2)) * np.sqrt(1 + factor)
    gap = np.mean(np.abs(ours_values - values))
    print(
        f"agreement: pearson {pearson:.3f}, spearman {spearman:.3f}, mean |difference| "
        f"{gap:.4g} vs Monte Carlo noise of the difference ~{noise:.4g}"
    )
    return wall_ratio, cpu_ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="all", choices=["all", *CASES])
    parser.add_argument(
        "--pydvl-budget",
        type=float,
        default=120.0,
        help="seconds of pyDVL per case before extrapolating (default 120)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every sample count (quick runs: 0.1)"
    )
    args = parser.parse_args()
    import pydvl

    print(
        f"openattrib {oa.__version__}, pyDVL {pydvl.__version__}, numpy {np.__version__}; "
        "single-threaded; the machine is shared, so timings are noisy"
    )
    names = list(CASES) if args.case == "all" else [args.case]
    ratios = {name: compare(name, CASES[name], args.pydvl_budget, args.scale) for name in names}
    print(
        "\nsummary (wall / CPU speed-up): "
        + ", ".join(f"{k} {w:.0f}x / {c:.0f}x" for k, (w, c) in ratios.items())
    )


if __name__ == "__main__":
    main()
