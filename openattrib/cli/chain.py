"""``openattrib chain``: deploy the claim and anchor contracts, publish, claim, anchor, verify.

Every action talks to a JSON-RPC node (``--rpc URL``) and signs locally with the private key
in ``--key FILE`` (64 hex digits; never printed). ``deploy`` writes a deployment file (chain
id and contract addresses) that the other actions read; they refuse a node whose chain id
differs from it. web3 is imported only when a chain action runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, read_json
from ..errors import UnsupportedError, ValidationError
from ._groups import command_group

__all__ = ["add_chain_parser"]

DEPLOYMENT_FORMAT = "openattrib.chain-deployment/1"


def add_chain_parser(commands: Any) -> None:
    """Add the ``chain`` command and its actions to an argparse sub-parsers object."""
    sub = command_group(
        commands,
        "chain",
        summary="pay claims and anchor ledger checkpoints on an EVM chain (JSON-RPC)",
        description="Deploy the ClaimsDistributor and CheckpointAnchor contracts, publish an "
        "allocation's Merkle root, claim, anchor signed ledger checkpoints and verify ledger "
        "entries against the root anchored on chain.",
    )

    def action(name: str, help_text: str, *, key_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--rpc", required=True, help="JSON-RPC URL of the node")
        p.add_argument(
            "--key",
            type=Path,
            required=key_required,
            help="file holding the signing account's private key (64 hex digits)",
        )
        return p

    p = action("deploy", "deploy the distributor and the checkpoint anchor")
    p.add_argument("--chain-id", type=int, help="refuse a node on another chain")
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="address of the ERC-20 the distributor pays in")
    token.add_argument(
        "--test-token",
        type=int,
        metavar="SUPPLY",
        help="deploy the TestToken ERC-20 minting SUPPLY base units to the signer (test networks)",
    )
    origin = p.add_mutually_exclusive_group(required=True)
    origin.add_argument("--ledger", type=Path, help="ledger whose checkpoints will be anchored")
    origin.add_argument("--origin", help="log origin of the checkpoints to anchor")
    p.add_argument("--out", type=Path, required=True, help="deployment JSON to write")
    p.set_defaults(handler=run_deploy)

    p = action("publish", "fund the distributor and publish an epoch's claims root")
    p.add_argument("--deployment", type=Path, required=True)
    p.add_argument("--claims", type=Path, required=True, help="claims JSON from export-evm")
    p.add_argument("--epoch", type=int, required=True)
    deadline = p.add_mutually_exclusive_group(required=True)
    deadline.add_argument("--deadline", type=int, help="unix time after which claims close")
    deadline.add_argument("--claim-days", type=float, help="claims close this many days from now")
    p.add_argument("--no-fund", action="store_true", help="the distributor already holds the total")
    p.set_defaults(handler=run_publish)

    p = action("claim", "claim one contributor's amount (signed by its own key)")
    p.add_argument("--deployment", type=Path, required=True)
    p.add_argument("--claims", type=Path, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--contributor", required=True, help="contributor name in the claims file")
    p.set_defaults(handler=run_claim)

    p = action("anchor", "anchor the ledger's latest signed checkpoint")
    p.add_argument("--deployment", type=Path, required=True)
    p.add_argument("--ledger", type=Path, required=True)
    p.add_argument(
        "--public-key", type=Path, help="the log's public key PEM (checks the signature)"
    )
    p.set_defaults(handler=run_anchor)

    p = action(
        "verify", "check ledger entries (and a claims root) against the chain", key_required=False
    )
    p.add_argument("--deployment", type=Path, required=True)
    p.add_argument("--ledger", type=Path, required=True)
    p.add_argument("--index", type=int, action="append", help="entry to check (default: all)")
    p.add_argument("--claims", type=Path, help="also check this claims root is published")
    p.add_argument("--epoch", type=int, help="the epoch of --claims")
    p.set_defaults(handler=run_verify)


# ------------------------------------------------------------------------- helpers
def _deployment(path: Path) -> dict[str, Any]:
    data = read_json(path, "deployment file")
    if not isinstance(data, dict) or data.get("format") != DEPLOYMENT_FORMAT:
        raise ValidationError(
            f"{path} is not a deployment file written by `openattrib chain deploy`"
        )
    return data


def chain_module(*, in_process: bool = False) -> Any:
    """``openattrib.ledger.chain``, or a clear error when web3 (or eth-tester) is missing."""
    needed = ("web3", "eth_account", *(("eth_tester", "eth") if in_process else ()))
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise UnsupportedError(
                f"on-chain actions need the {name} package, which is not installed; "
                "install them with: pip install 'openattrib[chain]'"
            )
    from ..ledger import chain

    return chain


def _connect(args: argparse.Namespace, chain_id: int | None) -> Any:
    chain = chain_module()
    key = chain.read_private_key(args.key) if args.key is not None else None
    return chain.connect(args.rpc, key, chain_id=chain_id)


def _session(args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """The chain module, the deployment file and a connection checked against its chain id."""
    chain = chain_module()
    deployment = _deployment(args.deployment)
    return chain, deployment, _connect(args, deployment["chain_id"])


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _claims(path: Path) -> dict[str, Any]:
    return read_json(path, "claims file")


# ------------------------------------------------------------------------- actions
def run_deploy(args: argparse.Namespace) -> int:
    from ..ledger import Ledger

    chain = chain_module()

    if args.out.exists():
        raise ValidationError(f"{args.out} exists; choose another --out (deployments are kept)")
    if args.ledger is not None:
        with Ledger(args.ledger) as led:
            origin = led.origin
    else:
        origin = args.origin
    node = _connect(args, args.chain_id)
    token = args.token
    if token is None:
        token = chain.deploy_token(node, args.test_token)
        _say(f"TestToken {token} minted {args.test_token} base units to {node.address}")
    distributor = chain.deploy_distributor(node, token)
    anchor = chain.deploy_anchor(node, origin)
    deployment = {
        "format": DEPLOYMENT_FORMAT,
        "chain_id": node.chain_id,
        "token": token,
        "distributor": distributor,
        "anchor": anchor,
        "origin": origin,
        "owner": node.address,
    }
    atomic_write_text(args.out, json.dumps(deployment, indent=2, sort_keys=True) + "\n")
    _say(f"ClaimsDistributor {distributor}, CheckpointAnchor {anchor} on chain {node.chain_id}")
    _say(f"deployment written to {args.out}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    chain, deployment, node = _session(args)
    claims = _claims(args.claims)
    if args.deadline is not None:
        deadline = args.deadline
    else:
        if not args.claim_days > 0:
            raise ValidationError(f"--claim-days must be positive, got {args.claim_days}")
        deadline = int(time.time() + args.claim_days * 86400)
    total = int(claims.get("total", 0)) if isinstance(claims, dict) else 0
    if not args.no_fund:
        chain.fund(node, deployment["token"], deployment["distributor"], total)
    receipt = chain.publish(
        node, deployment["distributor"], claims, epoch=args.epoch, deadline=deadline
    )
    _say(
        f"epoch {args.epoch} published: root {claims['root']}, total {total}, claims close at "
        f"unix time {deadline} (gas {receipt['gasUsed']})"
    )
    return 0


def run_claim(args: argparse.Namespace) -> int:
    chain, deployment, node = _session(args)
    claims = _claims(args.claims)
    receipt = chain.claim(
        node, deployment["distributor"], claims, args.contributor, epoch=args.epoch
    )
    entry = claims["claims"][args.contributor]
    _say(
        f"{args.contributor} claimed {entry['amount']} to {entry['address']} in epoch "
        f"{args.epoch} (gas {receipt['gasUsed']})"
    )
    return 0


def run_anchor(args: argparse.Namespace) -> int:
    from ..ledger import Ledger

    chain, deployment, node = _session(args)
    with Ledger(args.ledger) as led:
        signed = led.checkpoints()
        if not signed:
            raise ValidationError(
                f"{args.ledger} has no signed checkpoint; sign one with `openattrib ledger "
                "checkpoint` first"
            )
        checkpoint = signed[-1]
        receipt = chain.anchor_checkpoint(
            node, deployment["anchor"], checkpoint, led, public_key=args.public_key
        )
    _say(
        f"anchored checkpoint of {checkpoint.origin} at size {checkpoint.size}, root "
        f"{checkpoint.root.hex()} (gas {receipt['gasUsed']})"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..ledger import Ledger

    chain, deployment, node = _session(args)
    anchored = chain.anchored_checkpoints(node, deployment["anchor"])
    if not anchored:
        raise ValidationError(f"no checkpoint is anchored at {deployment['anchor']} yet")
    last = anchored[-1]
    failures = 0
    with Ledger(args.ledger) as led:
        if led.origin != last.origin:
            raise ValidationError(
                f"{args.ledger} is the log {led.origin!r}; the anchor holds {last.origin!r}"
            )
        indexes = args.index if args.index else list(range(last.size))
        for index in indexes:
            if not 0 <= index < last.size:
                raise ValidationError(
                    f"entry {index} is not covered by the anchored checkpoint (size {last.size})"
                )
            proof = led.inclusion_proof(index, size=last.size)
            ok = chain.verify_against_chain(
                node, deployment["anchor"], proof, led.entry(index).data
            )
            failures += not ok
            if not ok:
                _say(f"entry {index}: NOT in the tree anchored on chain")
    _say(
        f"{len(indexes) - failures} of {len(indexes)} entries verify against the root "
        f"{last.root.hex()} anchored on chain {node.chain_id} (size {last.size})"
    )
    if args.claims is not None:
        if args.epoch is None:
            raise ValidationError("--claims needs --epoch")
        claims = _claims(args.claims)
        contract = node.contract("ClaimsDistributor", deployment["distributor"])
        root = "0x" + contract.functions.epochs(args.epoch).call()[0].hex()
        same = root == claims.get("root")
        failures += not same
        _say(
            f"claims root of epoch {args.epoch} on chain {root}: {'matches' if same else 'DIFFERS'}"
        )
    return 0 if failures == 0 else 1
