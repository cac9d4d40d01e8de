"""The main job end to end: values, allocation, audit, ledger, claims, report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import openattrib as oa
from openattrib.cli import main
from openattrib.datasets import DATA_DIR
from openattrib.demo import DEMO_SUBMISSION_ORDER

pytestmark = pytest.mark.slow  # runs the whole main job


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--no-progress", "--chain"]) == 0
    return out


def test_demo_outputs(demo_run, capsys):
    out = demo_run
    for name in ("report.html", "tmc.json", "exact_shapley.json", "allocation.json", "claims.json"):
        assert (out / name).exists(), name
    tmc = oa.Attribution.load(out / "tmc.json")
    exact = oa.Attribution.load(out / "exact_shapley.json")
    assert tmc.level == "contributors" and len(tmc) == 8 and exact.level == "contributors"
    # the payout values are owner sums of positive point values: non-negative, no error bars
    assert tmc.method == "split_robust(permutation_shapley)" and tmc.stderr is None
    assert np.all(tmc.values >= 0) and tmc["dave"] == tmc["erin"] == 0
    alloc = oa.Allocation.load(out / "allocation.json")
    assert sum(alloc.amounts.values()) == alloc.pool
    html = (out / "report.html").read_text()
    for heading in (
        "Contributor values",
        "Reward allocation",
        "Who copied whom",
        "Gaming audit",
        "Ledger",
    ):
        assert heading in html
    assert "withheld" in html and "dave [3] after alice [0]" in html


def test_demo_pays_copiers_nothing_and_the_original_at_least_as_much(demo_run):
    alloc = oa.Allocation.load(demo_run / "allocation.json")
    tmc = oa.Attribution.load(demo_run / "tmc.json")
    assert alloc.amounts["dave"] == alloc.amounts["erin"] == 0
    ownership = tmc.provenance["ownership"]
    truth = json.loads((DATA_DIR / "demo_truth.json").read_text())["contributors"]
    copied = [
        c
        for name in ("dave", "erin")
        for c, _ in truth[name][f"{'exact' if name == 'dave' else 'near'}_duplicate_of"]
    ]
    assert ownership["dropped_rows"] == sorted(copied)
    # the same recipe and policy on the submitted data, as before provenance existed
    record = json.loads((demo_run / "provenance.json").read_text())
    before = {name: int(row["without provenance"]) for name, row in record["payouts"].items()}
    assert sum(before.values()) == alloc.pool and before["dave"] > 0 and before["erin"] > 0
    assert {k: int(v) for k, v in record["withheld"].items()} == {
        "dave": before["dave"],
        "erin": before["erin"],
    }
    assert alloc.amounts["alice"] >= before["alice"]


def test_demo_ledger_verifies_and_run_reproduces(demo_run, capsys):
    out = demo_run
    ledger = out / "ledger.sqlite"
    with oa.Ledger(ledger) as led:
        assert led.size == 10  # 8 registrations, the run, its allocation
        assert [r.contributor for r in led.contributions()] == list(DEMO_SUBMISSION_ORDER)
        assert led.verify().ok
        run = led.entry(8).record
    assert run["provenance"]["recipe"]["method"] == "permutation_shapley"
    capsys.readouterr()
    code = main(
        [
            "ledger",
            "reproduce",
            str(ledger),
            "8",
            "--data",
            str(DATA_DIR / "demo_contributors.csv"),
            "--valid",
            str(DATA_DIR / "demo_validation.csv"),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr()
    assert "matches bit for bit" in capsys.readouterr().out


def test_demo_claims_match_allocation(demo_run):
    claims = json.loads((demo_run / "claims.json").read_text())
    alloc = oa.Allocation.load(demo_run / "allocation.json")
    paid = {name: amount for name, amount in alloc.amounts.items() if amount > 0}
    assert {n: int(c["amount"]) for n, c in claims["claims"].items()} == paid
    for claim in claims["claims"].values():
        assert oa.ledger.evm.verify_proof(
            claims["root"],
            ["address", "uint256"],
            [claim["address"], claim["amount"]],
            claim["proof"],
        )


def test_demo_chain_step_pays_every_claimant_and_anchors_the_ledger(demo_run):
    from eth_account import Account

    from openattrib.demo import demo_address, demo_key

    record = json.loads((demo_run / "chain.json").read_text())
    claims = json.loads((demo_run / "claims.json").read_text())
    alloc = oa.Allocation.load(demo_run / "allocation.json")
    paid = {name: amount for name, amount in alloc.amounts.items() if amount > 0}
    # balances read back from the chain are the allocation's exact integers
    assert {n: int(v) for n, v in record["received"].items()} == paid
    assert record["distributor_balance_after"] == "0"
    assert record["ok"] and record["allocation_entry_verified"]
    assert set(record["gas"]["claims"]) == set(paid)
    # the claims are payable by the demo keys: addresses agree with eth-account's derivation
    for name, claim in claims["claims"].items():
        assert claim["address"] == demo_address(name) == Account.from_key(demo_key(name)).address
    anchored = record["anchored"]
    with oa.Ledger(demo_run / "ledger.sqlite") as led:
        assert anchored["origin"] == led.origin
        assert led.root(anchored["size"]).hex() == anchored["root"]


def test_demo_payout_is_unchanged_when_alice_splits_her_rows():
    # the main job's recipe on the demo without the copiers, and with alice's rows dealt to
    # herself and two sybils: every payout (the sybils' summed) stays the same
    from openattrib.demo import DEMO_POLICY, DEMO_POOL, DEMO_RECIPE
    from openattrib.experiments import replicate
    from openattrib.recipe import compute

    train, valid = oa.datasets.load_demo()
    honest = train.subset(
        [i for i, c in enumerate(train.contributors) if c not in ("dave", "erin")]
    )
    split, identities = replicate(honest, "alice", 2, "split")
    paid = {}
    for name, data in (("honest", honest), ("split", split)):
        values = compute(DEMO_RECIPE, data, valid, progress=False)
        paid[name] = oa.allocate(values, DEMO_POOL, policy=DEMO_POLICY).amounts
    tolerance = 1e-9 * DEMO_POOL  # float rounding of the sums, nothing material
    assert abs(sum(paid["split"][i] for i in identities) - paid["honest"]["alice"]) <= tolerance
    for name in ("bob", "carol", "frank", "grace", "heidi"):
        assert abs(paid["split"][name] - paid["honest"][name]) <= tolerance
