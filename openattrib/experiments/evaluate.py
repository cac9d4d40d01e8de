"""The evaluations the runner applies to the results of one (data set, seed) unit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import methods as registry
from ..errors import BudgetError, ValidationError
from ..result import Attribution
from ._base import ExperimentResult
from ._setup import Unit, derive_seed
from .agreement import method_agreement
from .convergence import convergence
from .detection import noisy_label_detection
from .lds import linear_datamodeling_score, utility_lds
from .removal import point_removal

__all__ = ["evaluate_unit", "UnitOutput"]

_EXACT_LIMIT = 16


@dataclass
class UnitOutput:
    """Tables (with ``dataset`` and ``seed`` columns first) and figures (PNG bytes) of a unit."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)


def _exact_reference(kind: tuple[Any, ...], make_game: Callable[[], Any]) -> Attribution:
    from ..estimators import exact

    game = make_game()
    if game.n_players > _EXACT_LIMIT:
        raise BudgetError(
            f"config key 'evaluation.convergence.reference': 'exact' enumerates 2**{game.n_players} "
            f"coalitions; use it with at most {_EXACT_LIMIT} players (set n_contributors or a "
            "small n_samples), or set reference = 'long_run'"
        )
    if kind[0] == "shapley":
        return exact.exact_shapley(game, progress=False)
    if kind[0] == "banzhaf":
        return exact.exact_banzhaf(game, progress=False)
    from ..estimators.semivalue import beta_weights

    weights = beta_weights(game.n_players, kind[1], kind[2])
    return exact.exact_semivalue(game, weights, method="exact_beta", progress=False)


def _convergence(
    cfg: dict[str, Any], unit: Unit, results: dict[str, Attribution], ctx: registry.MethodInput
) -> pd.DataFrame:
    conv = cfg["evaluation"]["convergence"]
    specs = {m["label"]: m for m in cfg["methods"]}
    references: dict[tuple[Any, ...], Attribution] = {}
    frames = []
    for label in conv["methods"]:
        spec = specs[label]
        method = registry.get(spec["name"])
        if conv["reference"] == "exact":
            kind = (method.semivalue, spec["params"].get("alpha"), spec["params"].get("beta"))
            if kind not in references:
                references[kind] = _exact_reference(kind, ctx.make_game)
            reference = references[kind]
        else:
            params = {**spec["params"], "budget": conv["reference_budget"], "stop": None}
            reference = registry.run(
                spec["name"],
                ctx,
                params,
                seed=derive_seed(unit.seed, unit.dataset, label, "reference"),
            )
        frames.append(convergence({label: results[label]}, reference).frame)
    return pd.concat(frames, ignore_index=True)


def evaluate_unit(
    cfg: dict[str, Any],
    unit: Unit,
    results: dict[str, Attribution],
    make_game: Callable[[], Any],
    ctx: registry.MethodInput,
    *,
    figures: bool = True,
    progress: bool = False,
) -> UnitOutput:
    """Run the enabled evaluations of ``cfg["evaluation"]`` on one unit's results."""
    from ..report import figure_to_png

    ev = cfg["evaluation"]
    out = UnitOutput()
    prefix = f"{unit.dataset}_seed{unit.seed}"
    values = {label: att.values for label, att in results.items()}

    def add(name: str, frame: pd.DataFrame) -> None:
        frame = frame.copy()
        frame.insert(0, "seed", unit.seed)
        frame.insert(0, "dataset", unit.dataset)
        out.tables[name] = frame

    def draw(name: str, result: ExperimentResult | Callable[[], Any]) -> None:
        if not figures:
            return
        import matplotlib.pyplot as plt

        fig = result.plot() if isinstance(result, ExperimentResult) else result()
        out.figures[f"{prefix}_{name}"] = figure_to_png(fig)
        plt.close(fig)

    if ev["detection"] and unit.flipped.size > 0:
        res = noisy_label_detection(values, unit.flipped)
        add("detection", res.summary.reset_index())
        add("detection_curves", res.frame)
        draw("detection", res)
    game = make_game()  # one evaluation game: its cache is shared by removal, addition and LDS
    for mode in ("removal", "addition"):
        if ev[mode]:
            res = point_removal(
                values, game, mode="remove" if mode == "removal" else "add", **ev[mode]
            )
            add(mode, res.frame)
            add(f"{mode}_summary", res.summary.reset_index())
            draw(mode, res)
    if ev["agreement"] and len(values) >= 2:
        res = method_agreement(values)
        add("agreement", res.frame)
        draw("agreement", res)
    if ev["lds"]:
        lds_cfg = ev["lds"]
        lds_seed = derive_seed(unit.seed, unit.dataset, "lds")
        res = utility_lds(
            values, game, n_subsets=lds_cfg["n_subsets"], alpha=lds_cfg["alpha"], seed=lds_seed
        )
        parts = [res.summary.reset_index().assign(kind="utility")]
        draw("lds", res)
        scores = ctx.extra.get("influence_by_label", {})
        if lds_cfg["per_test"] and scores:
            per_test = linear_datamodeling_score(
                scores,
                ctx.model,
                unit.train,
                unit.valid,
                n_subsets=lds_cfg["n_subsets"],
                alpha=lds_cfg["alpha"],
                seed=lds_seed,
                progress=progress,
            )
            parts.append(per_test.summary.reset_index().assign(kind="per_test"))
            draw("lds_per_test", per_test)
        add(
            "lds",
            pd.concat(parts, ignore_index=True)[["method", "kind", "lds", "n_subsets", "alpha"]],
        )
    if ev["convergence"]:
        if not ev["convergence"]["methods"]:
            raise ValidationError(
                "config key 'evaluation.convergence': no Monte Carlo method to follow"
            )
        frame = _convergence(cfg, unit, results, ctx)
        add("convergence", frame)

        def plot() -> Any:
            from ..plots import plot_convergence

            return plot_convergence(frame)

        draw("convergence", plot)
    return out
