"""Monte Carlo runs: resume, Ctrl-C, checkpoints, diagnostics and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import openattrib as oa
from openattrib import stopping as stop
from openattrib import toy_games as tg
from openattrib.estimators.semivalue import banzhaf, beta_shapley, permutation_shapley, semivalue

AIRPORT_COSTS = np.random.default_rng(42).uniform(1.0, 10.0, 30).round(3)
GLOVE = tg.GloveGame(3, 4)
VOTING = tg.SymmetricVotingGame(7)


# ---------------------------------------------------------------- resume, interrupt, checkpoints
def test_continue_equals_one_uninterrupted_run_bit_for_bit(tmp_path):
    game = tg.AirportGame(AIRPORT_COSTS)
    for kwargs, method in (
        ({"truncation": 0.02, "antithetic": True}, permutation_shapley),
        ({}, banzhaf),
    ):
        once = method(game, stop=stop.MaxSamples(300), seed=9, progress=False, **kwargs)
        part = method(game, stop=stop.MaxSamples(77), seed=9, progress=False, **kwargs)
        part.save(tmp_path / "part.json")
        resumed = method(
            game,
            stop=stop.MaxSamples(300),
            continue_from=tmp_path / "part.json",
            progress=False,
            **kwargs,
        )
        assert resumed.values.tobytes() == once.values.tobytes()
        assert resumed.stderr.tobytes() == once.stderr.tobytes()
        assert resumed.counts.tolist() == once.counts.tolist()
        assert resumed.seed == 9
        assert resumed.diagnostics["utility_evaluations"] == once.diagnostics["utility_evaluations"]
        state_once = dict(once.diagnostics["state"], elapsed=0)
        state_resumed = dict(resumed.diagnostics["state"], elapsed=0)
        assert json.dumps(state_once, sort_keys=True) == json.dumps(state_resumed, sort_keys=True)


def _interrupting_game(n, after):
    calls = {"n": 0, "armed": True}

    def fn(mask):
        calls["n"] += 1
        if calls["armed"] and calls["n"] > after:
            calls["armed"] = False
            raise KeyboardInterrupt
        return float(mask.sum() ** 1.5)

    return oa.Game.from_function(fn, n), calls


def test_keyboard_interrupt_returns_the_partial_result_and_it_can_be_continued():
    game, calls = _interrupting_game(6, after=7 * 45)
    partial = permutation_shapley(
        game, stop=stop.MaxSamples(200), seed=1, batch_size=4, progress=False
    )
    assert partial.interrupted and partial.diagnostics["interrupted"] is True
    assert partial.diagnostics["stopped_by"] == "KeyboardInterrupt"
    assert 0 < partial.counts[0] < 200 and partial.counts[0] % 4 == 0  # whole batches kept
    finished = permutation_shapley(
        game, stop=stop.MaxSamples(200), continue_from=partial, progress=False, batch_size=4
    )
    reference = permutation_shapley(
        oa.Game.from_function(lambda m: float(m.sum() ** 1.5), 6),
        stop=stop.MaxSamples(200),
        seed=1,
        batch_size=4,
        progress=False,
    )
    assert finished.values.tobytes() == reference.values.tobytes()
    assert finished.stderr.tobytes() == reference.stderr.tobytes()
    assert not finished.interrupted


def test_checkpoint_file_survives_a_crash_and_continues(tmp_path):
    path = tmp_path / "run.ckpt.json"
    calls = {"n": 0, "crash_at": 2000}

    def utility(mask):
        calls["n"] += 1
        if calls["n"] == calls["crash_at"]:
            raise RuntimeError("machine on fire")
        return float(np.sqrt(mask.sum()))

    game = oa.Game.from_function(utility, 5)
    kwargs = {"progress": False, "batch_size": 50}
    with pytest.raises(RuntimeError, match="fire"):
        banzhaf(
            game,
            stop=stop.MaxSamples(5000),
            seed=2,
            checkpoint=path,
            checkpoint_every=1e-9,
            batches_per_round=2,
            **kwargs,
        )
    saved = oa.Attribution.load(path)
    assert 0 < saved.counts[0] < 2000
    resumed = banzhaf(
        game, stop=stop.MaxSamples(5000), continue_from=path, checkpoint=path, **kwargs
    )
    reference = banzhaf(game, stop=stop.MaxSamples(5000), seed=2, **kwargs)
    assert resumed.values.tobytes() == reference.values.tobytes()
    assert oa.Attribution.load(path).values.tobytes() == reference.values.tobytes()  # final write


def test_continue_refuses_a_different_run():
    game = GLOVE
    part = permutation_shapley(game, stop=stop.MaxSamples(20), seed=1, progress=False)
    with pytest.raises(oa.ValidationError, match="seed=1"):
        permutation_shapley(
            game, stop=stop.MaxSamples(40), seed=2, continue_from=part, progress=False
        )
    with pytest.raises(oa.ValidationError, match="different sampling parameters"):
        permutation_shapley(
            game, stop=stop.MaxSamples(40), antithetic=True, continue_from=part, progress=False
        )
    with pytest.raises(oa.ValidationError, match="different sampling parameters"):
        permutation_shapley(
            game, stop=stop.MaxSamples(40), batch_size=3, continue_from=part, progress=False
        )
    with pytest.raises(oa.ValidationError, match="cannot be continued by banzhaf"):
        banzhaf(game, stop=stop.MaxSamples(40), continue_from=part, progress=False)
    with pytest.raises(oa.ValidationError, match="different players"):
        permutation_shapley(
            tg.GloveGame(2, 2), stop=stop.MaxSamples(40), continue_from=part, progress=False
        )
    with pytest.raises(oa.ValidationError, match="different game"):
        permutation_shapley(
            tg.SymmetricVotingGame(7), stop=stop.MaxSamples(40), continue_from=part, progress=False
        )
    with pytest.raises(oa.ValidationError, match="no sampling state"):
        permutation_shapley(
            game,
            stop=stop.MaxSamples(40),
            continue_from=oa.exact_shapley(game, progress=False),
            progress=False,
        )


# ---------------------------------------------------------------- diagnostics
def test_result_records_rule_history_and_provenance():
    game = VOTING
    result = permutation_shapley(game, stop=stop.MaxSamples(500), seed=0, progress=False)
    diag = result.diagnostics
    assert diag["stopped_by"] == "MaxSamples(500)" and diag["interrupted"] is False
    history = diag["history"]
    samples = [h["samples"] for h in history]
    assert samples == sorted(samples) and samples[-1] == 500 and len(history) >= 5
    assert np.allclose(history[-1]["values"], result.values)
    assert result.parameters == {
        "weights": "shapley",
        "sampler": "permutation",
        "antithetic": False,
        "truncation": None,
        "batches_per_round": 4,
        "stop": "MaxSamples(500)",
        "batch_size": 8,
    }
    assert result.provenance["game"] == "SymmetricVotingGame" and result.seed == 0
    again = oa.Attribution.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.result_hash() == result.result_hash()


def test_seed_none_draws_and_records_a_seed():
    game = GLOVE
    first = permutation_shapley(game, stop=stop.MaxSamples(30), progress=False)
    again = permutation_shapley(game, stop=stop.MaxSamples(30), seed=first.seed, progress=False)
    assert again.values.tobytes() == first.values.tobytes()


def test_progress_bar_shows_samples_and_stderr(capsys):
    permutation_shapley(GLOVE, stop=stop.MaxSamples(64), seed=0, progress=True)
    err = capsys.readouterr().err
    assert "64/64" in err and "max_stderr" in err


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda g: beta_shapley(g, 0, 1, stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "alpha must be a positive number",
        ),
        (
            lambda g: beta_shapley(g, 1, -2, stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "beta must be a positive number",
        ),
        (
            lambda g: beta_shapley(g, float("nan"), 1, stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "alpha",
        ),
        (
            lambda g: permutation_shapley(g, truncation="aggressive", stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "unknown truncation spec",
        ),
        (
            lambda g: permutation_shapley(
                g, truncation={"rtol": 0.1, "tolerance": 2}, stop=stop.MaxSamples(5)
            ),
            oa.ValidationError,
            "unknown key",
        ),
        (
            lambda g: permutation_shapley(g, truncation=-0.1, stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "truncation spec",
        ),
        (
            lambda g: permutation_shapley(
                g, truncation="rtol=0.1,burn_in=2", stop=stop.MaxSamples(5)
            ),
            oa.ValidationError,
            "burn_in",
        ),
        (
            lambda g: permutation_shapley(g, stop=stop.MaxSamples(5), seed=-1),
            oa.ValidationError,
            "seed",
        ),
        (
            lambda g: permutation_shapley(g, stop=stop.MaxSamples(5), batch_size=0),
            oa.ValidationError,
            "batch_size",
        ),
        (
            lambda g: permutation_shapley(g, stop=stop.MaxSamples(5), n_jobs=0),
            oa.ValidationError,
            "n_jobs",
        ),
        (
            lambda g: permutation_shapley(g, stop=stop.MaxSamples(5), checkpoint_every=0),
            oa.ValidationError,
            "checkpoint_every",
        ),
        (
            lambda g: permutation_shapley("not a game", stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "expected an openattrib Game",
        ),
        (
            lambda g: semivalue(g, "owen", stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "unknown weights",
        ),
        (
            lambda g: semivalue(g, [1.0, 2.0], stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "one entry per coalition size",
        ),
        (
            lambda g: semivalue(g, "shapley", sampler="msr", stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "Banzhaf value only",
        ),
        (
            lambda g: semivalue(
                g, "banzhaf", sampler="msr", truncation=0.1, stop=stop.MaxSamples(5)
            ),
            oa.ValidationError,
            "permutation sampler",
        ),
        (
            lambda g: semivalue(g, sampler="importance", stop=stop.MaxSamples(5)),
            oa.ValidationError,
            "sampler must be",
        ),
        (
            lambda g: permutation_shapley(g, stop=stop.MaxSamples(5), continue_from=3),
            oa.ValidationError,
            "continue_from must be",
        ),
    ],
)
def test_bad_input_fails_clearly_before_any_work(call, error, message):
    calls = []
    game = oa.Game.from_function(lambda m: calls.append(1) or float(m.sum()), 4)
    with pytest.raises(error, match=message):
        call(game)
    assert calls == []


def test_a_game_returning_nan_is_reported():
    game = oa.Game.from_function(lambda m: float("nan") if m.sum() == 2 else 1.0, 3)
    with pytest.raises(oa.ValidationError, match="NaN"):
        permutation_shapley(game, stop=stop.MaxSamples(5), seed=0, progress=False)


# ---------------------------------------------------------------- seeds (the vocabulary)
@pytest.mark.parametrize("estimator", [permutation_shapley, banzhaf, beta_shapley])
def test_the_default_seed_is_zero_so_repeated_calls_agree(estimator):
    first = estimator(GLOVE, stop=stop.MaxSamples(30), progress=False)
    second = estimator(GLOVE, stop=stop.MaxSamples(30), progress=False)
    explicit = estimator(GLOVE, stop=stop.MaxSamples(30), seed=0, progress=False)
    assert first.seed == 0
    assert first.values.tobytes() == second.values.tobytes() == explicit.values.tobytes()
    assert first.result_hash() == explicit.result_hash()


def test_seed_none_draws_fresh_entropy_and_records_it():
    fresh = [semivalue(VOTING, stop=stop.MaxSamples(12), seed=None, progress=False) for _ in "ab"]
    seeds = [r.seed for r in fresh]
    assert all(isinstance(s, int) and s >= 0 for s in seeds)
    assert seeds[0] != seeds[1]  # 63 random bits each: equal with probability 2**-63
    for result in fresh:  # the recorded seed repeats the run bit for bit
        again = semivalue(VOTING, stop=stop.MaxSamples(12), seed=result.seed, progress=False)
        assert again.values.tobytes() == result.values.tobytes()


def test_continuing_uses_the_saved_seed_and_refuses_another_one():
    part = banzhaf(GLOVE, stop=stop.MaxSamples(20), seed=7, progress=False)
    whole = banzhaf(GLOVE, stop=stop.MaxSamples(60), seed=7, progress=False)
    for seed in (0, 7, None):  # the default, the same one, or "whatever it was"
        resumed = banzhaf(
            GLOVE, stop=stop.MaxSamples(60), seed=seed, continue_from=part, progress=False
        )
        assert resumed.seed == 7 and resumed.values.tobytes() == whole.values.tobytes()
    with pytest.raises(oa.ValidationError, match="seed=7, not 3"):
        banzhaf(GLOVE, stop=stop.MaxSamples(60), seed=3, continue_from=part, progress=False)
