"""Tests of oa.rewards.allocate / Allocation: exact integer payouts."""

from __future__ import annotations

import json
import math
import random
import unicodedata
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from openattrib._ids import id_problem
from openattrib.errors import ValidationError, VerificationError
from openattrib.result import Attribution
from openattrib.rewards import Allocation, allocate, largest_remainder

# ----------------------------------------------------------------------------- strategies
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-9, max_value=1e6, allow_nan=False, allow_infinity=False)
names_st = (
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        ),
        min_size=1,
        max_size=6,
    )
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(lambda s: id_problem(s) is None)  # payee ids follow openattrib._ids' rule
)


@st.composite
def value_dicts(draw, min_size=1, max_size=12, tie_prone=False):
    names = draw(
        st.lists(
            names_st,
            min_size=min_size,
            max_size=max_size,
            unique_by=lambda s: unicodedata.normalize("NFKC", s),
        )
    )
    if tie_prone:  # few distinct values: exercises the tie-breaks
        pool_of_values = draw(st.lists(finite, min_size=1, max_size=3))
        values = [draw(st.sampled_from(pool_of_values)) for _ in names]
    else:
        values = [draw(finite) for _ in names]
    values[draw(st.integers(0, len(names) - 1))] = draw(positive)  # at least one positive
    return dict(zip(names, values, strict=True))


pools = st.one_of(st.integers(0, 1000), st.integers(0, 10**30))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exact_quotas(values: dict[str, float], pool: int) -> dict[str, Fraction]:
    """Independent oracle: pool * max(v, 0) / sum(max(v, 0)) in exact rationals."""
    weights = {n: max(Fraction(v), Fraction(0)) for n, v in values.items()}
    total = sum(weights.values())
    return {n: pool * w / total for n, w in weights.items()}


# ----------------------------------------------------------------------------- properties
@SETTINGS
@given(values=value_dicts(), pool=pools, decimals=st.integers(6, 40))
def test_amounts_are_non_negative_ints_summing_to_pool(values, pool, decimals):
    if 10**decimals < pool:  # a grid coarser than one unit of the pool is refused
        with pytest.raises(ValidationError, match="coarser than one base unit"):
            allocate(values, pool, share_digits=decimals)
        return
    allocation = allocate(values, pool, share_digits=decimals)
    amounts = allocation.amounts
    assert list(amounts) == list(values)  # input order
    assert all(type(a) is int and a >= 0 for a in amounts.values())
    assert sum(amounts.values()) == pool


@SETTINGS
@given(values=value_dicts(), pool=pools, policy=st.sampled_from(["proportional", "efficient"]))
def test_sum_is_exact_for_every_policy(values, pool, policy):
    stderr = {n: abs(v) / 3 for n, v in values.items()}
    for pol, kwargs in ((policy, {}), ("uncertainty_aware", {"stderr": stderr, "z": 0.5})):
        try:
            allocation = allocate(values, pool, policy=pol, **kwargs)
        except ValidationError as exc:  # every lower bound can be <= 0
            assert pol == "uncertainty_aware" and "no contributor has a positive weight" in str(exc)
            continue
        assert sum(allocation.amounts.values()) == pool
        assert min(allocation.amounts.values()) >= 0


@SETTINGS
@given(values=value_dicts(tie_prone=True), pool=pools, seed=st.integers(0, 2**32 - 1))
def test_permuting_contributors_does_not_change_amounts(values, pool, seed):
    items = list(values.items())
    random.Random(seed).shuffle(items)
    a = allocate(values, pool).amounts
    b = allocate(dict(items), pool).amounts
    assert a == b
    series = pd.Series(dict(items))
    assert allocate(series, pool).amounts == a


@SETTINGS
@given(values=value_dicts(), pool=pools, exponent=st.integers(-30, 30))
def test_scaling_by_a_power_of_two_never_changes_amounts(values, pool, exponent):
    scale = 2.0**exponent  # exactly representable: every scaled value is exact
    scaled = {n: v * scale for n, v in values.items()}
    assume(all(math.isfinite(v) and (v == 0) == (values[n] == 0) for n, v in scaled.items()))
    assume(all(Fraction(scaled[n]) == Fraction(v) * Fraction(scale) for n, v in values.items()))
    assert allocate(scaled, pool).amounts == allocate(values, pool).amounts


@SETTINGS
@given(
    ints=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=10),
    pool=pools,
    exponent=st.integers(0, 6),
)
def test_scaling_by_a_power_of_ten_with_exact_products(ints, pool, exponent):
    assume(any(i > 0 for i in ints))
    values = {f"c{i}": float(v) for i, v in enumerate(ints)}
    scaled = {n: v * 10.0**exponent for n, v in values.items()}  # integers < 2**53: exact
    assert allocate(scaled, pool).amounts == allocate(values, pool).amounts


@SETTINGS
@given(values=value_dicts(), pool=st.integers(0, 10**12), scale=st.floats(1e-3, 1e3))
def test_any_positive_scaling_moves_amounts_by_at_most_rounding(values, pool, scale):
    scaled = {n: v * scale for n, v in values.items()}
    assume(all((v > 0) == (values[n] > 0) for n, v in scaled.items()))
    a, b = allocate(values, pool).amounts, allocate(scaled, pool).amounts
    assert all(abs(a[n] - b[n]) <= 1 + pool // 10**11 for n in values)


@pytest.mark.slow
@SETTINGS
@given(values=value_dicts(tie_prone=True), pool=pools)
def test_larger_value_never_gets_a_smaller_amount(values, pool):
    allocation = allocate(values, pool)
    amounts, q = allocation.amounts, allocation.quantised
    for i in values:
        for j in values:
            if values[i] >= values[j]:
                assert amounts[i] >= amounts[j] - 1
                if q[i] > q[j]:
                    assert amounts[i] >= amounts[j]


@SETTINGS
@given(values=value_dicts(), pool=pools)
def test_quota_rule_against_exact_rational_shares(values, pool):
    # with a grid far finer than the pool, each amount is within one unit of its exact quota
    allocation = allocate(values, pool, share_digits=45)
    quotas = exact_quotas(values, pool)
    for name, amount in allocation.amounts.items():
        assert abs(amount - quotas[name]) < 1 + Fraction(1, 10**6)


# -------------------------------------------------------------- published apportionments
# Hamilton / largest-remainder results printed in textbooks and references.
PUBLISHED = [
    # Wikipedia, "Largest remainder method", technical evaluation (Alabama paradox), mirrored at
    # https://www.liquisearch.com/largest_remainder_method/technical_evaluation_and_paradoxes
    ([1500, 1500, 900, 500, 500, 200], 25, [7, 7, 4, 3, 3, 1]),
    ([1500, 1500, 900, 500, 500, 200], 26, [8, 8, 5, 2, 2, 1]),
    # COMAP, For All Practical Purposes, 10th ed., ch. 14, exercise 15 (Hare/Hamilton, house
    # sizes 89, 90, 91): http://digfir-published.macmillanusa.com/fapp10e/asset/ch14/supp_wins/
    # questions/fapp10e-ch14-exe-044.html
    ([5576330, 1387342, 3334241, 7512860, 310968], 89, [27, 7, 16, 37, 2]),
    ([5576330, 1387342, 3334241, 7512860, 310968], 90, [28, 7, 17, 37, 1]),
    ([5576330, 1387342, 3334241, 7512860, 310968], 91, [28, 7, 17, 38, 1]),
    # electowiki, "Alabama paradox" (https://electowiki.org/wiki/Alabama_paradox): 56.7%,
    # 38.5%, 4.2%, 0.6% with 323 and 324 seats
    ([567, 385, 42, 6], 323, [183, 124, 14, 2]),
    ([567, 385, 42, 6], 324, [184, 125, 13, 2]),
    # net.math, "Alabama paradox", 15 Mar 1982 (Usenet Oldnews Archive): 3%, 7%, 90%
    ([3, 7, 90], 49, [2, 3, 44]),
    ([3, 7, 90], 51, [1, 4, 46]),
    # Wikipedia "Largest remainder method" example: 10 seats, Hare quota
    ([47000, 16000, 15800, 12000, 6100, 3100], 10, [5, 2, 1, 1, 1, 0]),
]


@pytest.mark.parametrize(("votes", "seats", "expected"), PUBLISHED)
def test_largest_remainder_matches_published_apportionments(votes, seats, expected):
    names = [f"party{i}" for i in range(len(votes))]
    assert largest_remainder(seats, votes, names)[0] == expected
    values = {n: float(v) for n, v in zip(names, votes, strict=True)}
    for decimals in (18, 40):
        assert list(allocate(values, seats, share_digits=decimals).amounts.values()) == expected
    shuffled = dict(reversed(list(values.items())))
    assert allocate(shuffled, seats).amounts == dict(zip(names, expected, strict=True))


def test_tie_break_is_remainder_then_weight_then_utf8_name():
    # equal remainders and weights: the leftover unit goes to the smallest name (UTF-8 bytes)
    values = {"b": 1.0, "a": 1.0, "é": 1.0}
    assert allocate(values, 4).amounts == {"b": 1, "a": 2, "é": 1}
    assert allocate(dict(reversed(values.items())), 4).amounts == {"é": 1, "a": 2, "b": 1}
    # "Z" (0x5A) sorts before "a" (0x61) in UTF-8 byte order
    assert allocate({"a": 1.0, "Z": 1.0}, 1).amounts == {"a": 0, "Z": 1}


# ----------------------------------------------------------------------------- policies
def test_proportional_pays_nothing_to_non_positive_values():
    allocation = allocate({"a": 3.0, "b": 1.0, "c": 0.0, "d": -2.0}, 100)
    assert allocation.amounts == {"a": 75, "b": 25, "c": 0, "d": 0}
    assert allocation.status["d"] == "not_positive"


def test_efficient_equals_proportional_without_negative_values():
    values = {"a": 0.3, "b": 0.1, "c": 0.0}
    assert allocate(values, 10**6, policy="efficient").amounts == allocate(values, 10**6).amounts


def test_efficient_shifts_by_the_most_harmful_value():
    # weights 3 - (-1) = 4, 1 + 1 = 2, 0 + 1 = 1, -1 + 1 = 0 -> 4:2:1:0 of 70
    allocation = allocate({"a": 3.0, "b": 1.0, "c": 0.0, "d": -1.0}, 70, policy="efficient")
    assert allocation.amounts == {"a": 40, "b": 20, "c": 10, "d": 0}
    # pay differences are proportional to value differences: 10 units per unit of value
    amounts = allocation.amounts
    assert (amounts["a"] - amounts["b"]) / (3 - 1) == (amounts["c"] - amounts["d"]) / (0 - -1)


def test_uncertainty_aware_pays_the_lower_bound():
    attribution = Attribution(
        [0.5, 0.5, 0.1], ["lucky", "sure", "small"], stderr=[0.2, 0.0, 0.0], players="contributors"
    )
    allocation = allocate(attribution, 1000, policy="uncertainty_aware", z=2.0)
    # bounds: 0.5 - 0.4 = 0.1, 0.5, 0.1 -> 1:5:1
    expected = {
        n: pytest.approx(1000 * w / 0.7, abs=1)
        for n, w in [("lucky", 0.1), ("sure", 0.5), ("small", 0.1)]
    }
    assert allocation.amounts == expected
    assert allocation.amounts["lucky"] < allocate(attribution, 1000).amounts["lucky"]
    assert allocation.parameters["z"] == 2.0


def test_uncertainty_aware_floors_negative_bounds_at_zero():
    allocation = allocate(
        {"a": 1.0, "b": 0.1}, 10, policy="uncertainty_aware", stderr={"a": 0.1, "b": 1.0}
    )
    assert allocation.amounts == {"a": 10, "b": 0}


# ------------------------------------------------------------------- caps and minimums
def naive_apportion(pool, weights, cap=None, min_payout=0):
    """Independent, slow reference: repeat {cap everyone above, Hamilton} and drop one at a time."""
    active = sorted((n for n in weights if weights[n] > 0), key=lambda n: (-weights[n], n.encode()))
    while True:
        if not active or (cap is not None and len(active) * cap < pool):
            return None  # unpayable
        amounts = dict.fromkeys(weights, 0)
        rest, remaining = list(active), pool
        while True:
            total = sum(weights[n] for n in rest)
            over = [n for n in rest if Fraction(remaining * weights[n], total) > cap] if cap else []
            if not over:
                break
            for n in over:
                amounts[n] = cap
                rest.remove(n)
            remaining -= cap * len(over)
        total = sum(weights[n] for n in rest)
        quota = {n: Fraction(remaining * weights[n], total) for n in rest}
        for n in rest:
            amounts[n] = math.floor(quota[n])
        leftover = remaining - sum(amounts[n] for n in rest)
        order = sorted(
            rest, key=lambda n: (-(quota[n] - math.floor(quota[n])), -weights[n], n.encode())
        )
        for n in order[:leftover]:
            amounts[n] += 1
        low = active[-1]
        if amounts[low] >= min_payout:
            return amounts
        active.pop()


@SETTINGS
@given(
    weights=st.lists(st.integers(0, 50), min_size=1, max_size=9),
    pool=st.integers(0, 500),
    cap=st.one_of(st.none(), st.integers(1, 300)),
    min_payout=st.integers(0, 60),
)
def test_cap_and_min_payout_match_a_naive_reference(weights, pool, cap, min_payout):
    assume(any(weights))
    values = {f"c{i}": float(w) for i, w in enumerate(weights)}
    # the reference apportions the stated grid shares round(w_i / W * 10**30), recomputed here
    total = sum(Fraction(v) for v in values.values())
    grid = {n: round(Fraction(v) / total * 10**30) for n, v in values.items()}
    reference = naive_apportion(pool, grid, cap, min_payout) if pool else dict.fromkeys(values, 0)
    try:
        allocation = allocate(values, pool, cap=cap, min_payout=min_payout, share_digits=30)
    except ValidationError as exc:
        assert "cannot be paid" in str(exc) or "below min_payout" in str(exc)
        assert reference is None
        return
    amounts = allocation.amounts
    assert sum(amounts.values()) == pool
    assert all(a == 0 or a >= min_payout for a in amounts.values()) or pool == 0
    if cap is not None:
        assert max(amounts.values()) <= cap
    assert amounts == reference


def test_cap_as_fraction_of_pool_redistributes_the_excess():
    allocation = allocate({"a": 7.0, "b": 2.0, "c": 1.0}, 1000, cap="0.4")
    assert allocation.amounts == {"a": 400, "b": 400, "c": 200}
    assert allocation.status == {"a": "capped", "b": "paid", "c": "paid"}
    assert allocate({"a": 7.0, "b": 2.0, "c": 1.0}, 1000, cap=400).amounts == allocation.amounts


def test_min_payout_drops_the_smallest_one_at_a_time():
    # dropping everyone below 26 at once would leave nobody; one at a time keeps three
    allocation = allocate({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}, 100, min_payout=26)
    assert allocation.amounts == {"a": 34, "b": 33, "c": 33, "d": 0}
    assert allocation.status["d"] == "below_min_payout"
    allocation = allocate({"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05}, 100, min_payout=10)
    assert allocation.amounts == {"a": 53, "b": 31, "c": 16, "d": 0}


# --------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": {"a": 1.0}, "pool": -1}, "pool must be non-negative"),
        ({"values": {"a": 1.0}, "pool": 1e21}, "10**21"),
        ({"values": {"a": 1.0}, "pool": True}, "pool must be an int"),
        ({"values": {"a": 0.0, "b": 0.0}, "pool": 10}, "every value is zero"),
        ({"values": {"a": -1.0, "b": -2.0}, "pool": 10}, "no contributor has a positive weight"),
        ({"values": {"a": float("nan"), "b": 1.0}, "pool": 10}, "NaN or infinite"),
        ({"values": {"a": float("inf")}, "pool": 10}, "NaN or infinite"),
        ({"values": {1: 1.0, "1": 2.0}, "pool": 10}, "appears more than once"),
        ({"values": {"a": 1.0}, "pool": 10, "policy": "fair"}, "unknown policy 'fair'"),
        ({"values": {"a": 1.0, "b": 1.0}, "pool": 100, "cap": 10}, "cannot be paid with cap=10"),
        ({"values": {"a": 1.0}, "pool": 100, "cap": "1.5"}, "fractional cap must be in (0, 1]"),
        ({"values": {"a": 1.0}, "pool": 100, "cap": 5, "min_payout": 10}, "below min_payout"),
        ({"values": {"a": 1.0}, "pool": 10, "min_payout": 11}, "lower min_payout"),
        ({"values": {"a": 1.0}, "pool": 10, "share_digits": -1}, "share_digits must be >= 0"),
        (
            {"values": {"a": 1.0}, "pool": 10, "policy": "uncertainty_aware"},
            "needs standard errors",
        ),
        ({"values": [1.0, 2.0], "pool": 10}, "must be an Attribution, a pandas Series or a dict"),
        ({"values": {}, "pool": 10}, "empty"),
    ],
)
def test_invalid_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValidationError, match=None) as info:
        allocate(**kwargs)
    assert message in str(info.value)


def test_duplicate_series_index_and_point_level_attribution_are_refused():
    with pytest.raises(ValidationError, match="appears more than once"):
        allocate(pd.Series([1.0, 2.0], index=["a", "a"]), 10)
    points = Attribution([1.0, 2.0], ["0", "1"], players="points", contributors=["a", "b"])
    with pytest.raises(ValidationError, match="by_contributor"):
        allocate(points, 10)
    assert allocate(points.by_contributor(), 3).amounts == {"a": 1, "b": 2}


# ----------------------------------------------------------------- the Allocation object
def make_allocation():
    attribution = Attribution(
        [0.4, 0.25, -0.05, 0.1],
        ["alice", "bob", "carol", "dave"],
        stderr=[0.01, 0.05, 0.02, 0.01],
        method="permutation_shapley",
        players="contributors",
        seed=3,
    )
    return attribution, allocate(attribution, 10**21, policy="uncertainty_aware", cap="0.5")


def test_allocation_records_its_inputs_and_source():
    attribution, allocation = make_allocation()
    assert allocation.source == attribution.result_hash()
    assert allocation.pool == 10**21 and allocation.policy == "uncertainty_aware"
    # 3 contributors share 10**21 units: the default grid has 6 digits more than 3 * 10**21
    assert allocation.share_digits == 28 and allocation.grid == Fraction(1, 10**28)
    assert sum(allocation.quantised.values()) == pytest.approx(10**28, abs=4)
    assert allocation.values["carol"] == -0.05 and allocation.stderr["bob"] == 0.05
    frame = allocation.to_frame()
    assert list(frame.index) == ["alice", "bob", "carol", "dave"]
    assert {"value", "stderr", "quantised", "share", "amount", "share_of_pool", "status"} <= set(
        frame
    )
    assert sum(frame["amount"]) == 10**21
    assert "Allocation" in allocation._repr_html_() and "alice" in allocation._repr_html_()


def test_save_load_roundtrip_and_hash(tmp_path):
    _, allocation = make_allocation()
    path = allocation.save(tmp_path / "alloc.json")
    loaded = Allocation.load(path)
    assert loaded.amounts == allocation.amounts and loaded.result_hash() == allocation.result_hash()
    raw = path.read_bytes()
    assert (
        raw
        == json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )  # canonical JSON
    other = allocate(dict(allocation.values), 10**21 + 1)
    assert other.result_hash() != allocation.result_hash()
    assert len(allocation.result_hash()) == 64


def test_load_detects_tampered_amounts(tmp_path):
    _, allocation = make_allocation()
    data = allocation.to_dict()
    data["amounts"][0] = str(int(data["amounts"][0]) - 1)
    data["amounts"][1] = str(int(data["amounts"][1]) + 1)  # still sums to the pool
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(VerificationError, match="do not match"):
        Allocation.load(tmp_path / "bad.json")
    data = allocation.to_dict()
    data["values"][0] = 0.9
    with pytest.raises(VerificationError, match="quantised shares do not follow"):
        Allocation.from_dict(data)


def test_explain_gives_the_arithmetic_of_one_payout():
    allocation = allocate({"alice": 0.5, "bob": 0.25, "carol": -0.1}, 100)
    e = allocation.explain("bob")
    assert e["value"] == 0.25 and e["quantised"] == 333333333333333333
    assert e["floor"] == 33 and e["extra_unit"] == 0 and e["amount"] == 33
    assert e["floor"] + e["extra_unit"] == e["amount"]
    assert Fraction(e["quota"]) == Fraction(100 * 333333333333333333, 10**18)
    assert Fraction(e["remainder"]) == Fraction(e["quota"]) - e["floor"]
    text = str(e)
    for piece in ("bob", "max(value, 0)", "33", "remainder", "round(share * 10**18)"):
        assert piece in text
    alice = allocation.explain("alice")
    assert alice["extra_unit"] == 1 and alice["remainder_rank"] == 1
    assert "no positive weight" in str(allocation.explain("carol"))
    with pytest.raises(ValidationError, match="no contributor named"):
        allocation.explain("mallory")


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    _, allocation = make_allocation()
    ax = allocation.plot()
    assert len(ax.patches) == 4
    import matplotlib.pyplot as plt

    plt.close("all")


def test_huge_pools_stay_exact():
    values = {f"c{i}": float(v) for i, v in enumerate(np.random.default_rng(0).random(50))}
    pool = 10**60 + 7
    allocation = allocate(values, pool, share_digits=70)
    assert sum(allocation.amounts.values()) == pool
    quotas = exact_quotas(values, pool)
    assert all(abs(a - quotas[n]) < 1 + Fraction(1, 10**6) for n, a in allocation.amounts.items())


def test_fractional_cap_below_one_base_unit_is_a_clear_error():
    with pytest.raises(ValidationError, match="0 base units"):
        allocate({"a": 1.0, "b": 2.0}, pool=100, cap="0.001")
