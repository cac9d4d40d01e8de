"""Influence functions: openattrib vs pyDVL 0.10 ``DirectInfluence`` on the same model.

Logistic regression on synthetic data (100,000 training points, 50 features, 1,000 test
points, L2 penalty, no intercept so that pyDVL's uniform ``regularization`` is exactly the
penalty). Both sides compute the full 1,000 x 100,000 influence matrix single-threaded on
the same arrays and the same fitted parameters; the script prints both times, the ratio,
and the agreement of the scores. openattrib's score is the predicted change of the test
loss when a point is removed, ``g_test^T H_sum^{-1} g_i``; pyDVL's "up" influence is
documented and implemented as ``<H_mean^{-1} g_test, g_i>`` (no minus sign), so the two
agree after dividing pyDVL's by ``n``.

pyDVL lives in its own environment (it pins numpy<2), never in the project's .venv::

    python3.11 -m venv /tmp/bench-venv-infl
    /tmp/bench-venv-infl/bin/pip install "pydvl[influence]==0.10.0" torch==2.13.0
    /tmp/bench-venv-infl/bin/pip install --no-deps -e /work/main
    /tmp/bench-venv-infl/bin/pip install "numpy<2" pandas tqdm matplotlib joblib

    # both sides in one process: times, ratio, agreement
    /tmp/bench-venv-infl/bin/python benchmarks/influence_vs_pydvl.py
    # peak memory of each side alone
    /usr/bin/time -v /tmp/bench-venv-infl/bin/python benchmarks/influence_vs_pydvl.py \
        --only openattrib --repeats 1
    /usr/bin/time -v /tmp/bench-venv-infl/bin/python benchmarks/influence_vs_pydvl.py \
        --only pydvl --repeats 1
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def make_data(n_train: int, n_test: int, n_features: int, seed: int):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    X = rng.standard_normal((n_train + n_test, n_features))
    w = rng.standard_normal(n_features) / np.sqrt(n_features) * 2.0
    y = (rng.random(n_train + n_test) < 1.0 / (1.0 + np.exp(-X @ w))).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def fit(X, y, C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=C, fit_intercept=False, solver="newton-cholesky", tol=1e-10, max_iter=100
    ).fit(X, y)


def run_openattrib(model, X, y, X_test, y_test) -> tuple[np.ndarray, float]:
    import openattrib as oa
    from openattrib.influence import influence

    train, test = oa.Dataset(X, y, copy=False), oa.Dataset(X_test, y_test, copy=False)
    start = time.perf_counter()
    scores = influence(model, train, test, method="direct").to_array()
    return scores, time.perf_counter() - start


def run_pydvl(model, X, y, X_test, y_test, C: float) -> tuple[np.ndarray, float]:
    import torch
    from pydvl.influence import InfluenceMode
    from pydvl.influence.torch import DirectInfluence
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    net = torch.nn.Linear(X.shape[1], 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(model.coef_))

    def loss(outputs, targets):
        return torch.nn.functional.binary_cross_entropy_with_logits(outputs, targets)

    x_t = torch.tensor(X)
    y_t = torch.tensor(y, dtype=torch.float64)[:, None]
    xq = torch.tensor(X_test)
    yq = torch.tensor(y_test, dtype=torch.float64)[:, None]
    start = time.perf_counter()
    loader = DataLoader(TensorDataset(x_t, y_t), batch_size=10_000)
    # the mean-loss Hessian plus 1/(C n) I is the Hessian of sklearn's objective / n
    infl = DirectInfluence(net, loss, regularization=1.0 / (C * X.shape[0])).fit(loader)
    scores = infl.influences(xq, yq, x_t, y_t, mode=InfluenceMode.Up).detach().numpy()
    return scores, time.perf_counter() - start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=100_000)
    parser.add_argument("--n-test", type=int, default=1_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["openattrib", "pydvl"], default=None)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (best kept)")
    args = parser.parse_args()

    X, y, X_test, y_test = make_data(args.n_train, args.n_test, args.n_features, args.seed)
    model = fit(X, y, args.C)
    print(
        f"logistic regression: {args.n_train} train x {args.n_features} features, "
        f"{args.n_test} test, C={args.C}, single-threaded"
    )

    def timed(run, *run_args):
        """Run ``repeats`` times, keep the first result (older ones freed), best time."""
        result, times = None, []
        for _ in range(args.repeats):
            scores, seconds = run(*run_args)
            result = scores if result is None else result
            del scores
            times.append(seconds)
        return result, min(times), ", ".join(f"{t:.2f}" for t in times)

    ours = theirs = None
    if args.only in (None, "openattrib"):
        ours, t_ours, times = timed(run_openattrib, model, X, y, X_test, y_test)
        print(f"openattrib influence(method='direct').to_array(): best {t_ours:6.2f} s  ({times})")
        print(f"  peak RSS so far: {peak_rss_mib():.0f} MiB")
    if args.only in (None, "pydvl"):
        theirs, t_theirs, times = timed(run_pydvl, model, X, y, X_test, y_test, args.C)
        print(f"pyDVL DirectInfluence fit + influences(Up):    best {t_theirs:6.2f} s  ({times})")
        print(f"  peak RSS so far: {peak_rss_mib():.0f} MiB")
    if ours is not None and theirs is not None:
        rescaled = theirs / args.n_train
        error = np.abs(ours - rescaled).max() / np.abs(rescaled).max()
        corr = np.corrcoef(ours.ravel(), rescaled.ravel())[0, 1]
        print(f"time ratio pyDVL / openattrib: {t_theirs / t_ours:.2f}x")
        print(
            f"agreement (openattrib vs pyDVL/n): max abs diff / max |score| = {error:.2e}, "
            f"Pearson r = {corr:.10f}"
        )
        print(f"first scores: openattrib {ours[0, :3]}, pyDVL/n {rescaled[0, :3]}")


if __name__ == "__main__":
    main()
