"""Ledger throughput: durable appends per second and proof times in a log of 10**6 entries.

Run (takes a few minutes at the default size, ~0.5 GB of temporary disk)::

    .venv/bin/python benchmarks/ledger_append.py                 # 10**6 entries
    .venv/bin/python benchmarks/ledger_append.py --entries 100000 --verify

Measures, on one SQLite file in WAL mode with ``synchronous=FULL``:

1. durable appends: ``Ledger.append_run`` in a loop, one fsync'd transaction each;
2. a bulk load up to ``--entries`` through the same code path but many entries per
   transaction (how a large import would be done; the per-append cost is the fsync);
3. at that size: root, inclusion-proof and consistency-proof generation (and verification),
   a signed checkpoint, and optionally the full ``verify()`` that rehashes everything.

There is no anchor library to compare with; this is a measurement of openattrib alone.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from openattrib.ledger import Ledger, generate_signing_key, merkle, verify_inclusion
from openattrib.ledger.records import run_record


class Run:
    """A small attribution run record (about 330 bytes of canonical JSON)."""

    def __init__(self, i: int) -> None:
        self.method = "tmc_shapley"
        self.parameters = {"truncation": 0.01, "max_samples": 1000, "i": i}
        self.seed = i
        self.provenance = {"dataset_hash": f"{i:064x}", "model": "LogisticRegression()"}

    def result_hash(self) -> str:
        return f"{i_hash(self.seed):064x}"


def i_hash(i: int) -> int:
    return (i * 0x9E3779B97F4A7C15) % (1 << 256)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(seconds: list[float]) -> str:
    return f"median {1e3 * statistics.median(seconds):.3f} ms, max {1e3 * max(seconds):.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--durable-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=20_000, help="entries per bulk transaction")
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--verify", action="store_true", help="also time the full verify()")
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temp dir)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="oa-ledger-bench-", dir=args.dir))
    path = workdir / "ledger.sqlite"
    rng = random.Random(0)
    try:
        with Ledger(path, origin="bench.openattrib/ledger") as led:
            mode = led._db.execute("PRAGMA journal_mode").fetchone()[0]
            sync = led._db.execute("PRAGMA synchronous").fetchone()[0]
            print(f"SQLite {path}: journal_mode={mode}, synchronous={sync} (2 = FULL)")

            # 1. durable appends, one transaction (and fsync) each
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < args.durable_seconds:
                led.append_run(Run(n))
                n += 1
            elapsed = time.perf_counter() - start
            print(f"durable appends: {n} in {elapsed:.2f} s = {n / elapsed:.0f} appends/s "
                  f"({1e3 * elapsed / n:.2f} ms each)")  # fmt: skip

            # 2. bulk load to the target size, many records per transaction
            start = time.perf_counter()
            while led.size < args.entries:
                count = min(args.batch, args.entries - led.size)
                base = led.size
                records = [run_record(Run(base + k)) for k in range(count)]
                led._append([lambda index, r=r: dict(r) for r in records])
            elapsed = time.perf_counter() - start
            size = led.size
            print(f"bulk load to {size} entries: {elapsed:.1f} s "
                  f"({size / elapsed:.0f} entries/s in batches of {args.batch})")  # fmt: skip
            db_bytes = sum(f.stat().st_size for f in workdir.iterdir())
            nodes = led._db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]
            print(f"database: {db_bytes / 2**20:.0f} MiB, {nodes} stored subtree nodes "
                  f"({nodes / size:.3f} per entry)")  # fmt: skip

            # 3. proofs at this size
            root = led.root()
            print(f"root at size {size}: {ms(timed(led.root, 20))}")
            indices = [rng.randrange(size) for _ in range(args.proofs)]
            times, proofs = [], []
            for i in indices:
                t0 = time.perf_counter()
                proofs.append(led.inclusion_proof(i))
                times.append(time.perf_counter() - t0)
            print(f"inclusion proof ({args.proofs} random leaves, {len(proofs[0].path)} hashes): "
                  f"{ms(times)}")  # fmt: skip
            checkpoint = led.checkpoint()
            vt = timed(lambda: [verify_inclusion(p, checkpoint) for p in proofs[:100]], 5)
            assert all(verify_inclusion(p, checkpoint) for p in proofs)
            print(f"inclusion proof verification: {1e3 * statistics.median(vt) / 100:.3f} ms each")
            olds = [rng.randrange(1, size) for _ in range(args.proofs)]
            times = []
            for old in olds[:200]:
                t0 = time.perf_counter()
                proof = led.consistency_proof(old)
                times.append(time.perf_counter() - t0)
                assert merkle.verify_consistency(old, size, led.root(old), root, list(proof.path))
            print(f"consistency proof (200 random old sizes): {ms(times)}")
            key = generate_signing_key()
            print(f"signed checkpoint: {ms(timed(lambda: led.checkpoint(key), 5))}")
            if args.verify:
                t0 = time.perf_counter()
                report = led.verify()
                print(
                    f"full verify() of {size} entries: {time.perf_counter() - t0:.1f} s, ok={report.ok}"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(workdir):  # pragma: no cover
            print(f"could not remove {workdir}")


if __name__ == "__main__":
    main()
