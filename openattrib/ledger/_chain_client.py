"""The web3 side of :mod:`openattrib.ledger.chain`: a connection with a local signing key.

:class:`Chain` signs transactions locally (the key never leaves the process and is never
printed) and turns every failure into one line of :class:`ChainError`: a revert (custom
errors decoded from the contracts' ABIs), a wrong chain id, an account that cannot pay for gas,
an unreachable node. :func:`connect` reaches a JSON-RPC node, :func:`local_chain` starts an
in-process EVM (eth-tester on py-evm). The compiled contracts are read from ``artifacts/``.
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

from ..errors import OpenAttribError, ValidationError

__all__ = ["Chain", "ChainError", "connect", "local_chain", "read_private_key", "load_artifact"]

logger = logging.getLogger("openattrib")
CONTRACTS = ("ClaimsDistributor", "CheckpointAnchor", "TestToken")
_LOCAL_GAS_LIMIT = 5_000_000
CLAIM_GAS = 400_000  # a claim with a 20-hash proof uses < 150,000
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
    #: the in-process EVM (``eth_tester.EthereumTester``) of :func:`local_chain`, else None;
    #: ``tester.time_travel(t)`` moves its clock
    tester: Any = field(default=None, repr=False)
    #: the private keys funded at genesis by :func:`local_chain` (test keys only)
    keys: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:
        return f"Chain(chain_id={self.chain_id}, account={self.address})"

    @property
    def address(self) -> str:
        """The signing account's checksum address (``None`` on a read-only connection)."""
        return self.account.address if self.account is not None else None

    def with_key(self, key: Any) -> Chain:
        """The same connection, signing with another private key."""
        return Chain(
            self.w3,
            Account.from_key(key),
            self.chain_id,
            self.gas_limit,
            self.history,
            self.tester,
            self.keys,
        )

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
    node = Chain(
        w3,
        Account.from_key(keys[0]),
        int(w3.eth.chain_id),
        gas_limit=_LOCAL_GAS_LIMIT,
        tester=tester,
        keys=tuple(keys),
    )
    w3.eth.default_account = node.address  # view calls run from a funded account
    return node
