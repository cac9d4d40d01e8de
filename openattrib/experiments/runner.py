"""The config-driven experiment runner (``openattrib experiment CONFIG.toml``).

For every data set and seed of the config (a *unit*): prepare the data (subsample, split,
standardise, optional contributors, label noise), run every method on its own fresh
utility game, then run the evaluations (noisy-label detection, point removal/addition,
method agreement, LDS, convergence). After each unit every table is rewritten atomically,
so a crash mid-run leaves the results of the finished units intact. At the end the
seed-averaged table, the figures and ``report.html`` are written.

Results folder::

    config.json          the resolved config (every default written out)
    config.toml          the config file as given (when run from a file)
    versions.json        package and library versions
    methods.csv          one row per (dataset, seed, method): players, evaluations, result hash
    detection.csv        noisy-label detection metrics      (+ detection_curves.csv)
    removal.csv          removal curves                     (+ removal_summary.csv: areas)
    addition*.csv, agreement.csv, lds.csv, convergence.csv   when enabled
    summary.csv          mean and std over seeds per (dataset, method)
    *_timing.csv         wall-clock columns, kept apart: everything else is reproducible
    attributions/<dataset>/seed<k>/<method>.json
    figures/*.png, report.html

Same config, same numbers: every random choice derives from the config's seeds
(:func:`derive_seed`), so all CSV files other than ``*_timing.csv`` are identical across
reruns (and across ``n_jobs``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .. import methods as registry
from .._io import atomic_write_bytes, atomic_write_text, canonical_json
from ..errors import UnsupportedError, ValidationError
from ..result import Attribution, make_provenance
from ._base import ExperimentRun
from ._report import experiment_report
from ._setup import Unit, build_model, derive_seed, prepare_unit
from .config import load_config, resolve_config
from .evaluate import evaluate_unit

__all__ = ["run_experiment", "ExperimentRun", "TIMING_COLUMNS"]

log = logging.getLogger("openattrib")

#: Columns holding wall-clock measurements; written to ``<table>_timing.csv`` only.
TIMING_COLUMNS = ("wall_seconds", "elapsed_seconds")
_KEYS = ("dataset", "seed", "method")


def _versions() -> dict[str, Any]:
    import matplotlib
    import pandas

    base = make_provenance()
    base.pop("created", None)
    base.update(pandas=pandas.__version__, matplotlib=matplotlib.__version__)
    return base


def _write_table(run: ExperimentRun, name: str, frame: pd.DataFrame) -> None:
    """``name.csv`` without timing columns, ``name_timing.csv`` with the keys and timing."""
    timing = [c for c in frame.columns if c in TIMING_COLUMNS]
    main = frame.drop(columns=timing)
    run.tables[name] = frame
    run.files[name] = atomic_write_text(run.out_dir / f"{name}.csv", main.to_csv(index=False))
    if timing:
        keys = [c for c in (*_KEYS, "order", "samples", "evaluations") if c in frame.columns]
        run.files[f"{name}_timing"] = atomic_write_text(
            run.out_dir / f"{name}_timing.csv", frame[keys + timing].to_csv(index=False)
        )


def _check_model_fits(model: Any, unit: Unit) -> None:
    from sklearn.base import clone

    try:
        clone(model).fit(unit.train.X, unit.train.y)
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(
            f"config key 'model.params': the model cannot be fitted: {first}"
        ) from None


def _prepare(cfg: dict[str, Any], spec: dict[str, Any], seed: int) -> tuple[Unit, Any]:
    unit = prepare_unit(spec, cfg["noise"]["fraction"], seed)
    model = build_model(cfg["model"], unit.train.task)
    _check_model_fits(model, unit)
    return unit, model


def _align(attribution: Attribution, unit: Unit, player_names: list[str]) -> Attribution:
    """Point values summed per contributor for contributor games, in the game's player order."""
    if unit.level != "contributors":
        if len(attribution) != len(player_names):
            raise ValidationError(
                f"method {attribution.method!r} returned {len(attribution)} values for "
                f"{len(player_names)} training points"
            )
        return attribution
    if attribution.level != "contributors":
        attribution = attribution.by_contributor(unit.train.contributors)
    if attribution.names == player_names:
        return attribution
    if sorted(attribution.names) != sorted(player_names):
        raise ValidationError(
            f"method {attribution.method!r} valued players {attribution.names[:5]}..., "
            f"expected the contributors {player_names[:5]}..."
        )
    return attribution.reindex(player_names)


def _run_methods(
    run: ExperimentRun,
    unit: Unit,
    model: Any,
    ctx: registry.MethodInput,
    echo: Callable[[str], Any],
) -> tuple[dict[str, Attribution], list[dict[str, Any]]]:
    cfg = run.config
    results: dict[str, Attribution] = {}
    rows = []
    player_names = ctx.make_game().player_names
    for spec in cfg["methods"]:
        seed = derive_seed(unit.seed, unit.dataset, spec["label"])
        start = time.perf_counter()
        attribution = registry.run(spec["name"], ctx, spec["params"], seed=seed)
        wall = time.perf_counter() - start
        attribution = _align(attribution, unit, player_names)
        if "influence_scores" in ctx.extra:
            ctx.extra.setdefault("influence_by_label", {})[spec["label"]] = ctx.extra.pop(
                "influence_scores"
            )
        results[spec["label"]] = attribution
        run.attributions[(unit.dataset, unit.seed, spec["label"])] = attribution
        path = (
            run.out_dir
            / "attributions"
            / unit.dataset
            / f"seed{unit.seed}"
            / f"{spec['label']}.json"
        )
        attribution.save(path)
        rows.append(
            {
                "dataset": unit.dataset,
                "seed": unit.seed,
                "method": spec["label"],
                "estimator": spec["name"],
                "method_seed": seed,
                "level": unit.level,
                "n_players": len(attribution),
                "utility_evaluations": attribution.diagnostics.get("utility_evaluations"),
                "result_hash": attribution.result_hash(),
                "wall_seconds": wall,
            }
        )
        echo(f"  {unit.dataset} seed {unit.seed}: {spec['label']} done in {wall:.2f} s")
    return results, rows


def _summary(run: ExperimentRun, tables: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    parts = []
    if tables.get("detection"):
        det = pd.concat(tables["detection"])
        parts.append(det[[*_KEYS, "kmeans_f1", "auc", "precision_at_k"]])
    for name, column in (
        ("removal_summary", "removal_area"),
        ("addition_summary", "addition_area"),
    ):
        if tables.get(name):
            frame = pd.concat(tables[name])
            parts.append(frame[[*_KEYS, "area_between"]].rename(columns={"area_between": column}))
    if tables.get("lds"):
        lds = pd.concat(tables["lds"])
        lds = lds[lds["kind"] == "utility"]
        parts.append(lds[[*_KEYS, "lds"]])
    methods = pd.concat(tables["methods"])[[*_KEYS, "wall_seconds"]]
    merged = methods
    for part in parts:
        merged = merged.merge(part, on=list(_KEYS), how="left")
    metrics = [c for c in merged.columns if c not in _KEYS]
    grouped = merged.groupby(["dataset", "method"], sort=False)[metrics]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    summary.insert(0, "n_seeds", grouped.size())
    ordered = ["n_seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    summary = summary[ordered].reset_index()
    timing = [c for c in summary.columns if c.startswith("wall_seconds")]
    out = summary.drop(columns=timing)
    run.tables["summary"] = summary
    run.files["summary"] = atomic_write_text(run.out_dir / "summary.csv", out.to_csv(index=False))
    run.files["summary_timing"] = atomic_write_text(
        run.out_dir / "summary_timing.csv",
        summary[["dataset", "method", *timing]].to_csv(index=False),
    )
    return summary


def run_experiment(
    config: str | Path | Mapping[str, Any],
    out_dir: str | Path | None = None,
    *,
    progress: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> ExperimentRun:
    """Run the experiment described by a TOML file (or an already parsed mapping).

    Parameters
    ----------
    config : path or mapping
        A TOML file (see ``openattrib.experiments.config``) or its parsed content.
    out_dir : path, optional
        Results folder (default ``results/<config name>``); created if needed.
    progress : bool
        Show the estimators' progress bars.
    echo : callable, optional
        Receives one line of text per finished step (the CLI passes ``print``).

    Returns
    -------
    ExperimentRun
        The tables (pandas), the files written, the figures (PNG bytes) and every attribution.

    Notes
    -----
    BLAS/OpenMP thread pools are limited to one thread during the run: the models are
    small, so extra threads only contend (parallelism comes from ``n_jobs``).

    Examples
    --------
    >>> import tempfile
    >>> config = {
    ...     "name": "tiny",
    ...     "dataset": {"name": "breast_cancer", "n_samples": 80, "standardize": True},
    ...     "noise": {"fraction": 0.1},
    ...     "methods": [{"name": "loo"}, {"name": "knn_shapley", "k": 5}],
    ... }
    >>> run = run_experiment(config, tempfile.mkdtemp(), progress=False)
    >>> sorted(run.tables["summary"]["method"])
    ['knn_shapley', 'loo']
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small models fit fastest single-threaded
        return _run(config, out_dir, progress=progress, say=echo or (lambda text: None))


def _run(
    config: str | Path | Mapping[str, Any],
    out_dir: str | Path | None,
    *,
    progress: bool,
    say: Callable[[str], Any],
) -> ExperimentRun:
    from sklearn.base import clone

    from ..games import ModelUtility

    source_text = None
    if isinstance(config, Mapping):
        cfg = resolve_config(config)
    else:
        cfg = load_config(config)
        source_text = Path(config).read_text(encoding="utf-8")
    for spec in cfg["methods"]:
        if spec["name"] == "influence" and cfg["model"]["name"] != "logistic":
            raise UnsupportedError(
                f"method 'influence' needs model.name = 'logistic' (closed-form gradients), got "
                f"{cfg['model']['name']!r}"
            )
    # pre-flight: build the first unit of every data set now, so a bad data set or model
    # setting fails before anything is written or run
    ready: dict[tuple[str, int], tuple[Unit, Any]] = {}
    for spec in cfg["datasets"]:
        ready[(spec["label"], cfg["seeds"][0])] = _prepare(cfg, spec, cfg["seeds"][0])
    out = Path(out_dir) if out_dir is not None else Path("results") / cfg["name"]
    run = ExperimentRun(out_dir=out, config=cfg)
    out.mkdir(parents=True, exist_ok=True)
    run.files["config"] = atomic_write_bytes(out / "config.json", canonical_json(cfg))
    if source_text is not None:
        run.files["config_source"] = atomic_write_text(out / "config.toml", source_text)
    run.files["versions"] = atomic_write_bytes(out / "versions.json", canonical_json(_versions()))
    tables: dict[str, list[pd.DataFrame]] = defaultdict(list)
    for spec in cfg["datasets"]:
        for index, seed in enumerate(cfg["seeds"]):
            unit, model = ready.pop((spec["label"], seed), None) or _prepare(cfg, spec, seed)
            run.units[(unit.dataset, seed)] = unit
            players = "contributors" if unit.level == "contributors" else "points"

            def make_game(
                model: Any = model, unit: Unit = unit, players: str = players
            ) -> ModelUtility:
                return ModelUtility(
                    clone(model),
                    unit.train,
                    unit.valid,
                    scorer=cfg["model"]["scorer"],
                    players=players,
                )

            say(
                f"{unit.dataset} seed {seed}: {unit.train.n_samples} training rows, "
                f"{len(unit.flipped)} noisy {players}"
            )
            ctx = registry.MethodInput(
                unit.train,
                unit.valid,
                model=model,
                scorer=cfg["model"]["scorer"],
                players=players,
                make_game=make_game,
                n_jobs=cfg["n_jobs"],
                progress=progress,
            )
            results, rows = _run_methods(run, unit, model, ctx, say)
            method_rows = pd.DataFrame(rows)
            method_rows["utility_evaluations"] = method_rows["utility_evaluations"].astype("Int64")
            tables["methods"].append(method_rows)
            figures = cfg["evaluation"]["figures"] and index == 0
            produced = evaluate_unit(
                cfg, unit, results, make_game, ctx, figures=figures, progress=progress
            )
            for name, frame in produced.tables.items():
                tables[name].append(frame)
            for name, png in produced.figures.items():
                run.figures[name] = png
                run.files[f"figure:{name}"] = atomic_write_bytes(
                    out / "figures" / f"{name}.png", png
                )
            for name, frames in tables.items():
                _write_table(run, name, pd.concat(frames, ignore_index=True))
    _summary(run, tables)
    report = experiment_report(run)
    run.figures.update(report.figures)
    for name, png in report.figures.items():
        run.files[f"figure:{name}"] = atomic_write_bytes(out / "figures" / f"{name}.png", png)
    run.files["report"] = report.report.write(out / "report.html")
    say(f"Results written to {out.resolve()} (open report.html)")
    return run
