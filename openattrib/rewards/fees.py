"""Per-inference fee splits and their accrual into periodic settlements.

Each paid inference brings a fee (integer base units). :func:`split_fee` divides it among
parties (a platform fee off the top, then for example the model owner, the stakers and the
data contributors) and divides the contributors' part among the contributors whose
attribution *for this inference* is positive, in proportion to it. Every part is an exact
integer and the parts always add up to the fee. :class:`Accrual` keeps exact integer
balances over many inferences and settles them into an :class:`~openattrib.rewards.Allocation`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .._vocab import deprecated_keywords
from ..errors import ValidationError, VerificationError
from .allocation import Allocation
from .apportion import apportion, largest_remainder, quantise_shares
from .policies import check_int, coerce_values, policy_weights, share_digits_for, to_exact

__all__ = ["split_fee", "FeeSplit", "Accrual", "CONTRIBUTORS", "PLATFORM"]

log = logging.getLogger("openattrib")

CONTRIBUTORS = "contributors"
PLATFORM = "platform"


@dataclass
class FeeSplit:
    """How one fee was split. ``parties`` includes ``"contributors"`` (their total);
    ``contributors`` breaks that total down per contributor."""

    fee: int
    parties: dict[str, int]
    contributors: dict[str, int] = field(default_factory=dict)
    redirected_to: str | None = None

    def reconcile(self) -> bool:
        """True when the parts add up to the fee exactly (raises VerificationError otherwise)."""
        total = sum(self.parties.values())
        if total != self.fee or sum(self.contributors.values()) != self.parties.get(
            CONTRIBUTORS, 0
        ):
            raise VerificationError(
                f"fee split does not reconcile: parties sum to {total}, contributors to "
                f"{sum(self.contributors.values())}, fee {self.fee}"
            )
        return True


def check_shares(
    shares: Mapping[str, Any], platform_fee: Any = 0
) -> tuple[dict[str, Fraction], Fraction]:
    """Exact party shares (summing to 1) and the exact platform fee fraction."""
    if not isinstance(shares, Mapping) or not shares:
        raise ValidationError(
            'shares must be a non-empty dict party -> share, e.g. {"model": "0.3", '
            '"stakers": "0.2", "contributors": "0.5"}'
        )
    if CONTRIBUTORS not in shares:
        raise ValidationError(f"shares must include the {CONTRIBUTORS!r} party")
    if PLATFORM in shares:
        raise ValidationError(
            f"{PLATFORM!r} is reserved for platform_fee=...; name the party differently"
        )
    exact = {str(party): to_exact(f"share of {party!r}", s) for party, s in shares.items()}
    negative = [p for p, s in exact.items() if s < 0]
    if negative:
        raise ValidationError(f"shares must be non-negative; {negative} are negative")
    total = sum(exact.values(), Fraction(0))
    if total != 1:
        raise ValidationError(
            f"shares must sum to exactly 1, they sum to {total} ({float(total):.17g}); use "
            "Fractions or decimal strings (for thirds: fractions.Fraction(1, 3))"
        )
    fee_fraction = to_exact("platform_fee", 0 if platform_fee is None else platform_fee)
    if not 0 <= fee_fraction <= 1:
        raise ValidationError(f"platform_fee must be in [0, 1], got {fee_fraction}")
    return exact, fee_fraction


def _party_amounts(fee: int, shares: dict[str, Fraction], platform_fee: Fraction) -> dict[str, int]:
    """Largest-remainder split of ``fee`` by the exact entitlements of the parties."""
    entitlements = {PLATFORM: platform_fee} if platform_fee else {}
    for party, share in shares.items():
        entitlements[party] = (1 - platform_fee) * share
    denominator = math.lcm(*(e.denominator for e in entitlements.values()))
    names = list(entitlements)
    weights = [int(e * denominator) for e in entitlements.values()]
    amounts = largest_remainder(fee, weights, names)[0]
    return dict(zip(names, amounts, strict=True))


def _contributor_amounts(
    part: int, names: list[str], values: list[float], share_digits: int | None
) -> dict[str, int] | None:
    """Proportional split of ``part`` among positive values (None if nobody is positive)."""
    weights, _ = policy_weights("proportional", values, None, 0.0)
    if not any(w > 0 for w in weights):
        return None
    quantised = quantise_shares(weights, share_digits_for(part, share_digits, n=len(names)))
    if not any(quantised):
        return None
    return dict(zip(names, apportion(part, quantised, names).amounts, strict=True))


@deprecated_keywords(decimals="share_digits")
def split_fee(
    fee: int,
    attribution: Any,
    shares: Mapping[str, Any],
    platform_fee: Any = 0,
    *,
    share_digits: int | None = None,
    fallback: str | None = None,
) -> FeeSplit:
    """Split one inference's ``fee`` among parties and the contributors of this inference.

    Parameters
    ----------
    fee : int
        The fee in integer base units.
    attribution : Attribution, Series or dict
        Contributor-level attribution of *this* inference (for example influence of each
        contributor's data on this prediction). Only positive values share the
        contributors' part, in proportion to their value (policy ``"proportional"``).
    shares : dict party -> share
        Shares of the fee after the platform fee; must include ``"contributors"`` and sum to
        exactly 1. Shares are ints, Fractions or decimal strings (floats are read through
        their shortest repr, so ``0.1`` is one tenth).
    platform_fee : share, default 0
        Fraction of the fee taken by the ``"platform"`` party off the top.
    share_digits : int, optional
        Precision of the share grid of the contributors' split (as in :func:`allocate`;
        never coarser than one base unit of their part).
    fallback : str, optional
        Party that receives the contributors' part when no contributor has a positive
        attribution (default: the first party other than ``"contributors"``, or the
        platform).
    The parties' exact entitlements are ``fee * platform_fee`` and
    ``fee * (1 - platform_fee) * share``; one largest-remainder apportionment turns them into
    integers (each is the floor or ceiling of its entitlement) that add up to ``fee``.

    Examples
    --------
    >>> s = split_fee(1000, {"a": 0.2, "b": 0.1, "c": -0.3},
    ...               shares={"model": "0.5", "contributors": "0.5"}, platform_fee="0.1")
    >>> s.parties, s.contributors
    ({'platform': 100, 'model': 450, 'contributors': 450}, {'a': 300, 'b': 150, 'c': 0})
    """
    exact_shares, fee_fraction = check_shares(shares, platform_fee)
    fee = check_int("fee", fee, 0)
    share_digits = _digits_option(share_digits)
    names, values, _, _, _ = coerce_values(attribution)
    return _split(fee, names, values, exact_shares, fee_fraction, share_digits, fallback)


def _digits_option(share_digits: Any) -> int | None:
    """Check ``share_digits`` once, before any fee arrives (``None``: the default grid)."""
    return None if share_digits is None else share_digits_for(0, share_digits)


def _fallback_party(
    shares: dict[str, Fraction], platform_fee: Fraction, fallback: str | None
) -> str:
    if fallback is not None:
        if fallback not in shares and fallback != PLATFORM:
            raise ValidationError(
                f"fallback party {fallback!r} is not one of the parties {sorted(shares) + [PLATFORM]}"
            )
        if fallback == CONTRIBUTORS:
            raise ValidationError("fallback must be a party other than 'contributors'")
        return fallback
    others = [p for p in shares if p != CONTRIBUTORS]
    return others[0] if others else PLATFORM


def _split(
    fee: int,
    names: list[str],
    values: list[float],
    shares: dict[str, Fraction],
    platform_fee: Fraction,
    share_digits: int | None,
    fallback: str | None,
) -> FeeSplit:
    parties = _party_amounts(fee, shares, platform_fee)
    part = parties[CONTRIBUTORS]
    contributors = _contributor_amounts(part, names, values, share_digits)
    redirected = None
    if contributors is None:
        contributors = dict.fromkeys(names, 0)
        if part:
            redirected = _fallback_party(shares, platform_fee, fallback)
            parties[redirected] = parties.get(redirected, 0) + part
            parties[CONTRIBUTORS] = 0
    return FeeSplit(fee, parties, contributors, redirected)


class Accrual:
    """Exact integer balances accumulated over many inferences, settled periodically.

    Parameters
    ----------
    shares, platform_fee, share_digits, fallback
        As in :func:`split_fee`, fixed for the life of the accrual (``decimals`` is the
        deprecated old name of ``share_digits``).

    Examples
    --------
    >>> acc = Accrual({"model": "0.4", "contributors": "0.6"})
    >>> _ = acc.add(100, {"a": 1.0, "b": 3.0})
    >>> _ = acc.add(7, {"a": 2.0, "b": -1.0})
    >>> acc.balances, acc.contributor_balances
    ({'model': 43, 'contributors': 64}, {'a': 19, 'b': 45})
    >>> settlement = acc.settle()
    >>> settlement.amounts, settlement.pool
    ({'a': 19, 'b': 45}, 64)
    """

    @deprecated_keywords(decimals="share_digits")
    def __init__(
        self,
        shares: Mapping[str, Any],
        platform_fee: Any = 0,
        *,
        share_digits: int | None = None,
        fallback: str | None = None,
    ) -> None:
        self._shares, self._platform_fee = check_shares(shares, platform_fee)
        self.share_digits = _digits_option(share_digits)
        self.fallback = _fallback_party(self._shares, self._platform_fee, fallback)
        self.settlements: list[dict[str, Any]] = []
        self.total_collected = 0
        self._reset()

    def _reset(self) -> None:
        parties = ([PLATFORM] if self._platform_fee else []) + list(self._shares)
        self.balances: dict[str, int] = dict.fromkeys(parties, 0)
        self.contributor_balances: dict[str, int] = {}
        self.collected = 0
        self.n_inferences = 0

    def add(self, fee: int, attribution: Any) -> FeeSplit:
        """Split one inference's fee and add the parts to the balances."""
        fee = check_int("fee", fee, 0)
        names, values, _, _, _ = coerce_values(attribution)
        split = _split(
            fee, names, values, self._shares, self._platform_fee, self.share_digits, self.fallback
        )
        for party, amount in split.parties.items():
            self.balances[party] = self.balances.get(party, 0) + amount
        for name, amount in split.contributors.items():
            self.contributor_balances[name] = self.contributor_balances.get(name, 0) + amount
        self.collected += fee
        self.total_collected += fee
        self.n_inferences += 1
        return split

    def reconcile(self) -> bool:
        """Check that balances add up exactly to the fees collected this period."""
        parties = sum(self.balances.values())
        contributors = sum(self.contributor_balances.values())
        if parties != self.collected or contributors != self.balances.get(CONTRIBUTORS, 0):
            raise VerificationError(
                f"accrual does not reconcile: party balances {parties}, contributor balances "
                f"{contributors}, fees collected {self.collected}"
            )
        settled = sum(s["collected"] for s in self.settlements)
        if settled + self.collected != self.total_collected:
            raise VerificationError("settled periods and the open period do not add up")
        return True

    def settle(self) -> Allocation:
        """Close the period: an Allocation of the contributors' accrued amounts, then reset.

        The allocation pays exactly the accrued balances (``policy="accrued"``, the balances
        are their own integer weights), its ``parameters`` record the period: fees collected,
        number of inferences and every party's balance. The record is also appended to
        ``settlements``.
        """
        self.reconcile()
        period = len(self.settlements)
        record = {
            "period": period,
            "collected": self.collected,
            "n_inferences": self.n_inferences,
            "parties": dict(self.balances),
        }
        allocation = Allocation.from_amounts(
            self.contributor_balances,
            parameters={
                "period": period,
                "fees_collected": str(self.collected),
                "n_inferences": self.n_inferences,
                "parties": {p: str(a) for p, a in self.balances.items()},
            },
        )
        record["allocation_hash"] = allocation.result_hash()
        self.settlements.append(record)
        log.info(
            "settled period %d: %d inferences, %d collected",
            period,
            self.n_inferences,
            self.collected,
        )
        self._reset()
        return allocation
