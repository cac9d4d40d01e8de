"""Exact integer apportionment: fixed-point shares, largest remainder, caps and minimum payouts.

Everything in this module is integer or :class:`fractions.Fraction` arithmetic, so the same
inputs give the same integers on every machine. The float values of an attribution enter
only through :func:`quantise_shares`, which turns exact rational weights into integers on a
stated decimal grid; from there on a verifier needs nothing but integer arithmetic.

The apportionment is the largest-remainder method (Hamilton 1792; also called Hare-Niemeyer
or Vinton's method): each contributor first gets the floor of its exact quota
``pool * q_i / Q``, and the units left over go, one each, to the largest remainders. It is the
method that satisfies the *quota rule*: every amount is the floor or the ceiling of the exact
quota (Balinski & Young, *Fair Representation*, 1982/2001).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from ..errors import ValidationError

__all__ = [
    "priority_key",
    "quantise_shares",
    "largest_remainder",
    "water_fill",
    "apportion",
    "Apportionment",
]


def priority_key(name: str, weight: int, remainder: int = 0) -> tuple[int, int, bytes]:
    """Sort key of the documented tie-break: larger remainder, then larger weight, then name.

    Names compare as UTF-8 bytes (lexicographic), so the order never depends on the order in
    which contributors were given.
    """
    return (-remainder, -weight, name.encode("utf-8"))


def quantise_shares(weights: Sequence[Fraction], share_digits: int) -> list[int]:
    """Exact shares ``w_i / sum(w)`` rounded (half to even) onto the grid ``10**-share_digits``.

    Returns the integers ``q_i = round(w_i * 10**share_digits / sum(w))``. Normalising *before*
    rounding makes the result independent of the scale of the values: multiplying every
    weight by the same positive number leaves every ``q_i`` unchanged.

    Examples
    --------
    >>> quantise_shares([Fraction(1), Fraction(2)], 3)
    [333, 667]
    """
    total = sum(weights, Fraction(0))
    if total <= 0:
        return [0] * len(weights)
    scale = 10**share_digits
    return [round(w * scale / total) for w in weights]


def largest_remainder(
    total: int, weights: Sequence[int], names: Sequence[str]
) -> tuple[list[int], list[int], list[int]]:
    """Apportion ``total`` units in proportion to integer ``weights`` (Hamilton's method).

    Returns ``(amounts, floors, remainders)`` where ``floors[i] = total * w_i // W`` and
    ``remainders[i] = total * w_i % W`` (the remainder is ``remainders[i] / W`` of a unit).
    The ``total - sum(floors)`` leftover units go to the largest remainders; ties are broken
    by larger weight, then by name (UTF-8 bytes). Entries with zero weight get nothing.

    Examples
    --------
    >>> largest_remainder(10, [47000, 16000, 15800, 12000, 6100, 3100], list("YWRGBP"))[0]
    [5, 2, 1, 1, 1, 0]
    """
    n = len(weights)
    weight_sum = sum(weights)
    if total == 0 or n == 0:
        return [0] * n, [0] * n, [0] * n
    if weight_sum <= 0:
        raise ValidationError(f"cannot apportion {total} units: every weight is zero")
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(floors)
    amounts = list(floors)
    order = sorted(range(n), key=lambda i: priority_key(names[i], weights[i], remainders[i]))
    for i in order[:leftover]:
        amounts[i] += 1
    return amounts, floors, remainders


def water_fill(total: int, weights: Sequence[int], cap: int | None) -> tuple[list[int], int]:
    """Which of ``weights`` (sorted, largest first, all positive) hit ``cap``.

    The capped proportional split is ``min(cap, lam * w_i)`` with ``lam`` chosen so the parts
    sum to ``total``; the capped contributors are a prefix of the sorted list. Returns
    ``(capped_prefix_length, remaining_total)`` where ``remaining_total = total - m * cap``
    is what the uncapped contributors share in proportion to their weights.
    Requires ``len(weights) * cap >= total`` (checked by the caller).
    """
    if cap is None:
        return [], total
    rest_weight = sum(weights)
    remaining = total
    m = 0
    while m < len(weights) and remaining * weights[m] > cap * rest_weight:
        remaining -= cap
        rest_weight -= weights[m]
        m += 1
    return list(range(m)), remaining


@dataclass
class Apportionment:
    """Integers and the arithmetic behind them (used by ``Allocation.explain``)."""

    amounts: list[int]
    status: list[str]
    floors: list[int] = field(default_factory=list)
    remainders: list[int] = field(default_factory=list)
    remainder_rank: list[int | None] = field(default_factory=list)
    hamilton_pool: int = 0
    hamilton_weight: int = 0
    leftover: int = 0


def _smallest_quota(pool: int, ordered: list[int], k: int, cap: int | None) -> Fraction:
    """Exact (unrounded) capped quota of the k-th contributor among the top ``k``."""
    weights = ordered[:k]
    capped, remaining = water_fill(pool, weights, cap)
    if len(capped) == k:
        return Fraction(cap)
    rest = sum(weights[len(capped) :])
    return Fraction(remaining * weights[-1], rest)


def apportion(
    pool: int,
    quantised: Sequence[int],
    names: Sequence[str],
    *,
    cap: int | None = None,
    min_payout: int = 0,
) -> Apportionment:
    """Integer amounts summing exactly to ``pool``, in proportion to ``quantised``.

    Steps (all exact):

    1. Contributors with ``quantised == 0`` get nothing. The others are ranked by
       :func:`priority_key` (larger weight first, then name).
    2. **Minimum payout.** The lowest-ranked contributor is dropped, one at a time, while its
       amount would be below ``min_payout``; its share is redistributed to the others. The
       process stops at the first (largest) set whose smallest amount is at least
       ``min_payout``: the fixed point. Dropping one at a time (rather than everyone below the
       threshold at once) keeps as many contributors as possible; the amounts are monotone in
       the weight, so the lowest-ranked contributor is always the one with the smallest amount.
    3. **Cap.** Within the kept set, contributors whose exact quota exceeds ``cap`` get exactly
       ``cap`` and the excess is shared by the rest in proportion to their weights
       (water-filling, repeated until nobody exceeds the cap).
    4. The uncapped contributors share what is left by the largest-remainder method.

    Raises :class:`ValidationError` when the pool cannot be paid under ``cap`` and
    ``min_payout`` (for example fewer payable contributors than ``pool / cap``).
    """
    n = len(quantised)
    amounts = [0] * n
    status = ["not_positive" if q <= 0 else "paid" for q in quantised]
    if pool == 0:
        return Apportionment(amounts, status, [0] * n, [0] * n, [None] * n)
    eligible = sorted(
        (i for i in range(n) if quantised[i] > 0),
        key=lambda i: priority_key(names[i], quantised[i]),
    )
    if not eligible:
        raise ValidationError(
            f"cannot pay a pool of {pool}: no contributor has a positive weight after applying the "
            "policy and the share grid (all values are zero/negative, or too small for the share grid)"
        )
    if cap is not None and cap < min_payout:
        raise ValidationError(
            f"cap ({cap}) is below min_payout ({min_payout}): nobody could be paid; "
            "raise the cap or lower min_payout"
        )
    ordered = [quantised[i] for i in eligible]
    smallest_feasible = 1 if cap is None else -(-pool // cap)
    if smallest_feasible > len(eligible):
        raise ValidationError(
            f"the pool of {pool} cannot be paid with cap={cap}: only {len(eligible)} contributor(s) "
            f"can be paid but at least {smallest_feasible} are needed (pool / cap); raise the cap"
        )
    k = len(eligible)
    if min_payout > 0:
        # every k above the largest one whose exact quota can still round up to min_payout is
        # certainly dropped (quotas only grow as the set shrinks): skip them in O(log n) steps
        low, high = smallest_feasible, len(eligible)
        if math.ceil(_smallest_quota(pool, ordered, low, cap)) < min_payout:
            raise _unpayable(pool, cap, min_payout)
        while low < high:
            mid = (low + high + 1) // 2
            if math.ceil(_smallest_quota(pool, ordered, mid, cap)) >= min_payout:
                low = mid
            else:
                high = mid - 1
        k = low
    while True:
        result = _apportion_top(pool, ordered, [names[i] for i in eligible], k, cap)
        if min_payout == 0 or result[0][k - 1] >= min_payout:
            break
        k -= 1
        if k < smallest_feasible:
            raise _unpayable(pool, cap, min_payout)
    top_amounts, capped, floors, remainders, ranks, r_pool, r_weight, leftover = result
    out = Apportionment(amounts, status, [0] * n, [0] * n, [None] * n)
    for position, i in enumerate(eligible):
        if position >= k:
            status[i] = "below_min_payout"
            continue
        amounts[i] = top_amounts[position]
        status[i] = "capped" if position < capped else "paid"
        out.floors[i] = floors[position]
        out.remainders[i] = remainders[position]
        out.remainder_rank[i] = ranks[position]
    out.hamilton_pool, out.hamilton_weight, out.leftover = r_pool, r_weight, leftover
    return out


def _unpayable(pool: int, cap: int | None, min_payout: int) -> ValidationError:
    cap_text = "" if cap is None else f" with cap={cap}"
    return ValidationError(
        f"the pool of {pool} cannot be paid{cap_text} and min_payout={min_payout}: dropping "
        "contributors below the minimum leaves too few to receive the pool; lower min_payout"
        + (" or raise the cap" if cap is not None else "")
    )


def _apportion_top(
    pool: int, ordered: list[int], names: list[str], k: int, cap: int | None
) -> tuple[list[int], int, list[int], list[int], list[int | None], int, int, int]:
    """Capped largest-remainder apportionment among the top ``k`` of ``ordered``."""
    weights = ordered[:k]
    capped, remaining = water_fill(pool, weights, cap)
    m = len(capped)
    rest_weights = weights[m:]
    rest_amounts, rest_floors, rest_rems = largest_remainder(remaining, rest_weights, names[m:k])
    amounts = [cap] * m + rest_amounts
    floors = [cap] * m + rest_floors
    remainders = [0] * m + rest_rems
    leftover = remaining - sum(rest_floors)
    ranks: list[int | None] = [None] * k
    order = sorted(
        range(len(rest_weights)),
        key=lambda j: priority_key(names[m + j], rest_weights[j], rest_rems[j]),
    )
    for rank, j in enumerate(order, start=1):
        if rest_rems[j] > 0:
            ranks[m + j] = rank
    return amounts, m, floors, remainders, ranks, remaining, sum(rest_weights), leftover
