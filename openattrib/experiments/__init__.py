"""The field's standard evaluations of data-valuation methods, and a config-driven runner.

Each evaluation returns an :class:`ExperimentResult`: a tidy ``frame``, a per-method
``summary`` and a ``figure`` (it unpacks as ``frame, figure = result``).

* :func:`noisy_label_detection` - ROC-AUC, precision/recall at the noise level and the
  OpenDataVal two-cluster F1 of finding flipped labels among the lowest values;
* :func:`point_removal` / :func:`point_addition` - retrain after removing (adding) data in
  value order, high-to-low and low-to-high, and the area between the curves;
* :func:`linear_datamodeling_score` (influence-type scores) and :func:`utility_lds` (values);
* :func:`convergence` / :func:`convergence_by_budget` - error against a reference versus
  utility evaluations and wall time;
* :func:`method_agreement` - Spearman and Kendall rank correlations between methods;
* :func:`replication_experiment` - does copying your own data (under your name or as
  sybils) raise your share of a payout?
* :func:`run_experiment` - everything above from a TOML config, into a results folder
  with CSV tables, PNG figures and a self-contained ``report.html``.

>>> import numpy as np, openattrib as oa
>>> flipped = np.array([1, 4])
>>> values = np.array([0.3, -0.8, 0.2, 0.4, -0.5, 0.1])
>>> oa.experiments.noisy_label_detection({"m": values}, flipped).summary.loc["m", "auc"]
np.float64(1.0)
"""

from ._base import ExperimentResult
from .agreement import method_agreement, rank_correlations
from .config import load_config, resolve_config
from .convergence import convergence, convergence_by_budget, error_metrics
from .detection import detection_scores, noisy_label_detection, two_means_split
from .lds import linear_datamodeling_score, utility_lds
from .removal import point_addition, point_removal
from .replication import replicate, replication_experiment
from .runner import ExperimentRun, run_experiment

__all__ = [
    "ExperimentResult",
    "ExperimentRun",
    "convergence",
    "convergence_by_budget",
    "detection_scores",
    "error_metrics",
    "linear_datamodeling_score",
    "load_config",
    "method_agreement",
    "noisy_label_detection",
    "point_addition",
    "point_removal",
    "rank_correlations",
    "replicate",
    "replication_experiment",
    "resolve_config",
    "run_experiment",
    "two_means_split",
    "utility_lds",
]
