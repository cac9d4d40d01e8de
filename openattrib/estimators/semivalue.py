"""Monte Carlo semivalues: permutation Shapley (TMC), Beta Shapley, MSR Banzhaf.

All three go through :func:`semivalue` and the single sampling loop of
:mod:`openattrib.estimators.sampling`. Coalition weights follow
:func:`openattrib.exact_semivalue`: ``weights[k]`` multiplies every marginal contribution
``v(S + i) - v(S)`` with ``|S| = k``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..games import Game
from ..result import Attribution
from .msr import MSRKernel
from .permutation import PermutationKernel, parse_truncation
from .sampling import run_sampling
from .weights import beta_weights, check_alpha_beta, position_factors, semivalue_weights

__all__ = [
    "semivalue",
    "permutation_shapley",
    "beta_shapley",
    "banzhaf",
    "beta_weights",
    "semivalue_weights",
]

PERMUTATION_BATCH, PERMUTATION_ROUND = 8, 4
MSR_BATCH, MSR_ROUND = 64, 4


_COMMON_DOC = """
    stop : oa.stop rule or str
        When to stop, e.g. ``oa.stop.MaxSamples(1000)`` or ``oa.stop.StdErr(atol=0.005) |
        oa.stop.MaxTime(600)`` (or its text form). Required; it must contain a budget
        (MaxSamples, MaxEvaluations or MaxTime) so the run cannot go on forever.
    seed : int, default 0
        Seed of the random streams, recorded in ``result.seed``: the same seed gives the
        same result. ``None`` asks for fresh entropy: a random seed is drawn and recorded in
        ``result.seed``, so that run can still be repeated. With ``continue_from`` the run
        continues the saved seed's streams; a non-default seed that differs from it is
        refused.
    n_jobs : int, default 1
        Local worker processes (joblib/loky). Results are bit-identical for any ``n_jobs``.
    backend : {"serial", "loky", "dask"}, optional
        Where to run; ``"dask"`` with ``client=`` (a ``dask.distributed.Client`` or a
        scheduler address) or ``scheduler=`` runs the same batches on a Dask cluster.
    client, scheduler : optional
        Dask client or scheduler address (``"tcp://host:8786"``).
    batch_size : int, optional
        Draws per batch (the unit of work and of random streams); keep it fixed to
        continue a run.
    batches_per_round : int, optional
        Batches between two checks of the stopping rule.
    progress : bool, default True
        Show a ``tqdm`` progress bar (samples, current max stderr, elapsed time).
    continue_from : Attribution or path, optional
        A previous result (or checkpoint file) of the same estimator on the same game to
        continue; the statistics are merged exactly, so continuing to N samples equals one
        run of N samples with the same seed, bit for bit.
    checkpoint : path, optional
        File to which the partial result is written every ``checkpoint_every`` seconds
        (and at the end); pass it to ``continue_from`` after a crash.
    checkpoint_every : float, default 60

    Returns
    -------
    Attribution
        ``values``, ``stderr`` (per player, from the sample variance), ``counts`` (samples),
        and ``diagnostics`` with ``stopped_by``, ``history`` (values at checkpoints),
        ``utility_evaluations``, ``interrupted`` (Ctrl-C returns the partial result) and the
        exact accumulator ``state``.

"""


def _common_doc(fn: Any) -> Any:
    """Insert the shared parameter and return documentation into ``fn.__doc__``."""
    fn.__doc__ = fn.__doc__.replace("    {common_parameters}\n", _COMMON_DOC.lstrip("\n"))
    return fn


@_common_doc
def semivalue(
    game: Game,
    weights: Any = "shapley",
    *,
    sampler: str = "auto",
    stop: Any = None,
    seed: int | None = 0,
    truncation: Any = None,
    antithetic: bool = False,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    batches_per_round: int | None = None,
    progress: bool = True,
    continue_from: Attribution | str | Path | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
    method: str = "semivalue",
) -> Attribution:
    """Monte Carlo estimate of any semivalue (Dubey, Neyman & Weber 1981).

    Parameters
    ----------
    game : Game
        Any game; with ``ModelUtility(..., players="contributors")`` values contributors.
    weights : str, tuple, array or callable, default "shapley"
        Coalition weights (see ``semivalue_weights``): ``"shapley"``, ``"banzhaf"``,
        ``"beta(16,1)"``, or ``weights[k]`` for coalition size k as in ``oa.exact_semivalue``.
    sampler : {"auto", "permutation", "msr"}
        ``"permutation"``: permutation sampling with importance weights ``n C(n-1,k) w(k)``
        (exactly 1 for Shapley). ``"msr"``: maximum sample reuse, Banzhaf only. ``"auto"``
        uses MSR for ``"banzhaf"`` and permutations otherwise.
    truncation : None, float, str or dict
        Permutation sampler only: TMC truncation, see
        ``openattrib.estimators.permutation.Truncation`` (``0.01`` = relative
        tolerance 1% of ``|v(N)|``, burn-in 10% of the players, patience 1).
    antithetic : bool, default False
        Permutation sampler only: pair every permutation with its reverse; the standard
        error is computed over pairs.
    method : str, default "semivalue"
        Name recorded in ``result.method``.
    {common_parameters}
    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.GloveGame(1, 2)
    >>> res = semivalue(game, "beta(4,1)", stop=oa.stop.MaxSamples(200), seed=0, progress=False)
    >>> len(res.values)
    3
    """
    if not isinstance(game, Game):
        raise ValidationError(
            f"expected an openattrib Game, got {type(game).__name__}; "
            "wrap a function with oa.Game.from_function(fn, n_players)"
        )
    n = game.n_players
    weights_id, log_weights = semivalue_weights(weights, n)
    if sampler == "auto":
        sampler = "msr" if weights_id == "banzhaf" else "permutation"
    if sampler == "msr":
        if weights_id != "banzhaf":
            raise ValidationError(
                f"sampler='msr' estimates the Banzhaf value only, not weights={weights!r}; use sampler='permutation'"
            )
        if truncation not in (None, False) or antithetic:
            raise ValidationError(
                "truncation and antithetic apply to the permutation sampler, not to sampler='msr'"
            )
        kernel: Any = MSRKernel(seed=0)
        default_batch, default_round = MSR_BATCH, MSR_ROUND
        parameters: dict[str, Any] = {"weights": weights_id, "sampler": "msr"}
    elif sampler == "permutation":
        spec = parse_truncation(truncation)
        kernel = PermutationKernel(
            seed=0,
            weights_id=weights_id,
            factors=position_factors(log_weights, n),
            antithetic=bool(antithetic),
            truncation=spec,
        )
        default_batch, default_round = PERMUTATION_BATCH, PERMUTATION_ROUND
        parameters = {
            "weights": weights_id,
            "sampler": "permutation",
            "antithetic": bool(antithetic),
            "truncation": None if spec is None else str(spec),
        }
    else:
        raise ValidationError(f"sampler must be 'auto', 'permutation' or 'msr', got {sampler!r}")
    batch_size = default_batch if batch_size is None else batch_size
    batches_per_round = default_round if batches_per_round is None else batches_per_round
    parameters["batches_per_round"] = batches_per_round
    return run_sampling(
        game,
        kernel,
        method=method,
        parameters=parameters,
        stop=stop,
        seed=seed,
        batch_size=batch_size,
        batches_per_round=batches_per_round,
        n_jobs=n_jobs,
        backend=backend,
        client=client,
        scheduler=scheduler,
        progress=progress,
        continue_from=continue_from,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
    )


@_common_doc
def permutation_shapley(
    game: Game,
    *,
    stop: Any = None,
    seed: int | None = 0,
    truncation: Any = None,
    antithetic: bool = False,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    batches_per_round: int | None = None,
    progress: bool = True,
    continue_from: Attribution | str | Path | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
) -> Attribution:
    """Shapley values by permutation sampling (Castro et al. 2009), optionally truncated (TMC).

    Every sampled permutation gives each player one marginal contribution, an unbiased
    sample of its Shapley value; the values of one permutation sum to ``v(N) - v(empty)``
    (efficiency), exactly without truncation.

    Parameters
    ----------
    game : Game
    truncation : None, float, str or dict, default None
        TMC-Shapley (Ghorbani & Zou 2019): stop walking a permutation once the prefix value
        is within ``rtol * |v(N)|`` (+ ``atol``) of ``v(N)``, after a burn-in of 10% of the
        players; the rest of the permutation gets zero marginals. ``0.01`` means rtol=1%;
        the text form ``"rtol=0.01,atol=0,burn_in=0.1,patience=1"`` sets every option.
    antithetic : bool, default False
        Pair each permutation with its reverse (a sample is then a pair of permutations;
        ``MaxSamples`` still counts permutations).
    {common_parameters}
    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.GloveGame(1, 2)
    >>> res = permutation_shapley(game, stop=oa.stop.MaxSamples(500), seed=0, progress=False)
    >>> bool(abs(res.values.sum() - 1.0) < 1e-12)  # efficiency: v(N) - v(empty) = 1
    True
    """
    return semivalue(
        game,
        "shapley",
        sampler="permutation",
        stop=stop,
        seed=seed,
        truncation=truncation,
        antithetic=antithetic,
        n_jobs=n_jobs,
        backend=backend,
        client=client,
        scheduler=scheduler,
        batch_size=batch_size,
        batches_per_round=batches_per_round,
        progress=progress,
        continue_from=continue_from,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        method="permutation_shapley",
    )


@_common_doc
def beta_shapley(
    game: Game,
    alpha: float = 16.0,
    beta: float = 1.0,
    *,
    stop: Any = None,
    seed: int | None = 0,
    truncation: Any = None,
    antithetic: bool = False,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    batches_per_round: int | None = None,
    progress: bool = True,
    continue_from: Attribution | str | Path | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
) -> Attribution:
    """Beta(alpha, beta) Shapley values (Kwon & Zou 2022) by reweighted permutation sampling.

    Convention (the paper's): the weight of a coalition of size k is
    ``B(k + beta, n - 1 - k + alpha) / B(alpha, beta)`` (see ``beta_weights``), so
    **alpha > beta up-weights small coalitions**: the default Beta(16, 1) is the paper's
    recommendation for detecting noisy labels, Beta(1, 16) up-weights large coalitions and
    Beta(1, 1) is the Shapley value. (Some libraries swap the two parameters; check
    ``beta_weights(n, alpha, beta)`` when comparing.) Beta Shapley is not efficient: the
    values do not sum to ``v(N) - v(empty)``.

    The marginal at permutation position k is multiplied by ``n * C(n-1, k) * w(k)``, which
    makes the permutation average an unbiased estimate of the weighted sum.

    Parameters
    ----------
    game : Game
    alpha, beta : float > 0
    truncation, antithetic
        As in :func:`permutation_shapley`.
    {common_parameters}
    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.GloveGame(1, 2)  # one left glove, two right gloves
    >>> res = beta_shapley(game, 16, 1, stop=oa.stop.MaxSamples(2000), seed=0, progress=False)
    >>> res.ranking()[0]  # the scarce left glove
    'p0'
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    result = semivalue(
        game,
        ("beta", alpha, beta),
        sampler="permutation",
        stop=stop,
        seed=seed,
        truncation=truncation,
        antithetic=antithetic,
        n_jobs=n_jobs,
        backend=backend,
        client=client,
        scheduler=scheduler,
        batch_size=batch_size,
        batches_per_round=batches_per_round,
        progress=progress,
        continue_from=continue_from,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        method="beta_shapley",
    )
    result.parameters.update(alpha=alpha, beta=beta)
    return result


@_common_doc
def banzhaf(
    game: Game,
    *,
    stop: Any = None,
    seed: int | None = 0,
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    batch_size: int | None = None,
    batches_per_round: int | None = None,
    progress: bool = True,
    continue_from: Attribution | str | Path | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 60.0,
) -> Attribution:
    """Banzhaf values by maximum sample reuse (MSR; Wang & Jia 2023, "Data Banzhaf").

    Each sampled coalition (every player in with probability 1/2) costs one utility
    evaluation and updates every player: the value is the mean utility of the sampled
    coalitions containing the player minus the mean of those without it. ``MaxSamples``
    counts coalitions.

    Parameters
    ----------
    game : Game
    {common_parameters}
    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.AdditiveGame([1.0, 2.0])
    >>> res = banzhaf(game, stop=oa.stop.MaxSamples(2000), seed=0, progress=False)
    >>> bool(abs(res.values - [1.0, 2.0]).max() < 4 * res.stderr.max())
    True
    """
    return semivalue(
        game,
        "banzhaf",
        sampler="msr",
        stop=stop,
        seed=seed,
        n_jobs=n_jobs,
        backend=backend,
        client=client,
        scheduler=scheduler,
        batch_size=batch_size,
        batches_per_round=batches_per_round,
        progress=progress,
        continue_from=continue_from,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        method="banzhaf",
    )
