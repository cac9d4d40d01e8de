"""Rewards: attributions -> exact integer payouts, per-inference fee splits, gaming checks.

``allocate`` splits a pool among contributors in proportion to their values under a stated
policy, with integer amounts that sum exactly to the pool; ``split_fee`` and ``Accrual`` do
the same per inference and settle periodically; ``audit`` and ``replication_experiment``
look for contributors gaming the payout (duplicated data, sybil identities).
"""

from .allocation import Allocation, allocate
from .apportion import largest_remainder, quantise_shares
from .audit import AuditReport, audit
from .explain import Explanation
from .fees import Accrual, FeeSplit, split_fee
from .policies import POLICIES
from .replication import replicate, replication_experiment

__all__ = [
    "POLICIES",
    "Accrual",
    "Allocation",
    "AuditReport",
    "Explanation",
    "FeeSplit",
    "allocate",
    "audit",
    "largest_remainder",
    "quantise_shares",
    "replicate",
    "replication_experiment",
    "split_fee",
]
