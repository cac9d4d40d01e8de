"""Experiment configuration: read a TOML file, validate every key, fill in the defaults.

A config names the data, the noise, the model, the methods and the evaluations::

    name = "quick"
    seeds = [0, 1]              # or: seed = 0 and repetitions = 3 (seeds 0, 1, 2)

    [[datasets]]                # or a single [dataset] table
    name = "breast_cancer"      # oa.datasets.load name, or "synthetic"
    n_samples = 120             # random subset (before the train/validation split)
    test_size = 0.3

    [noise]
    fraction = 0.1

    [model]
    name = "logistic"           # logistic | knn | ridge | tree | naive_bayes
    params = { C = 1.0 }

    [[methods]]
    name = "tmc"
    budget = 50

The result of :func:`resolve_config` is a plain dict with every default written out; it
is what the runner records as ``config.json`` next to the results.
"""

from __future__ import annotations

import copy
import inspect
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import methods as registry
from ..datasets import make_classification
from ..errors import ValidationError
from ..recipe import MODELS

__all__ = ["load_config", "resolve_config", "MODELS", "EVALUATION_DEFAULTS"]

_TOP_KEYS = {
    "name",
    "description",
    "seed",
    "seeds",
    "repetitions",
    "n_jobs",
    "dataset",
    "datasets",
    "noise",
    "model",
    "methods",
    "evaluation",
}
_DATASET_DEFAULTS: dict[str, Any] = {
    "name": None,
    "label": None,
    "n_samples": None,
    "test_size": 0.3,
    "standardize": True,
    "n_contributors": None,
    "params": {},
}
# What [dataset.params] may set for the synthetic data set: make_classification's own
# parameters, less n_samples (a [dataset] key of every data set).
_SYNTHETIC_PARAMS = set(inspect.signature(make_classification).parameters) - {"n_samples"}
EVALUATION_DEFAULTS: dict[str, Any] = {
    "detection": True,
    "removal": {"fraction": 0.05, "max_fraction": 0.5},
    "addition": False,
    "agreement": True,
    "lds": False,
    "convergence": False,
    "figures": True,
}
_LDS_DEFAULTS = {"n_subsets": 30, "alpha": 0.5, "per_test": True}
_CONVERGENCE_DEFAULTS = {"methods": None, "reference": "exact", "reference_budget": 2000}


def _fail(key: str, problem: str) -> ValidationError:
    return ValidationError(f"config key {key!r}: {problem}")


def _int(key: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _fraction(key: str, value: Any, low_open: bool = True, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(key, f"must be a number, got {value!r}")
    if (
        not ((0.0 < value) if low_open else (0.0 <= value))
        or value > high
        or (high < 1.0 and value >= high)
    ):
        bound = "(0, 1]" if low_open else "[0, 1)"
        raise _fail(key, f"must be in {bound}, got {value}")
    return float(value)


def _table(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(key, f"must be a table, got {type(value).__name__}")
    return dict(value)


def _unknown(key: str, given: Mapping[str, Any], allowed: set[str] | Mapping[str, Any]) -> None:
    extra = sorted(set(given) - set(allowed))
    if extra:
        where = f"{key}." if key else ""
        raise ValidationError(
            f"config key {where}{extra[0]!r} is not understood; valid keys{' of ' + key if key else ''}: "
            f"{', '.join(sorted(allowed))}"
        )


def _resolve_dataset(key: str, raw: Any) -> dict[str, Any]:
    from .. import datasets

    spec = _table(key, raw)
    _unknown(key, spec, _DATASET_DEFAULTS)
    out = {**copy.deepcopy(_DATASET_DEFAULTS), **spec}
    if not isinstance(out["name"], str) or not out["name"]:
        raise _fail(
            f"{key}.name", "missing: name a data set (e.g. 'breast_cancer', 'wine', 'synthetic')"
        )
    name = out["name"].strip().lower().replace("-", "_")
    if name != "synthetic":
        valid = set(datasets.LOADERS)
        if name not in valid:
            raise _fail(
                f"{key}.name",
                f"unknown data set {out['name']!r}; valid: {', '.join(sorted(valid | {'synthetic'}))}",
            )
    out["name"] = name
    out["label"] = str(out["label"] or name)
    params = _table(f"{key}.params", out["params"])
    if name == "synthetic":
        _unknown(f"{key}.params", params, _SYNTHETIC_PARAMS)
    elif params:
        raise _fail(f"{key}.params", f"only the 'synthetic' data set takes params, not {name!r}")
    out["params"] = params
    if out["n_samples"] is not None:
        out["n_samples"] = _int(f"{key}.n_samples", out["n_samples"], minimum=4)
    out["test_size"] = _fraction(f"{key}.test_size", out["test_size"], high=0.99)
    if not isinstance(out["standardize"], bool):
        raise _fail(f"{key}.standardize", f"must be true or false, got {out['standardize']!r}")
    if out["n_contributors"] is not None:
        out["n_contributors"] = _int(f"{key}.n_contributors", out["n_contributors"], minimum=2)
    return out


def _resolve_model(raw: Any) -> dict[str, Any]:
    spec = _table("model", raw if raw is not None else {"name": "logistic"})
    _unknown("model", spec, {"name", "params", "scorer"})
    name = spec.get("name")
    if name not in MODELS:
        raise _fail("model.name", f"must be one of {', '.join(MODELS)}, got {name!r}")
    scorer = spec.get("scorer", "accuracy")
    if not isinstance(scorer, str):
        raise _fail("model.scorer", f"must be a scikit-learn scorer name, got {scorer!r}")
    return {
        "name": name,
        "params": _table("model.params", spec.get("params", {})),
        "scorer": scorer,
    }


def _resolve_methods(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        raise _fail("methods", 'missing: add at least one [[methods]] table, e.g. name = "loo"')
    if not isinstance(raw, list) or not raw:
        raise _fail("methods", "must be a non-empty array of tables ([[methods]])")
    out, labels = [], set()
    for i, item in enumerate(raw):
        key = f"methods[{i}]"
        spec = _table(key, item)
        name = spec.pop("name", None)
        if not isinstance(name, str) or name not in registry.names():
            raise _fail(
                f"{key}.name", f"unknown method {name!r}; valid: {', '.join(registry.names())}"
            )
        label = str(spec.pop("label", name))
        if label in labels:
            raise _fail(
                f"{key}.label", f"two methods are labelled {label!r}; give each a distinct label"
            )
        labels.add(label)
        params = registry.check_params(name, spec, where=f"config key {key}.")
        out.append({"name": name, "label": label, "params": params})
    return out


def _resolve_evaluation(raw: Any, methods: list[dict[str, Any]]) -> dict[str, Any]:
    monte_carlo = [m["label"] for m in methods if registry.get(m["name"]).monte_carlo]
    spec = _table("evaluation", raw if raw is not None else {})
    _unknown("evaluation", spec, EVALUATION_DEFAULTS)
    out = {**copy.deepcopy(EVALUATION_DEFAULTS), **spec}
    for flag in ("detection", "agreement", "figures"):
        if not isinstance(out[flag], bool):
            raise _fail(f"evaluation.{flag}", f"must be true or false, got {out[flag]!r}")
    for name in ("removal", "addition"):
        value = out[name]
        if value is True:
            value = dict(EVALUATION_DEFAULTS["removal"])
        if value is not False:
            table = _table(f"evaluation.{name}", value)
            _unknown(f"evaluation.{name}", table, {"fraction", "max_fraction"})
            table = {**EVALUATION_DEFAULTS["removal"], **table}
            for k in ("fraction", "max_fraction"):
                table[k] = _fraction(f"evaluation.{name}.{k}", table[k])
            value = table
        out[name] = value
    if out["lds"] is not False:
        table = {
            **_LDS_DEFAULTS,
            **({} if out["lds"] is True else _table("evaluation.lds", out["lds"])),
        }
        _unknown("evaluation.lds", table, _LDS_DEFAULTS)
        table["n_subsets"] = _int("evaluation.lds.n_subsets", table["n_subsets"], minimum=3)
        table["alpha"] = _fraction("evaluation.lds.alpha", table["alpha"], high=0.99)
        out["lds"] = table
    if out["convergence"] is not False:
        raw_conv = (
            {}
            if out["convergence"] is True
            else _table("evaluation.convergence", out["convergence"])
        )
        table = {**_CONVERGENCE_DEFAULTS, **raw_conv}
        _unknown("evaluation.convergence", table, _CONVERGENCE_DEFAULTS)
        if table["reference"] not in ("exact", "long_run"):
            raise _fail(
                "evaluation.convergence.reference",
                f"must be 'exact' or 'long_run', got {table['reference']!r}",
            )
        table["reference_budget"] = _int(
            "evaluation.convergence.reference_budget", table["reference_budget"], 1
        )
        chosen = table["methods"]
        if chosen is None:
            chosen = monte_carlo
        if not isinstance(chosen, list) or any(c not in monte_carlo for c in chosen):
            raise _fail(
                "evaluation.convergence.methods",
                f"must list Monte Carlo method labels among {monte_carlo}, got {chosen!r}",
            )
        table["methods"] = chosen
        out["convergence"] = table
    return out


def resolve_config(raw: Mapping[str, Any], *, default_name: str = "experiment") -> dict[str, Any]:
    """Validate a parsed config and return it with every default filled in.

    Raises :class:`~openattrib.errors.ValidationError` naming the offending key.

    Examples
    --------
    >>> cfg = resolve_config({"dataset": {"name": "wine"}, "methods": [{"name": "loo"}]})
    >>> cfg["seeds"], cfg["model"]["name"], cfg["noise"]["fraction"]
    ([0], 'logistic', 0.1)
    """
    raw = _table("(top level)", raw)
    _unknown("", raw, _TOP_KEYS)
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\"):
        raise _fail("name", f"must be a non-empty string without slashes, got {name!r}")
    if "seeds" in raw and ("seed" in raw or "repetitions" in raw):
        raise _fail("seeds", "give either seeds = [...] or seed and repetitions, not both")
    if "seeds" in raw:
        seeds = raw["seeds"]
        if not isinstance(seeds, list) or not seeds:
            raise _fail("seeds", f"must be a non-empty list of integers, got {seeds!r}")
        seeds = [_int(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
        if len(set(seeds)) != len(seeds):
            raise _fail("seeds", f"contains duplicates: {seeds}")
    else:
        seed = _int("seed", raw.get("seed", 0))
        seeds = [seed + r for r in range(_int("repetitions", raw.get("repetitions", 1), minimum=1))]
    if "dataset" in raw and "datasets" in raw:
        raise _fail("datasets", "give either a [dataset] table or [[datasets]] tables, not both")
    if "datasets" in raw:
        if not isinstance(raw["datasets"], list) or not raw["datasets"]:
            raise _fail("datasets", "must be a non-empty array of tables ([[datasets]])")
        data = [_resolve_dataset(f"datasets[{i}]", d) for i, d in enumerate(raw["datasets"])]
    elif "dataset" in raw:
        data = [_resolve_dataset("dataset", raw["dataset"])]
    else:
        raise _fail(
            "dataset", 'missing: add a [dataset] table with name = "breast_cancer" (or another set)'
        )
    labels = [d["label"] for d in data]
    if len(set(labels)) != len(labels):
        raise _fail(
            "datasets", f'two data sets share the label {labels}; set label = "..." on each'
        )
    noise = _table("noise", raw.get("noise", {"fraction": 0.1}))
    _unknown("noise", noise, {"fraction"})
    fraction = _fraction("noise.fraction", noise.get("fraction", 0.1), low_open=False, high=0.99)
    methods = _resolve_methods(raw.get("methods"))
    return {
        "name": name.strip(),
        "description": str(raw.get("description", "")),
        "seeds": seeds,
        "n_jobs": _n_jobs(raw.get("n_jobs", 1)),
        "datasets": data,
        "noise": {"fraction": fraction},
        "model": _resolve_model(raw.get("model")),
        "methods": methods,
        "evaluation": _resolve_evaluation(raw.get("evaluation"), methods),
    }


def _n_jobs(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0 or value < -1:
        raise _fail("n_jobs", f"must be a positive integer or -1, got {value!r}")
    return value


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config (standard-library :mod:`tomllib`) and :func:`resolve_config` it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "tiny.toml"
    >>> _ = path.write_text('''
    ... name = "tiny"
    ... [dataset]
    ... name = "iris"
    ... [[methods]]
    ... name = "knn"
    ... ''')
    >>> cfg = load_config(path)
    >>> cfg["methods"][0]["params"]  # filled in from the method registry's defaults
    {'k': 5}
    >>> cfg["seeds"], cfg["model"]["name"]
    ([0], 'logistic')
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"experiment config not found: {str(path)!r}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path} is not valid TOML: {exc}") from None
    return resolve_config(raw, default_name=path.stem)
