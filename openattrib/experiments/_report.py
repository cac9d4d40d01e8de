"""The HTML report of an experiment run (``report.html`` in the results folder)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..report import Report, figure_to_png
from ._base import ExperimentRun

__all__ = ["experiment_report", "benchmark_table"]

_HEADLINE = (
    ("kmeans_f1", "Noisy-label detection: F1 of the two-cluster rule (OpenDataVal)"),
    ("auc", "Noisy-label detection: ROC-AUC of -value"),
    ("removal_area", "Point removal: area between low-first and high-first curves"),
    ("addition_area", "Point addition: area between high-first and low-first curves"),
    ("lds", "Linear datamodeling score (utility)"),
    ("wall_seconds", "Wall time per method run (seconds)"),
)


@dataclass
class BuiltReport:
    report: Report
    figures: dict[str, bytes] = field(default_factory=dict)


def _cell(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f}" if not np.isfinite(std) else f"{mean:.3f} ± {std:.3f}"


def benchmark_table(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Method x data set table of ``metric`` as ``"mean ± std"`` strings (OpenDataVal layout)."""
    frame = summary.copy()
    frame["cell"] = [
        _cell(m, s) for m, s in zip(frame[f"{metric}_mean"], frame[f"{metric}_std"], strict=True)
    ]
    datasets = list(dict.fromkeys(frame["dataset"]))
    methods = list(dict.fromkeys(frame["method"]))
    table = frame.pivot(index="method", columns="dataset", values="cell").reindex(
        index=methods, columns=datasets
    )
    table.columns.name = None
    table.index.name = None
    return table


def experiment_report(run: ExperimentRun) -> BuiltReport:
    """Build the report of a finished run: set-up, summary tables and figures, per-unit figures."""
    import matplotlib.pyplot as plt

    from ..plots import plot_benchmark

    cfg = run.config
    built = BuiltReport(
        Report(f"Experiment: {cfg['name']}", subtitle="openattrib experiment runner")
    )
    report = built.report
    if cfg["description"]:
        report.add_text(cfg["description"])
    report.add_heading("Set-up")
    datasets = ", ".join(
        f"{d['label']} ({d['n_samples'] or 'all'} rows"
        + (f", {d['n_contributors']} contributors)" if d["n_contributors"] else ")")
        for d in cfg["datasets"]
    )
    model = cfg["model"]
    report.add_key_values(
        {
            "data sets": datasets,
            "seeds": ", ".join(str(s) for s in cfg["seeds"]),
            "label noise": f"{cfg['noise']['fraction']:.0%} of training labels flipped",
            "model": f"{model['name']} {model['params'] or ''} scored by {model['scorer']}",
            "methods": ", ".join(
                f"{m['label']}" + (f" ({m['name']}: {m['params']})" if m["params"] else "")
                for m in cfg["methods"]
            ),
        }
    )
    summary = run.tables.get("summary")
    if summary is not None and len(summary):
        report.add_heading("Results (mean ± std over seeds)")
        report.add_text(
            "Higher is better for every number except wall time. Timing columns are measured "
            "wall-clock seconds and differ between reruns; every other number is reproducible."
        )
        for metric, caption in _HEADLINE:
            if f"{metric}_mean" not in summary or summary[f"{metric}_mean"].isna().all():
                continue
            report.add_heading(caption, level=3)
            report.add_table(benchmark_table(summary, metric))
            if (
                metric != "wall_seconds"
                and summary["dataset"].nunique() * summary["method"].nunique() > 1
            ):
                fig = plot_benchmark(summary, metric)
                png = figure_to_png(fig)
                plt.close(fig)
                built.figures[f"summary_{metric}"] = png
                report.add_png(png, caption=caption)
    for dataset in dict.fromkeys(d["label"] for d in cfg["datasets"]):
        shown = {k: v for k, v in run.figures.items() if k.startswith(f"{dataset}_seed")}
        if not shown:
            continue
        seed = cfg["seeds"][0]
        report.add_heading(f"Data set {dataset} (seed {seed})")
        for name, png in shown.items():
            what = name[len(f"{dataset}_seed{seed}_") :].replace("_", " ")
            report.add_png(png, caption=f"{dataset}, seed {seed}: {what}")
    report.add_heading("Reproducibility")
    report.add_text(
        "Rerun with `openattrib experiment config.toml --out DIR`: every random choice derives "
        "from the seeds in the config, so all CSV files except *_timing.csv are identical."
    )
    files = sorted(
        str(p.relative_to(run.out_dir)) for k, p in run.files.items() if not k.startswith("figure:")
    )
    report.add_key_values({"files": ", ".join(files)})
    versions_path = run.out_dir / "versions.json"
    if versions_path.is_file():
        report.add_key_values(json.loads(versions_path.read_text(encoding="utf-8")))
    report.add_code(json.dumps(cfg, indent=2, sort_keys=True))
    return built
