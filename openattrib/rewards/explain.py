"""The arithmetic behind one payout, as numbers and as readable lines (``Allocation.explain``)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..errors import ValidationError
from .apportion import apportion

__all__ = ["Explanation", "explain_payout"]


class Explanation(dict):
    """The arithmetic behind one payout: a dict of the numbers; ``str()`` gives readable lines.

    Keys: ``contributor``, ``policy``, ``rule``, ``pool``, ``value``, ``stderr``, ``weight``
    (exact, as a fraction string), ``share_float``, ``decimals``, ``quantised`` (``q_i``),
    ``quantised_total``, ``status``, ``hamilton_pool`` and ``hamilton_weight`` (what the
    uncapped contributors share and the sum of their ``q``), ``quota``, ``floor``,
    ``remainder`` (exact fraction strings), ``remainder_rank``, ``leftover_units``,
    ``extra_unit``, ``amount`` and ``share_of_pool``.
    """

    @property
    def text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        e = self
        lines = [
            f"Payout of {e['contributor']!r} under policy {e['policy']!r} "
            f"(pool {e['pool']} base units)"
        ]

        def add(label: str, text: Any) -> None:
            lines.append(f"  {len(lines)}. {label:<16} {text}")

        stderr = f" (stderr {e['stderr']!r})" if e.get("stderr") is not None else ""
        add("value", f"{e['value']!r}{stderr}")
        if e["policy"] == "accrued":
            add("accrued", f"{e['quantised']} base units (the settled balance, used as weight)")
        else:
            add("weight", f"{e['rule']} = {e['weight_float']:.10g}")
            add(
                "share",
                f"weight / sum of weights = {e['weight_float']:.10g} / "
                f"{e['weight_total_float']:.10g} = {e['share_float']:.12g}",
            )
            add(
                "quantised share",
                f"round(share * 10**{e['decimals']}) = {e['quantised']} "
                f"(all contributors: {e['quantised_total']})",
            )
        status = e["status"]
        if status in ("not_positive", "rounded_to_zero"):
            add("amount", "0 (no positive weight: nothing to be paid in proportion to)")
        elif status == "below_min_payout":
            add("amount", f"0 (would be below min_payout={e['min_payout']}; redistributed)")
        elif status == "capped":
            add("amount", f"{e['amount']} (capped at {e['cap']}; the excess went to the others)")
        elif e["quota"] is None:
            add("amount", f"{e['amount']} (the pool is 0)")
        else:
            quota = Fraction(e["quota"])
            quota_text = str(quota) if quota.denominator == 1 else f"{e['quota_float']:.15g}"
            after_caps = " (pool left after capped contributors)" if e["capped_others"] else ""
            add(
                "quota",
                f"{e['hamilton_pool']} * {e['quantised']} / {e['hamilton_weight']} = "
                f"{quota_text}{after_caps}",
            )
            add("floor", str(e["floor"]))
            rank = e["remainder_rank"]
            rank_text = "" if rank is None else f", rank {rank} of the remainders"
            add(
                "remainder",
                f"{e['remainder']} = {e['remainder_float']:.6g}{rank_text}; "
                f"{e['leftover_units']} leftover unit(s) go to the largest remainders",
            )
            add("extra unit", f"+{e['extra_unit']}")
            add("amount", f"{e['amount']} ({100 * e['share_of_pool']:.6g}% of the pool)")
        return "\n".join(lines)


def explain_payout(allocation: Any, name: str) -> Explanation:
    """Recompute the apportionment of ``allocation`` and describe ``name``'s payout.

    ``allocation`` is an :class:`~openattrib.rewards.Allocation` (its public ``names``,
    ``quantised``, ``amounts``, ``status``, ``parameters``...); this module does not import
    it, since ``allocation`` imports this one.
    """
    names = allocation.names
    if name not in names:
        raise ValidationError(
            f"no contributor named {name!r} in this allocation; known: {names[:10]}"
        )
    i = names.index(name)
    quantised = list(allocation.quantised.values())
    amounts = list(allocation.amounts.values())
    status = allocation.status[name]
    cap = allocation.parameters.get("cap_units")
    cap = None if cap is None else int(cap)
    min_payout = int(allocation.parameters.get("min_payout", 0))
    trace = apportion(allocation.pool, quantised, names, cap=cap, min_payout=min_payout)
    weights = allocation.weights()
    weight_total = sum(weights, Fraction(0))
    q, hamilton_weight = quantised[i], trace.hamilton_weight
    quota = Fraction(trace.hamilton_pool * q, hamilton_weight) if hamilton_weight else None
    remainder = Fraction(trace.remainders[i], hamilton_weight) if hamilton_weight else None
    stderr = allocation.stderr
    return Explanation(
        contributor=name,
        policy=allocation.policy,
        rule=allocation.parameters.get("rule"),
        pool=allocation.pool,
        value=allocation.values[name],
        stderr=None if stderr is None else stderr[name],
        weight=str(weights[i]),
        weight_float=float(weights[i]),
        weight_total_float=float(weight_total),
        share_float=float(weights[i] / weight_total) if weight_total else 0.0,
        decimals=allocation.share_digits,
        quantised=q,
        quantised_total=sum(quantised),
        status=status,
        min_payout=min_payout,
        cap=cap,
        capped_others=any(s == "capped" for s in trace.status),
        hamilton_pool=trace.hamilton_pool,
        hamilton_weight=hamilton_weight,
        quota=None if quota is None else str(quota),
        quota_float=None if quota is None else float(quota),
        floor=trace.floors[i],
        remainder=None if remainder is None else str(remainder),
        remainder_float=None if remainder is None else float(remainder),
        remainder_rank=trace.remainder_rank[i],
        leftover_units=trace.leftover,
        extra_unit=amounts[i] - trace.floors[i] if status == "paid" else 0,
        amount=amounts[i],
        share_of_pool=float(Fraction(amounts[i], allocation.pool or 1)),
    )
