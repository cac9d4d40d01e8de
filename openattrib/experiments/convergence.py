"""Convergence: how fast does a Monte Carlo estimate approach a reference?

Error against a reference (exact values from enumeration, or a long run) as a function of
utility evaluations and of wall time. Two sources of points:

* :func:`convergence` reads the checkpoints that the Monte Carlo estimators keep in
  ``Attribution.diagnostics["history"]`` (values after geometrically spaced numbers of
  samples), so a single run gives the whole curve;
* :func:`convergence_by_budget` reruns an estimator at increasing budgets, for estimators
  that keep no history.

Errors: ``max_abs_error`` (largest absolute error over players), ``rmse``,
``relative_error`` (``||v - ref||_2 / ||ref||_2``) and ``spearman`` (rank agreement with the
reference). Players without an estimate yet (NaN) are left out and counted in
``n_missing``. Wall time is in ``elapsed_seconds``, the only column that changes between
reruns of a seeded computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..result import Attribution
from ._base import ExperimentResult, as_values

__all__ = ["convergence", "convergence_by_budget", "error_metrics"]

TIMING_COLUMNS = ("elapsed_seconds",)


def error_metrics(values: Any, reference: Any) -> dict[str, float]:
    """Errors of ``values`` against ``reference`` (NaN entries of ``values`` are skipped).

    Examples
    --------
    >>> error_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 3.0])["max_abs_error"]
    1.0
    """
    ref = as_values(reference, name="reference")
    est = np.asarray(getattr(values, "values", values), dtype=np.float64).reshape(-1)
    if est.shape != ref.shape:
        raise ValidationError(f"values have {est.shape[0]} players, the reference {ref.shape[0]}")
    finite = np.isfinite(est)
    out = {"n_missing": int((~finite).sum())}
    if not finite.any():
        return {
            **out,
            "max_abs_error": np.nan,
            "rmse": np.nan,
            "relative_error": np.nan,
            "spearman": np.nan,
        }
    diff = est[finite] - ref[finite]
    norm = float(np.linalg.norm(ref[finite]))
    spearman = np.nan
    if finite.sum() >= 2 and np.ptp(est[finite]) > 0 and np.ptp(ref[finite]) > 0:
        from scipy.stats import spearmanr

        spearman = float(spearmanr(est[finite], ref[finite]).statistic)
    return {
        **out,
        "max_abs_error": float(np.abs(diff).max()),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "relative_error": float(np.linalg.norm(diff) / norm) if norm > 0 else np.nan,
        "spearman": spearman,
    }


def _result(frame: pd.DataFrame) -> ExperimentResult:
    last = frame.sort_values("evaluations").groupby("method", sort=False).tail(1)
    summary = last.set_index("method")[
        ["samples", "evaluations", "max_abs_error", "rmse", "relative_error", "spearman"]
    ].rename(columns=lambda c: f"final_{c}" if c not in ("samples", "evaluations") else c)

    def draw(ax: Any) -> Any:
        from ..plots import plot_convergence

        return plot_convergence(frame, ax=ax)

    return ExperimentResult("convergence", frame, summary, draw)


def _as_results(results: Any) -> dict[str, Attribution]:
    if isinstance(results, Attribution):
        return {results.method: results}
    if isinstance(results, Mapping) and results:
        for name, res in results.items():
            if not isinstance(res, Attribution):
                raise ValidationError(
                    f"results[{name!r}] must be an Attribution, got {type(res).__name__}"
                )
        return {str(k): v for k, v in results.items()}
    raise ValidationError(
        "results must be an Attribution or a non-empty mapping of name to Attribution"
    )


def convergence(results: Any, reference: Any) -> ExperimentResult:
    """Error against ``reference`` along the recorded history of Monte Carlo runs.

    Parameters
    ----------
    results : Attribution or mapping of name to Attribution
        Results of Monte Carlo estimators (they record ``diagnostics["history"]``).
    reference : Attribution or array-like
        The values the estimates should converge to.

    Returns
    -------
    ExperimentResult
        ``frame``: ``method, samples, evaluations, elapsed_seconds`` and the error columns
        of :func:`error_metrics`, one row per checkpoint. ``summary``: the last checkpoint of
        each method. ``figure``: error against evaluations and against wall time.

    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.GloveGame(2, 3)
    >>> run = oa.permutation_shapley(game, stop=oa.stop.MaxSamples(400), seed=0, progress=False)
    >>> res = convergence({"permutation": run}, oa.exact_shapley(game, progress=False))
    >>> bool(res.frame["max_abs_error"].iloc[-1] < 0.1)
    True
    """
    table = _as_results(results)
    rows = []
    for name, res in table.items():
        history = res.diagnostics.get("history")
        if not history:
            raise ValidationError(
                f"result {name!r} ({res.method}) has no diagnostics['history']; only the Monte Carlo "
                "estimators record one - use convergence_by_budget to rerun at several budgets"
            )
        for point in history:
            values = np.array(
                [np.nan if v is None else v for v in point["values"]], dtype=np.float64
            )
            rows.append(
                {
                    "method": name,
                    "samples": int(point["samples"]),
                    "evaluations": int(point["evaluations"]),
                    "elapsed_seconds": float(point.get("elapsed", np.nan)),
                    **error_metrics(values, reference),
                }
            )
    return _result(pd.DataFrame(rows))


def convergence_by_budget(
    runners: Mapping[str, Callable[[int], Attribution]],
    budgets: Sequence[int],
    reference: Any,
) -> ExperimentResult:
    """Rerun each estimator at increasing budgets and measure its error and wall time.

    Parameters
    ----------
    runners : mapping of name to callable ``budget -> Attribution``
        For example ``{"tmc": lambda b: oa.permutation_shapley(game, stop=oa.stop.MaxSamples(b), seed=0)}``.
    budgets : sequence of int
        Increasing budgets passed to every runner.
    reference : Attribution or array-like

    Returns
    -------
    ExperimentResult
        As :func:`convergence`; ``samples`` holds the budget and ``evaluations`` the
        ``diagnostics["utility_evaluations"]`` of each result (the budget if absent).

    Examples
    --------
    >>> import openattrib as oa
    >>> game = oa.toy_games.AdditiveGame([1.0, 2.0])
    >>> res = convergence_by_budget({"loo": lambda b: oa.loo(game, progress=False)}, [1, 2], [1.0, 2.0])
    >>> res.frame["max_abs_error"].tolist()
    [0.0, 0.0]
    """
    if not runners:
        raise ValidationError("runners must name at least one estimator")
    budgets = [int(b) for b in budgets]
    if not budgets or any(b < 1 for b in budgets) or budgets != sorted(set(budgets)):
        raise ValidationError(f"budgets must be increasing positive integers, got {budgets}")
    rows = []
    for name, run in runners.items():
        for budget in budgets:
            start = time.perf_counter()
            res = run(budget)
            elapsed = time.perf_counter() - start
            evaluations = (
                res.diagnostics.get("utility_evaluations", budget)
                if isinstance(res, Attribution)
                else budget
            )
            rows.append(
                {
                    "method": str(name),
                    "samples": budget,
                    "evaluations": int(evaluations),
                    "elapsed_seconds": elapsed,
                    **error_metrics(res, reference),
                }
            )
    return _result(pd.DataFrame(rows))
