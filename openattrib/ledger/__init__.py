"""A verifiable, append-only ledger of attribution runs and payouts.

- :mod:`~openattrib.ledger.merkle`: RFC 6962 hashing and proofs (pure functions).
- :class:`Ledger`: the SQLite log (``append_run``, ``append_allocation``, proofs, ``verify``).
- :mod:`~openattrib.ledger.checkpoint`: signed C2SP checkpoints (Ed25519 signed notes);
  keys in :mod:`~openattrib.ledger.keys`, proof objects in :mod:`~openattrib.ledger.proofs`.
- :mod:`~openattrib.ledger.registry`: the contribution registry (``append_contribution``,
  row digests' Merkle roots, :class:`RowProof`), the basis of first-registrant provenance.
- :mod:`~openattrib.ledger.evm`: OpenZeppelin ``StandardMerkleTree`` export for on-chain claims.
- :mod:`~openattrib.ledger.chain`: the claim and checkpoint-anchor contracts on an EVM chain
  (web3.py; loaded on first use).

Examples
--------
>>> import tempfile, pathlib, openattrib as oa
>>> from openattrib import ledger
>>> attr = oa.Attribution([0.7, 0.3], names=["alice", "bob"], method="demo", seed=0)
>>> with ledger.Ledger(pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite") as led:
...     entry = led.append_run(attr)
...     proof = led.inclusion_proof(entry.index)
...     ledger.verify_inclusion(proof, led.checkpoint())
True
"""

from __future__ import annotations

import importlib
from typing import Any

from . import merkle
from .audit import LedgerReport
from .checkpoint import Checkpoint, verify_checkpoint
from .keys import (
    generate_signing_key,
    load_public_key,
    load_signing_key,
    note_verifier_key,
    save_signing_key,
)
from .log import Ledger, LedgerEntry
from .proofs import (
    BatchProof,
    ConsistencyProof,
    InclusionProof,
    verify_batch_inclusion,
    verify_checkpoint_consistency,
    verify_inclusion,
)
from .registry import Registration, RowProof, verify_row

__all__ = [
    "BatchProof",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "LedgerReport",
    "Registration",
    "RowProof",
    "chain",
    "evm",
    "generate_signing_key",
    "load_public_key",
    "load_signing_key",
    "merkle",
    "note_verifier_key",
    "save_signing_key",
    "verify_batch_inclusion",
    "verify_checkpoint",
    "verify_checkpoint_consistency",
    "verify_inclusion",
    "verify_row",
]


def __getattr__(name: str) -> Any:
    # The EVM export pulls in eth_abi and eth_utils (~0.3 s), the chain module web3 (~1 s);
    # load them on first use.
    if name in ("evm", "chain"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
