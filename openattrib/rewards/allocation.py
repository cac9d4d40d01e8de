"""``allocate``: attribution values -> exact integer payouts that sum to the pool.

The payout path, every step exact and stated in the result:

1. **Policy** (see :mod:`openattrib.rewards.policies`): each value becomes a non-negative
   rational weight ``w_i`` (the float is read as the exact binary64 number it stands for).
2. **Fixed-point grid.** The exact shares ``w_i / sum(w)`` are rounded half-to-even onto the
   grid ``10**-decimals``: ``q_i = round(w_i * 10**decimals / sum(w))``, Python integers.
   Normalising before rounding makes the payout independent of the scale of the values, and
   publishing ``q_i`` lets anyone recompute the amounts with integer arithmetic alone.
3. **Apportionment** (see :mod:`openattrib.rewards.apportion`): minimum payout, cap, then the
   largest-remainder (Hamilton) method on the ``q_i``, ties broken by larger remainder, then
   larger ``q_i``, then contributor name in UTF-8 byte order (never by input order).
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_write_bytes, canonical_json, read_json
from ..errors import ValidationError, VerificationError
from .apportion import apportion, quantise_shares
from .explain import Explanation, explain_payout
from .policies import (
    POLICIES,
    check_cap,
    check_int,
    check_pool,
    coerce_values,
    policy_weights,
)

__all__ = ["allocate", "Allocation", "FORMAT"]

FORMAT = "openattrib.allocation/1"
MAX_DECIMALS = 100


def allocate(
    values: Any,
    pool: int,
    *,
    decimals: int = 18,
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
    decimals : int, default 18
        Digits of the fixed-point grid on which shares are stated: ``q_i`` is the share of
        contributor i in units of ``10**-decimals``. With ``pool > 10**decimals`` payouts are
        proportional to shares resolved to ``10**-decimals`` of the pool.
    policy : {"proportional", "efficient", "uncertainty_aware"}
        How values become weights; see :mod:`openattrib.rewards.policies`.
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
    decimals = check_int("decimals", decimals, 0)
    if decimals > MAX_DECIMALS:
        raise ValidationError(f"decimals must be at most {MAX_DECIMALS}, got {decimals}")
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
    quantised = quantise_shares(weights, decimals)
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
        decimals=decimals,
        quantised=quantised,
        amounts=result.amounts,
        status=result.status,
        parameters=parameters,
        source=source,
        method=method,
    )


def _int_list(raw: Any, name: str) -> list[int]:
    try:
        return [int(x) for x in raw]
    except (TypeError, ValueError):
        raise VerificationError(f"allocation field {name!r} must hold integers") from None


class Allocation:
    """Exact integer payouts of a pool, with everything needed to recompute them.

    Attributes
    ----------
    amounts : dict[str, int]
        Payout per contributor in input order; ``sum(amounts.values()) == pool``.
    pool, policy, decimals, grid
        The pool (int), the policy name, the grid digits and the grid spacing
        ``Fraction(1, 10**decimals)``.
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
        decimals: int | None,
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
        self.decimals = decimals
        self._quantised = [int(q) for q in quantised]
        self._amounts = [int(a) for a in amounts]
        self.parameters = dict(parameters or {})
        self._status = [
            "rounded_to_zero" if s == "not_positive" and policy in POLICIES and w > 0 else s
            for s, w in zip(status, self.weights(), strict=True)
        ]
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
        """Spacing of the share grid, ``Fraction(1, 10**decimals)`` (None for settlements)."""
        return None if self.decimals is None else Fraction(1, 10**self.decimals)

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
            f"decimals={self.decimals})"
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
        if self.decimals is not None:
            head += f" &middot; grid 10<sup>-{self.decimals}</sup>"
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
            "decimals": self.decimals,
            "quantised": [str(q) for q in self._quantised],
            "amounts": [str(a) for a in self._amounts],
            "status": list(self._status),
            "parameters": self.parameters,
            "source": self.source,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], verify: bool = True) -> Allocation:
        """Inverse of :meth:`to_dict`; recomputes and checks the amounts unless ``verify=False``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValidationError(
                f"not an openattrib allocation (format {found!r}, expected {FORMAT!r})"
            )
        try:
            allocation = cls(
                names=data["names"],
                values=data["values"],
                stderr=data.get("stderr"),
                pool=int(data["pool"]),
                policy=data["policy"],
                decimals=data.get("decimals"),
                quantised=_int_list(data["quantised"], "quantised"),
                amounts=_int_list(data["amounts"], "amounts"),
                status=data["status"],
                parameters=data.get("parameters"),
                source=data.get("source"),
                method=data.get("method"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"malformed allocation record: {exc}") from None
        if verify:
            allocation.verify()
        return allocation

    def verify(self) -> Allocation:
        """Recompute the quantised shares and the amounts; raise VerificationError on mismatch."""
        if sum(self._amounts) != self.pool:
            raise VerificationError(
                f"amounts sum to {sum(self._amounts)}, not to the pool {self.pool}"
            )
        if self.policy in POLICIES:
            expected_q = quantise_shares(self.weights(), int(self.decimals or 0))
            if expected_q != self._quantised:
                raise VerificationError(
                    "the quantised shares do not follow from the values under policy "
                    f"{self.policy!r} and decimals={self.decimals}"
                )
        if self.pool:
            expected = apportion(
                self.pool,
                self._quantised,
                self.names,
                cap=self._cap_units(),
                min_payout=self._min(),
            ).amounts
            if expected != self._amounts:
                bad = [
                    n for n, a, b in zip(self.names, expected, self._amounts, strict=True) if a != b
                ]
                raise VerificationError(
                    f"amounts of {bad[:5]} do not match the apportionment of the quantised shares"
                )
        return self

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
        cls, amounts: dict[str, int], *, policy: str = "accrued", parameters: dict | None = None
    ) -> Allocation:
        """An allocation that pays given exact integer amounts (used by ``Accrual.settle``).

        The amounts serve as their own weights (no grid: ``decimals=None``), and the
        largest-remainder apportionment of their sum in proportion to themselves returns
        them unchanged, so :meth:`verify` holds.
        """
        names = [str(n) for n in amounts]
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
            decimals=None,
            quantised=ints,
            amounts=ints,
            status=status,
            parameters=dict(parameters or {}, min_payout=0, cap_units=None),
        )
