"""EVM export: identical to the real @openzeppelin/merkle-tree package (run under node).

Oracles: OpenZeppelin's published standard-v1 dumps (tests/data/openzeppelin_standard_v1_dumps.json,
sources named in the file) and the npm package itself, pinned in tests/node/package.json with
its package-lock.json (``npm ci --prefix tests/node``; the fixture runs it when needed).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from openattrib.cli.ledger import add_ledger_parser
from openattrib.errors import UnsupportedError, ValidationError, VerificationError
from openattrib.ledger import evm
from openattrib.rewards import Allocation

NODE_DIR = Path(__file__).parent / "node"
DUMPS = json.loads(
    (Path(__file__).parent / "data" / "openzeppelin_standard_v1_dumps.json").read_text()
)
OZ_VERSION = json.loads((NODE_DIR / "package.json").read_text())["dependencies"][
    "@openzeppelin/merkle-tree"
]


@pytest.fixture(scope="module")
def oz(node_packages):
    """Run jobs through tests/node/oz_tree.js (the real npm package)."""
    node = shutil.which("node")
    installed = NODE_DIR / "node_modules" / "@openzeppelin" / "merkle-tree" / "package.json"
    assert json.loads(installed.read_text())["version"] == OZ_VERSION

    def run(jobs: list[dict]) -> list[dict]:
        result = subprocess.run(
            [node, str(NODE_DIR / "oz_tree.js")],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=NODE_DIR,
        )
        assert result.returncode == 0, result.stderr
        answers = json.loads(result.stdout)
        for answer in answers:
            assert "error" not in answer, answer
        return answers

    return run


class Alloc:
    def __init__(self, amounts: dict[str, int]) -> None:
        self.amounts, self.pool, self.policy = amounts, sum(amounts.values()), "proportional"

    def result_hash(self) -> str:
        return "ab" * 32


def random_allocation(n: int, seed: int) -> tuple[Alloc, dict[str, str]]:
    rng = random.Random(seed)
    amounts = {
        f"contributor-{i:04d}": rng.choice([1, 10**18, rng.randrange(1, 10**27)]) for i in range(n)
    }
    addresses = {name: to_checksum_address(rng.randbytes(20)) for name in amounts}
    return Alloc(amounts), addresses


# --------------------------------------------------------------- published OZ fixtures
@pytest.mark.parametrize("case", DUMPS["cases"], ids=lambda c: c["name"])
def test_published_dumps_are_reproduced(case):
    dump = case["dump"]
    values = [v["value"] for v in dump["values"]]
    ours = evm.standard_merkle_tree(values, dump["leafEncoding"], sort_leaves=case["sort_leaves"])
    assert ours["tree"] == dump["tree"]
    assert [v["treeIndex"] for v in ours["values"]] == [v["treeIndex"] for v in dump["values"]]
    evm.validate_dump(dump)
    for i, value in enumerate(values):
        assert evm.verify_proof(
            dump["tree"][0], dump["leafEncoding"], value, evm.get_proof(dump, i)
        )


# ---------------------------------------------------------------- the npm package itself
@pytest.mark.parametrize("n", [1, 2, 3, 300])
def test_export_allocation_equals_openzeppelin(oz, n):
    alloc, addresses = random_allocation(n, seed=n)
    claims = evm.export_allocation(alloc, addresses)
    dump = claims["tree"]
    values = [v["value"] for v in dump["values"]]
    built, loaded = oz(
        [
            {"op": "build", "values": values, "leafEncoding": ["address", "uint256"]},
            {"op": "load", "dump": dump},
        ]
    )
    assert built["dump"] == dump  # format, leafEncoding, the exact tree array and treeIndex
    assert built["root"] == loaded["root"] == claims["root"] == dump["tree"][0]
    assert loaded["proofs"] == built["proofs"]
    assert [claims["claims"][name]["proof"] for name in sorted(alloc.amounts)] == built["proofs"]
    for name, claim in claims["claims"].items():
        assert values[claim["index"]] == [addresses[name], str(alloc.amounts[name])]
    name = sorted(alloc.amounts)[0]
    claim = claims["claims"][name]
    checks = [
        {"op": "verify", "root": claims["root"], "leafEncoding": ["address", "uint256"],
         "value": [claim["address"], claim["amount"]], "proof": claim["proof"]},
        {"op": "verify", "root": claims["root"], "leafEncoding": ["address", "uint256"],
         "value": [claim["address"], str(int(claim["amount"]) + 1)], "proof": claim["proof"]},
    ]  # fmt: skip
    assert [a["valid"] for a in oz(checks)] == [True, False]
    assert not evm.verify_proof(
        claims["root"], ["address", "uint256"], checks[1]["value"], claim["proof"]
    )


GENERIC = [
    (["string"], [["a"], ["b"], ["c"], ["d"], ["e"], ["f"]]),
    (["string"], [["same"], ["same"], ["other"], ["same"]]),  # equal leaves: stable sort
    (["uint256", "string[]"], [["1", ["x", "y"]], ["2", []], [str(2**256 - 1), [""]]]),
    (
        ["bytes32", "bool", "int256"],
        [["0x" + "11" * 32, True, "-5"], ["0x" + "22" * 32, False, "7"]],
    ),
    (["bytes", "uint64"], [["0x", "0"], ["0xdeadbeef", "18446744073709551615"], ["0x00", "1"]]),
    (["address[]", "uint8"], [[["0x" + "33" * 20, "0x" + "44" * 20], "255"], [[], "0"]]),
]


@pytest.mark.parametrize("sort_leaves", [True, False])
@pytest.mark.parametrize("encoding,values", GENERIC, ids=lambda x: str(x)[:30])
def test_generic_leaf_encodings_equal_openzeppelin(oz, encoding, values, sort_leaves):
    ours = evm.standard_merkle_tree(values, encoding, sort_leaves=sort_leaves)
    (built,) = oz(
        [{"op": "build", "values": values, "leafEncoding": encoding, "sortLeaves": sort_leaves}]
    )
    assert built["dump"] == ours
    assert built["proofs"] == [evm.get_proof(ours, i) for i in range(len(values))]


def test_export_evm_command_writes_claims_openzeppelin_loads(oz, tmp_path, capsys):
    amounts = {"alice": 5 * 10**20, "bob": 3 * 10**20, "carol": 2 * 10**20, "dave": 0}
    Allocation.from_amounts(amounts).save(tmp_path / "alloc.json")
    rng = random.Random(3)
    rows = ["contributor,address"] + [
        f"{n},{to_checksum_address(rng.randbytes(20))}" for n in amounts
    ]
    (tmp_path / "addresses.csv").write_text("\n".join(rows) + "\n")
    parser = argparse.ArgumentParser()
    add_ledger_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["ledger", "export-evm", str(tmp_path / "alloc.json"), "--addresses",
         str(tmp_path / "addresses.csv"), "--out", str(tmp_path / "claims.json")]
    )  # fmt: skip
    assert args.handler(args) == 0
    assert "3 claims" in capsys.readouterr().out
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert sorted(claims["claims"]) == ["alice", "bob", "carol"]  # zero amounts left out
    assert claims["total"] == str(10**21) == claims["pool"]
    (loaded,) = oz([{"op": "load", "dump": claims["tree"]}])
    assert loaded["root"] == claims["root"]
    for claim in claims["claims"].values():
        assert loaded["proofs"][claim["index"]] == claim["proof"]


# -------------------------------------------------------------------- errors, tampering
def test_tampered_dumps_and_proofs_are_rejected():
    dump = evm.standard_merkle_tree([["a"], ["b"], ["c"]], ["string"])
    proof = evm.get_proof(dump, 0)
    assert not evm.verify_proof(dump["tree"][0], ["string"], ["b"], proof)
    assert not evm.verify_proof(dump["tree"][0], ["string"], ["a"], proof[:-1])
    flipped = [("0x0" if p[2] != "0" else "0x1") + p[3:] for p in proof]
    assert not evm.verify_proof(dump["tree"][0], ["string"], ["a"], flipped)
    bad_value = json.loads(json.dumps(dump))
    bad_value["values"][1]["value"] = ["x"]
    with pytest.raises(VerificationError, match="does not contain"):
        evm.get_proof(bad_value, 1)
    bad_node = json.loads(json.dumps(dump))
    bad_node["tree"][1] = "0x" + "00" * 32
    with pytest.raises(VerificationError, match="not the hash of its children"):
        evm.validate_dump(bad_node)
    with pytest.raises(VerificationError, match="standard-v1"):
        evm.get_proof({"format": "simple-v1"}, 0)
    with pytest.raises(VerificationError, match="32-byte"):
        evm.verify_proof("0x1234", ["string"], ["a"], proof)
    with pytest.raises(ValidationError, match="outside"):
        evm.get_proof(dump, 3)


def test_export_errors_name_the_contributor():
    alloc = Alloc({"alice": 10, "bob": 20})
    good = {"alice": "0x" + "11" * 20, "bob": "0x" + "22" * 20}
    with pytest.raises(ValidationError, match="no address for contributor 'bob'"):
        evm.export_allocation(alloc, {"alice": good["alice"]})
    with pytest.raises(ValidationError, match="both map to"):
        evm.export_allocation(alloc, {"alice": good["alice"], "bob": good["alice"]})
    with pytest.raises(ValidationError, match="40 hex digits"):
        evm.export_allocation(alloc, {**good, "bob": "0x1234"})
    eip55 = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # the EIP-55 example address
    assert evm.export_allocation(alloc, {**good, "bob": eip55})["claims"]["bob"]["address"] == eip55
    with pytest.raises(ValidationError, match="EIP-55"):
        evm.export_allocation(alloc, {**good, "bob": eip55[:-1] + "D"})
    lower = evm.export_allocation(alloc, {**good, "bob": eip55.lower()})
    assert lower["claims"]["bob"]["address"] == eip55  # written in checksummed form
    with pytest.raises(ValidationError, match="zero address"):
        evm.export_allocation(alloc, {**good, "bob": "0x" + "00" * 20})
    with pytest.raises(ValidationError, match="must be an int"):
        evm.export_allocation(Alloc({"alice": 1.5}), good)
    with pytest.raises(ValidationError, match="positive amount"):
        evm.export_allocation(Alloc({"alice": 0}), good)
    with pytest.raises(UnsupportedError, match="amounts, pool and policy"):
        evm.export_allocation(object(), good)
    with pytest.raises(ValidationError, match="not a valid ABI type"):
        evm.standard_merkle_tree([["a"]], ["strung"])
    with pytest.raises(ValidationError, match="not an integer"):
        evm.standard_merkle_tree([["ten"]], ["uint256"])
    with pytest.raises(ValidationError, match="cannot be ABI-encoded"):
        evm.standard_merkle_tree([[str(2**256)]], ["uint256"])
    claims = evm.export_allocation(Alloc({"alice": 10, "bob": 0}), good, include_zero=True)
    assert sorted(claims["claims"]) == ["alice", "bob"]
