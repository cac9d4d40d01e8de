"""Linear datamodeling score (LDS; Park et al. 2023, "TRAK", definition 2.3).

Draw random training subsets of a fraction ``alpha`` of the points, retrain on each, and
check how well the *sum* of the attribution scores of a subset predicts what the retrained
model does, by Spearman rank correlation over the subsets.

* :func:`linear_datamodeling_score` - per-test-point LDS of influence-type scores (an
  ``(n_test, n_train)`` matrix or an :class:`~openattrib.influence.InfluenceResult`),
  averaged over test points; the subsets, retraining and correlation come from
  :mod:`openattrib.influence.lds`.
* :func:`utility_lds` - the same idea for data values (one number per player): predicted
  ``sum_{i in S} value_i`` against the utility ``v(S)`` of the game (for a
  :class:`~openattrib.games.ModelUtility`, the validation score retrained on ``S``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data import Dataset
from ..errors import ValidationError
from ..games import Game
from ._base import ExperimentResult, as_value_dict

__all__ = ["linear_datamodeling_score", "utility_lds"]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def utility_lds(
    values: Any, game: Game, *, n_subsets: int = 50, alpha: float = 0.5, seed: int = 0
) -> ExperimentResult:
    """LDS of data values against the game's utility on random subsets of the players.

    Parameters
    ----------
    values : Attribution, array-like or mapping of method name to either
    game : Game
    n_subsets : int
        Random subsets of exactly ``round(alpha * n_players)`` players (shared by all methods).
    alpha : float in (0, 1)
    seed : int

    Returns
    -------
    ExperimentResult
        ``frame``: ``method, subset, predicted, actual``; ``summary``: ``lds`` per method
        (Spearman over subsets; NaN if predictions or utilities are constant).

    Examples
    --------
    >>> import numpy as np, openattrib as oa
    >>> w = np.array([1.0, 5.0, 2.0, 4.0, 3.0, 0.5])
    >>> game = oa.Game.from_function(lambda m: float(w[m].sum()), 6)
    >>> utility_lds({"exact": w}, game, n_subsets=20, seed=0).summary.loc["exact", "lds"]
    np.float64(1.0)
    """
    from ..influence.lds import subset_masks

    if not isinstance(game, Game):
        raise ValidationError(f"game must be an openattrib Game, got {type(game).__name__}")
    table = as_value_dict(values, n=game.n_players)
    masks = subset_masks(game.n_players, n_subsets=n_subsets, alpha=alpha, seed=seed)
    actual = np.asarray(game.evaluate_batch(masks), dtype=np.float64)
    rows, summary = [], []
    for method, vals in table.items():
        predicted = masks.astype(np.float64) @ vals
        rows.append(
            pd.DataFrame(
                {
                    "method": method,
                    "subset": np.arange(n_subsets),
                    "predicted": predicted,
                    "actual": actual,
                }
            )
        )
        summary.append(
            {
                "method": method,
                "lds": _spearman(predicted, actual),
                "n_subsets": n_subsets,
                "alpha": alpha,
            }
        )
    frame = pd.concat(rows, ignore_index=True)
    summary_frame = pd.DataFrame(summary).set_index("method")

    def draw(ax: Any) -> Any:
        from ..plots import plot_lds

        return plot_lds(frame, summary_frame, ax=ax)

    return ExperimentResult("utility_lds", frame, summary_frame, draw)


def linear_datamodeling_score(
    scores: Any,
    estimator: Any,
    train: Dataset,
    test: Dataset,
    *,
    n_subsets: int = 50,
    alpha: float = 0.5,
    output: Any = "neg_loss",
    seed: int = 0,
    progress: bool = True,
) -> ExperimentResult:
    """Per-test-point LDS of influence-type scores, retraining ``estimator`` on random subsets.

    Parameters
    ----------
    scores : InfluenceResult, ndarray (n_test, n_train), or mapping of name to either
        ``scores[t, i]``: attribution of training point ``i`` for test point ``t``
        (positive = helps).
    estimator : scikit-learn estimator
        Refitted (cloned) on each subset.
    train, test : Dataset
    n_subsets, alpha, seed
        The subsets (:func:`openattrib.influence.subset_masks`).
    output : {"neg_loss", "margin"} or callable
        Model output compared with the predictions (larger = better).

    Returns
    -------
    ExperimentResult
        ``frame``: ``method, test_index, lds`` (per test point); ``summary``: ``lds`` (mean
        over test points with a defined correlation) and ``n_defined`` per method.

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, test = oa.datasets.load_demo()
    >>> model = LogisticRegression().fit(train.X, train.y)
    >>> scores = oa.influence(model, train, test.subset(range(20)))
    >>> res = linear_datamodeling_score(scores, model, train, test.subset(range(20)),
    ...                                 n_subsets=10, progress=False)
    >>> -1.0 <= float(res.summary["lds"].iloc[0]) <= 1.0
    True
    """
    from ..influence.lds import lds, retrained_outputs, subset_masks

    table = scores if isinstance(scores, dict) else {"influence": scores}
    if not table:
        raise ValidationError("no scores given")
    masks = subset_masks(train.n_samples, n_subsets=n_subsets, alpha=alpha, seed=seed)
    actual = retrained_outputs(estimator, train, test, masks, output=output, progress=progress)
    rows, summary = [], []
    for method, score in table.items():
        result = lds(score, masks, actual)
        rows.append(
            pd.DataFrame(
                {
                    "method": method,
                    "test_index": np.arange(result.per_test.size),
                    "lds": result.per_test,
                }
            )
        )
        summary.append(
            {
                "method": method,
                "lds": result.mean,
                "n_defined": int(np.isfinite(result.per_test).sum()),
                "n_subsets": n_subsets,
                "alpha": alpha,
            }
        )
    frame = pd.concat(rows, ignore_index=True)
    summary_frame = pd.DataFrame(summary).set_index("method")

    def draw(ax: Any) -> Any:
        from ..plots import plot_lds_per_test

        return plot_lds_per_test(frame, summary_frame, ax=ax)

    return ExperimentResult("linear_datamodeling_score", frame, summary_frame, draw)
