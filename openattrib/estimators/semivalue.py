"""Monte Carlo semivalues: permutation Shapley (TMC), Beta Shapley, MSR Banzhaf.

All three go through :func:`semivalue` and the single sampling loop of
:mod:`openattrib.estimators.sampling`. Coalition weights follow
:func:`openattrib.exact_semivalue`: ``weights[k]`` multiplies every marginal contribution
``v(S + i) - v(S)`` with ``|S| = k``.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import betaln, gammaln

from ..errors import ValidationError
from ..games import Game
from ..result import Attribution
from .msr import MSRKernel
from .permutation import PermutationKernel, parse_truncation
from .sampling import run_sampling

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


def beta_weights(n_players: int, alpha: float, beta: float) -> np.ndarray:
    """Beta(alpha, beta) Shapley weight of a coalition of size k = 0..n-1 (Kwon & Zou 2022).

    ``w[k] = B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``, the paper's eq. (5)
    ``w(j) = n * B(j + beta - 1, n - j + alpha) / B(alpha, beta)`` for ``j = k + 1``
    divided by n (the paper's semivalue carries a 1/n in front). It is the probability
    that a coalition of size k forms when players join independently with a probability
    t drawn from the density proportional to ``t**(beta-1) * (1-t)**(alpha-1)``. So
    **alpha > beta up-weights small coalitions** (Beta(16, 1), the paper's choice for
    noisy labels) and ``alpha = beta = 1`` gives Shapley's weights.

    Examples
    --------
    >>> w = beta_weights(4, 16, 1)
    >>> bool(w[0] > w[1] > w[2] > w[3])
    True
    """
    alpha, beta = _check_alpha_beta(alpha, beta)
    k = np.arange(int(n_players), dtype=np.float64)
    return np.exp(betaln(k + beta, n_players - 1 - k + alpha) - betaln(alpha, beta))


def _check_alpha_beta(alpha: Any, beta: Any) -> tuple[float, float]:
    out = []
    for name, value in (("alpha", alpha), ("beta", beta)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a positive number, got {value!r}") from None
        if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
            raise ValidationError(
                f"{name} must be a positive number, got {value!r}: Beta({name}) weights need alpha > 0 and "
                "beta > 0 (alpha > beta up-weights small coalitions; alpha = beta = 1 is Shapley)"
            )
        out.append(number)
    return out[0], out[1]


def semivalue_weights(weights: Any, n_players: int) -> tuple[str, np.ndarray | None]:
    """Resolve a weights spec into ``(id, log weights)``; the log weights are ``None`` for Shapley.

    Accepted: ``"shapley"``, ``"banzhaf"``, ``"beta(16,1)"`` / ``("beta", 16, 1)``, an array of
    ``n_players`` non-negative weights (``weights[k]`` for coalitions of size k), or a
    callable ``f(n_players) -> array``.
    """
    n = int(n_players)
    if isinstance(weights, str):
        text = weights.strip().lower().replace(" ", "")
        if text == "shapley":
            return "shapley", None
        if text == "banzhaf":
            return "banzhaf", np.full(n, -(n - 1) * math.log(2.0))
        match = re.fullmatch(r"beta[(:]?([^,()]+),([^,()]+)\)?", text)
        if match:
            return _beta_spec(match.group(1), match.group(2), n)
        raise ValidationError(
            f"unknown weights {weights!r}; use 'shapley', 'banzhaf', 'beta(16,1)', or an array of {n} weights"
        )
    if isinstance(weights, tuple) and len(weights) == 3 and str(weights[0]).lower() == "beta":
        return _beta_spec(weights[1], weights[2], n)
    if callable(weights):
        weights = weights(n)
    array = np.asarray(weights, dtype=np.float64).reshape(-1)
    if array.shape != (n,):
        raise ValidationError(
            f"weights must have one entry per coalition size 0..{n - 1}, got {array.shape[0]}"
        )
    if not (np.isfinite(array).all() and (array >= 0).all()) or not array.any():
        raise ValidationError("weights must be finite, non-negative and not all zero")
    digest = hashlib.sha256(array.tobytes()).hexdigest()[:16]
    with np.errstate(divide="ignore"):
        return f"custom:{digest}", np.log(array)


def _beta_spec(alpha: Any, beta: Any, n: int) -> tuple[str, np.ndarray]:
    a, b = _check_alpha_beta(alpha, beta)
    k = np.arange(n, dtype=np.float64)
    return f"beta({a!r},{b!r})", betaln(k + b, n - 1 - k + a) - betaln(a, b)


def _position_factors(log_weights: np.ndarray | None, n: int) -> np.ndarray | None:
    """Importance weight ``n * C(n-1, k) * w(k)`` of the marginal at permutation position k."""
    if log_weights is None:
        return None
    k = np.arange(n, dtype=np.float64)
    log_count = gammaln(n) - gammaln(k + 1) - gammaln(n - k)
    with np.errstate(invalid="ignore"):
        factors = np.exp(math.log(n) + log_count + log_weights)
    factors[np.isneginf(log_weights)] = 0.0
    if not np.isfinite(factors).all():
        raise ValidationError("weights are too large: n * C(n-1, k) * weights[k] overflows float64")
    return factors


_COMMON_DOC = """
    stop : oa.stop rule or str
        When to stop, e.g. ``oa.stop.MaxSamples(1000)`` or ``oa.stop.StdErr(atol=0.005) |
        oa.stop.MaxTime(600)`` (or its text form). Required; it must contain a budget
        (MaxSamples, MaxEvaluations or MaxTime) so the run cannot go on forever.
    seed : int, optional
        Seed of the random streams; ``None`` draws one (recorded in ``result.seed``).
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
    seed: int | None = None,
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
        Coalition weights (see :func:`semivalue_weights`): ``"shapley"``, ``"banzhaf"``,
        ``"beta(16,1)"``, or ``weights[k]`` for coalition size k as in ``oa.exact_semivalue``.
    sampler : {"auto", "permutation", "msr"}
        ``"permutation"``: permutation sampling with importance weights ``n C(n-1,k) w(k)``
        (exactly 1 for Shapley). ``"msr"``: maximum sample reuse, Banzhaf only. ``"auto"``
        uses MSR for ``"banzhaf"`` and permutations otherwise.
    truncation : None, float, str or dict
        Permutation sampler only: TMC truncation, see
        :class:`openattrib.estimators.permutation.Truncation` (``0.01`` = relative
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
            factors=_position_factors(log_weights, n),
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
    seed: int | None = None,
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
    seed: int | None = None,
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
    ``B(k + beta, n - 1 - k + alpha) / B(alpha, beta)`` (see :func:`beta_weights`), so
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
    >>> game = oa.toy_games.AdditiveGame([1.0, 2.0, 3.0])
    >>> res = beta_shapley(game, 16, 1, stop=oa.stop.MaxSamples(100), seed=0, progress=False)
    >>> res.values.round(6).tolist()  # every semivalue of an additive game is its weights
    [1.0, 2.0, 3.0]
    """
    alpha, beta = _check_alpha_beta(alpha, beta)
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
    seed: int | None = None,
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
