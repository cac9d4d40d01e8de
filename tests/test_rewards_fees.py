"""Tests of per-inference fee splits and their accrual (oa.rewards.split_fee / Accrual)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openattrib.errors import ValidationError, VerificationError
from openattrib.result import Attribution
from openattrib.rewards import Accrual, Allocation, split_fee

SHARES = {"model": "0.3", "stakers": "0.2", "contributors": "0.5"}
CONTRIBUTORS = [f"c{i}" for i in range(8)]


def test_split_fee_example_by_hand():
    split = split_fee(
        1000, {"a": 0.2, "b": 0.1, "c": -0.3}, {"model": "0.5", "contributors": "0.5"}, "0.1"
    )
    assert split.parties == {"platform": 100, "model": 450, "contributors": 450}
    assert split.contributors == {"a": 300, "b": 150, "c": 0}
    assert split.reconcile()


def test_only_positive_attributions_share_the_contributors_part():
    attribution = Attribution([0.5, -0.2, 0.0, 0.25], ["a", "b", "c", "d"], players="contributors")
    split = split_fee(999, attribution, SHARES)
    assert split.contributors["b"] == 0 and split.contributors["c"] == 0
    assert split.contributors["a"] > split.contributors["d"] > 0
    assert sum(split.contributors.values()) == split.parties["contributors"]


def test_no_positive_attribution_sends_the_part_to_the_fallback_party():
    split = split_fee(101, {"a": -1.0, "b": 0.0}, SHARES)
    assert split.contributors == {"a": 0, "b": 0}
    assert split.parties["contributors"] == 0 and split.redirected_to == "model"
    assert sum(split.parties.values()) == 101
    split = split_fee(101, {"a": -1.0}, SHARES, fallback="stakers")
    assert split.redirected_to == "stakers"


@settings(max_examples=200, deadline=None)
@given(
    fee=st.integers(0, 10**30),
    parts=st.lists(st.integers(0, 1000), min_size=1, max_size=5),
    platform=st.fractions(min_value=0, max_value=1, max_denominator=1000),
    values=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=6),
)
def test_every_party_gets_the_floor_or_ceiling_of_its_entitlement(fee, parts, platform, values):
    if not any(parts):
        parts = [*parts[:-1], 1]
    total = sum(parts)
    names = [f"p{i}" for i in range(len(parts) - 1)] + ["contributors"]
    shares = {n: Fraction(p, total) for n, p in zip(names, parts, strict=True)}
    attribution = {f"c{i}": v for i, v in enumerate(values)}
    split = split_fee(fee, attribution, shares, platform_fee=platform)
    assert split.reconcile()
    redirected = split.redirected_to
    entitlement = {"platform": fee * platform} if platform else {}
    entitlement.update({n: fee * (1 - platform) * s for n, s in shares.items()})
    for party, amount in split.parties.items():
        expected = entitlement.get(party, Fraction(0))
        if party == "contributors" and redirected:
            assert amount == 0
        elif party == redirected:  # its own entitlement plus the contributors' part
            moved = entitlement["contributors"]
            low = math.floor(expected) + math.floor(moved)
            assert low <= amount <= math.ceil(expected) + math.ceil(moved)
        else:
            assert math.floor(expected) <= amount <= math.ceil(expected)  # quota rule
    if not redirected:
        positive = {n: Fraction(v) for n, v in attribution.items() if v > 0}
        for name, amount in split.contributors.items():
            if name not in positive:
                assert amount == 0


@pytest.mark.slow
def test_ten_thousand_inferences_reconcile_exactly():
    rng = np.random.default_rng(2024)
    accrual = Accrual(SHARES, platform_fee="0.05")
    expected_parties: dict[str, int] = {}
    expected_contributors: dict[str, int] = {}
    collected = 0
    for _ in range(10_000):
        fee = int(rng.integers(0, 10**15)) * int(rng.integers(1, 10**4))
        k = int(rng.integers(1, len(CONTRIBUTORS) + 1))
        names = rng.choice(CONTRIBUTORS, size=k, replace=False).tolist()
        values = rng.normal(0.0, 1.0, size=k).tolist()
        split = accrual.add(fee, dict(zip(names, values, strict=True)))
        assert sum(split.parties.values()) == fee
        assert sum(split.contributors.values()) == split.parties["contributors"]
        for party, amount in split.parties.items():
            expected_parties[party] = expected_parties.get(party, 0) + amount
        for name, amount in split.contributors.items():
            expected_contributors[name] = expected_contributors.get(name, 0) + amount
        collected += fee
    assert accrual.collected == collected and accrual.n_inferences == 10_000
    assert accrual.reconcile()
    assert accrual.balances == expected_parties
    assert accrual.contributor_balances == expected_contributors
    assert sum(accrual.balances.values()) == collected
    # each party's total is within one unit per inference of its exact entitlement
    assert abs(accrual.balances["platform"] - Fraction(collected, 20)) <= 10_000
    settlement = accrual.settle()
    assert isinstance(settlement, Allocation)
    assert settlement.amounts == expected_contributors
    assert settlement.pool == expected_parties["contributors"]
    assert settlement.parameters["fees_collected"] == str(collected)
    assert settlement.verify() is settlement
    # the next period starts from zero; lifetime totals keep counting
    assert accrual.collected == 0 and accrual.contributor_balances == {}
    accrual.add(10, {"c0": 1.0})
    assert accrual.total_collected == collected + 10
    assert accrual.settle().amounts == {"c0": 5}
    assert [s["period"] for s in accrual.settlements] == [0, 1]
    assert accrual.settlements[0]["allocation_hash"] == settlement.result_hash()


def test_settlement_roundtrips_through_json(tmp_path):
    accrual = Accrual({"model": "1/4", "contributors": "3/4"})
    for fee, values in [(100, {"a": 1.0, "b": 2.0}), (37, {"b": 1.0, "c": 5.0})]:
        accrual.add(fee, values)
    settlement = accrual.settle()
    loaded = Allocation.load(settlement.save(tmp_path / "settle.json"))
    assert loaded.amounts == settlement.amounts and loaded.policy == "accrued"
    text = str(loaded.explain("b"))
    assert "accrued" in text


def test_accrual_detects_tampered_balances():
    accrual = Accrual(SHARES)
    accrual.add(100, {"a": 1.0})
    accrual.balances["model"] += 1
    with pytest.raises(VerificationError, match="does not reconcile"):
        accrual.reconcile()


@pytest.mark.parametrize(
    ("shares", "platform_fee", "message"),
    [
        ({"model": "0.5", "contributors": "0.4"}, 0, "sum to exactly 1"),
        ({"model": 1 / 3, "stakers": 1 / 3, "contributors": 1 / 3}, 0, "Fraction(1, 3)"),
        ({"model": "0.5", "stakers": "0.5"}, 0, "must include the 'contributors'"),
        ({"platform": "0.5", "contributors": "0.5"}, 0, "reserved"),
        ({"model": "-0.5", "contributors": "1.5"}, 0, "non-negative"),
        ({"model": "half", "contributors": "0.5"}, 0, "decimal string"),
        ({"contributors": 1}, "1.5", "platform_fee must be in [0, 1]"),
        ({}, 0, "non-empty dict"),
    ],
)
def test_invalid_shares_raise_clear_errors(shares, platform_fee, message):
    with pytest.raises(ValidationError) as info:
        split_fee(100, {"a": 1.0}, shares, platform_fee)
    assert message in str(info.value)
    with pytest.raises(ValidationError):
        Accrual(shares, platform_fee)


def test_share_formats_are_exact():
    thirds = {"model": Fraction(1, 3), "stakers": Fraction(1, 3), "contributors": Fraction(1, 3)}
    assert sum(split_fee(100, {"a": 1.0}, thirds).parties.values()) == 100
    floats = {"model": 0.1, "stakers": 0.2, "contributors": 0.7}  # read as decimals: sums to 1
    assert split_fee(1000, {"a": 1.0}, floats).parties == {
        "model": 100,
        "stakers": 200,
        "contributors": 700,
    }


@pytest.mark.parametrize(
    ("fee", "message"), [(-1, "fee must be >= 0"), (1.5, "fee must be an int")]
)
def test_invalid_fee(fee, message):
    with pytest.raises(ValidationError, match=message):
        split_fee(fee, {"a": 1.0}, SHARES)
