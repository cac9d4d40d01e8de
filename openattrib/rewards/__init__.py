"""Rewards: attributions -> exact integer payouts, per-inference fee splits, gaming checks.

``allocate`` splits a pool among contributors in proportion to their values under a stated
policy, with integer amounts that sum exactly to the pool; ``split_fee`` and ``Accrual`` do
the same per inference and settle periodically; ``audit`` looks for contributors gaming
the payout (duplicated data, sybil identities); ``provenance`` gives each row to its first
registrant in the ledger's contribution registry (copies are valued once, for their owner)
and ``robust_shapley`` discounts replicated identities (Agarwal, Dahleh & Sarkar 2019);
``split_robust`` pays each owner the sum of its points' positive values, so splitting rows
among identities changes nothing. The
replication experiment, which runs estimators, is
:func:`openattrib.experiments.replication_experiment`.
"""

import warnings
from typing import Any

from .allocation import Allocation, allocate
from .apportion import largest_remainder, quantise_shares
from .audit import AuditReport, audit
from .explain import Explanation
from .fees import Accrual, FeeSplit, split_fee
from .policies import POLICIES
from .provenance import Provenance, provenance
from .robust import contributor_similarity, robust_shapley, similarity_discount, split_robust

__all__ = [
    "POLICIES",
    "Accrual",
    "Allocation",
    "AuditReport",
    "Explanation",
    "FeeSplit",
    "Provenance",
    "allocate",
    "audit",
    "contributor_similarity",
    "largest_remainder",
    "provenance",
    "quantise_shares",
    "robust_shapley",
    "similarity_discount",
    "split_fee",
    "split_robust",
]

_MOVED = {"replicate", "replication_experiment"}


def __getattr__(name: str) -> Any:
    """``rewards.replicate`` / ``rewards.replication_experiment``: moved to experiments."""
    if name in _MOVED:
        warnings.warn(
            f"openattrib.rewards.{name} moved to openattrib.experiments.{name}; "
            "the old location is removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        from .. import experiments  # a deprecated re-export: consumers sit right of rewards

        return getattr(experiments, name)
    raise AttributeError(f"module 'openattrib.rewards' has no attribute {name!r}")
