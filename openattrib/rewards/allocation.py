"""``allocate``: attribution values -> exact integer payouts that sum to the pool.

The payout path, every step exact and stated in the result:

1. **Policy** (see ``openattrib.rewards.policies``): each value becomes a non-negative
   rational weight ``w_i`` (the float is read as the exact binary64 number it stands for).
2. **Fixed-point grid.** The exact shares ``w_i / sum(w)`` are rounded half-to-even onto the
   grid ``10**-share_digits``: ``q_i = round(w_i * 10**share_digits / sum(w))``, Python
   integers. The grid is never coarser than one base unit of the pool (a coarser one is
   refused), so the payout follows the values, not the grid.
   Normalising before rounding makes the payout independent of the scale of the values, and
   publishing ``q_i`` lets anyone recompute the amounts with integer arithmetic alone.
3. **Apportionment** (see :mod:`openattrib.rewards.apportion`): minimum payout, cap, then the
   largest-remainder (Hamilton) method on the ``q_i``, ties broken by larger remainder, then
   larger ``q_i``, then contributor name in UTF-8 byte order (never by input order).
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from .._ids import check_ids
from .._io import atomic_write_bytes, canonical_json, read_json
from .._vocab import deprecated_keywords
from ..errors import ValidationError, VerificationError
from .apportion import apportion, quantise_shares
from .explain import Explanation, explain_payout
from .policies import (
    MAX_SHARE_DIGITS,
    POLICIES,
    check_cap,
    check_int,
    check_pool,
    coerce_values,
    policy_weights,
    share_digits_for,
)

__all__ = ["allocate", "Allocation", "FORMAT"]

FORMAT = "openattrib.allocation/1"
#: Policy of settlements made by :meth:`Allocation.from_amounts` (amounts are their own weights).
ACCRUED = "accrued"
_STATUSES = ("paid", "capped", "below_min_payout", "not_positive", "rounded_to_zero")


@deprecated_keywords(decimals="share_digits")
def allocate(
    values: Any,
    pool: int,
    *,
    share_digits: int | None = None,
    policy: str = "proportional",
    min_payout: int = 0,
    cap: Any = None,
    z: float = 1.96,
    stderr: Any = None,
) -> Allocation:
    """Split an integer ``pool`` among contributors in proportion to their values, exactly.

    Parameters
    ----------
    values : Attribution, pandas.Series or dict
        Contributor-level values (``Attribution.by_contributor()`` for point values), name ->
        float. Names must be unique; values finite.
    pool : int
        Amount to pay, in integer base units (for an 18-decimal token, ``10**21`` is 1000
        tokens). The amounts always sum to exactly ``pool``.
    share_digits : int, optional
        Precision of the share grid: ``q_i`` is the share of contributor i in units of
        ``10**-share_digits`` (this is *not* a token's ERC-20 ``decimals``). The default
        (at least 18, more for large pools) is fine enough that the amounts are the
        largest-remainder apportionment of the exact shares (see
        ``share_digits_for``). A grid coarser than one base
        unit of the pool (``10**share_digits < pool``) is refused: the payout would depend on
        the grid rather than on the values.
    policy : {"proportional", "efficient", "uncertainty_aware"}
        How values become weights; see ``openattrib.rewards.policies``.
    min_payout : int, default 0
        Contributors whose amount would be below it get 0 and their share is redistributed
        (lowest first, one at a time, until every remaining amount reaches it).
    cap : int, Fraction, decimal str or float, optional
        Largest amount per contributor: an int is base units; a fraction in (0, 1] is a share
        of the pool (``floor(f * pool)`` base units). The excess is redistributed.
    z : float, default 1.96
        Width of the lower confidence bound for ``policy="uncertainty_aware"``.
    stderr : array-like, Series or dict, optional
        Standard errors (default: the Attribution's ``stderr``).
    Returns
    -------
    Allocation

    Examples
    --------
    >>> a = allocate({"alice": 0.5, "bob": 0.25, "carol": -0.1}, pool=100)
    >>> a.amounts
    {'alice': 67, 'bob': 33, 'carol': 0}
    >>> print(a.explain("bob"))  # doctest: +ELLIPSIS
    Payout of 'bob' ...
    """
    names, value_list, stderr_list, source, method = coerce_values(values, stderr)
    pool = check_pool(pool)
    digits = share_digits_for(pool, share_digits, n=len(names))
    min_payout = check_int("min_payout", min_payout, 0)
    if policy not in POLICIES:
        raise ValidationError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    weights, rule = policy_weights(policy, value_list, stderr_list, z)
    if not any(w > 0 for w in weights):
        if all(v == 0 for v in value_list):
            problem = "every value is zero"
        else:
            problem = f"no contributor has a positive weight under policy {policy!r} ({rule})"
        raise ValidationError(
            f"cannot allocate: {problem}; there is nothing to pay in proportion to"
        )
    cap_units, cap_text = check_cap(cap, pool)
    quantised = quantise_shares(weights, digits)
    result = apportion(pool, quantised, names, cap=cap_units, min_payout=min_payout)
    parameters: dict[str, Any] = {"rule": rule, "min_payout": min_payout, "cap": cap_text}
    parameters["cap_units"] = None if cap_units is None else str(cap_units)
    if policy == "uncertainty_aware":
        parameters["z"] = float(z)
    return Allocation(
        names=names,
        values=value_list,
        stderr=stderr_list,
        pool=pool,
        policy=policy,
        share_digits=digits,
        quantised=quantised,
        amounts=result.amounts,
        status=result.status,
        parameters=parameters,
        source=source,
        method=method,
    )


_FIELDS = {
    "format",
    "names",
    "values",
    "stderr",
    "pool",
    "policy",
    "decimals",
    "quantised",
    "amounts",
    "status",
    "parameters",
    "source",
    "method",
}
#: Longest decimal integer read from an allocation file (uint256 has 78 digits); bounds the
#: work before any big arithmetic.
_MAX_INT_DIGITS = 100
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UINT = re.compile(r"^(0|[1-9][0-9]*)$")


def _bad(message: str) -> VerificationError:
    return VerificationError(f"malformed allocation record: {message}")


def _uint(raw: Any, name: str) -> int:
    """A non-negative integer written as a decimal string (or a JSON int), bounded in size."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        raw = str(raw)
    if not isinstance(raw, str) or len(raw) > _MAX_INT_DIGITS or not _UINT.match(raw):
        raise _bad(
            f"{name} must be a non-negative integer of at most {_MAX_INT_DIGITS} digits "
            f"(a decimal string), got {str(raw)[:40]!r}"
        )
    return int(raw)


def _uint_list(raw: Any, name: str, n: int) -> list[int]:
    if not isinstance(raw, list) or len(raw) != n:
        raise _bad(f"{name} must be a list of {n} integers (one per name)")
    return [_uint(x, f"{name}[{i}]") for i, x in enumerate(raw)]


def _finite_list(raw: Any, name: str, n: int) -> list[float]:
    if not isinstance(raw, list) or len(raw) != n:
        raise _bad(f"{name} must be a list of {n} numbers (one per name)")
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _bad(f"{name}[{i}] must be a finite number, got {v!r}")
    return [float(v) for v in raw]


def _parse_fields(data: Any) -> dict[str, Any]:
    """Constructor arguments from a saved allocation, every field checked (bounded work)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValidationError(
            f"not an openattrib allocation (format {found!r}, expected {FORMAT!r})"
        )
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise _bad(f"unknown field(s) {unknown[:5]}")
    missing = sorted(
        {"names", "values", "pool", "policy", "quantised", "amounts", "status"} - set(data)
    )
    if missing:
        raise _bad(f"missing field(s) {missing}")
    names = data["names"]
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise _bad("names must be a list of strings")
    n = len(names)
    if len(set(names)) != n:
        dup = next(x for i, x in enumerate(names) if x in names[:i])
        raise _bad(f"contributor {dup!r} is listed more than once")
    check_ids(names, "allocation contributor")
    policy = data["policy"]
    if policy not in (*POLICIES, ACCRUED):
        raise _bad(
            f"unknown policy {str(policy)[:40]!r}; known policies: {', '.join(POLICIES)}, {ACCRUED}"
        )
    pool = _uint(data["pool"], "pool")
    digits = data.get("decimals")
    if policy == ACCRUED:
        if digits is not None:
            raise _bad("a settlement (policy 'accrued') has no share grid: decimals must be null")
    elif (
        isinstance(digits, bool)
        or not isinstance(digits, int)
        or not 0 <= digits <= MAX_SHARE_DIGITS
    ):
        raise _bad(f"decimals (the share grid's digits) must be an int in 0..{MAX_SHARE_DIGITS}")
    else:
        try:
            share_digits_for(pool, digits)
        except ValidationError as exc:
            raise _bad(str(exc)) from None
    stderr = data.get("stderr")
    status = data["status"]
    if not isinstance(status, list) or len(status) != n or any(x not in _STATUSES for x in status):
        raise _bad(f"status must be a list of {n} of {', '.join(_STATUSES)}")
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _bad("parameters must be an object")
    if "min_payout" in parameters:
        _uint(parameters["min_payout"], "parameters.min_payout")
    if parameters.get("cap_units") is not None:
        _uint(parameters["cap_units"], "parameters.cap_units")
    z = parameters.get("z", 1.96)
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not (math.isfinite(z) and z >= 0):
        raise _bad(f"parameters.z must be a finite number >= 0, got {z!r}")
    source = data.get("source")
    if source is not None and not (isinstance(source, str) and _HEX64.match(source)):
        raise _bad("source must be null or the 64-hex-digit result_hash of an attribution")
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise _bad("method must be null or a string")
    return {
        "names": names,
        "values": _finite_list(data["values"], "values", n),
        "stderr": None if stderr is None else _finite_list(stderr, "stderr", n),
        "pool": pool,
        "policy": policy,
        "share_digits": digits,
        "quantised": _uint_list(data["quantised"], "quantised", n),
        "amounts": _uint_list(data["amounts"], "amounts", n),
        "status": status,
        "parameters": parameters,
        "source": source,
        "method": method,
    }


def _relabel(status: list[str], policy: str, weights: list[Fraction]) -> list[str]:
    """``not_positive`` becomes ``rounded_to_zero`` where the policy weight is positive."""
    return [
        "rounded_to_zero" if s == "not_positive" and policy in POLICIES and w > 0 else s
        for s, w in zip(status, weights, strict=True)
    ]


class Allocation:
    """Exact integer payouts of a pool, with everything needed to recompute them.

    Attributes
    ----------
    amounts : dict[str, int]
        Payout per contributor in input order; ``sum(amounts.values()) == pool``.
    pool, policy, share_digits, grid
        The pool (int), the policy name, the precision of the share grid and its spacing
        ``Fraction(1, 10**share_digits)`` (``decimals`` is the deprecated old name of
        ``share_digits``).
    quantised : dict[str, int]
        The share of each contributor on the grid (``q_i``); amounts are the apportionment of
        ``pool`` in proportion to these integers.
    values, stderr : dict[str, float]
        The input values (and standard errors when known).
    status : dict[str, str]
        ``"paid"``, ``"capped"``, ``"below_min_payout"``, ``"not_positive"`` or
        ``"rounded_to_zero"`` (positive weight too small for the grid).
    source : str or None
        ``result_hash()`` of the Attribution the values came from.
    """

    def __init__(
        self,
        *,
        names: list[str],
        values: list[float],
        stderr: list[float] | None,
        pool: int,
        policy: str,
        share_digits: int | None,
        quantised: list[int],
        amounts: list[int],
        status: list[str],
        parameters: dict[str, Any] | None = None,
        source: str | None = None,
        method: str | None = None,
    ) -> None:
        self.names = list(names)
        self._values = [float(v) for v in values]
        self._stderr = None if stderr is None else [float(s) for s in stderr]
        self.pool = int(pool)
        self.policy = policy
        self.share_digits = share_digits
        self._quantised = [int(q) for q in quantised]
        self._amounts = [int(a) for a in amounts]
        self.parameters = dict(parameters or {})
        self._status = _relabel(status, policy, self.weights())
        self.source = source
        self.method = method

    # ----------------------------------------------------------------- accessors
    @property
    def amounts(self) -> dict[str, int]:
        return dict(zip(self.names, self._amounts, strict=True))

    @property
    def quantised(self) -> dict[str, int]:
        return dict(zip(self.names, self._quantised, strict=True))

    @property
    def values(self) -> dict[str, float]:
        return dict(zip(self.names, self._values, strict=True))

    @property
    def stderr(self) -> dict[str, float] | None:
        return None if self._stderr is None else dict(zip(self.names, self._stderr, strict=True))

    @property
    def status(self) -> dict[str, str]:
        return dict(zip(self.names, self._status, strict=True))

    @property
    def grid(self) -> Fraction | None:
        """Spacing of the share grid, ``Fraction(1, 10**share_digits)`` (None for settlements)."""
        return None if self.share_digits is None else Fraction(1, 10**self.share_digits)

    @property
    def decimals(self) -> int | None:
        """Deprecated old name of ``share_digits``."""
        warnings.warn(
            "Allocation.decimals is deprecated; use Allocation.share_digits (the precision of "
            "the share grid)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.share_digits

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> int:
        try:
            return self._amounts[self.names.index(str(name))]
        except ValueError:
            raise KeyError(f"no contributor named {name!r} in this allocation") from None

    def __repr__(self) -> str:
        paid = sum(1 for a in self._amounts if a > 0)
        return (
            f"Allocation(policy={self.policy!r}, pool={self.pool}, n={len(self)}, paid={paid}, "
            f"share_digits={self.share_digits})"
        )

    def weights(self) -> list[Fraction]:
        """The policy weight of each name, as exact fractions (zeros without a policy)."""
        if self.policy not in POLICIES:
            return [Fraction(0)] * len(self.names)
        return policy_weights(
            self.policy, self._values, self._stderr, self.parameters.get("z", 1.96)
        )[0]

    # ------------------------------------------------------------------- tables
    def to_frame(self) -> pd.DataFrame:
        """One row per contributor: value, (stderr), quantised share, amount, share of pool."""
        index = pd.Index(self.names, name="contributor")
        frame = pd.DataFrame({"value": self._values}, index=index)
        if self._stderr is not None:
            frame["stderr"] = self._stderr
        total_q = sum(self._quantised) or 1
        frame["quantised"] = pd.Series(self._quantised, index=index, dtype=object)
        frame["share"] = [q / total_q for q in self._quantised]
        frame["amount"] = pd.Series(self._amounts, index=index, dtype=object)
        frame["share_of_pool"] = [float(Fraction(a, self.pool or 1)) for a in self._amounts]
        frame["status"] = self._status
        return frame

    def plot(self, ax: Any = None, top: int | None = 30) -> Any:
        """Bar chart of each contributor's share of the pool."""
        from ..plots import plot_allocation

        pool = f"{self.pool:.4g}" if self.pool >= 10**6 else str(self.pool)
        title = f"allocation: {self.policy} (pool {pool} base units)"
        return plot_allocation(self.to_frame(), ax=ax, top=top, title=title)

    def _repr_html_(self) -> str:
        import html

        head = (
            f"<p><b>Allocation</b> &middot; policy <code>{html.escape(self.policy)}</code> &middot; "
            f"pool {self.pool} &middot; {len(self)} contributors"
        )
        if self.share_digits is not None:
            head += f" &middot; grid 10<sup>-{self.share_digits}</sup>"
        if self.source:
            head += f" &middot; source <code>{self.source[:12]}</code>"
        head += f" &middot; hash <code>{self.result_hash()[:12]}</code></p>"
        frame = self.to_frame().head(50)
        more = f"<p>({len(self) - 50} more rows)</p>" if len(self) > 50 else ""
        return head + frame.to_html(float_format=lambda v: f"{v:.6g}") + more

    # --------------------------------------------------------------- explanation
    def explain(self, contributor: str) -> Explanation:
        """The arithmetic behind one payout: value, weight, quantised share, quota, floor,
        remainder, extra unit and final amount (a dict; ``print`` it for readable lines)."""
        return explain_payout(self, str(contributor))

    def _cap_units(self) -> int | None:
        cap = self.parameters.get("cap_units")
        return None if cap is None else int(cap)

    def _min(self) -> int:
        return int(self.parameters.get("min_payout", 0))

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Canonical-JSON-able dict; integers are decimal strings (exact in any language)."""
        return {
            "format": FORMAT,
            "names": list(self.names),
            "values": list(self._values),
            "stderr": None if self._stderr is None else list(self._stderr),
            "pool": str(self.pool),
            "policy": self.policy,
            "decimals": self.share_digits,  # the file format's name for share_digits
            "quantised": [str(q) for q in self._quantised],
            "amounts": [str(a) for a in self._amounts],
            "status": list(self._status),
            "parameters": self.parameters,
            "source": self.source,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], verify: bool = True) -> Allocation:
        """Inverse of :meth:`to_dict`; recomputes and checks the amounts unless ``verify=False``.

        Every field is checked before any arithmetic: known fields only, unique names that
        follow the payee-identity rule, a known policy, a share grid in
        ``0..MAX_SHARE_DIGITS`` no coarser than one base unit of the pool, integers of at most
        100 digits, finite values, lists as long as ``names``. Raises
        :class:`VerificationError` (or :class:`ValidationError` for a file that is not an
        allocation at all).
        """
        allocation = cls(**_parse_fields(data))
        if verify:
            allocation.verify()
        return allocation

    def verify(self) -> Allocation:
        """Recompute the quantised shares, the amounts and the status; raise on any mismatch."""
        if sum(self._amounts) != self.pool:
            raise VerificationError(
                f"amounts sum to {sum(self._amounts)}, not to the pool {self.pool}"
            )
        if self.policy in POLICIES:
            expected_q = quantise_shares(self.weights(), int(self.share_digits or 0))
            if expected_q != self._quantised:
                raise VerificationError(
                    "the quantised shares do not follow from the values under policy "
                    f"{self.policy!r} and share_digits={self.share_digits}"
                )
        elif self.policy == ACCRUED:
            if self._quantised != self._amounts:
                raise VerificationError("a settlement's quantised shares must equal its amounts")
        else:
            raise VerificationError(f"unknown policy {self.policy!r}")
        if self.pool:
            try:
                result = apportion(
                    self.pool,
                    self._quantised,
                    self.names,
                    cap=self._cap_units(),
                    min_payout=self._min(),
                )
            except ValidationError as exc:
                raise VerificationError(
                    f"the recorded allocation cannot be recomputed: {exc}"
                ) from None
            if result.amounts != self._amounts:
                bad = [
                    n
                    for n, a, b in zip(self.names, result.amounts, self._amounts, strict=True)
                    if a != b
                ]
                raise VerificationError(
                    f"amounts of {bad[:5]} do not match the apportionment of the quantised shares"
                )
            if _relabel(result.status, self.policy, self.weights()) != self._status:
                raise VerificationError("the recorded status does not follow from the amounts")
        return self

    def recompute(self, values: Any) -> Allocation:
        """This allocation made again from ``values`` with its recorded policy and parameters.

        ``values`` is what :func:`allocate` takes (an Attribution, Series or dict); the pool,
        policy, share grid, minimum payout, cap and ``z`` are this allocation's. Used by the
        ledger to check that an allocation linked to a run follows from the run's values.
        """
        if self.policy not in POLICIES:
            raise ValidationError(
                f"an allocation with policy {self.policy!r} is not computed from values, so it "
                "cannot be recomputed from a run"
            )
        cap = self.parameters.get("cap")
        if cap is not None:
            cap = str(cap)
            cap = Fraction(cap[: -len(" of pool")]) if cap.endswith(" of pool") else int(cap)
        return allocate(
            values,
            self.pool,
            share_digits=self.share_digits,
            policy=self.policy,
            min_payout=self._min(),
            cap=cap,
            z=self.parameters.get("z", 1.96),
        )

    def result_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict` (no times: reproducible)."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write canonical JSON atomically; :meth:`load` reads and verifies it."""
        return atomic_write_bytes(path, canonical_json(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> Allocation:
        """Read an allocation written by :meth:`save` (and recompute it to check it)."""
        data = read_json(path, "allocation file")
        return cls.from_dict(data)

    @classmethod
    def from_amounts(
        cls, amounts: dict[str, int], *, policy: str = ACCRUED, parameters: dict | None = None
    ) -> Allocation:
        """An allocation that pays given exact integer amounts (used by ``Accrual.settle``).

        The amounts serve as their own weights (no grid: ``share_digits=None``), and the
        largest-remainder apportionment of their sum in proportion to themselves returns
        them unchanged, so :meth:`verify` holds.
        """
        if policy != ACCRUED:
            raise ValidationError(
                f"from_amounts makes settlements (policy {ACCRUED!r}); got policy {policy!r}"
            )
        names = [str(n) for n in amounts]
        check_ids(names, "contributor")
        ints = [
            check_int(f"amount of {n!r}", a, 0)
            for n, a in zip(names, amounts.values(), strict=True)
        ]
        status = ["paid" if a > 0 else "not_positive" for a in ints]
        return cls(
            names=names,
            values=[float(a) for a in ints],
            stderr=None,
            pool=sum(ints),
            policy=policy,
            share_digits=None,
            quantised=ints,
            amounts=ints,
            status=status,
            parameters=dict(parameters or {}, min_payout=0, cap_units=None),
        )
