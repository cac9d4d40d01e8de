"""The method registry: names, aliases, defaults, and that every consumer goes through it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import openattrib as oa
from openattrib import methods
from openattrib.cli import build_parser, main
from openattrib.errors import ValidationError
from openattrib.recipe import compute, depends_on_time


@pytest.fixture(scope="module")
def data():
    ds = oa.datasets.make_classification(
        n_samples=40, n_features=3, n_informative=2, class_sep=1.5, seed=1
    )
    ds = oa.datasets.partition(ds, 4, seed=1)
    return ds.split(test_size=0.5, seed=0)


def test_canonical_names_are_the_public_functions():
    for name, method in methods.METHODS.items():
        assert method.name == name
        assert method.kind in methods.KINDS
        assert set(method.levels) <= {"points", "contributors"}
        if name != "random":  # the baseline is not a public function
            assert method.callable is getattr(oa, name)
            assert method.callable.__name__ == name


def test_every_alias_resolves_to_a_registered_method():
    expected = {
        "exact": "exact_shapley",
        "banzhaf-exact": "exact_banzhaf",
        "permutation": "permutation_shapley",
        "tmc": "permutation_shapley",
        "beta": "beta_shapley",
        "knn": "knn_shapley",
        "oob": "data_oob",
    }
    assert {a: target for a, (target, _) in methods.ALIASES.items()} == expected
    for alias, target in expected.items():
        method, fixed = methods.resolve(alias)
        assert method is methods.METHODS[target]
        assert set(fixed) <= set(method.defaults)
    assert methods.resolve("tmc")[1] == {"truncation": 0.01}
    with pytest.raises(ValidationError, match="unknown method 'nope'.*permutation_shapley"):
        methods.resolve("nope")


def test_defaults_are_valid_parameters_of_the_functions():
    """Every registry default names a parameter the function takes (or a stopping budget)."""
    for method in methods.METHODS.values():
        if method.name == "random":
            continue
        accepted = set(inspect.signature(method.callable).parameters)
        for param in method.defaults:
            if param in ("budget", "stop"):
                assert method.monte_carlo and "stop" in accepted
            else:
                assert param in accepted, (method.name, param)
        assert method.error_bars == method.monte_carlo or method.name == "data_oob"


def test_one_default_per_method_matches_the_functions_own_default():
    for name, param in (("data_oob", "n_estimators"), ("knn_shapley", "k")):
        function = getattr(oa, name)
        default = inspect.signature(function).parameters[param].default
        assert methods.get(name).defaults[param] == default
    assert methods.get("beta_shapley").defaults["alpha"] == 16.0


def test_check_params_fills_defaults_and_refuses_bad_values():
    assert methods.check_params("tmc", {"budget": 7}) == {
        "budget": 7,
        "stop": None,
        "truncation": 0.01,
        "antithetic": False,
    }
    with pytest.raises(ValidationError, match="'budgett' is not a parameter.*budget"):
        methods.check_params("banzhaf", {"budgett": 3})
    with pytest.raises(ValidationError, match="'k' must be an integer >= 1"):
        methods.check_params("knn", {"k": 0})
    with pytest.raises(ValidationError, match="'alpha' must be positive"):
        methods.check_params("beta", {"alpha": -1.0})
    with pytest.raises(ValidationError, match="'stop' must be text"):
        methods.check_params("banzhaf", {"stop": 5})


def test_registry_round_trip_register_run_unregister(data):
    train, valid = data
    calls = []

    def run(inputs, params, seed):
        calls.append((params["scale"], seed))
        values = np.full(inputs.train.n_samples, params["scale"])
        return oa.Attribution(
            values,
            [str(i) for i in range(len(values))],
            method="constant",
            seed=seed,
            players="points",
            contributors=inputs.train.contributors,
        )

    method = methods.Method(
        "constant_test",
        "openattrib.methods:run",
        "baseline",
        {"scale": 2.0},
        run,
        levels=("points",),
    )
    methods.register(method, aliases={"const": {"scale": 3.0}})
    try:
        assert methods.get("const") is method
        with pytest.raises(ValidationError, match="already registered"):
            methods.register(method)
        inputs = methods.MethodInput(train, valid, players="contributors", progress=False)
        result = methods.run("const", inputs, seed=4)
        # a points-only method is summed per contributor
        assert result.level == "contributors"
        groups = train.groups()
        np.testing.assert_allclose(result.values, [3.0 * groups[n].size for n in result.names])
        assert calls == [(3.0, 4)]
    finally:
        methods.unregister("const")
    assert "constant_test" not in methods.names() and "const" not in methods.names()


def test_a_registered_method_is_visible_to_the_cli_recipes_and_experiments(data, tmp_path):
    train, valid = data

    def run(inputs, params, seed):
        n = inputs.train.n_samples
        return oa.Attribution(
            np.arange(n, dtype=float) * params["step"],
            [str(i) for i in range(n)],
            method="ramp",
            seed=seed,
            players="points",
            contributors=inputs.train.contributors,
        )

    methods.register(
        methods.Method(
            "ramp_test",
            "openattrib.methods:run",
            "baseline",
            {"step": 1.0},
            run,
            levels=("points",),
        )
    )
    try:
        # CLI
        parser = build_parser()
        args = parser.parse_args(
            ["value", "--data", "x.csv", "--target", "y", "--method", "ramp_test", "--out", "o"]
        )
        assert args.method == "ramp_test"
        path = tmp_path / "d.csv"
        train.to_frame().to_csv(path, index=False)
        out = tmp_path / "r.json"
        code = main(
            [
                "value",
                "--data",
                str(path),
                "--target",
                train.target_name,
                "--contributor",
                "contributor",
                "--players",
                "points",
                "--method",
                "ramp_test",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        assert code == 0
        assert oa.Attribution.load(out).method == "ramp"
        # recipe
        recipe = {"method": "ramp_test", "params": {"step": 2.0}, "players": "points"}
        np.testing.assert_array_equal(
            compute(recipe, train, valid, progress=False).values,
            2.0 * np.arange(train.n_samples),
        )
        # experiments config
        cfg = oa.experiments.resolve_config(
            {"name": "t", "dataset": {"name": "iris"}, "methods": [{"name": "ramp_test"}]}
        )
        assert cfg["methods"][0]["params"] == {"step": 1.0}
    finally:
        methods.unregister("ramp_test")
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["value", "--data", "x", "--target", "y", "--method", "ramp_test", "--out", "o"]
        )


OLD_RECIPES = [
    ("exact", {}, lambda g, tr, va: oa.exact_shapley(g, progress=False)),
    ("banzhaf-exact", {}, lambda g, tr, va: oa.exact_banzhaf(g, progress=False)),
    ("loo", {}, lambda g, tr, va: oa.loo(g, progress=False)),
    (
        "tmc",
        {"stop": "MaxSamples(5)", "truncation": 0.01},
        lambda g, tr, va: oa.permutation_shapley(
            g, truncation=0.01, stop=oa.stop.MaxSamples(5), seed=3, progress=False
        ),
    ),
    (
        "permutation",
        {"stop": "MaxSamples(5)"},
        lambda g, tr, va: oa.permutation_shapley(
            g, stop=oa.stop.MaxSamples(5), seed=3, progress=False
        ),
    ),
    (
        "beta",
        {"stop": "MaxSamples(4)", "alpha": 4.0, "beta": 1.0},
        lambda g, tr, va: oa.beta_shapley(
            g, alpha=4.0, beta=1.0, stop=oa.stop.MaxSamples(4), seed=3, progress=False
        ),
    ),
    (
        "banzhaf",
        {"stop": "MaxSamples(12)"},
        lambda g, tr, va: oa.banzhaf(g, stop=oa.stop.MaxSamples(12), seed=3, progress=False),
    ),
    (
        "knn",
        {"k": 3},
        lambda g, tr, va: oa.knn_shapley(tr, va, k=3, progress=False).by_contributor(),
    ),
    (
        "oob",
        {"n_estimators": 15},
        lambda g, tr, va: oa.data_oob(
            tr, n_estimators=15, seed=3, players="contributors", progress=False
        ),
    ),
]


@pytest.mark.parametrize(("name", "params", "direct"), OLD_RECIPES, ids=[r[0] for r in OLD_RECIPES])
def test_recipes_recorded_with_old_names_give_the_direct_calls_result_hash(
    data, name, params, direct
):
    """Oracle: the estimator called directly with the parameters the old recipe.py passed."""
    train, valid = data
    recipe = {"method": name, "params": params, "seed": 3, "players": "contributors"}
    via_registry = compute(recipe, train, valid, progress=False)
    game = oa.ModelUtility(
        LogisticRegression(max_iter=1000), train, valid, scorer="accuracy", players="contributors"
    )
    assert via_registry.result_hash() == direct(game, train, valid).result_hash()
    assert via_registry.provenance["recipe"]["method"] == name


def test_old_recipe_with_an_ignored_stopping_rule_still_reproduces(data):
    train, valid = data
    recipe = {"method": "exact", "params": {"stop": "MaxSamples(3)"}, "players": "contributors"}
    result = compute(recipe, train, valid, progress=False)
    game = oa.ModelUtility(LogisticRegression(max_iter=1000), train, valid, players="contributors")
    assert result.result_hash() == oa.exact_shapley(game, progress=False).result_hash()
    assert depends_on_time({"method": "tmc", "params": {"stop": "MaxTime(3)"}})
    assert not depends_on_time({"method": "exact", "params": {"stop": "MaxTime(3)"}})


def test_ledger_reproduce_of_a_run_recorded_under_an_old_name(data, tmp_path, capsys):
    train, valid = data
    frame = train.to_frame()
    frame.to_csv(tmp_path / "train.csv", index=False)
    valid.to_frame().drop(columns="contributor").to_csv(tmp_path / "valid.csv", index=False)
    recipe = {
        "target": train.target_name,
        "contributor": "contributor",
        "model": "logistic",
        "players": "contributors",
        "method": "tmc",
        "params": {"stop": "MaxSamples(4)", "truncation": 0.01},
        "seed": 1,
        "standardize": False,
        "split": None,
    }
    train_csv = oa.Dataset.from_csv(
        tmp_path / "train.csv", target=train.target_name, contributor="contributor"
    )
    valid_csv = oa.Dataset.from_csv(tmp_path / "valid.csv", target=train.target_name)
    result = compute(recipe, train_csv, valid_csv, progress=False)
    with oa.Ledger(tmp_path / "l.sqlite", create=True) as led:
        led.append_run(result)
    code = main(
        [
            "ledger",
            "reproduce",
            str(tmp_path / "l.sqlite"),
            "0",
            "--data",
            str(tmp_path / "train.csv"),
            "--valid",
            str(tmp_path / "valid.csv"),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr()
