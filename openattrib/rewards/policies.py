"""Input checks and allocation policies: from attribution values to exact non-negative weights.

A policy turns each contributor's value (a float64) into a non-negative exact rational
*weight*; the pool is then split in proportion to the weights. Floats enter as the exact
rational number they stand for (``fractions.Fraction(float)``, the IEEE-754 binary64 value,
identical on every platform), so no step of the payout path rounds in floating point.

Policies
--------
``"proportional"``
    ``weight = max(value, 0)``. Contributors with zero or negative value get nothing; the
    pool goes to the positive contributors in proportion to their value. This is what
    deployed payout schemes do (a negative payout would be a charge nobody can collect), and
    it keeps the null-player property: a contributor with value 0 is paid 0.
``"efficient"``
    ``weight = value - min(0, min_j value_j)``. When every value is non-negative this *is*
    ``"proportional"``: each contributor receives ``phi_i / sum_j phi_j`` of the pool, which
    for Shapley values is ``phi_i / (v(N) - v(empty))`` (efficiency, Shapley 1953): every
    unit of value created earns the same pay. When some contributor has a negative value the
    zero point is moved down to the most harmful contributor, ``m = min_j phi_j < 0``. By
    linearity of the Shapley value this is the Shapley value of the game
    ``v'(S) = v(S) - m |S|`` (each contributor is charged ``m``, an additive game whose
    Shapley value is ``m`` per player), which is efficient and non-negative without
    truncation, and it keeps value *differences*: ``amount_i - amount_j`` is proportional to
    ``phi_i - phi_j``. Truncation (``"proportional"``) instead pays every harmful
    contributor the same zero. The two policies differ exactly when a value is negative.
    Caveat: the shift pays a null contributor (value 0) ``-m`` units of weight, so a
    strongly harmful contributor raises the pay of the weakest ones; a contributor running
    sybil identities could exploit that, which is why ``"proportional"`` is the default.
``"uncertainty_aware"``
    ``weight = max(value - z * stderr, 0)``: pay in proportion to a lower confidence bound,
    so a value that is large only because of a lucky Monte Carlo draw is not paid as if it
    were certain (z = 1.96 is a one-sided 97.5% bound under a normal approximation of the
    estimator's error). Contributors whose bound is not positive get nothing. Needs
    standard errors (Monte Carlo estimators fill ``Attribution.stderr``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from .._ids import check_ids
from ..errors import ValidationError

__all__ = [
    "POLICIES",
    "MAX_SHARE_DIGITS",
    "coerce_values",
    "policy_weights",
    "check_pool",
    "check_cap",
    "share_digits_for",
]

#: Finest share grid accepted (digits); bounds the size of the integers on the payout path.
MAX_SHARE_DIGITS = 100
#: Fewest digits of the default share grid (finer for large pools, see share_digits_for).
DEFAULT_SHARE_DIGITS = 18
#: Digits the default grid keeps beyond ``pool * n`` (rounding moves quotas < 10**-6 unit).
GUARD_DIGITS = 6

POLICIES = ("proportional", "efficient", "uncertainty_aware")


def _float_list(name: str, raw: Any, names: list[str]) -> list[float]:
    try:
        arr = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be numbers, got {raw!r}") from None
    if arr.shape[0] != len(names):
        raise ValidationError(f"{name} has {arr.shape[0]} entries for {len(names)} contributors")
    bad = [names[i] for i in np.flatnonzero(~np.isfinite(arr))]
    if bad:
        raise ValidationError(
            f"{name} of contributor(s) {bad[:5]} is NaN or infinite; payouts need finite "
            "numbers (rerun the estimator or drop those contributors)"
        )
    return [float(v) for v in arr]


def _unique_names(raw: Any) -> list[str]:
    names = [n if isinstance(n, str) else str(n) for n in raw]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(
                f"contributor id {name!r} appears more than once in values; every contributor "
                "must be listed once (sum duplicate entries first)"
            )
        seen.add(name)
    return names


def coerce_values(
    values: Any, stderr: Any = None
) -> tuple[list[str], list[float], list[float] | None, str | None, str | None]:
    """``(names, values, stderr, source_hash, method)`` from an Attribution, Series or dict."""
    from ..result import Attribution

    source = method = None
    if isinstance(values, Attribution):
        if values.level == "points":
            raise ValidationError(
                "allocate expects contributor-level values but got a point-level Attribution "
                f"({len(values)} points); call attribution.by_contributor() first, or value "
                "contributors directly with ModelUtility(..., players='contributors')"
            )
        names = list(values.names)
        raw_values: Any = values.values
        if stderr is None and values.stderr is not None:
            stderr = values.stderr
        source, method = values.result_hash(), values.method
    elif hasattr(values, "index") and hasattr(values, "to_numpy"):  # pandas Series
        if getattr(values, "ndim", 1) != 1:
            raise ValidationError("values must be a 1-D Series (name -> value), not a DataFrame")
        names = _unique_names(values.index)
        raw_values = values.to_numpy()
    elif isinstance(values, Mapping):
        names = _unique_names(values.keys())
        raw_values = list(values.values())
    else:
        raise ValidationError(
            f"values must be an Attribution, a pandas Series or a dict name -> value, "
            f"got {type(values).__name__}"
        )
    if not names:
        raise ValidationError("values is empty: there is nobody to pay")
    check_ids(names, "contributor")
    value_list = _float_list("values", raw_values, names)
    stderr_list = None
    if stderr is not None:
        if isinstance(stderr, Mapping):
            missing = [n for n in names if n not in stderr]
            if missing:
                raise ValidationError(f"stderr has no entry for contributor(s) {missing[:5]}")
            stderr = [stderr[n] for n in names]
        elif hasattr(stderr, "index") and hasattr(stderr, "reindex"):
            stderr = stderr.reindex(names).to_numpy()
        stderr_list = _float_list("stderr", stderr, names)
        negative = [names[i] for i, s in enumerate(stderr_list) if s < 0]
        if negative:
            raise ValidationError(f"stderr of contributor(s) {negative[:5]} is negative")
    return names, value_list, stderr_list, source, method


def check_pool(pool: Any) -> int:
    """The pool as a Python int (non-negative); floats are refused (no silent rounding)."""
    if isinstance(pool, (bool, np.bool_)) or not isinstance(pool, (int, np.integer)):
        hint = ""
        if isinstance(pool, (float, np.floating)) and math.isfinite(pool):
            hint = " (write large amounts as integers, e.g. 10**21 instead of 1e21)"
        raise ValidationError(
            f"pool must be an int number of base units, got {type(pool).__name__} {pool!r}{hint}"
        )
    pool = int(pool)
    if pool < 0:
        raise ValidationError(f"pool must be non-negative, got {pool}")
    return pool


def share_digits_for(pool: int, share_digits: Any = None, *, n: int = 1) -> int:
    """The digits of the share grid: ``share_digits``, or the default for ``pool``.

    Shares are stated on the grid ``10**-share_digits``. A grid coarser than one base unit of
    the pool (``10**share_digits < pool``) would make the payout depend on the grid rather
    than on the values (with 0 digits a 51/44/2/2/1% split of 100 pays ``[100, 0, 0, 0,
    0]``), so it is refused.

    The default (``None``) is a grid the payout does not depend on: at least 18 digits and
    at least ``GUARD_DIGITS`` more than the digits of ``pool * n`` (``n`` contributors).
    Rounding ``n`` shares onto it moves each exact quota ``pool * w_i / sum(w)`` by at most
    ``pool * n / 10**share_digits < 10**-GUARD_DIGITS`` of a base unit, so the amounts are
    the largest-remainder apportionment of the exact shares unless two remainders lie
    within that distance of a tie.
    """
    need = len(str(pool - 1)) if pool > 1 else 0  # smallest d with 10**d >= pool
    if share_digits is None:
        return max(DEFAULT_SHARE_DIGITS, len(str(pool * max(n, 1))) + GUARD_DIGITS)
    digits = check_int("share_digits", share_digits, 0)
    if digits > MAX_SHARE_DIGITS:
        raise ValidationError(f"share_digits must be at most {MAX_SHARE_DIGITS}, got {digits}")
    if digits < need:
        raise ValidationError(
            f"share_digits={digits} states shares in steps of 10**-{digits}, coarser than one "
            f"base unit of the pool ({pool}): the payout would depend on the grid instead of "
            f"the values; use share_digits >= {need}, or leave it out for the default"
        )
    return digits


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """A Python int ``>= minimum`` (bools and floats refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def to_exact(name: str, value: Any) -> Fraction:
    """An exact rational from an int, Fraction, decimal string or float (via its shortest repr).

    Floats are read through their shortest decimal representation (``repr``), so ``0.1``
    means one tenth, which is what a person typing it meant.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{name} must be a number, got {value!r}")
    try:
        if isinstance(value, (float, np.floating)):
            if not math.isfinite(value):
                raise ValidationError(f"{name} must be finite, got {value}")
            return Fraction(repr(float(value)))
        if isinstance(value, np.integer):
            return Fraction(int(value))
        if isinstance(value, (int, Fraction, str)):
            return Fraction(value.strip() if isinstance(value, str) else value)
    except (ValueError, ZeroDivisionError):
        pass
    raise ValidationError(
        f"{name} must be an int, a fractions.Fraction or a decimal string such as '0.25', "
        f"got {value!r}"
    )


def check_cap(cap: Any, pool: int) -> tuple[int | None, str | None]:
    """``(cap in base units, description)``: an int is absolute, a fraction is of the pool.

    A fractional cap ``f`` (Fraction, decimal string or float in (0, 1]) is
    ``floor(f * pool)`` base units.
    """
    if cap is None:
        return None, None
    if isinstance(cap, (int, np.integer)) and not isinstance(cap, (bool, np.bool_)):
        units = int(cap)
        if units <= 0:
            raise ValidationError(f"cap must be positive, got {units}")
        return units, str(units)
    fraction = to_exact("cap", cap)
    if not 0 < fraction <= 1:
        raise ValidationError(
            f"a fractional cap must be in (0, 1] (a share of the pool), got {fraction}; "
            "give an int for an absolute cap in base units"
        )
    units = math.floor(fraction * pool)
    if units == 0:
        raise ValidationError(
            f"cap {fraction} of a pool of {pool} is 0 base units, so nobody could be paid; "
            "use a larger cap or an absolute cap in base units"
        )
    return units, f"{fraction} of pool"


def policy_weights(
    policy: str, values: list[float], stderr: list[float] | None, z: float
) -> tuple[list[Fraction], str]:
    """Exact non-negative weights of ``policy`` and a one-line statement of the rule."""
    if policy not in POLICIES:
        raise ValidationError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    exact = [Fraction(v) for v in values]
    zero = Fraction(0)
    if policy == "proportional":
        return [max(v, zero) for v in exact], "max(value, 0)"
    if policy == "efficient":
        shift = min(min(exact), zero)
        rule = "value - min(0, min value)" + (f" = value + {float(-shift):.6g}" if shift else "")
        return [v - shift for v in exact], rule
    if stderr is None:
        raise ValidationError(
            "policy='uncertainty_aware' needs standard errors, but the values have none (an exact "
            "method, or a dict/Series without stderr=); pass stderr=..., or use "
            "policy='proportional', which is the same when there is no uncertainty"
        )
    if isinstance(z, (bool, np.bool_)) or not isinstance(z, (int, float, np.integer, np.floating)):
        raise ValidationError(f"z must be a number, got {z!r}")
    if not (math.isfinite(z) and z >= 0):
        raise ValidationError(f"z must be a finite number >= 0, got {z}")
    z_exact = Fraction(float(z))
    weights = [max(v - z_exact * Fraction(s), zero) for v, s in zip(exact, stderr, strict=True)]
    return weights, f"max(value - {float(z):g} * stderr, 0)"
