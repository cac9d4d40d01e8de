"""Serial, local-process and Dask runs give bit-identical results; worker loss is never silent."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import openattrib as oa
from openattrib import stopping as stop
from openattrib import toy_games as tg
from openattrib.estimators.semivalue import banzhaf, beta_shapley, permutation_shapley
from openattrib.parallel import Executor, WorkerLostError, map_batches

GAME = tg.AirportGame(np.random.default_rng(7).uniform(0.0, 5.0, 25).round(2))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def model_game():
    from sklearn.linear_model import LogisticRegression

    train, valid = oa.datasets.load_demo()
    small = oa.datasets.partition(train.subset(np.arange(0, train.n_samples, 8)), 6, seed=0)
    return oa.ModelUtility(LogisticRegression(), small, valid, players="contributors", cache_size=0)


def square_plus(shared, task):
    return task * task + shared


def identical(a, b, same_parameters=True):
    assert a.values.tobytes() == b.values.tobytes()
    assert a.stderr.tobytes() == b.stderr.tobytes()
    assert a.counts.tolist() == b.counts.tolist()
    assert a.diagnostics["utility_evaluations"] == b.diagnostics["utility_evaluations"]
    if same_parameters:
        assert a.result_hash() == b.result_hash()


RUNS = {
    "tmc_antithetic": lambda g, **kw: permutation_shapley(
        g, stop=stop.MaxSamples(90), truncation=0.05, antithetic=True, seed=3, progress=False, **kw
    ),
    "beta": lambda g, **kw: beta_shapley(
        g, 16, 1, stop=stop.MaxSamples(70), seed=4, progress=False, **kw
    ),
    "msr": lambda g, **kw: banzhaf(g, stop=stop.MaxSamples(700), seed=5, progress=False, **kw),
}


# ---------------------------------------------------------------- map_batches
@pytest.mark.slow
def test_map_batches_keeps_task_order_on_every_backend(dask_client):
    tasks = list(range(23))
    expected = [t * t + 1 for t in tasks]
    assert map_batches(square_plus, tasks, shared=1) == expected
    assert map_batches(square_plus, tasks, n_jobs=2, shared=1) == expected
    assert map_batches(square_plus, tasks, backend="dask", client=dask_client, shared=1) == expected
    assert map_batches(abs, [-1, -2]) == [1, 2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_jobs": 0}, "n_jobs must be a positive integer or -1"),
        ({"n_jobs": 1.5}, "n_jobs"),
        ({"backend": "threads"}, "backend must be one of"),
        ({"backend": "loky", "scheduler": "tcp://127.0.0.1:1"}, "for backend='dask'"),
        (
            {"client": "tcp://127.0.0.1:1", "scheduler": "tcp://127.0.0.1:1"},
            "either client= or scheduler=",
        ),
        ({"client": 42}, "client must be a dask.distributed.Client"),
    ],
)
def test_executor_refuses_bad_settings(kwargs, message):
    with pytest.raises(oa.ValidationError, match=message):
        Executor(**kwargs)


def test_unreachable_scheduler_fails_fast_before_any_work():
    calls = []
    game = oa.Game.from_function(lambda m: calls.append(1) or float(m.sum()), 3)
    started = time.perf_counter()
    with pytest.raises(
        oa.ValidationError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"
    ):
        permutation_shapley(
            game, stop=stop.MaxSamples(10), seed=0, scheduler="tcp://127.0.0.1:1", progress=False
        )
    assert calls == []
    assert time.perf_counter() - started < 10


def test_unpicklable_game_is_refused_before_work():
    lock = threading.Lock()

    def fn(mask):
        with lock:
            return float(mask.sum())

    game = oa.Game.from_function(fn, 3)
    with pytest.raises(oa.UnsupportedError, match="cannot be sent to worker processes"):
        permutation_shapley(game, stop=stop.MaxSamples(10), seed=0, n_jobs=2, progress=False)
    # serially it is fine
    assert (
        permutation_shapley(game, stop=stop.MaxSamples(10), seed=0, progress=False).values.tolist()
        == [1.0] * 3
    )


# ---------------------------------------------------------------- bit-identical results
@pytest.mark.parametrize("run", RUNS)
def test_same_seed_is_bit_identical_serial_loky_and_dask(run, dask_client):
    serial = RUNS[run](GAME)
    identical(serial, RUNS[run](GAME, n_jobs=2))
    identical(serial, RUNS[run](GAME, backend="dask", client=dask_client))
    identical(serial, RUNS[run](GAME, scheduler=dask_client.scheduler.address))
    # the round size changes when the rule is checked, not the numbers
    identical(serial, RUNS[run](GAME, batches_per_round=1), same_parameters=False)
    assert serial.diagnostics["execution"] == {"backend": "serial", "n_jobs": 1}


@pytest.mark.slow
def test_model_game_is_bit_identical_and_failures_are_merged(model_game, dask_client):
    kwargs = {"stop": stop.MaxSamples(24), "seed": 1, "progress": False, "batch_size": 4}
    serial = permutation_shapley(model_game, **kwargs)
    local = permutation_shapley(model_game, n_jobs=2, **kwargs)
    remote = permutation_shapley(model_game, backend="dask", client=dask_client, **kwargs)
    identical(serial, local)
    identical(serial, remote)
    # defaulted coalitions (here: the empty one, once per permutation) are counted in the
    # workers and merged, not lost with the worker copies of the game
    assert serial.diagnostics["defaulted_coalitions"]["empty"] == 24
    assert local.diagnostics["defaulted_coalitions"] == serial.diagnostics["defaulted_coalitions"]
    assert remote.diagnostics["defaulted_coalitions"] == serial.diagnostics["defaulted_coalitions"]


def test_resume_across_backends_equals_one_run(dask_client):
    once = RUNS["msr"](GAME)
    part = banzhaf(GAME, stop=stop.MaxSamples(333), seed=5, progress=False, n_jobs=2)
    rest = banzhaf(
        GAME,
        stop=stop.MaxSamples(700),
        continue_from=part,
        progress=False,
        backend="dask",
        client=dask_client,
    )
    identical(once, rest, same_parameters=False)  # parameters record each session's stop rule


# ---------------------------------------------------------------- worker loss
def _dying_game(marker, always=False):
    parent = os.getpid()

    def fn(mask):
        if os.getpid() != parent and (always or not os.path.exists(marker)):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-batch
        return float(mask.sum() ** 2)

    return oa.Game.from_function(fn, 5)


def test_dead_worker_is_retried_and_nothing_is_dropped(tmp_path):
    game = _dying_game(str(tmp_path / "died-once"))
    reference = permutation_shapley(game, stop=stop.MaxSamples(64), seed=2, progress=False)
    recovered = permutation_shapley(
        game, stop=stop.MaxSamples(64), seed=2, progress=False, n_jobs=2
    )
    assert (tmp_path / "died-once").exists()
    identical(reference, recovered)


@pytest.mark.slow
def test_worker_that_keeps_dying_is_reported(tmp_path):
    game = _dying_game(str(tmp_path / "dies"), always=True)
    with pytest.raises(WorkerLostError, match="worker process died"):
        permutation_shapley(game, stop=stop.MaxSamples(16), seed=2, progress=False, n_jobs=2)


def test_run_isolated_returns_the_result_and_raises_the_error_of_a_fresh_process():
    from openattrib.parallel import run_isolated

    child = run_isolated(os.getpid)
    assert isinstance(child, int) and child != os.getpid()
    assert run_isolated(divmod, 17, 5) == (3, 2)
    with pytest.raises(ZeroDivisionError):
        run_isolated(divmod, 1, 0)
