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
web3.py is imported here only, and this module only on first use of ``openattrib.ledger.chain``.

Examples
--------
>>> from openattrib.ledger import chain
>>> node = chain.local_chain(n_accounts=2)          # an in-process EVM (eth-tester, py-evm)
>>> token = chain.deploy_token(node, 10**21)
>>> node.token_balance(token, node.address) == 10**21
True
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception

from ..errors import OpenAttribError, ValidationError, VerificationError
from . import evm
from .checkpoint import Checkpoint
from .proofs import InclusionProof

__all__ = [
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

logger = logging.getLogger("openattrib")
CONTRACTS = ("ClaimsDistributor", "CheckpointAnchor", "TestToken")
_LOCAL_GAS_LIMIT = 5_000_000
_CLAIM_GAS = 400_000  # a claim with a 20-hash proof uses < 150,000
_HEX_KEY = re.compile(r"^0x[0-9a-fA-F]{64}$")


class ChainError(OpenAttribError):
    """A chain refused or could not run a request (revert, wrong chain, no funds, no node)."""


# ------------------------------------------------------------------------- artifacts
@cache
def _artifact(name: str) -> str:
    if name not in CONTRACTS:
        raise ValidationError(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}")
    return resources.files(__package__).joinpath("artifacts", f"{name}.json").read_text("utf-8")


def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact of contract ``name``: ``abi``, ``bytecode``, compiler settings."""
    return json.loads(_artifact(name))


@cache
def _error_selectors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    out = {}
    for name in CONTRACTS:
        for item in load_artifact(name)["abi"]:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                signature = f"{item['name']}({','.join(types)})"
                out[keccak(text=signature)[:4]] = (
                    item["name"],
                    [i["name"] for i in item["inputs"]],
                    types,
                )
    return out


def _revert_hex(data: Any) -> Any:
    """The ``0x...`` revert data inside a node's error payload (ganache: ``result``)."""
    if isinstance(data, Mapping):
        return data.get("data") or data.get("result")
    return data


def _show(abi_type: str, value: Any) -> str:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def _known_error(data: Any) -> bool:
    data = _revert_hex(data)
    return (
        isinstance(data, str)
        and data.startswith("0x")
        and len(data) >= 10
        and bytes.fromhex(data[2:10]) in _error_selectors()
    )


def _describe_revert(data: Any) -> str:
    """Decode a custom error ``0x<selector><args>`` into ``Name(arg=value, ...)``."""
    data = _revert_hex(data)
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return str(data)
    raw = bytes.fromhex(data[2:])
    known = _error_selectors().get(raw[:4])
    if known is None:
        return data
    name, fields, types = known
    try:
        values = abi_decode(types, raw[4:])
    except Exception:  # noqa: BLE001 - undecodable arguments: report the name alone
        return name
    shown = [f"{f}={_show(t, v)}" for f, t, v in zip(fields, types, values, strict=True)]
    return f"{name}({', '.join(shown)})"


# ----------------------------------------------------------------------------- chain
def read_private_key(path: str | os.PathLike) -> str:
    """Read a secp256k1 private key (64 hex digits, optional 0x) from a file.

    The key's value never appears in an error message.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ValidationError(f"key file not found: {path}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"key file {path} is not text; expected 64 hex digits") from None
    body = text[2:] if text.lower().startswith("0x") else text
    if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise ValidationError(
            f"key file {path} must hold one private key: 64 hex digits, optionally after 0x"
        )
    return "0x" + body.lower()


@dataclass
class Chain:
    """A web3 connection and the local account that signs its transactions.

    Build one with :func:`connect` (JSON-RPC) or :func:`local_chain` (in-process EVM).
    """

    w3: Web3
    account: Any  # eth_account LocalAccount; its key is never printed
    chain_id: int
    #: fixed gas limit per transaction; ``None`` asks the node to estimate (JSON-RPC default).
    #: The in-process EVM uses a fixed limit: py-evm's estimate re-runs a call ~15 times.
    gas_limit: int | None = None
    #: ``(what, receipt)`` of every transaction sent through this connection (shared with
    #: :meth:`with_key` copies), e.g. to report gas
    history: list = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return f"Chain(chain_id={self.chain_id}, account={self.address})"

    @property
    def address(self) -> str:
        """The signing account's checksum address (``None`` on a read-only connection)."""
        return self.account.address if self.account is not None else None

    def with_key(self, key: Any) -> Chain:
        """The same connection, signing with another private key."""
        other = Chain(self.w3, Account.from_key(key), self.chain_id, self.gas_limit, self.history)
        if hasattr(self, "tester"):
            other.tester = self.tester  # type: ignore[attr-defined]
        return other

    def contract(self, name: str, address: str) -> Any:
        """The web3 contract object of ``name`` at ``address``."""
        return self.w3.eth.contract(
            address=to_checksum_address(address), abi=load_artifact(name)["abi"]
        )

    def token_balance(self, token: str, holder: str) -> int:
        """ERC-20 balance of ``holder``."""
        return int(
            self.contract("TestToken", token)
            .functions.balanceOf(to_checksum_address(holder))
            .call()
        )

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn web3 / eth-tester failures into one-line :class:`ChainError` s."""
        try:
            yield
        except ContractCustomError as exc:
            raise ChainError(f"{what} reverted: {_describe_revert(exc.data)}") from None
        except ContractLogicError as exc:
            reason = _describe_revert(exc.data) if _known_error(exc.data) else exc.message
            raise ChainError(f"{what} reverted: {reason or _describe_revert(exc.data)}") from None
        except Web3Exception as exc:
            raise ChainError(f"{what} failed on chain {self.chain_id}: {_one_line(exc)}") from None
        except OpenAttribError:
            raise
        except Exception as exc:
            data = _revert_data(exc)
            if data is None:
                raise
            raise ChainError(f"{what} reverted: {_describe_revert(data)}") from None

    def _signed(
        self, call: Any, what: str, *, precheck: bool = True, gas: int | None = None
    ) -> bytes:
        if self.account is None:
            raise ChainError(f"{what}: this connection has no signing key; pass one (--key FILE)")
        sender = self.address
        balance = self.w3.eth.get_balance(sender)
        if balance == 0:
            raise ChainError(
                f"{what}: account {sender} has no ether on chain {self.chain_id} to pay for "
                "gas; fund it first"
            )
        fields = {
            "from": sender,
            "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
            "chainId": self.chain_id,
        }
        if gas is not None or self.gas_limit is not None:
            fields["gas"] = gas or self.gas_limit
            if precheck and hasattr(call, "call"):  # surface a revert and its reason first
                call.call({"from": sender}, block_identifier="pending")
        tx = call.build_transaction(fields)
        fee = tx["gas"] * int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
        if balance < fee:
            raise ChainError(
                f"{what}: account {sender} holds {balance} wei on chain {self.chain_id} but "
                f"the transaction may cost up to {fee} wei of gas; fund the account"
            )
        return self.account.sign_transaction(tx).raw_transaction

    def _receipt(self, tx_hash: Any, what: str) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise ChainError(
                f"{what} reverted in transaction 0x{bytes(receipt['transactionHash']).hex()}"
            )
        logger.debug("%s: gas %d, block %d", what, receipt["gasUsed"], receipt["blockNumber"])
        self.history.append((what, receipt))
        return receipt

    def transact(
        self, call: Any, what: str, *, precheck: bool = True, gas: int | None = None
    ) -> Any:
        """Sign and send a contract call (or constructor) and wait for its receipt.

        Raises :class:`ChainError` (one line naming ``what``) when the call would revert, the
        account cannot pay for gas, or the mined transaction failed. With a fixed gas limit
        (``gas`` or :attr:`gas_limit`) the call is first run as ``eth_call`` to report the
        revert reason, unless ``precheck=False``.
        """
        with self._errors(what):
            raw = self._signed(call, what, precheck=precheck, gas=gas)
            return self._receipt(self.w3.eth.send_raw_transaction(raw), what)


def _revert_data(exc: BaseException) -> str | None:
    """The revert data of an in-process EVM failure (eth-tester's ``TransactionFailed``)."""
    seen = exc
    while seen is not None:
        if type(seen).__name__ == "TransactionFailed" and seen.args:
            arg = seen.args[0]
            if isinstance(arg, bytes):
                return "0x" + arg.hex()
            text = str(arg)
            if text.startswith("execution reverted: b"):
                try:
                    return "0x" + ast.literal_eval(text.removeprefix("execution reverted: ")).hex()
                except (ValueError, SyntaxError, AttributeError):
                    return text
            return text
        seen = seen.__cause__ or seen.__context__
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def connect(
    rpc: str, key: Any = None, *, chain_id: int | None = None, timeout: float = 30
) -> Chain:
    """Connect to a JSON-RPC node at ``rpc`` and sign with private ``key`` (hex or key file).

    Without ``key`` the connection is read-only (views and verification).
    With ``chain_id`` the node must report that chain id (guards against sending a
    transaction to the wrong network).
    """
    from web3 import HTTPProvider

    if isinstance(key, os.PathLike) or (isinstance(key, str) and not _HEX_KEY.match(key)):
        key = read_private_key(key)
    account = Account.from_key(key) if key is not None else None
    w3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
    try:
        actual = int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - requests/aiohttp/web3 errors alike
        raise ChainError(f"cannot reach a JSON-RPC node at {rpc}: {_one_line(exc)}") from None
    if chain_id is not None and actual != chain_id:
        raise ChainError(
            f"wrong chain: the node at {rpc} is chain id {actual}, expected {chain_id}; "
            "check --rpc (or the deployment file)"
        )
    return Chain(w3, account, actual)


def local_chain(n_accounts: int = 1, *, keys: Sequence[str] | None = None) -> Chain:
    """An in-process EVM (eth-tester on py-evm) whose genesis funds ``keys`` with ether.

    Without ``keys``, ``n_accounts`` deterministic test keys (``0x...01``, ``0x...02``, ...)
    are used. The returned :class:`Chain` signs with the first key; ``chain.keys`` lists all.
    """
    from eth_keys import keys as eth_keys
    from eth_tester import EthereumTester, PyEVMBackend
    from eth_tester.backends.pyevm.main import generate_genesis_state_for_keys
    from web3 import EthereumTesterProvider

    if keys is None:
        if isinstance(n_accounts, bool) or not isinstance(n_accounts, int) or n_accounts < 1:
            raise ValidationError(f"n_accounts must be a positive int, got {n_accounts!r}")
        keys = [f"0x{i:064x}" for i in range(1, n_accounts + 1)]
    keys = list(keys)
    if not keys:
        raise ValidationError("local_chain needs at least one key")
    state = dict(
        generate_genesis_state_for_keys(
            [eth_keys.PrivateKey(Account.from_key(k).key) for k in keys]
        )
    )
    tester = EthereumTester(PyEVMBackend(genesis_state=state))
    w3 = Web3(EthereumTesterProvider(tester))
    node = Chain(w3, Account.from_key(keys[0]), int(w3.eth.chain_id), gas_limit=_LOCAL_GAS_LIMIT)
    w3.eth.default_account = node.address  # view calls run from a funded account
    node.keys = keys  # type: ignore[attr-defined]
    node.tester = tester  # type: ignore[attr-defined]
    return node


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
    gas = _CLAIM_GAS if chain.gas_limit is not None else None
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
    if checkpoint.size > ledger.size:
        raise ValidationError(
            f"checkpoint size {checkpoint.size} exceeds the ledger's {ledger.size} entries"
        )
    if ledger.root(checkpoint.size) != checkpoint.root:
        raise VerificationError(
            f"the ledger's root at size {checkpoint.size} is not the checkpoint's root"
        )
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
