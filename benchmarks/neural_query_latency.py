"""Per-query cost of attributing one generation of a tiny causal LM (train once, query cheaply).

A byte-level ``transformers`` Llama (2 layers, width 64, about 115k parameters, untrained
weights: the cost does not depend on them), 200 training windows of 64 bytes from the
standard library's docstrings, a 25-byte prompt and a 12-byte completion, per-layer
projection 512. Prints the CPU time of the first call (fits the training side) and the
median CPU time of later calls (one batched forward/backward pass of 13 sequences plus a
product with the stored features), single-threaded::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/neural_query_latency.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import openattrib as oa  # noqa: E402
from openattrib.influence import neural_eval as ne  # noqa: E402

torch.set_num_threads(1)


def main() -> None:
    ids, owners = ne.text_corpus(seq_len=64)
    lm = ne.tiny_causal_lm(hidden=64, layers=2, heads=4, seq_len=64, seed=0)
    train, train_owners = ids[:200], owners[:200]
    prompt, completion = ids[300][:25], ids[300][25:37]
    for method in ("ekfac", "datainf", "identity", "trak"):

        def request(method: str = method):
            return oa.attribute_prediction(
                lm, train, prompt, y=completion, method=method, contributors=train_owners,
                projection_dim=512,
            ).for_test(0).by_contributor()  # fmt: skip

        start = time.process_time()
        request()
        fit = time.process_time() - start
        times = []
        for _ in range(10):
            start = time.process_time()
            request()
            times.append(time.process_time() - start)
        print(
            f"{method:8s} first call {fit:6.2f} s CPU, then {1000 * np.median(times):5.0f} ms CPU "
            "per query (median of 10)"
        )


if __name__ == "__main__":
    main()
