"""Multinomial logistic regression: fast path vs the generic refit on the same permutations.

50 full prefix walks over 100 training points (iris or wine), default LogisticRegression();
prints both times, the ratio, and how many prefix utilities are equal.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/multinomial_fast_vs_generic.py iris
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import openattrib as oa


def main(name: str) -> None:
    warnings.simplefilter("ignore")
    X, y = (load_iris if name == "iris" else load_wine)(return_X_y=True)
    if name == "wine":
        X = StandardScaler().fit_transform(X)
    order = np.random.default_rng(0).permutation(len(y))
    train = oa.Dataset(X[order[:100]], y[order[:100]])
    valid = oa.Dataset(X[order[100:]], y[order[100:]])
    permutations = [np.random.default_rng(i).permutation(100) for i in range(50)]
    results = {}
    for fast in (True, False):
        game = oa.ModelUtility(LogisticRegression(), train, valid, fast=fast)
        start = time.perf_counter()
        values = np.array([game.prefix_walk(p)[0] for p in permutations])
        results[fast] = (time.perf_counter() - start, values)
    (t_fast, v_fast), (t_generic, v_generic) = results[True], results[False]
    print(
        f"{name}: fast {t_fast:.2f} s, generic {t_generic:.2f} s, speed-up x{t_generic / t_fast:.1f}; "
        f"equal prefix utilities {np.mean(v_fast == v_generic):.4f}, "
        f"max |diff| {np.abs(v_fast - v_generic).max():.4f}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "iris")
