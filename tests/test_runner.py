"""The config-driven runner: validation, reproducibility, results folder, CLI, crash safety."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import openattrib as oa
from openattrib.cli import main
from openattrib.errors import UnsupportedError, ValidationError
from openattrib.experiments import load_config, resolve_config, run_experiment
from openattrib.experiments import runner as runner_module

TINY = """
name = "tiny"
seeds = [3, 4]

[dataset]
name = "breast_cancer"
n_samples = 60
test_size = 0.3

[noise]
fraction = 0.1

[model]
name = "logistic"

[[methods]]
name = "loo"

[[methods]]
name = "tmc"
budget = 6

[[methods]]
name = "knn_shapley"
k = 3

[[methods]]
name = "influence"

[[methods]]
name = "random"

[evaluation]
removal = { fraction = 0.2, max_fraction = 0.4 }
lds = { n_subsets = 5 }
"""


def base(**overrides):
    cfg = {"dataset": {"name": "wine", "n_samples": 40}, "methods": [{"name": "loo"}]}
    cfg.update(overrides)
    return cfg


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            base(methods=[{"name": "shapley_magic"}]),
            r"methods\[0\]\.name.*unknown method 'shapley_magic'",
        ),
        ({"methods": [{"name": "loo"}]}, r"'dataset'.*missing"),
        (base(noise={"fraction": 1.5}), r"'noise\.fraction'.*\[0, 1\)"),
        (base(noise={"fraction": "ten"}), r"'noise\.fraction'.*number"),
        (base(dataset={"name": "mnist"}), r"'dataset\.name'.*unknown data set 'mnist'"),
        (base(dataset={"n_samples": 40}), r"'dataset\.name'.*missing"),
        (
            base(methods=[{"name": "tmc", "budgett": 5}]),
            r"methods\[0\]\.'budgett'.*parameters: antithetic, budget",
        ),
        (base(methods=[{"name": "tmc", "budget": 0}]), r"methods\[0\]\.'budget'.*integer >= 1"),
        (base(methods=[{"name": "beta", "alpha": -1}]), r"methods\[0\]\.'alpha'.*positive"),
        (base(methods=[{"name": "loo"}, {"name": "loo"}]), r"methods\[1\]\.label.*distinct"),
        (base(methods=[]), r"'methods'.*non-empty"),
        (base(model={"name": "svm"}), r"'model\.name'.*logistic, knn, ridge, tree, naive_bayes"),
        (base(colour="blue"), r"'colour' is not understood"),
        (base(evaluation={"removal": {"fraction": 0}}), r"evaluation\.removal\.fraction"),
        (base(evaluation={"convergence": {"reference": "oracle"}}), r"convergence\.reference"),
        (
            base(evaluation={"convergence": {"methods": ["loo"]}}),
            r"convergence\.methods.*Monte Carlo",
        ),
        (base(seeds=[1, 1]), r"'seeds'.*duplicates"),
        (base(seeds=[1], repetitions=2), r"either seeds"),
        (base(dataset={"name": "wine", "params": {"n_features": 3}}), r"only the 'synthetic'"),
    ],
)
def test_config_errors_name_the_key(config, message):
    with pytest.raises(ValidationError, match=message):
        resolve_config(config)


def test_defaults_are_written_out(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TINY)
    cfg = load_config(path)
    assert cfg["name"] == "tiny" and cfg["seeds"] == [3, 4]
    assert cfg["methods"][1]["params"] == {
        "budget": 6,
        "stop": None,
        "truncation": 0.01,
        "antithetic": False,
    }
    assert cfg["evaluation"]["lds"] == {"n_subsets": 5, "alpha": 0.5, "per_test": True}
    assert resolve_config(base(seed=5, repetitions=3))["seeds"] == [5, 6, 7]
    (tmp_path / "bad.toml").write_text("name = ")
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ValidationError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_runtime_checks_fail_before_any_method_runs(tmp_path):
    with pytest.raises(UnsupportedError, match="influence.*logistic"):
        run_experiment(base(model={"name": "knn"}, methods=[{"name": "influence"}]), tmp_path / "a")
    with pytest.raises(ValidationError, match="n_samples.*more than the 178 rows"):
        run_experiment(base(dataset={"name": "wine", "n_samples": 500}), tmp_path / "b")
    with pytest.raises(ValidationError, match="model.params"):
        run_experiment(base(model={"name": "logistic", "params": {"C": -1.0}}), tmp_path / "c")
    with pytest.raises(ValidationError, match="model.params"):
        run_experiment(base(model={"name": "logistic", "params": {"colour": 1}}), tmp_path / "d")
    assert not (tmp_path / "c").exists()  # nothing written before the checks pass


@pytest.mark.slow  # runs an experiment twice
# --------------------------------------------------------------------------- running
def test_rerun_reproduces_every_table_except_timing(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    first = run_experiment(config, tmp_path / "one")
    second = run_experiment(config, tmp_path / "two")
    names = sorted(p.name for p in (tmp_path / "one").glob("*.csv"))
    assert {
        "detection.csv",
        "removal.csv",
        "removal_summary.csv",
        "agreement.csv",
        "lds.csv",
        "methods.csv",
        "summary.csv",
        "methods_timing.csv",
        "summary_timing.csv",
    } <= set(names)
    compared = [n for n in names if not n.endswith("_timing.csv")]
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path / "one", tmp_path / "two", compared, shallow=False
    )
    assert mismatch == [] and errors == [] and len(match) == len(compared)
    for name in ("config.json", "config.toml", "versions.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    # tables hold what the seeds say: 2 seeds x 4 methods, and the report is written
    methods = pd.read_csv(tmp_path / "one" / "methods.csv")
    assert len(methods) == 10 and sorted(methods["seed"].unique()) == [3, 4]
    assert "wall_seconds" not in methods and "wall_seconds" in pd.read_csv(
        tmp_path / "one" / "methods_timing.csv"
    )
    summary = pd.read_csv(tmp_path / "one" / "summary.csv")
    assert list(summary["method"]) == ["loo", "tmc", "knn_shapley", "influence", "random"]
    lds = pd.read_csv(tmp_path / "one" / "lds.csv")
    assert set(lds.query("kind == 'per_test'")["method"]) == {"influence"}
    assert len(lds.query("kind == 'utility'")) == 10
    assert (
        (summary["n_seeds"] == 2).all()
        and "kmeans_f1_mean" in summary
        and "removal_area_std" in summary
    )
    assert (
        first.report_path.is_file() and len(list((tmp_path / "one" / "figures").glob("*.png"))) >= 4
    )
    # the saved attributions reload, and the detection table agrees with a direct computation
    saved = oa.Attribution.load(
        tmp_path / "one" / "attributions" / "breast_cancer" / "seed3" / "knn_shapley.json"
    )
    assert np.array_equal(
        saved.values, second.attributions[("breast_cancer", 3, "knn_shapley")].values
    )
    detection = pd.read_csv(tmp_path / "one" / "detection.csv").set_index(["seed", "method"])
    from sklearn.metrics import roc_auc_score

    truth = np.zeros(len(saved), dtype=bool)
    flipped_rows = pd.read_csv(tmp_path / "one" / "detection.csv").query("seed == 3").iloc[0]
    assert flipped_rows["n_flipped"] == round(0.1 * len(saved))
    # recompute the flipped rows the way the runner does and check the AUC it reported
    from openattrib.experiments._setup import prepare_unit

    unit = prepare_unit(first.config["datasets"][0], 0.1, 3)
    truth[unit.flipped] = True
    assert detection.loc[(3, "knn_shapley"), "auc"] == pytest.approx(
        roc_auc_score(truth, -saved.values)
    )


def test_crash_mid_run_keeps_earlier_results(tmp_path, monkeypatch):
    config = {
        "seeds": [0, 1],
        "dataset": {"name": "wine", "n_samples": 50},
        "model": {"name": "naive_bayes"},
        "methods": [{"name": "loo"}, {"name": "random"}],
        "evaluation": {"removal": {"fraction": 0.25}},
    }
    real = runner_module.evaluate_unit
    calls = []

    def crash_on_second(cfg, unit, *args, **kwargs):
        calls.append(unit.seed)
        if unit.seed == 1:
            raise RuntimeError("simulated crash")
        return real(cfg, unit, *args, **kwargs)

    monkeypatch.setattr(runner_module, "evaluate_unit", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment(config, tmp_path / "out")
    detection = pd.read_csv(tmp_path / "out" / "detection.csv")
    assert set(detection["seed"]) == {0} and len(detection) == 2
    assert (tmp_path / "out" / "attributions" / "wine" / "seed1" / "loo.json").is_file()
    assert not list((tmp_path / "out").glob(".*.tmp"))
    json.loads((tmp_path / "out" / "config.json").read_text())


@pytest.mark.slow
def test_contributor_level_with_convergence_to_exact(tmp_path):
    config = {
        "seeds": [0],
        "dataset": {
            "name": "synthetic",
            "n_samples": 80,
            "n_contributors": 8,
            "params": {"n_features": 5},
        },
        "noise": {"fraction": 0.25},
        "model": {"name": "ridge"},
        "methods": [
            {"name": "exact_shapley"},
            {"name": "tmc", "budget": 40, "truncation": 0.0},
            {"name": "knn_shapley"},
        ],
        "evaluation": {"removal": {"fraction": 0.25, "max_fraction": 0.5}, "convergence": True},
    }
    run = run_experiment(config, tmp_path / "out")
    methods = run.tables["methods"]
    assert (methods["level"] == "contributors").all() and (methods["n_players"] == 8).all()
    detection = run.tables["detection"]
    assert (detection["n_flipped"] == 2).all() and (detection["n"] == 8).all()
    conv = pd.read_csv(tmp_path / "out" / "convergence.csv")
    assert set(conv["method"]) == {"tmc"} and "elapsed_seconds" not in conv
    # the reference is exact Shapley: the last checkpoint equals the tmc values' error against it
    exact = run.attributions[("synthetic", 0, "exact_shapley")].values
    tmc = run.attributions[("synthetic", 0, "tmc")].values
    assert conv["max_abs_error"].iloc[-1] == pytest.approx(np.abs(tmc - exact).max())


@pytest.mark.slow
def test_cli_runs_a_config_and_reports_bad_input(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(
        'seeds = [0]\n[dataset]\nname = "iris"\nn_samples = 40\n[[methods]]\nname = "random"\n'
        '[[methods]]\nname = "loo"\n[model]\nname = "naive_bayes"\n'
        "[evaluation]\nremoval = { fraction = 0.25 }\n"
    )
    assert main(["experiment", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "report.html").is_file()
    assert "Results written to" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[dataset]\nname = "iris"\n[[methods]]\nname = "nope"\n')
    assert main(["experiment", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown method 'nope'" in err[0]
    assert main(["experiment", str(tmp_path / "missing.toml")]) == 1


def test_committed_configs_are_valid():
    root = Path(__file__).resolve().parent.parent / "experiments"
    for name in ("quick.toml", "benchmark.toml"):
        cfg = load_config(root / name)
        assert cfg["methods"] and cfg["datasets"]
