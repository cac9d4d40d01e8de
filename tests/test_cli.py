"""The ``openattrib`` command: value, demo, and one clear error line on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import openattrib as oa
from openattrib.cli import main
from openattrib.recipe import standardize


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    train, _ = oa.datasets.load_demo()
    small = train.subset(np.arange(0, train.n_samples, 3))
    path = tmp_path_factory.mktemp("cli") / "small.csv"
    small.to_frame().to_csv(path, index=False)
    return path, small


def value_cli(path, out, *options: str) -> int:
    """``openattrib value`` on the test CSV, valuing its contributor column."""
    args = ["value", "--data", str(path), "--target", "label", "--contributor", "contributor"]
    return main([*args, *options, "--out", str(out), "--no-progress"])


def test_value_exact_by_contributor_matches_the_api(csv_file, tmp_path, capsys):
    path, small = csv_file
    out = tmp_path / "result.json"
    code = value_cli(path, out, "--model", "logistic", "--method", "exact", "--seed", "3")
    assert code == 0
    result = oa.Attribution.load(out)
    assert result.level == "contributors" and result.method == "exact_shapley"
    # the same computation through the public API
    ds = oa.Dataset.from_csv(path, target="label", contributor="contributor")
    train, valid = standardize(*ds.split(test_size=0.3, seed=3))
    game = oa.ModelUtility(LogisticRegression(max_iter=1000), train, valid, players="contributors")
    np.testing.assert_array_equal(result.values, oa.exact_shapley(game, progress=False).values)
    assert "wrote" in capsys.readouterr().out


def test_value_loo_points(csv_file, tmp_path):
    path, small = csv_file
    out = tmp_path / "loo.json"
    assert value_cli(path, out, "--players", "points", "--model", "knn", "--method", "loo") == 0
    result = oa.Attribution.load(out)
    assert result.level == "points" and len(result) == small.n_samples - int(
        np.ceil(0.3 * small.n_samples)
    )
    assert result.by_contributor().level == "contributors"


def test_value_payout_split_robust_sums_positive_point_values(csv_file, tmp_path, capsys):
    path, _ = csv_file
    points, paid = tmp_path / "points.json", tmp_path / "paid.json"
    common = ("--model", "knn", "--method", "knn_shapley")
    assert value_cli(path, points, "--players", "points", *common) == 0
    assert value_cli(path, paid, "--payout", "split_robust", *common) == 0
    points, paid = oa.Attribution.load(points), oa.Attribution.load(paid)
    assert paid.level == "contributors" and paid.provenance["recipe"]["payout"] == "split_robust"
    owners = np.asarray(points.contributors)
    for name in paid.names:
        expected = np.maximum(points.values[owners == name], 0).sum()
        if name in ("alice", "dave", "erin"):  # the copied rows and their originals: discounted
            assert paid[name] < expected
        else:  # nobody else's rows have a copy in the demo data
            assert paid[name] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    capsys.readouterr()
    code = value_cli(
        path, tmp_path / "x.json", "--payout", "split_robust", "--players", "contributors"
    )
    assert code == 1 and "--payout split_robust" in capsys.readouterr().err


def test_string_column_without_contributor_flag_is_named(csv_file, tmp_path, capsys):
    path, _ = csv_file
    code = main(
        ["value", "--data", str(path), "--target", "label", "--out", str(tmp_path / "o.json")]
    )
    assert code == 1
    assert "'contributor'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nope"], "nope"),
        (["--target", "label", "--contributor", "owner"], "owner"),
        (["--target", "label", "--players", "contributors"], "--contributor"),
    ],
)
def test_errors_print_one_line_and_leave_no_file(csv_file, tmp_path, capsys, args, message):
    path, _ = csv_file
    out = tmp_path / "never.json"
    code = main(["value", "--data", str(path), *args, "--out", str(out), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openattrib: error:") and message in err[0]
    assert not out.exists()


def test_missing_file_is_one_line(tmp_path, capsys):
    code = main(
        [
            "value",
            "--data",
            str(tmp_path / "x.csv"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "o.json"),
        ]
    )
    assert code == 1
    assert "x.csv" in capsys.readouterr().err


def test_monte_carlo_without_stopping_rule_runs_and_records_the_registry_budget(csv_file, tmp_path):
    path, _ = csv_file
    out = tmp_path / "o.json"
    assert value_cli(path, out, "--method", "tmc", "--seed", "2") == 0
    result = oa.Attribution.load(out)
    budget = oa.methods.get("permutation_shapley").defaults["budget"]
    assert result.provenance["recipe"]["params"] == {"budget": budget, "truncation": 0.01}
    assert (np.asarray(result.counts) == budget).all()


def test_options_of_other_methods_are_refused(csv_file, tmp_path, capsys):
    path, _ = csv_file
    for extra in (("--method", "loo", "--max-samples", "5"), ("--method", "knn", "--alpha", "2")):
        code = value_cli(path, tmp_path / "o.json", *extra)
        assert code == 1
        err = capsys.readouterr().err
        assert err.startswith("openattrib: error:") and extra[1] in err
        assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_tmc_same_seed_same_values_and_recipe_recorded(csv_file, tmp_path):
    path, _ = csv_file
    tmc = ("--method", "tmc", "--max-samples", "6", "--seed", "5")
    assert value_cli(path, tmp_path / "a.json", *tmc) == 0
    assert value_cli(path, tmp_path / "b.json", *tmc, "--n-jobs", "2") == 0
    a, b = oa.Attribution.load(tmp_path / "a.json"), oa.Attribution.load(tmp_path / "b.json")
    np.testing.assert_array_equal(a.values, b.values)
    assert a.stderr is not None and a.result_hash() == b.result_hash()
    assert a.provenance["recipe"]["params"] == {"stop": "MaxSamples(6)", "truncation": 0.01}


def test_knn_method_equals_api(csv_file, tmp_path):
    path, _ = csv_file
    out = tmp_path / "knn.json"
    assert value_cli(path, out, "--players", "points", "--method", "knn", "--k", "3") == 0
    ds = oa.Dataset.from_csv(path, target="label", contributor="contributor")
    train, valid = standardize(*ds.split(test_size=0.3, seed=0))
    expected = oa.knn_shapley(train, valid, k=3, progress=False)
    np.testing.assert_array_equal(oa.Attribution.load(out).values, expected.values)


def test_oob_by_contributor(csv_file, tmp_path):
    path, _ = csv_file
    out = tmp_path / "oob.json"
    assert value_cli(path, out, "--method", "oob", "--n-estimators", "30") == 0
    result = oa.Attribution.load(out)
    assert result.level == "contributors" and result.counts is not None


def test_ledger_reproduce_recomputes_a_recorded_run(csv_file, tmp_path, capsys):
    path, _ = csv_file
    out, ledger = tmp_path / "run.json", tmp_path / "ledger.sqlite"
    assert value_cli(path, out, "--method", "banzhaf", "--max-samples", "20", "--seed", "9") == 0
    assert main(["ledger", "append", str(ledger), "--run", str(out)]) == 0
    capsys.readouterr()
    assert (
        main(["ledger", "reproduce", str(ledger), "0", "--data", str(path), "--no-progress"]) == 0
    )
    assert "matches bit for bit" in capsys.readouterr().out
    # other data: refused with the two hashes named
    other = tmp_path / "other.csv"
    lines = path.read_text().splitlines()
    other.write_text("\n".join(lines[:-1]) + "\n")
    assert (
        main(["ledger", "reproduce", str(ledger), "0", "--data", str(other), "--no-progress"]) == 1
    )
    assert "content hash" in capsys.readouterr().err


def test_unreachable_dask_scheduler_is_one_clear_line(csv_file, tmp_path, capsys):
    path, _ = csv_file
    out = tmp_path / "never.json"
    dask = ("--scheduler", "tcp://127.0.0.1:9")
    code = value_cli(path, out, "--method", "permutation", "--max-samples", "4", *dask)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "127.0.0.1:9" in err[0]
    assert not out.exists()
