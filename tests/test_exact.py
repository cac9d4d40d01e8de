"""Exact semivalues against closed forms, shap's exact explainer, and the game-theory axioms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import openattrib as oa
from openattrib import toy_games as tg

TOY_GAMES = [
    tg.SymmetricVotingGame(7),
    tg.SymmetricVotingGame(6),
    tg.WeightedVotingGame(np.array([4, 3, 2, 1, 1]), quota=6),
    tg.WeightedVotingGame(np.array([5, 5, 1, 1, 1, 1]), quota=8),
    tg.GloveGame(3, 5),
    tg.GloveGame(2, 2),
    tg.AirportGame([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]),
    tg.AdditiveGame([0.5, -1.0, 2.0, 0.0]),
    tg.UnanimityGame(6, [1, 3, 4]),
]


@pytest.mark.parametrize("game", TOY_GAMES, ids=lambda g: type(g).__name__)
def test_exact_shapley_equals_closed_form(game):
    result = oa.exact_shapley(game, progress=False)
    np.testing.assert_allclose(result.values, game.shapley_values(), rtol=1e-12, atol=1e-12)
    assert result.method == "exact_shapley"
    assert result.stderr is None


@pytest.mark.parametrize("game", TOY_GAMES, ids=lambda g: type(g).__name__)
def test_exact_banzhaf_equals_closed_form(game):
    result = oa.exact_banzhaf(game, progress=False)
    np.testing.assert_allclose(result.values, game.banzhaf_values(), rtol=1e-12, atol=1e-12)


def test_glove_game_textbook_values():
    # one left glove, two right gloves: the classic (2/3, 1/6, 1/6)
    values = oa.exact_shapley(tg.GloveGame(1, 2), progress=False).values
    np.testing.assert_allclose(values, [2 / 3, 1 / 6, 1 / 6])


def _table_game(table: np.ndarray, n: int) -> oa.Game:
    bits = 1 << np.arange(n)

    def fn(masks: np.ndarray) -> np.ndarray:
        return table[masks.astype(np.int64) @ bits]

    return oa.Game.from_function(fn, n, batched=True)


@pytest.mark.slow  # shap's exact explainer
@pytest.mark.parametrize("n", [2, 5, 8, 10])
def test_exact_shapley_equals_shap_exact_explainer(n):
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(n)
    table = rng.normal(size=1 << n)
    game = _table_game(table, n)
    bits = 1 << np.arange(n)

    def model(X: np.ndarray) -> np.ndarray:
        return table[(X > 0.5).astype(np.int64) @ bits]

    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    explanation = shap.explainers.Exact(model, masker)(np.ones((1, n)))
    ours = oa.exact_shapley(game, progress=False).values
    np.testing.assert_allclose(ours, explanation.values[0], rtol=1e-9, atol=1e-9)


def test_loo_is_grand_minus_leave_out():
    game = tg.AirportGame([1.0, 2.0, 2.0, 5.0])
    # removing the unique highest-cost player drops v(N) from 5 to 2; the others change nothing
    np.testing.assert_allclose(oa.loo(game, progress=False).values, [0, 0, 0, 3.0])


def test_exact_refuses_above_limit_and_suggests_monte_carlo():
    game = tg.AdditiveGame(np.ones(21))
    with pytest.raises(oa.BudgetError, match="permutation_shapley"):
        oa.exact_shapley(game)


def test_exact_rejects_non_game():
    with pytest.raises(oa.ValidationError, match="Game.from_function"):
        oa.exact_shapley(lambda m: 1.0)


def test_twenty_players_is_practical():
    game = tg.AirportGame(np.linspace(1, 20, 20))
    values = oa.exact_shapley(game, progress=False).values
    np.testing.assert_allclose(values, game.shapley_values(), rtol=1e-10)


# ------------------------------------------------------------------ axioms
tables = st.integers(min_value=2, max_value=6).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.floats(-10, 10, allow_nan=False, allow_infinity=False),
            min_size=1 << n,
            max_size=1 << n,
        ),
    )
)


@settings(max_examples=60, deadline=None)
@given(tables)
def test_shapley_efficiency(data):
    n, table = data
    table = np.array(table)
    values = oa.exact_shapley(_table_game(table, n), progress=False).values
    assert values.sum() == pytest.approx(table[-1] - table[0], abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(tables, st.data())
def test_null_player_gets_zero(data, draw):
    n, table = data
    table = np.array(table)
    null = draw.draw(st.integers(0, n - 1))
    codes = np.arange(1 << n)
    table = table[codes & ~(1 << null)]  # v(S) ignores the null player
    game = _table_game(table, n)
    assert oa.exact_shapley(game, progress=False).values[null] == pytest.approx(0, abs=1e-9)
    assert oa.exact_banzhaf(game, progress=False).values[null] == pytest.approx(0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(tables, st.data())
def test_symmetric_players_get_equal_values(data, draw):
    n, table = data
    table = np.array(table)
    i, j = draw.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    codes = np.arange(1 << n)
    # swap the bits of i and j; averaging v over the swap makes i and j symmetric
    bi, bj = (codes >> i) & 1, (codes >> j) & 1
    swapped = codes & ~((1 << i) | (1 << j)) | (bi << j) | (bj << i)
    symmetric = (table + table[swapped]) / 2
    game = _table_game(symmetric, n)
    for estimator in (oa.exact_shapley, oa.exact_banzhaf):
        values = estimator(game, progress=False).values
        assert values[i] == pytest.approx(values[j], abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(tables, st.data())
def test_additivity(data, draw):
    n, table = data
    table = np.array(table)
    other = np.array(draw.draw(st.lists(st.floats(-5, 5), min_size=1 << n, max_size=1 << n)))
    for estimator in (oa.exact_shapley, oa.exact_banzhaf):
        a = estimator(_table_game(table, n), progress=False).values
        b = estimator(_table_game(other, n), progress=False).values
        ab = estimator(_table_game(table + other, n), progress=False).values
        np.testing.assert_allclose(ab, a + b, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(tables.filter(lambda d: d[0] >= 3))
def test_banzhaf_two_efficiency(data):
    """Merging players 0 and 1 into one player gives it the sum of their Banzhaf values
    (Lehrer 1988's 2-efficiency, which characterises the Banzhaf value)."""
    n, table = data
    table = np.array(table)
    merged_n = n - 1
    merged_codes = np.arange(1 << merged_n)
    # in the merged game player 0 stands for {0, 1}; players 2.. shift down by one
    rest = merged_codes >> 1
    has_pair = merged_codes & 1
    original = (rest << 2) | (has_pair * 0b11)
    merged = _table_game(table[original], merged_n)
    full = oa.exact_banzhaf(_table_game(table, n), progress=False).values
    pair = oa.exact_banzhaf(merged, progress=False).values[0]
    assert pair == pytest.approx(full[0] + full[1], abs=1e-9)
