"""The main job: the whole pipeline on the committed demo data.

Values the demo contributors, prints a readable table and writes the results under an
output folder. It is a consumer of the public API (like the CLI and the report) and is
what ``make demo`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets
from .estimators import exact_shapley, loo
from .games import ModelUtility
from .result import Attribution

__all__ = ["run_demo", "DemoSummary"]


@dataclass
class DemoSummary:
    """What the main job produced."""

    out_dir: Path
    attributions: dict[str, Attribution] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    files: dict[str, Path] = field(default_factory=dict)
    ok: bool = True


def demo_model() -> Any:
    """The model valued in the demo: L2 logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


def run_demo(
    out_dir: str | Path = "out",
    *,
    progress: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> DemoSummary:
    """Run the main job and write its outputs under ``out_dir``.

    Examples
    --------
    >>> summary = run_demo("out", progress=False)  # doctest: +SKIP
    """
    say = echo or (lambda text: None)
    out = Path(out_dir)
    summary = DemoSummary(out_dir=out)
    train, valid = datasets.load_demo()
    say(
        f"Demo data: {train.n_samples} training rows from {train.n_contributors} contributors, "
        f"{valid.n_samples} validation rows (dataset {train.content_hash()[:12]})"
    )
    game = ModelUtility(demo_model(), train, valid, scorer="accuracy", players="contributors")
    say(
        f"Model: {game.describe()['model']}, validation accuracy with all data {game.grand_value:.3f}"
    )

    shapley = exact_shapley(game, progress=progress)
    leave_one_out = loo(game, progress=progress)
    summary.attributions = {"exact_shapley": shapley, "loo": leave_one_out}

    table = pd.DataFrame(
        {
            "shapley": shapley.values,
            "loo": leave_one_out.values,
            "rows": [int(len(train.groups()[name])) for name in shapley.names],
        },
        index=pd.Index(shapley.names, name="contributor"),
    ).sort_values("shapley", ascending=False)
    summary.table = table
    say("\nContributor values (exact Shapley over contributors, and leave-one-out):")
    say(table.to_string(float_format=lambda v: f"{v:+.4f}"))
    say(
        f"\nShapley values sum to {shapley.values.sum():.4f} = "
        f"v(all) {game.grand_value:.4f} - v(none) {game.empty_value:.4f}"
    )
    summary.files["shapley"] = shapley.save(out / "shapley.json")
    summary.files["loo"] = leave_one_out.save(out / "loo.json")
    say(f"Results written to {out.resolve()}")
    return summary
