"""``openattrib chain`` over JSON-RPC against ganache (npm), started here on loopback.

The node is the real ganache from tests/node/package-lock.json, started on a free loopback
port for this module and stopped afterwards. Balances are read back from the node; the
anchored root is compared with the ledger's own.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import pytest
from eth_account import Account
from eth_utils import keccak

import openattrib as oa
from openattrib.cli import main
from openattrib.errors import LedgerError
from openattrib.ledger import Ledger, chain, keys

CHAIN_ID = 1337
ORIGIN = "example.org/openattrib-cli-log"
KEYS = ["0x" + keccak(text=f"openattrib ganache test {i}").hex() for i in range(4)]
DEPLOYER, CLAIMANTS = KEYS[0], dict(zip(["alice", "bob", "carol"], KEYS[1:], strict=True))
SUPPLY = 10**24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc_ready(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(json.loads(response.read())["result"], 16) == CHAIN_ID
    except OSError:
        return False


@pytest.fixture(scope="module")
def ganache(node_packages, tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("ganache") / "ganache.log"
    accounts = [arg for key in KEYS for arg in ("--wallet.accounts", f"{key},{10**21}")]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["node", str(node_packages / "node_modules" / "ganache" / "dist" / "node" / "cli.js"),
             "--server.host", "127.0.0.1", "--server.port", str(port),
             "--chain.chainId", str(CHAIN_ID), "--logging.quiet", *accounts],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not rpc_ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ganache did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def run(capsys):
    """Run the CLI; return (exit code, stdout, stderr) and check no private key leaked."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        for key in KEYS:
            assert key[2:] not in out.lower() + err.lower()
        if err:
            assert code == 1 and err.count("\n") == 1 and err.startswith("openattrib: error: "), err
        return code, out, err

    return invoke


@pytest.mark.slow
def test_deploy_publish_claim_anchor_verify(ganache, run, tmp_path):
    key_files = {}
    for name, key in {"deployer": DEPLOYER, **CLAIMANTS}.items():
        key_files[name] = tmp_path / f"{name}.key"
        key_files[name].write_text(key + "\n")
    signing_key = tmp_path / "log.pem"
    keys.save_signing_key(keys.generate_signing_key(), signing_key)
    allocation = oa.allocate({"alice": 0.5, "bob": 0.3, "carol": 0.2}, 10**21 + 7)
    ledger_path = tmp_path / "ledger.sqlite"
    with Ledger(ledger_path, create=True, origin=ORIGIN) as led:
        led.append_allocation(allocation)
        led.checkpoint(signing_key)
    allocation_path = allocation.save(tmp_path / "allocation.json")
    addresses = tmp_path / "addresses.csv"
    addresses.write_text(
        "contributor,address\n"
        + "".join(f"{n},{Account.from_key(k).address}\n" for n, k in CLAIMANTS.items())
    )
    claims_path = tmp_path / "claims.json"
    assert main(["ledger", "export-evm", str(allocation_path), "--addresses", str(addresses),
                 "--out", str(claims_path)]) == 0  # fmt: skip
    deployment = tmp_path / "deployment.json"
    common = ["--rpc", ganache, "--key"]

    code, out, _ = run("chain", "deploy", *common, key_files["deployer"], "--chain-id", CHAIN_ID,
                       "--test-token", SUPPLY, "--ledger", ledger_path, "--out", deployment)  # fmt: skip
    assert code == 0 and "ClaimsDistributor" in out
    info = json.loads(deployment.read_text())
    assert info["chain_id"] == CHAIN_ID and info["origin"] == ORIGIN
    dep = ["--deployment", deployment]
    code, out, _ = run("chain", "publish", *common, key_files["deployer"], *dep,
                       "--claims", claims_path, "--epoch", 1, "--claim-days", 30)  # fmt: skip
    assert code == 0, out
    node = chain.connect(ganache, chain_id=CHAIN_ID)  # read-only
    assert node.token_balance(info["token"], info["distributor"]) == allocation.pool
    for name in CLAIMANTS:
        code, out, _ = run("chain", "claim", *common, key_files[name], *dep,
                           "--claims", claims_path, "--epoch", 1, "--contributor", name)  # fmt: skip
        assert code == 0 and f"{name} claimed {allocation.amounts[name]}" in out
        address = Account.from_key(CLAIMANTS[name]).address
        assert node.token_balance(info["token"], address) == allocation.amounts[name]
    assert node.token_balance(info["token"], info["distributor"]) == 0

    code, _, err = run("chain", "claim", *common, key_files["alice"], *dep,
                       "--claims", claims_path, "--epoch", 1, "--contributor", "alice")  # fmt: skip
    assert code == 1 and "reverted: AlreadyClaimed(epoch=1" in err
    code, _, err = run("chain", "claim", *common, key_files["bob"], *dep,
                       "--claims", claims_path, "--epoch", 1, "--contributor", "alice")  # fmt: skip
    assert code == 1 and "NotClaimant" in err

    public = f"{signing_key}.pub"
    code, out, _ = run("chain", "anchor", *common, key_files["deployer"], *dep,
                       "--ledger", ledger_path, "--public-key", public)  # fmt: skip
    assert code == 0 and "size 1" in out
    with Ledger(ledger_path) as led:
        for i in range(4):
            led.append_run(oa.Attribution([1.0, 2.0], names=["a", "b"], method="m", seed=i))
        head = led.checkpoint(signing_key)
    code, out, _ = run("chain", "anchor", *common, key_files["deployer"], *dep,
                       "--ledger", ledger_path, "--public-key", public)  # fmt: skip
    assert code == 0 and head.root.hex() in out
    anchored = chain.anchored_checkpoints(node, info["anchor"])
    assert [(a.size, a.root) for a in anchored][-1] == (head.size, head.root)
    code, out, _ = run("chain", "verify", "--rpc", ganache, *dep, "--ledger", ledger_path,
                       "--claims", claims_path, "--epoch", 1)  # fmt: skip
    assert code == 0 and "5 of 5 entries verify" in out and "matches" in out

    # a ledger with the same origin but another history cannot be anchored, even when the
    # key holder signs it with a fresh signer state (the honest state refuses to sign it)
    forged = tmp_path / "forged.sqlite"
    with Ledger(forged, create=True, origin=ORIGIN) as led:
        for i in range(8):
            led.append_run(oa.Attribution([3.0, 1.0], names=["a", "b"], method="x", seed=i))
        with pytest.raises(LedgerError, match="not a consistent extension"):
            led.checkpoint(signing_key)
        led.checkpoint(signing_key, state=tmp_path / "forger.state")
    code, _, err = run("chain", "anchor", *common, key_files["deployer"], *dep,
                       "--ledger", forged)  # fmt: skip
    assert code == 1 and "history was rewritten" in err
    code, out, _ = run("chain", "verify", "--rpc", ganache, *dep, "--ledger", forged)
    assert code == 1 and "0 of 5 entries verify" in out


def test_errors_are_one_line(ganache, run, tmp_path):
    deployer = tmp_path / "deployer.key"
    deployer.write_text(DEPLOYER)
    poor = tmp_path / "poor.key"
    poor.write_text("0x" + keccak(text="never funded").hex())
    out_file = tmp_path / "deployment.json"
    base = ["chain", "deploy", "--rpc", ganache, "--test-token", 10, "--origin", ORIGIN]

    code, _, err = run(*base, "--key", deployer, "--chain-id", 1, "--out", out_file)
    assert code == 1 and f"chain id {CHAIN_ID}, expected 1" in err
    code, _, err = run(*base, "--key", poor, "--out", out_file)
    assert code == 1 and "has no ether" in err
    code, _, err = run(
        "chain", "deploy", "--rpc", f"http://127.0.0.1:{free_port()}", "--key", deployer,
        "--test-token", 10, "--origin", ORIGIN, "--out", out_file,
    )  # fmt: skip
    assert code == 1 and "cannot reach a JSON-RPC node" in err
    bad_key = tmp_path / "bad.key"
    bad_key.write_text(DEPLOYER[:-2])
    code, _, err = run(*base, "--key", bad_key, "--out", out_file)
    assert code == 1 and "64 hex digits" in err
    assert not out_file.exists()  # nothing written by failed deployments
    code, _, _ = run(*base, "--key", deployer, "--out", out_file)
    assert code == 0
    info = json.loads(out_file.read_text())
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps({**info, "chain_id": 5}))
    code, _, err = run("chain", "publish", "--rpc", ganache, "--key", deployer, "--deployment",
                       moved, "--claims", out_file, "--epoch", 1, "--deadline", 2**40)  # fmt: skip
    assert code == 1 and "wrong chain" in err
