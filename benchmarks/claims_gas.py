"""Gas per claim and per checkpoint anchor against the number of claimants / ledger size.

Runs the committed contracts (``openattrib/ledger/artifacts``) on an in-process EVM
(eth-tester on py-evm) and reports:

- deployment gas of ``TestToken``, ``ClaimsDistributor`` and ``CheckpointAnchor``;
- for allocations of 1 to 10,000 claimants: the gas of ``publish`` and of ``claim`` for a
  sample of claimants (the first and last leaves of the sorted tree and random others), with
  their proof lengths. A claim's gas depends only on its proof length (one keccak and
  calldata word per sibling) and on whether it is the epoch's first claim (cold slots), so
  a sample gives the whole distribution; every sampled claim is really executed;
- for ledgers of 1 to 10,000 entries: the gas of anchoring a checkpoint of size ``n`` after
  one of size ``n // 2`` (and ``n - 1``), which pays for the on-chain RFC 9162 consistency
  check (one SHA-256 precompile call per proof hash).

Usage::

    OMP_NUM_THREADS=1 /usr/bin/time -v python benchmarks/claims_gas.py [--sizes 1 10 100 1000 10000]

A measurement, not a test (the tests check correctness on py-evm and ganache).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from openattrib.ledger import chain, evm, merkle

ORIGIN = "benchmark.openattrib/ledger"


class Allocation:
    def __init__(self, amounts: dict[str, int]) -> None:
        self.amounts, self.pool, self.policy = amounts, sum(amounts.values()), "benchmark"


def key_of(tag: str) -> str:
    return "0x" + keccak(text=f"openattrib gas benchmark {tag}").hex()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--sample", type=int, default=8, help="claims executed per size")
    args = parser.parse_args()
    rng = random.Random(0)

    # claimant keys only for the sampled claimants; the others get random addresses
    plans = {}
    for n in args.sizes:
        names = [f"c{i:05d}" for i in range(n)]
        sampled = sorted({0, n - 1, *rng.sample(range(n), min(n, args.sample - 2))})
        plans[n] = (names, {names[i]: key_of(f"{n}-{i}") for i in sampled})
    deployer = key_of("deployer")
    keys = [deployer, *(k for _, chosen in plans.values() for k in chosen.values())]
    node = chain.local_chain(keys=keys)
    token = chain.deploy_token(node, 10**40)
    distributor = chain.deploy_distributor(node, token)
    chain.deploy_anchor(node, ORIGIN)
    print("Deployment gas (solc 0.8.28, optimizer 200 runs, EVM shanghai):")
    for what, receipt in node.history:
        print(f"  {what.removeprefix('deploying '):<18} {receipt['gasUsed']:>9,}")

    print("\nClaims: gas per claim vs number of claimants (sampled claims, all executed)")
    print(
        f"{'claimants':>9} {'export cpu s':>12} {'publish':>8} {'proof len':>10} "
        f"{'claim min':>9} {'median':>8} {'max':>8} {'first claim':>11}"
    )
    for epoch, n in enumerate(args.sizes, start=1):
        names, chosen = plans[n]
        address = {name: Account.from_key(k).address for name, k in chosen.items()}
        for name in names:
            address.setdefault(name, to_checksum_address(rng.randbytes(20)))
        amounts = {name: rng.randrange(1, 10**24) for name in names}
        started = time.process_time()
        claims = evm.export_allocation(Allocation(amounts), address)
        export_seconds = time.process_time() - started
        chain.fund(node, token, distributor, int(claims["total"]))
        deadline = int(node.w3.eth.get_block("latest")["timestamp"]) + 86400
        published = chain.publish(node, distributor, claims, epoch=epoch, deadline=deadline)
        receipts = chain.claim_all(node, distributor, claims, chosen, epoch=epoch)
        gas = [int(receipts[name]["gasUsed"]) for name in chosen]
        lengths = sorted({len(claims["claims"][name]["proof"]) for name in chosen})
        first = int(receipts[next(iter(chosen))]["gasUsed"])
        for name in chosen:  # the chain paid exactly the claimed amounts
            assert node.token_balance(token, address[name]) == amounts[name]
        print(
            f"{n:>9,} {export_seconds:>12.2f} {published['gasUsed']:>8,} "
            f"{'-'.join(map(str, (lengths[0], lengths[-1]))):>10} {min(gas):>9,} "
            f"{int(statistics.median(gas)):>8,} {max(gas):>8,} {first:>11,}"
        )

    print("\nAnchors: gas per checkpoint vs ledger size (on-chain RFC 9162 consistency check)")
    print(
        f"{'size n':>9} {'first':>9} {'n/2 -> n-1':>10} {'proof':>6} {'n-1 -> n':>9} {'proof':>6}"
    )
    for n in args.sizes:
        entries = [f"entry {i}".encode() for i in range(n)]
        tree = merkle.LevelTree([merkle.leaf_hash(e) for e in entries])
        anchor = chain.deploy_anchor(node, ORIGIN)
        contract = node.contract("CheckpointAnchor", anchor)
        half = max(1, n // 2)
        cells, last = [], 0
        for new in (half, n - 1, n):
            if new <= last:
                cells += ["-", "-"]
                continue
            proof = tree.consistency_proof(last, new) if last else []
            call = contract.functions.anchor(ORIGIN, new, tree.root(new), proof, bytes(32))
            receipt = node.transact(call, f"anchor {new}")
            cells += [f"{receipt['gasUsed']:,}", str(len(proof))]
            last = new
        print(f"{n:>9,} {cells[0]:>9} {cells[2]:>10} {cells[3]:>6} {cells[4]:>9} {cells[5]:>6}")


if __name__ == "__main__":
    main()
