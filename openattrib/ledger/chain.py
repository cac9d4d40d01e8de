"""From ledger to chain: pay claims and anchor checkpoints with real contracts, over web3.py.

Three contracts, compiled from ``contracts/*.sol`` (OpenZeppelin Contracts, pinned ``solc``)
into the ABI and bytecode artifacts shipped in ``openattrib/ledger/artifacts``:

- ``ClaimsDistributor``: one Merkle root per epoch, the root of the OpenZeppelin
  ``StandardMerkleTree`` that :func:`openattrib.ledger.evm.export_allocation` builds; each
  claimant calls ``claim(epoch, account, amount, proof)`` once; the owner may sweep an epoch's
  unclaimed remainder only after its deadline;
- ``CheckpointAnchor``: the (origin, size, root) of a ledger's signed checkpoints, accepting
  only a checkpoint whose RFC 6962 consistency proof links it to the last one (checked here,
  off chain, before sending, and again by the contract);
- ``TestToken``: an OpenZeppelin ERC-20 for tests and demos.

:class:`Chain` is a web3 connection plus one local signing account; transactions are signed
locally (the key never leaves the process and is never printed). A revert, a wrong chain id
or an account that cannot pay for gas raises :class:`ChainError` with one clear line.
web3.py is imported by this module and :mod:`._chain_client` only, loaded on first use of
``openattrib.ledger.chain``.

Examples
--------
>>> from openattrib.ledger import chain
>>> node = chain.local_chain(n_accounts=2)          # an in-process EVM (eth-tester, py-evm)
>>> token = chain.deploy_token(node, 10**21)
>>> node.token_balance(token, node.address) == 10**21
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from ..errors import ValidationError, VerificationError
from . import evm
from ._chain_client import (
    CLAIM_GAS,
    CONTRACTS,
    Chain,
    ChainError,
    connect,
    load_artifact,
    local_chain,
    read_private_key,
)
from .checkpoint import Checkpoint
from .proofs import InclusionProof

__all__ = [
    "AnchoredCheckpoint",
    "CONTRACTS",
    "Chain",
    "ChainError",
    "connect",
    "local_chain",
    "read_private_key",
    "load_artifact",
    "deploy_token",
    "deploy_distributor",
    "deploy_anchor",
    "fund",
    "publish",
    "claim",
    "claim_all",
    "anchor_checkpoint",
    "anchored_checkpoints",
    "verify_against_chain",
]


# ----------------------------------------------------------------------------- deploy
def _deploy(chain: Chain, name: str, *args: Any) -> str:
    artifact = load_artifact(name)
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = chain.transact(factory.constructor(*args), f"deploying {name}")
    return receipt["contractAddress"]


def deploy_token(chain: Chain, supply: int, *, name: str = "openattrib test token") -> str:
    """Deploy the ERC-20 ``TestToken`` minting ``supply`` base units to the signer."""
    return _deploy(chain, "TestToken", name, "OAT", int(supply), chain.address)


def deploy_distributor(chain: Chain, token: str) -> str:
    """Deploy a ``ClaimsDistributor`` paying in ERC-20 ``token``, owned by the signer."""
    return _deploy(chain, "ClaimsDistributor", to_checksum_address(token), chain.address)


def deploy_anchor(chain: Chain, origin: str) -> str:
    """Deploy a ``CheckpointAnchor`` for the ledger named ``origin``, owned by the signer."""
    Checkpoint(origin, 0, bytes(32))  # validates the origin line
    return _deploy(chain, "CheckpointAnchor", origin, chain.address)


# ------------------------------------------------------------------------------ claims
def _check_claims(claims: Mapping[str, Any]) -> tuple[str, int]:
    if not isinstance(claims, Mapping) or claims.get("format") != evm.CLAIMS_FORMAT:
        raise ValidationError(
            f"claims must be the {evm.CLAIMS_FORMAT} object written by export_allocation "
            "(`openattrib ledger export-evm`)"
        )
    evm.validate_dump(claims["tree"])
    if claims["tree"]["tree"][0] != claims["root"]:
        raise VerificationError("the claims file's root is not the root of its tree")
    total = sum(int(c["amount"]) for c in claims["claims"].values())
    if total != int(claims["total"]):
        raise VerificationError(
            f"the claims add up to {total} but the file states a total of {claims['total']}"
        )
    return claims["root"], total


def fund(chain: Chain, token: str, distributor: str, amount: int) -> Any:
    """Transfer ``amount`` base units of ``token`` from the signer to the distributor."""
    held = chain.token_balance(token, chain.address)
    if held < amount:
        raise ChainError(
            f"funding: account {chain.address} holds {held} base units of token {token} but "
            f"{amount} are needed"
        )
    call = chain.contract("TestToken", token).functions.transfer(
        to_checksum_address(distributor), int(amount)
    )
    return chain.transact(call, f"funding distributor {distributor}")


def publish(
    chain: Chain, distributor: str, claims: Mapping[str, Any], *, epoch: int, deadline: int
) -> Any:
    """Publish the root and total of ``claims`` as ``epoch``, claimable until ``deadline``.

    ``deadline`` is a unix timestamp. The distributor must already hold the total (see
    :func:`fund`) beyond what earlier epochs reserved.
    """
    root, total = _check_claims(claims)
    call = chain.contract("ClaimsDistributor", distributor).functions.publish(
        int(epoch), bytes.fromhex(root[2:]), total, int(deadline)
    )
    return chain.transact(call, f"publishing epoch {epoch}")


def claim(
    chain: Chain, distributor: str, claims: Mapping[str, Any], contributor: str, *, epoch: int
) -> Any:
    """Claim ``contributor``'s amount of ``epoch`` (the signer must be its address)."""
    _check_claims(claims)
    entry = claims["claims"].get(contributor)
    if entry is None:
        raise ValidationError(f"contributor {contributor!r} has no claim in this claims file")
    call = chain.contract("ClaimsDistributor", distributor).functions.claim(
        int(epoch),
        to_checksum_address(entry["address"]),
        int(entry["amount"]),
        [bytes.fromhex(h[2:]) for h in entry["proof"]],
    )
    return chain.transact(call, f"claim of {contributor} in epoch {epoch}")


def claim_all(
    chain: Chain,
    distributor: str,
    claims: Mapping[str, Any],
    keys: Mapping[str, Any],
    *,
    epoch: int,
) -> dict[str, Any]:
    """Every contributor in ``keys`` (name -> private key) claims its amount of ``epoch``.

    Returns name -> receipt. A claim that reverts raises :class:`ChainError` naming it
    (on the in-process EVM without the reason: claims are not pre-run as ``eth_call`` here,
    py-evm being slow).
    """
    _check_claims(claims)
    contract = chain.contract("ClaimsDistributor", distributor)
    items = []
    for name, key in keys.items():
        entry = claims["claims"].get(name)
        if entry is None:
            raise ValidationError(f"contributor {name!r} has no claim in this claims file")
        call = contract.functions.claim(
            int(epoch),
            to_checksum_address(entry["address"]),
            int(entry["amount"]),
            [bytes.fromhex(h[2:]) for h in entry["proof"]],
        )
        items.append((chain.with_key(key), call, f"claim of {name} in epoch {epoch}"))
    gas = CLAIM_GAS if chain.gas_limit is not None else None
    return {
        name: signer.transact(call, what, precheck=False, gas=gas)
        for name, (signer, call, what) in zip(keys, items, strict=True)
    }


# ------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class AnchoredCheckpoint:
    """A checkpoint as stored on chain."""

    origin: str
    size: int
    root: bytes
    consistency_proof_hash: bytes
    note_hash: bytes


def anchored_checkpoints(chain: Chain, anchor: str) -> list[AnchoredCheckpoint]:
    """Every checkpoint anchored so far, oldest first."""
    contract = chain.contract("CheckpointAnchor", anchor)
    origin = contract.functions.origin().call()
    out = []
    for i in range(contract.functions.count().call()):
        size, root, proof_hash, note_hash = contract.functions.checkpointAt(i).call()
        out.append(AnchoredCheckpoint(origin, int(size), root, proof_hash, note_hash))
    return out


def anchor_checkpoint(
    chain: Chain, anchor: str, checkpoint: Checkpoint, ledger: Any, *, public_key: Any = None
) -> Any:
    """Anchor a signed ``checkpoint`` of ``ledger`` on chain.

    The ledger's consistency proof from the last anchored checkpoint is checked here first
    (a log that rewrote its history is refused before anything is sent) and then sent to the
    contract, which checks it again and records its hash. With ``public_key`` the
    checkpoint's signature is verified too.
    """
    from .checkpoint import verify_checkpoint

    if public_key is not None:
        checkpoint = verify_checkpoint(checkpoint.text, public_key)
    if checkpoint.origin != ledger.origin:
        raise ValidationError(
            f"checkpoint origin {checkpoint.origin!r} is not the ledger's {ledger.origin!r}"
        )
    previous = anchored_checkpoints(chain, anchor)
    old_size = previous[-1].size if previous else 0
    old_root = previous[-1].root if previous else None
    if checkpoint.size <= old_size and previous:
        raise ChainError(
            f"anchoring: the chain already holds a checkpoint of size {old_size}; "
            f"size {checkpoint.size} is not an extension"
        )
    ledger.check_checkpoint(checkpoint)
    proof = ledger.consistency_proof(old_size, checkpoint.size) if previous else None
    path = list(proof.path) if proof is not None else []
    if proof is not None and not proof.verify(old_root, checkpoint.root):
        raise VerificationError(
            f"refusing to anchor: the ledger at size {checkpoint.size} does not extend the "
            f"checkpoint anchored at size {old_size} (its history was rewritten)"
        )
    call = chain.contract("CheckpointAnchor", anchor).functions.anchor(
        checkpoint.origin,
        checkpoint.size,
        checkpoint.root,
        path,
        keccak(text=checkpoint.text),
    )
    return chain.transact(call, f"anchoring checkpoint of size {checkpoint.size}")


def verify_against_chain(
    chain: Chain, anchor: str, proof: InclusionProof, data: bytes | None = None
) -> bool:
    """True when ``proof`` leads to the root anchored on chain for the proof's tree size.

    ``proof`` is an inclusion proof at the size of an anchored checkpoint
    (``ledger.inclusion_proof(index, size=anchored.size)``); with ``data`` (the entry's bytes)
    the leaf hash is recomputed too. Raises :class:`VerificationError` when no checkpoint of
    that size is anchored.
    """
    from .checkpoint import Checkpoint as _Checkpoint
    from .proofs import verify_inclusion

    matching = [a for a in anchored_checkpoints(chain, anchor) if a.size == proof.size]
    if not matching:
        raise VerificationError(
            f"no checkpoint of size {proof.size} is anchored at {anchor}; prove the entry "
            "at the size of an anchored checkpoint"
        )
    anchored = matching[-1]
    return verify_inclusion(proof, _Checkpoint(anchored.origin, anchored.size, anchored.root), data)
