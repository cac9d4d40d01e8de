"""The vocabulary (DESIGN.md "One vocabulary") holds for every public callable.

Walks ``openattrib.__all__`` and the ``__all__`` of the public modules it exports
(``datasets``, ``experiments``, ``ledger``, ``report``, ``rewards``, ``stop``,
``toy_games``): functions, class constructors and public methods. Each vocabulary word must
have one kind, one annotation and one default everywhere it appears.
"""

from __future__ import annotations

import inspect
import types
import warnings

import pytest

import openattrib as oa
from openattrib._vocab import deprecated_keywords, parse_memory_budget

KW = inspect.Parameter.KEYWORD_ONLY
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# Result types *record* a seed (None for deterministic methods); they draw nothing.
RECORDS_A_SEED = {"Attribution.__init__", "InfluenceResult.__init__"}
# The vocabulary words: (annotation, allowed defaults). Every occurrence must be keyword-only.
WORDS = {
    "players": ("str", {"points", "contributors", "players"}),
    "memory_budget": ("int | str | None", {None}),
    "n_jobs": ("int", {1}),
    "progress": ("bool", {True}),
    "backend": ("str | None", {None}),
    "client": ("Any", {None}),
    "stop": ("Any", {None}),
}
# Positional beyond the data: the arguments that say *which* value is computed, as in
# exact_semivalue(game, weights) and Beta(alpha, beta); everything else is keyword-only.
DEFINING = {"weights", "alpha", "beta"}
# Functions whose parameters with a default must all be keyword-only (the estimators and
# data generators a user calls; the data and the defining arguments stay positional).
STRICT = {
    "permutation_shapley",
    "beta_shapley",
    "banzhaf",
    "semivalue",
    "exact_shapley",
    "exact_banzhaf",
    "exact_semivalue",
    "loo",
    "data_oob",
    "knn_shapley",
    "knn_shapley_per_test",
    "influence",
    "tracin",
    "trak",
    "attribute_prediction",
    "explain_prediction",
    "allocate",
    "make_classification",
    "make_regression",
    "flip_labels",
    "partition",
    "Dataset.split",
    "ModelUtility.__init__",
}


def _public_modules() -> dict[str, types.ModuleType]:
    modules = {"openattrib": oa}
    for name in oa.__all__:
        value = getattr(oa, name)
        if isinstance(value, types.ModuleType):
            modules[value.__name__] = value
    return modules


def _callables() -> dict[str, inspect.Signature]:
    found: dict[str, inspect.Signature] = {}

    def add(label: str, fn: object) -> None:
        try:
            found.setdefault(label, inspect.signature(fn))  # follows __wrapped__
        except (TypeError, ValueError):  # builtins without a signature
            pass

    for module in _public_modules().values():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType):
                continue
            if inspect.isclass(obj):
                if "__init__" in vars(obj):
                    add(f"{obj.__name__}.__init__", obj.__init__)
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if inspect.isfunction(member):
                        add(f"{obj.__name__}.{attr}", member)
            elif callable(obj):
                add(getattr(obj, "__name__", name), obj)
    return found


CALLABLES = _callables()


def _annotation(param: inspect.Parameter) -> str:
    a = param.annotation
    return a.__name__ if isinstance(a, type) else str(a)


def test_the_walk_sees_the_public_api():
    for name in ("permutation_shapley", "data_oob", "knn_shapley", "influence", "tracin"):
        assert name in CALLABLES
    assert "Dataset.split" in CALLABLES and "ModelUtility.__init__" in CALLABLES
    assert "make_classification" in CALLABLES and "allocate" in CALLABLES
    assert len(CALLABLES) > 100


@pytest.mark.parametrize("label", sorted(k for k, s in CALLABLES.items() if "seed" in s.parameters))
def test_seed_is_keyword_only_and_defaults_to_an_int(label):
    seed = CALLABLES[label].parameters["seed"]
    assert seed.kind is KW, f"{label}: seed must be keyword-only"
    if label in RECORDS_A_SEED:
        assert seed.default is None  # a record, not a source of randomness
        return
    assert type(seed.default) is int and seed.default == 0, f"{label}: seed defaults to 0"
    assert _annotation(seed) in ("int", "int | None"), f"{label}: seed annotated int"


def test_every_stochastic_estimator_takes_a_seed():
    for name in ("permutation_shapley", "beta_shapley", "banzhaf", "semivalue", "data_oob"):
        assert "seed" in CALLABLES[name].parameters, name
    for name in ("influence", "tracin", "trak", "explain_prediction", "Dataset.split"):
        assert "seed" in CALLABLES[name].parameters, name


@pytest.mark.parametrize("word", sorted(WORDS))
def test_each_vocabulary_word_has_one_kind_type_and_default(word):
    annotation, defaults = WORDS[word]
    uses = {k: s.parameters[word] for k, s in CALLABLES.items() if word in s.parameters}
    assert uses, word
    wrong = []
    for label, param in uses.items():
        if param.kind is not KW:
            wrong.append(f"{label}: {word} must be keyword-only")
        if _annotation(param) != annotation:
            wrong.append(f"{label}: {word} is annotated {param.annotation}, not {annotation}")
        if param.default not in defaults:
            wrong.append(f"{label}: {word} defaults to {param.default!r}, not one of {defaults}")
    assert not wrong, "\n".join(wrong)


def test_progress_defaults_to_true_on_the_estimators():
    for name in STRICT:
        param = CALLABLES[name].parameters.get("progress")
        if param is not None:
            assert param.default is True, name


def test_players_means_the_level_of_the_result():
    for label, sig in CALLABLES.items():
        if "level" in sig.parameters and label != "Report.add_heading":  # a heading's level
            pytest.fail(f"{label} still takes level=; the vocabulary word is players=")
    assert CALLABLES["knn_shapley"].parameters["players"].default == "points"
    assert CALLABLES["attribute_prediction"].parameters["players"].default == "contributors"


@pytest.mark.parametrize("label", sorted(STRICT))
def test_data_first_and_positional_everything_else_keyword_only(label):
    params = [p for p in CALLABLES[label].parameters.values() if p.name != "self"]
    for p in params:
        if p.kind in POSITIONAL and p.default is not inspect.Parameter.empty:
            assert p.name in DEFINING, f"{label}: {p.name} must be keyword-only"
    # generators take no data; Dataset.split's data is the Dataset itself
    assert params[0].kind in POSITIONAL or label in {
        "make_classification",
        "make_regression",
        "Dataset.split",
    }


def test_valid_is_what_a_utility_scores_and_test_what_is_explained():
    assert list(CALLABLES["knn_shapley"].parameters)[:2] == ["train", "valid"]
    assert list(CALLABLES["knn_shapley_per_test"].parameters)[:2] == ["train", "test"]
    assert list(CALLABLES["ModelUtility.__init__"].parameters)[1:4] == [
        "estimator",
        "train",
        "valid",
    ]
    for name in ("influence", "tracin", "trak"):
        assert list(CALLABLES[name].parameters)[1:3] == ["train", "test"], name


def test_no_public_name_is_the_old_bootstrap_size():
    assert "max_samples" not in CALLABLES["data_oob"].parameters
    assert "bag_fraction" in CALLABLES["data_oob"].parameters
    assert "max_bytes" not in CALLABLES["tracin"].parameters


# ----------------------------------------------------------------------- the shared helpers
@pytest.mark.parametrize(
    "text,expected",
    [(10, 10), ("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), (" 1.5 kb ", 1500), ("7", 7)],
)
def test_parse_memory_budget(text, expected):
    assert parse_memory_budget(text) == expected


@pytest.mark.parametrize("bad", ["lots", "5 parsecs", 0, -3, True, "", None])
def test_parse_memory_budget_refuses_what_is_not_a_size(bad):
    with pytest.raises(oa.ValidationError, match="memory_budget"):
        parse_memory_budget(bad)


def test_deprecated_keywords_helper():
    @deprecated_keywords(positional=("b", "c"), old="new")
    def f(a, *, b=1, c=2, new=3):
        return a, b, c, new

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(0, b=5) == (0, 5, 2, 3)  # the new spelling never warns
    with pytest.warns(DeprecationWarning, match=r"f\(\): old= is deprecated.*use new="):
        assert f(0, old=9) == (0, 1, 2, 9)
    with pytest.warns(DeprecationWarning, match=r"passing b, c positionally.*b=, c="):
        assert f(0, 5, 6) == (0, 5, 6, 3)
    with pytest.raises(oa.ValidationError, match="both old= .*and new="):
        f(0, old=1, new=2)
    with pytest.raises(TypeError, match="positional"):
        f(0, 1, 2, 3)
    with pytest.raises(TypeError, match="multiple values for argument 'b'"):
        f(0, 5, b=6)
    assert inspect.signature(f).parameters["b"].kind is KW  # the real signature shows
