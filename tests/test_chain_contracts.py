"""The claim and anchor contracts executed on a real EVM (eth-tester on py-evm, in process).

Oracles: the committed bytecode is what the pinned npm ``solc`` compiles the sources to; token
balances read from the chain after each claim equal the exact integer amounts of
``oa.allocate``; the contract's consistency check agrees with the RFC 9162 verifier of
:mod:`openattrib.ledger.merkle` (itself checked against published test vectors) on every
pair of sizes, honest and tampered. One chain is deployed per module (py-evm is slow).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from eth_account import Account
from eth_utils import keccak
from web3.logs import DISCARD

import openattrib as oa
from openattrib.errors import ValidationError, VerificationError
from openattrib.ledger import Ledger, chain, evm, keys, merkle

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "openattrib" / "ledger" / "artifacts"
ORIGIN = "example.org/openattrib-chain-test"
N_CLAIMANTS = 300
# deterministic test keys: deployer, then claimants (funded with ether at genesis)
KEYS = ["0x" + keccak(text=f"openattrib chain test {i}").hex() for i in range(N_CLAIMANTS + 2)]
DEPLOYER, CLAIMANT_KEYS, OUTSIDER = KEYS[0], KEYS[1:-1], KEYS[-1]
ADDRESS = {key: Account.from_key(key).address for key in KEYS}


@pytest.fixture(scope="module")
def evm_chain():
    node = chain.local_chain(keys=KEYS)
    token = chain.deploy_token(node, 10**30)
    distributor = chain.deploy_distributor(node, token)
    anchor = chain.deploy_anchor(node, ORIGIN)
    return SimpleNamespace(node=node, token=token, distributor=distributor, anchor=anchor, epoch=0)


def next_epoch(env) -> int:
    env.epoch += 1
    return env.epoch


def chain_time(node) -> int:
    return int(node.w3.eth.get_block("latest")["timestamp"])


def allocation_for(n: int, seed: int, pool: int):
    """A real exact-integer allocation of ``pool`` over ``n`` claimants with random values."""
    rng = np.random.default_rng(seed)
    values = {f"c{i:03d}": float(v) for i, v in enumerate(rng.exponential(1.0, size=n))}
    allocation = oa.allocate(values, pool)
    keys_of = {name: CLAIMANT_KEYS[i] for i, name in enumerate(sorted(values))}
    claims = evm.export_allocation(allocation, lambda name: ADDRESS[keys_of[name]])
    return allocation, claims, keys_of


def publish(env, claims, *, deadline: int | None = None) -> int:
    epoch = next_epoch(env)
    node = env.node
    chain.fund(node, env.token, env.distributor, int(claims["total"]))
    chain.publish(
        node, env.distributor, claims, epoch=epoch, deadline=deadline or chain_time(node) + 10**6
    )
    return epoch


def balances(env, addresses):
    return {a: env.node.token_balance(env.token, a) for a in addresses}


# ----------------------------------------------------------------------- artifacts
@pytest.mark.slow  # compiles the contracts
def test_committed_bytecode_is_what_the_pinned_solc_compiles(node_packages, tmp_path):
    result = subprocess.run(
        ["node", str(ROOT / "contracts" / "build.js"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    pinned = json.loads((node_packages / "package.json").read_text())["dependencies"]
    for name in chain.CONTRACTS:
        fresh = (tmp_path / f"{name}.json").read_text()
        assert fresh == (ARTIFACTS / f"{name}.json").read_text(), f"{name}: rebuild artifacts"
        artifact = json.loads(fresh)
        assert artifact["compiler"]["version"].startswith(pinned["solc"] + "+")
        assert artifact["openzeppelinContracts"] == pinned["@openzeppelin/contracts"]
        assert chain.load_artifact(name)["bytecode"] == artifact["bytecode"]


# -------------------------------------------------------------------------- claims
def test_every_claimant_receives_exactly_its_amount(evm_chain):
    env = evm_chain
    allocation, claims, keys_of = allocation_for(8, seed=1, pool=1000 * 10**18)
    epoch = publish(env, claims)
    before = balances(env, [ADDRESS[k] for k in keys_of.values()])
    receipts = chain.claim_all(env.node, env.distributor, claims, keys_of, epoch=epoch)
    assert set(receipts) == set(claims["claims"])
    contract = env.node.contract("ClaimsDistributor", env.distributor)
    for name, key in keys_of.items():
        address = ADDRESS[key]
        gained = env.node.token_balance(env.token, address) - before[address]
        assert gained == allocation.amounts[name]
        assert contract.functions.isClaimed(epoch, address).call()
        (event,) = contract.events.Claimed().process_receipt(receipts[name], errors=DISCARD)
        assert (event.args.epoch, event.args.account, event.args.amount) == (
            epoch,
            address,
            allocation.amounts[name],
        )
    assert env.node.token_balance(env.token, env.distributor) == 0
    assert contract.functions.reserved().call() == 0
    assert contract.functions.epochs(epoch).call()[2] == allocation.pool  # claimed


def test_invalid_claims_revert(evm_chain):
    env = evm_chain
    _, claims_a, keys_a = allocation_for(5, seed=2, pool=10**20)
    _, claims_b, _ = allocation_for(5, seed=3, pool=2 * 10**20)  # same accounts, other amounts
    epoch_a, epoch_b = publish(env, claims_a), publish(env, claims_b)
    contract = env.node.contract("ClaimsDistributor", env.distributor)
    alice, bob = sorted(keys_a)[:2]
    signer = env.node.with_key(keys_a[alice])
    entry_a, entry_b = claims_a["claims"][alice], claims_b["claims"][alice]
    held = env.node.token_balance(env.token, env.distributor)

    def attempt(who, account, amount, proof, epoch):
        call = contract.functions.claim(
            epoch, account, int(amount), [bytes.fromhex(h[2:]) for h in proof]
        )
        with pytest.raises(chain.ChainError) as info:
            who.transact(call, "claim")
        return str(info.value)

    address = entry_a["address"]
    assert "InvalidProof" in attempt(
        signer, address, int(entry_a["amount"]) + 1, entry_a["proof"], epoch_a
    )
    assert "InvalidProof" in attempt(
        signer, address, int(entry_a["amount"]) - 1, entry_a["proof"], epoch_a
    )
    # the leaf and proof of epoch b, claimed in epoch a
    assert "InvalidProof" in attempt(signer, address, entry_b["amount"], entry_b["proof"], epoch_a)
    # bob's account, amount and proof, sent by alice
    entry = claims_a["claims"][bob]
    assert "NotClaimant" in attempt(
        signer, entry["address"], entry["amount"], entry["proof"], epoch_a
    )
    outsider = env.node.with_key(OUTSIDER)
    assert "NotClaimant" in attempt(outsider, address, entry_a["amount"], entry_a["proof"], epoch_a)
    assert "UnknownEpoch" in attempt(signer, address, entry_a["amount"], entry_a["proof"], 10**9)
    assert env.node.token_balance(env.token, env.distributor) == held

    chain.claim(signer, env.distributor, claims_a, alice, epoch=epoch_a)
    with pytest.raises(chain.ChainError, match=r"reverted: AlreadyClaimed\(epoch=\d+, account=0x"):
        chain.claim(signer, env.distributor, claims_a, alice, epoch=epoch_a)
    assert env.node.token_balance(env.token, env.distributor) == held - int(entry_a["amount"])
    # epoch b is untouched by epoch a's claim
    chain.claim(signer, env.distributor, claims_b, alice, epoch=epoch_b)
    assert env.node.token_balance(env.token, env.distributor) == held - int(
        entry_a["amount"]
    ) - int(entry_b["amount"])


def test_publish_rules(evm_chain):
    env = evm_chain
    node = env.node
    _, claims, _ = allocation_for(3, seed=4, pool=10**18)
    contract = node.contract("ClaimsDistributor", env.distributor)
    free = node.token_balance(env.token, env.distributor) - contract.functions.reserved().call()
    epoch = next_epoch(env)
    deadline = chain_time(node) + 1000
    assert free == 0  # every earlier epoch was funded with exactly its total
    with pytest.raises(chain.ChainError, match="InsufficientFunding"):
        chain.publish(node, env.distributor, claims, epoch=epoch, deadline=deadline)
    chain.fund(node, env.token, env.distributor, int(claims["total"]))
    with pytest.raises(chain.ChainError, match="OwnableUnauthorizedAccount"):
        chain.publish(
            node.with_key(OUTSIDER), env.distributor, claims, epoch=epoch, deadline=deadline
        )
    with pytest.raises(chain.ChainError, match="DeadlineNotInFuture"):
        chain.publish(node, env.distributor, claims, epoch=epoch, deadline=chain_time(node) - 1)
    receipt = chain.publish(node, env.distributor, claims, epoch=epoch, deadline=deadline)
    (event,) = contract.events.EpochPublished().process_receipt(receipt, errors=DISCARD)
    assert "0x" + event.args.root.hex() == claims["root"]
    assert event.args.total == int(claims["total"])
    with pytest.raises(chain.ChainError, match="EpochAlreadyPublished"):
        chain.publish(node, env.distributor, claims, epoch=epoch, deadline=deadline)
    # a claims file whose stated total or root was edited is refused before sending
    edited = {**claims, "total": str(int(claims["total"]) + 1)}
    with pytest.raises(VerificationError, match="add up to"):
        chain.publish(node, env.distributor, edited, epoch=epoch + 1, deadline=deadline)
    with pytest.raises(ValidationError, match="openattrib.evm-claims/1"):
        chain.publish(node, env.distributor, {"root": "0x00"}, epoch=epoch + 1, deadline=deadline)


def test_sweep_only_after_the_deadline_and_only_the_unclaimed(evm_chain):
    env = evm_chain
    node = env.node
    allocation, claims, keys_of = allocation_for(4, seed=5, pool=4 * 10**18)
    deadline = chain_time(node) + 3600
    epoch = publish(env, claims, deadline=deadline)
    later = publish(env, allocation_for(4, seed=6, pool=10**18)[1])  # must stay funded
    contract = node.contract("ClaimsDistributor", env.distributor)
    first = sorted(keys_of)[0]
    chain.claim(node.with_key(keys_of[first]), env.distributor, claims, first, epoch=epoch)
    with pytest.raises(chain.ChainError, match="DeadlineNotReached"):
        node.transact(contract.functions.sweep(epoch, node.address), "sweep")
    node.tester.time_travel(deadline + 1)
    second = sorted(keys_of)[1]
    with pytest.raises(chain.ChainError, match="ClaimWindowClosed"):
        chain.claim(node.with_key(keys_of[second]), env.distributor, claims, second, epoch=epoch)
    with pytest.raises(chain.ChainError, match="OwnableUnauthorizedAccount"):
        node.with_key(OUTSIDER).transact(
            contract.functions.sweep(epoch, ADDRESS[OUTSIDER]), "sweep"
        )
    reserved = contract.functions.reserved().call()
    owner_before = node.token_balance(env.token, node.address)
    node.transact(contract.functions.sweep(epoch, node.address), "sweep")
    unclaimed = allocation.pool - allocation.amounts[first]
    assert node.token_balance(env.token, node.address) - owner_before == unclaimed
    assert contract.functions.reserved().call() == reserved - unclaimed
    with pytest.raises(chain.ChainError, match="AlreadySwept"):
        node.transact(contract.functions.sweep(epoch, node.address), "sweep")
    assert contract.functions.epochs(later).call()[0] != bytes(32)  # the other epoch stays


@pytest.mark.slow  # hundreds of EVM transactions
@pytest.mark.parametrize("seed", range(4))
def test_random_allocations_every_claim_succeeds_once_and_sums_match(evm_chain, seed):
    # sizes: the two ends of 1..300 and two seeded draws (kept small: py-evm is slow)
    n = [1, N_CLAIMANTS, *random.Random(17).sample(range(2, 40), 2)][seed]
    env = evm_chain
    pool = random.Random(seed).randrange(n, 10**27)
    allocation, claims, keys_of = allocation_for(n, seed=100 + seed, pool=pool)
    epoch = publish(env, claims)
    held = env.node.token_balance(env.token, env.distributor)
    before = balances(env, [ADDRESS[k] for k in keys_of.values()])
    payable = {name: keys_of[name] for name in claims["claims"]}  # zero amounts are left out
    chain.claim_all(env.node, env.distributor, claims, payable, epoch=epoch)
    after = balances(env, [ADDRESS[k] for k in keys_of.values()])
    gained = {name: after[ADDRESS[k]] - before[ADDRESS[k]] for name, k in keys_of.items()}
    assert gained == allocation.amounts
    assert sum(gained.values()) == pool
    assert env.node.token_balance(env.token, env.distributor) == held - pool
    name = sorted(payable)[-1]
    with pytest.raises(chain.ChainError, match="AlreadyClaimed"):
        chain.claim(env.node.with_key(payable[name]), env.distributor, claims, name, epoch=epoch)


# --------------------------------------------------------------------- checkpoints
def make_ledger(path: Path, n: int, *, salt: str = "") -> Ledger:
    led = Ledger(path, create=True, origin=ORIGIN)
    for i in range(n):
        run = oa.Attribution([float(i), 1.0], names=["a", "b"], method=f"demo{salt}", seed=i)
        led.append_run(run)
    return led


@pytest.mark.slow
def test_checkpoints_anchor_and_entries_verify_against_the_chain(evm_chain, tmp_path):
    env = evm_chain
    node = env.node
    key = keys.generate_signing_key()
    led = make_ledger(tmp_path / "honest.sqlite", 2)
    contract = node.contract("CheckpointAnchor", env.anchor)
    with pytest.raises(chain.ChainError, match="NoCheckpoint"):
        node.transact(contract.functions.latest(), "latest")
    anchored = []
    for grow in (0, 3, 4):
        for i in range(grow):
            led.append_run(oa.Attribution([1.0], names=["x"], method="grow", seed=100 + i))
        checkpoint = led.checkpoint(key)
        receipt = chain.anchor_checkpoint(
            node, env.anchor, checkpoint, led, public_key=key.public_key()
        )
        (event,) = contract.events.CheckpointAnchored().process_receipt(receipt, errors=DISCARD)
        assert (event.args.size, event.args.root) == (checkpoint.size, checkpoint.root)
        assert event.args.noteHash == keccak(text=checkpoint.text)
        anchored.append(checkpoint)
    on_chain = chain.anchored_checkpoints(node, env.anchor)
    assert [(a.origin, a.size, a.root) for a in on_chain] == [
        (c.origin, c.size, c.root) for c in anchored
    ]
    # the recorded proof hash is that of the proof the ledger gives between the two heads
    proof = led.consistency_proof(anchored[1].size, anchored[2].size)
    assert on_chain[2].consistency_proof_hash == keccak(b"".join(proof.path))
    for size in (anchored[0].size, anchored[2].size):
        for index in range(size):
            inclusion = led.inclusion_proof(index, size=size)
            assert chain.verify_against_chain(node, env.anchor, inclusion, led.entry(index).data)
    inclusion = led.inclusion_proof(0, size=anchored[2].size)
    assert not chain.verify_against_chain(node, env.anchor, inclusion, b"forged entry")
    with pytest.raises(VerificationError, match="no checkpoint of size 3"):
        chain.verify_against_chain(node, env.anchor, led.inclusion_proof(0, size=3))

    # a rewritten history (same origin, entry 1 changed, then grown) is refused off chain...
    forged = make_ledger(tmp_path / "forged.sqlite", 12, salt="-rewritten")
    head = forged.checkpoint(key)
    with pytest.raises(VerificationError, match="history was rewritten"):
        chain.anchor_checkpoint(node, env.anchor, head, forged)
    # ...and by the contract itself, when a publisher skips that check
    last = anchored[-1].size
    path = forged.consistency_proof(last, head.size).path
    call = contract.functions.anchor(ORIGIN, head.size, head.root, list(path), bytes(32))
    with pytest.raises(chain.ChainError, match="InconsistentCheckpoint"):
        node.transact(call, "anchor")
    honest_path = list(led.consistency_proof(last - 1, last).path)
    call = contract.functions.anchor(ORIGIN, last - 1, led.root(last - 1), honest_path, bytes(32))
    with pytest.raises(chain.ChainError, match="NotAnExtension"):
        node.transact(call, "anchor")
    call = contract.functions.anchor("other.org/log", head.size, head.root, [], bytes(32))
    with pytest.raises(chain.ChainError, match="WrongOrigin"):
        node.transact(call, "anchor")
    call = contract.functions.anchor(ORIGIN, 13, head.root, [], bytes(32))
    with pytest.raises(chain.ChainError, match="OwnableUnauthorizedAccount"):
        node.with_key(OUTSIDER).transact(call, "anchor")
    assert len(chain.anchored_checkpoints(node, env.anchor)) == 3
    led.close()
    forged.close()


@pytest.mark.slow
def test_on_chain_consistency_check_agrees_with_rfc9162(evm_chain):
    contract = evm_chain.node.contract("CheckpointAnchor", evm_chain.anchor)
    entries = [f"entry {i}".encode() for i in range(11)]
    roots = [merkle.root(entries[:n]) for n in range(len(entries) + 1)]
    rng = random.Random(9)
    cases = []
    for new in range(len(entries) + 1):
        for old in range(new + 1):
            proof = merkle.consistency_proof(entries[:new], old)
            cases.append((old, new, roots[old], roots[new], proof))
            bad = [  # one tampering per pair, drawn from four kinds
                (old, new, roots[old - 1] if old else roots[1], roots[new], proof),
                (old, new, roots[old], roots[new], proof[:-1]),
                (old, new, roots[old], roots[new], [*proof, roots[0]]),
            ]
            if proof:
                k = rng.randrange(len(proof))
                flipped = [*proof[:k], bytes([proof[k][0] ^ 1]) + proof[k][1:], *proof[k + 1 :]]
                bad.append((old, new, roots[old], roots[new], flipped))
            cases.append(rng.choice(bad))
    accepted = 0
    for old, new, old_root, new_root, proof in cases:
        try:
            expected = merkle.verify_consistency(old, new, old_root, new_root, proof)
        except VerificationError:  # wrong proof length: malformed, hence not consistent
            expected = False
        got = contract.functions.verifyConsistency(old, new, old_root, new_root, proof).call()
        assert got == expected, (old, new, len(proof))
        accepted += expected
    assert accepted >= 12 * 13 // 2  # at least every honest pair (some tamperings are no-ops)
    assert accepted < len(cases) - 40


# -------------------------------------------------------------------------- errors
def test_chain_errors_are_one_clear_line(evm_chain, tmp_path):
    env = evm_chain
    poor = env.node.with_key("0x" + "42" * 32)  # never funded
    with pytest.raises(chain.ChainError, match="has no ether on chain") as info:
        chain.deploy_token(poor, 1)
    assert "\n" not in str(info.value)
    key_file = tmp_path / "key"
    key_file.write_text("0x" + "ab" * 31 + "zz\n")
    with pytest.raises(ValidationError, match="64 hex digits") as info:
        chain.read_private_key(key_file)
    assert "ab" * 31 not in str(info.value)
    key_file.write_text("  " + "AB" * 32 + "\n")
    assert chain.read_private_key(key_file) == "0x" + "ab" * 32
    assert "ab" * 32 not in repr(env.node.with_key("0x" + "ab" * 32))
    with pytest.raises(ValidationError, match="unknown contract"):
        chain.load_artifact("Nope")
