"""The main job: the whole pipeline on the committed demo data.

1. register the eight demo contributors' submissions in the ledger's contribution registry,
   in the data card's submission order, and decide who owns each row (first registrant;
   copies of someone else's rows, exact or near, belong to the original's registrant);
2. value the *owned* data (each row once, credited to its owner): exact Shapley, Banzhaf
   with error bars and leave-one-out of the contributor game, for the table; and, for the
   payout, truncated Monte Carlo Shapley of the *points*, summed per owner over positive
   values (:func:`openattrib.rewards.split_robust`: splitting rows among identities
   cannot change it, and registry deduplication makes resubmitting worthless);
3. allocate a token pool from those owner sums (exact integers, proportional), so copiers
   are paid nothing for copied rows; the same recipe on the submitted data shows what they
   would have been paid (withheld);
4. audit the data for copied rows;
5. append the run and its allocation to a Merkle ledger, sign a checkpoint, prove the
   allocation's inclusion and verify it; export the on-chain claims file;
5. optionally (``chain=True``, ``openattrib demo --chain``) pay the claims on an in-process
   EVM: deploy the claims distributor and checkpoint anchor, fund and publish the root, let
   every contributor claim, anchor the signed checkpoint and verify the allocation entry
   against the root anchored on chain;
6. write one self-contained HTML report, with a section "who copied whom".

It is a consumer of the public API (like the CLI and the experiments) and is what
``make demo`` runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets, methods
from .games import ModelUtility
from .recipe import compute, make_model
from .result import Attribution
from .rewards import allocate, audit, provenance

__all__ = [
    "run_demo",
    "DemoSummary",
    "DEMO_RECIPE",
    "DEMO_POOL",
    "DEMO_POLICY",
    "DEMO_SUBMISSION_ORDER",
    "demo_key",
    "demo_address",
]

#: the order the contributors submitted their data (data/DATA_CARD.md, "Contributors")
DEMO_SUBMISSION_ORDER = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")

#: the recorded run: truncated Monte Carlo Shapley over points, positive values summed per
#: owner (the split-robust payout; reproducible by seed)
DEMO_RECIPE: dict[str, Any] = {
    "target": "label",
    "contributor": "contributor",
    "model": "logistic",
    "scorer": "accuracy",
    "players": "points",
    "payout": "split_robust",
    "method": "permutation_shapley",
    "params": {"stop": "MaxSamples(400)", "truncation": 0.01},
    "seed": 0,
    "standardize": False,  # the demo features are already standardised
    "split": None,  # a separate validation file: data/demo_validation.csv
}
#: 1,000 tokens of 18 decimals
DEMO_POOL = 1000 * 10**18
#: per-point clipping already happened in the owner sums; proportional keeps it split-proof
DEMO_POLICY = "proportional"


@dataclass
class DemoSummary:
    """What the main job produced."""

    out_dir: Path
    attributions: dict[str, Attribution] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    allocation: Any = None
    audit: Any = None
    provenance: Any = None
    before: Any = None
    copies: pd.DataFrame | None = None
    payouts: pd.DataFrame | None = None
    files: dict[str, Path] = field(default_factory=dict)
    ledger_ok: bool = False
    chain: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.ledger_ok and (self.chain is None or bool(self.chain["ok"]))


def demo_key(contributor: str) -> str:
    """A deterministic, publicly known secp256k1 private key for a demo contributor.

    For test chains only: anyone can recompute it, so it must never hold real funds.
    """
    return "0x" + hashlib.sha256(f"openattrib demo key {contributor}".encode()).hexdigest()


def demo_address(contributor: str) -> str:
    """The Ethereum address of :func:`demo_key` (EIP-55): keccak256 of the public key, last 20 bytes."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from eth_utils import to_checksum_address

    from .ledger.evm import keccak256

    secret = ec.derive_private_key(int(demo_key(contributor), 16), ec.SECP256K1())
    point = secret.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return to_checksum_address(keccak256(point[1:])[-20:])


def run_demo(
    out_dir: str | Path = "out",
    *,
    progress: bool = True,
    chain: bool = False,
    echo: Callable[[str], Any] | None = None,
) -> DemoSummary:
    """Run the main job and write its outputs under ``out_dir``.

    Writes ``report.html``, the attributions and allocation as JSON, ``claims.json`` (the
    OpenZeppelin Merkle tree of the payout) and appends to ``ledger.sqlite`` (signed with
    ``ledger-key.pem``, created on first use). With ``chain=True`` the claims are paid on an
    in-process EVM (needs ``openattrib[chain]``) and ``chain.json`` records the gas used,
    the balances read back from the chain and the anchored root.
    """
    from . import ledger as ledger_module
    from .ledger import Ledger, evm, keys

    say = echo or (lambda text: None)
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = DemoSummary(out_dir=out)

    # ----------------------------------------------------------- register, own
    train, valid = datasets.load_demo()
    say(
        f"Demo data: {train.n_samples} training rows from {train.n_contributors} contributors, "
        f"{valid.n_samples} validation rows (dataset {train.content_hash()[:12]})"
    )
    groups = train.groups()
    with Ledger(out / "ledger.sqlite", create=True, origin="openattrib.demo/ledger") as led:
        for name in DEMO_SUBMISSION_ORDER:  # idempotent: a re-run registers nothing new
            reg = led.append_contribution(name, train.subset(groups[name]))
            clash = "".join(
                f"; {count} rows registered earlier by {owner} (entry {index})"
                for index, owner, count in reg.collisions
            )
            say(f"registry: {name} {reg.n_rows} rows at entry {reg.index}{clash}")
        ownership = provenance(train, led)
    summary.provenance = ownership
    owned = ownership.owned()
    say(f"{ownership!r}\n")

    # ------------------------------------------------------------------ value
    model = make_model(DEMO_RECIPE["model"], train.task)
    game = ModelUtility(model, owned, valid, scorer="accuracy", players="contributors")
    say(f"Model {model!r}: validation accuracy with the owned data {game.grand_value:.3f}\n")
    inputs = methods.MethodInput(
        owned, valid, players="contributors", make_game=lambda: game, progress=progress
    )  # one game: exact Shapley, Banzhaf and LOO share its cache of fitted coalitions
    exact = ownership.credit(methods.run("exact_shapley", inputs))
    tmc = compute(DEMO_RECIPE, train, valid, progress=progress, ownership=ownership)
    bz = ownership.credit(methods.run("banzhaf", inputs, {"budget": 2000}, seed=0))
    leave_one_out = ownership.credit(methods.run("loo", inputs))
    summary.before = compute(DEMO_RECIPE, train, valid, progress=progress)  # without provenance
    summary.attributions = {"exact_shapley": exact, "tmc": tmc, "banzhaf": bz, "loo": leave_one_out}
    table = pd.DataFrame(
        {
            "rows": [len(groups[name]) for name in exact.names],
            "owned rows": ownership.contributors.loc[exact.names, "owned"].to_numpy(),
            "exact shapley": exact.values,
            "paid: point sum": [tmc[name] for name in exact.names],
            "banzhaf": bz.values,
            "banzhaf stderr": bz.stderr,
            "loo": leave_one_out.values,
        },
        index=pd.Index(exact.names, name="contributor"),
    ).sort_values("exact shapley", ascending=False)
    summary.table = table
    say("Contributor values (validation accuracy points):")
    say(table.to_string(float_format=lambda v: f"{v:+.4f}"))
    unpaid = tmc.diagnostics["unpaid_negative"]
    say(
        "'paid: point sum' is what the payout uses: each owner's sum of positive point values "
        "(truncated Monte Carlo Shapley of the points, 400 permutations), unchanged by how an "
        "owner splits its rows among identities; negative point values are not paid (unpaid: "
        + ", ".join(f"{n} {unpaid[n]:+.4f}" for n in tmc.names if unpaid.get(n))
        + f"). Exact contributor values sum to v(all) - v(none) = {exact.values.sum():.4f}\n"
    )

    # --------------------------------------------------------------- allocate
    allocation = allocate(tmc, DEMO_POOL, policy=DEMO_POLICY)
    summary.allocation = allocation
    pay = allocation.to_frame()
    say(f"Allocation of {DEMO_POOL} base units (1,000 tokens), policy {allocation.policy}:")
    say(pay.to_string())
    total = sum(allocation.amounts.values())
    say(f"sum of amounts = {total} ({'exactly the pool' if total == DEMO_POOL else 'MISMATCH'})\n")
    before = allocate(summary.before, DEMO_POOL, policy=DEMO_POLICY)
    summary.payouts = pd.DataFrame(
        {
            "without provenance": [before.amounts.get(n, 0) for n in pay.index],
            "owned data": [allocation.amounts.get(n, 0) for n in pay.index],
        },
        index=pay.index,
    )
    summary.copies = _withheld(ownership, before, allocation)
    say("Who copied whom (amounts without provenance are withheld from copiers):")
    say(summary.copies.to_string())
    say("")

    # ------------------------------------------------------------------ audit
    report_audit = audit(train, exact)
    summary.audit = report_audit
    say(
        f"Gaming audit: {len(report_audit.exact_duplicates)} exact and "
        f"{len(report_audit.near_duplicates)} near-duplicate rows; flagged contributors: "
        f"{', '.join(report_audit.flagged) or 'none'}\n"
    )

    # ----------------------------------------------------------------- ledger
    key_path = out / "ledger-key.pem"
    if not key_path.exists():
        keys.save_signing_key(keys.generate_signing_key(), key_path)
    public_key = keys.load_public_key(Path(f"{key_path}.pub"))
    with Ledger(out / "ledger.sqlite", origin="openattrib.demo/ledger") as led:
        run_entry = led.append_run(tmc)
        alloc_entry = led.append_allocation(allocation, run=run_entry.index)
        checkpoint = led.checkpoint(key_path)
        proof = led.inclusion_proof(alloc_entry.index)
        included = ledger_module.verify_inclusion(proof, checkpoint)
        signed = ledger_module.verify_checkpoint(checkpoint.text, public_key)
        report_ledger = led.verify(public_key=public_key, progress=progress)
    summary.ledger_ok = bool(included and report_ledger.ok and signed)
    say(
        f"Ledger {out / 'ledger.sqlite'}: run at index {run_entry.index}, allocation at {alloc_entry.index}"
    )
    say("Signed checkpoint:\n" + checkpoint.text)
    say(f"Inclusion proof of the allocation entry: {json.dumps(proof.to_dict())}")
    say(
        f"inclusion proof verifies against the signed checkpoint: {included}; "
        f"checkpoint signature valid: {bool(signed)}; whole ledger verifies: {report_ledger.ok}\n"
    )

    claims = evm.export_allocation(allocation, demo_address)
    from ._io import atomic_write_bytes, canonical_json

    summary.files["claims"] = atomic_write_bytes(out / "claims.json", canonical_json(claims))
    name = max(claims["claims"], key=lambda n: int(claims["claims"][n]["amount"]))
    claim = claims["claims"][name]
    ok_claim = evm.verify_proof(
        claims["root"], ["address", "uint256"], [claim["address"], claim["amount"]], claim["proof"]
    )
    say(
        f"On-chain claim of {name}: amount {claim['amount']} to {claim['address']}, Merkle root "
        f"{claims['root']}, proof {claim['proof']} verifies: {ok_claim}"
    )
    summary.ledger_ok = summary.ledger_ok and bool(ok_claim)
    if chain:
        summary.chain = _pay_on_chain(out, claims, alloc_entry.index, public_key, say)
        summary.files["chain"] = atomic_write_bytes(
            out / "chain.json", canonical_json(summary.chain)
        )

    # ------------------------------------------------------------ files/report
    for label, result in summary.attributions.items():
        summary.files[label] = result.save(out / f"{label}.json")
    summary.files["allocation"] = allocation.save(out / "allocation.json")
    payouts = {
        "ownership": ownership.summary(),
        "payouts": {
            name: {k: str(v) for k, v in row.items()}
            for name, row in summary.payouts.to_dict(orient="index").items()
        },
        "withheld": {r["copier"]: str(r["withheld"]) for r in summary.copies.to_dict("records")},
    }
    summary.files["provenance"] = atomic_write_bytes(
        out / "provenance.json", canonical_json(payouts)
    )
    summary.seconds = time.perf_counter() - started
    summary.files["report"] = _write_report(summary, checkpoint, proof, claims, train)
    say(f"\nReport: {summary.files['report'].resolve()}  ({summary.seconds:.1f} s)")
    return summary


def _withheld(ownership: Any, before: Any, after: Any) -> pd.DataFrame:
    """Per (copier, owner, kind): rows, evidence, and the payout the copier no longer gets."""
    pairs = ownership.who_copied_whom()
    evidence = ownership.copies
    records = []
    for pair in pairs.itertuples():
        rows = evidence[
            (evidence["contributor"] == pair.copier) & (evidence["owner"] == pair.owner)
        ]
        rows = rows[rows["kind"] == pair.kind]
        sample = ", ".join(
            f"{r.row}->{r.original_row}" + (f" ({r.rms_distance:.3f})" if r.kind == "near" else "")
            for r in rows.head(3).itertuples()
        )
        records.append(
            {
                "copier": pair.copier,
                "owner": pair.owner,
                "kind": pair.kind,
                "rows": int(pair.rows),
                "max RMS distance": pair.max_rms_distance,
                "registrations": pair.registrations,
                "evidence (row->original)": sample + (", ..." if len(rows) > 3 else ""),
                "paid without provenance": before.amounts.get(pair.copier, 0),
                "paid now": after.amounts.get(pair.copier, 0),
            }
        )
    frame = pd.DataFrame.from_records(records)
    if not frame.empty:
        frame["withheld"] = frame["paid without provenance"] - frame["paid now"]
    return frame


def _pay_on_chain(
    out: Path, claims: dict, entry_index: int, public_key: Any, say: Callable[[str], Any]
) -> dict[str, Any]:
    """Deploy, fund, publish, claim every amount and anchor the checkpoint on an in-process EVM."""
    from .ledger import Ledger, chain

    names = sorted(claims["claims"])
    say("\nOn chain (in-process EVM: eth-tester on py-evm), contracts on OpenZeppelin:")
    node = chain.local_chain(keys=[demo_key("deployer"), *(demo_key(n) for n in names)])
    token = chain.deploy_token(node, int(claims["total"]))
    distributor = chain.deploy_distributor(node, token)
    chain.fund(node, token, distributor, int(claims["total"]))
    now = int(node.w3.eth.get_block("latest")["timestamp"])
    published = chain.publish(node, distributor, claims, epoch=1, deadline=now + 30 * 86400)
    receipts = chain.claim_all(node, distributor, claims, {n: demo_key(n) for n in names}, epoch=1)
    received = {n: node.token_balance(token, claims["claims"][n]["address"]) for n in names}
    paid_exactly = all(received[n] == int(claims["claims"][n]["amount"]) for n in names)
    left = node.token_balance(token, distributor)
    claim_gas = {n: int(receipts[n]["gasUsed"]) for n in names}
    with Ledger(out / "ledger.sqlite") as led:
        checkpoint = led.checkpoints()[-1]
        anchor = chain.deploy_anchor(node, led.origin)
        anchored = chain.anchor_checkpoint(node, anchor, checkpoint, led, public_key=public_key)
        proof = led.inclusion_proof(entry_index, size=checkpoint.size)
        verified = chain.verify_against_chain(node, anchor, proof, led.entry(entry_index).data)
    deploy_gas = {
        what.removeprefix("deploying "): int(r["gasUsed"])
        for what, r in node.history
        if what.startswith("deploying ")
    } | {"publish": int(published["gasUsed"])}
    say(
        "deployment gas: "
        + ", ".join(f"{k} {v:,}" for k, v in deploy_gas.items())
        + f"; distributor funded with {claims['total']} base units, root {claims['root']}"
    )
    for n in names:
        say(f"  {n:>14} claimed {received[n]:>24} base units, gas {claim_gas[n]:,}")
    say(
        f"every claimant received exactly its amount: {paid_exactly}; distributor balance "
        f"after claims: {left}"
    )
    say(
        f"anchored checkpoint: origin {checkpoint.origin}, size {checkpoint.size}, root "
        f"0x{checkpoint.root.hex()} (gas {int(anchored['gasUsed']):,}); allocation entry "
        f"{entry_index} verifies against the root on chain: {verified}"
    )
    return {
        "ok": bool(paid_exactly and left == 0 and verified),
        "chain_id": node.chain_id,
        "contracts": {"token": token, "distributor": distributor, "anchor": anchor},
        "gas": {
            "deploy_and_publish": deploy_gas,
            "claims": claim_gas,
            "anchor": int(anchored["gasUsed"]),
        },
        "received": {n: str(v) for n, v in received.items()},
        "distributor_balance_after": str(left),
        "anchored": {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
        },
        "allocation_entry_verified": bool(verified),
    }


def _write_report(
    summary: DemoSummary, checkpoint: Any, proof: Any, claims: dict, train: Any
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import Report

    report = Report("openattrib demo: who contributed what, and who gets paid")
    report.add_text(
        f"{train.n_samples} training rows from {train.n_contributors} contributors "
        f"(dataset hash {train.content_hash()[:16]}...), logistic regression, validation accuracy."
    )
    report.add_heading("Contributor values")
    report.add_table(summary.table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    summary.attributions["tmc"].plot(ax=axes[0])
    summary.attributions["banzhaf"].plot(ax=axes[1])
    report.add_figure(
        fig,
        caption="Paid values (positive point values summed per owner) and Monte Carlo "
        "Banzhaf values of the contributor game with 95% intervals",
    )
    plt.close(fig)
    report.add_heading("Reward allocation")
    report.add_table(summary.allocation.to_frame())
    fig, ax = plt.subplots(figsize=(6, 4))
    summary.allocation.plot(ax=ax)
    report.add_figure(fig, caption="Share of the pool")
    plt.close(fig)
    report.add_heading("Who copied whom")
    report.add_text(
        "Each contributor registered its submission in the ledger (row digests and their "
        "Merkle root) in the data card's order; a row belongs to whoever registered it (or "
        "the row it nearly copies) first. Copied rows were valued once, for their owner; "
        "'withheld' is what the same recipe would have paid the copier without provenance."
    )
    report.add_table(summary.copies)
    report.add_table(summary.provenance.contributors)
    report.add_text("Payouts (base units) of the same recipe without and with provenance:")
    report.add_table(summary.payouts)
    report.add_heading("Gaming audit")
    report.add_table(summary.audit.contributors)
    report.add_heading("Ledger")
    report.add_code(checkpoint.text)
    report.add_key_values(
        {
            "allocation entry": proof.index,
            "tree size": proof.size,
            "inclusion proof": ", ".join(h.hex()[:16] + "..." for h in proof.path),
            "claims Merkle root": claims["root"],
        }
    )
    return report.write(summary.out_dir / "report.html")
