"""Replication experiment: does copying your own data pay?

A contributor can submit its rows again, either under its own name (``"own_name"``: the
rows appear ``k`` more times in its own data) or as ``k`` new sybil identities, each holding a
copy (``"sybil"``), or split its rows among itself and ``k`` sybils (``"split"``: no row is
copied, each identity registers its own part). :func:`replication_experiment` re-values the
contributors after each manipulation and reports the copier's share of the pool. A payout
rule is *replication-robust* when the share does not grow with ``k``.

With ``registry=True`` every variant goes through the contribution registry first: the
identities register their rows in order of appearance (the honest contributors, then the
copies), :func:`openattrib.rewards.provenance` gives each row to its first registrant, and
the owned data is valued (:meth:`~openattrib.rewards.Provenance.credit` maps the values
back to the identities). Copies then earn nothing; a split is not a copy and is untouched.
The method ``"robust_shapley"`` (:func:`openattrib.rewards.robust_shapley`) is the
similarity-discounted Shapley value of Agarwal, Dahleh & Sarkar; ``"split_robust"``
(:func:`openattrib.rewards.split_robust`) is truncated Monte Carlo Shapley of the *points*
(the experiment's model, ``point_budget`` permutations, ``seed``), positive values summed
per owner, with the similarity discount at point level for duplicates left in the data:
splitting cannot change it, and with the registry neither can resubmitting.

Background: Shapley values are not replication-robust (Agarwal, Dahleh & Sarkar 2019, "A
Marketplace for Data: An Algorithmic Solution", EC '19; Ohrimenko, Tople & Tschiatschek 2019,
"Collaborative Machine Learning Markets with Data-Replication-Robust Payments"): sybil copies
are perfect substitutes, and the substitutes' combined Shapley value can exceed the
original's. Leave-one-out gives every redundant identity zero, punishing replication.

Methods are named as in :mod:`openattrib.methods` and run through it. This is an
experiment (it runs estimators), so it lives in ``experiments``; ``rewards`` only pays.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from .. import methods as registry
from ..data import Dataset
from ..errors import ValidationError
from ..rewards import allocate

__all__ = ["replication_experiment", "replicate", "DEFAULT_METHODS", "MODES"]

log = logging.getLogger("openattrib")

#: the methods compared by default (names of :mod:`openattrib.methods`)
DEFAULT_METHODS = ("exact_shapley", "exact_banzhaf", "loo", "knn_shapley")
MODES = ("own_name", "sybil", "split")
#: the replication-robust scheme: exact Shapley discounted by :func:`openattrib.rewards.robust_shapley`
ROBUST = "robust_shapley"
#: the split-robust scheme: point values summed per owner, :func:`openattrib.rewards.split_robust`
SPLIT_ROBUST = "split_robust"
_SCHEMES = (ROBUST, SPLIT_ROBUST)
#: names this function took before the method registry (exact enumeration both)
_OLD_NAMES = {"shapley": "exact_shapley", "banzhaf": "exact_banzhaf"}


def replicate(
    train: Dataset, contributor: str, copies: int, mode: str
) -> tuple[Dataset, list[str]]:
    """``train`` with ``contributor``'s rows appended ``copies`` more times (or split).

    Returns the new data set and the identities the copier controls. With
    ``mode="own_name"`` the copies keep the contributor's id; with ``mode="sybil"`` copy j
    belongs to a new contributor ``f"{contributor}~sybil{j}"``; with ``mode="split"`` no row
    is added: the contributor's rows are dealt round-robin to itself and ``copies`` sybils.
    """
    if mode not in MODES:
        raise ValidationError(f"mode must be one of {MODES}, got {mode!r}")
    groups = train.groups()
    if contributor not in groups:
        raise ValidationError(
            f"contributor {contributor!r} is not in the training data; known: {list(groups)[:10]}"
        )
    rows = groups[contributor]
    identities = [contributor]
    X, y = [train.X], [train.y]
    owners = [np.asarray(train.contributors, dtype=object)]
    if mode == "split":
        if copies >= rows.size:
            raise ValidationError(
                f"cannot split {contributor!r}'s {rows.size} rows among {copies + 1} identities"
            )
        names = [contributor, *(f"{contributor}~sybil{j}" for j in range(1, copies + 1))]
        clash = [n for n in names[1:] if n in groups]
        if clash:
            raise ValidationError(f"sybil id {clash[0]!r} clashes with an existing contributor")
        owners[0] = owners[0].copy()
        owners[0][rows] = [names[i % len(names)] for i in range(rows.size)]
        identities = names
        copies = 0
    for j in range(1, copies + 1):
        name = contributor if mode == "own_name" else f"{contributor}~sybil{j}"
        if mode == "sybil":
            if name in groups:
                raise ValidationError(f"sybil id {name!r} clashes with an existing contributor")
            identities.append(name)
        X.append(train.X[rows])
        y.append(train.y[rows])
        owners.append(np.full(rows.size, name, dtype=object))
    data = Dataset(
        np.vstack(X),
        np.concatenate(y),
        np.concatenate(owners),
        feature_names=train.feature_names,
        target_name=train.target_name,
    )
    return data, identities


def _canonical(methods: Sequence[str]) -> list[str]:
    out = []
    for name in methods:
        if name in _OLD_NAMES:
            new = _OLD_NAMES[name]
            warnings.warn(
                f"replication_experiment(methods=[{name!r}]) is deprecated: the method names "
                f"are those of openattrib.methods now; use {new!r}",
                DeprecationWarning,
                stacklevel=3,
            )
            name = new
        if name in _SCHEMES:
            out.append(name)
            continue
        if not isinstance(name, str) or name not in registry.names():
            valid = ", ".join([*registry.names(), *_SCHEMES])
            raise ValidationError(f"unknown method {name!r}; valid: {valid}")
        out.append(registry.get(name).name)
    return list(dict.fromkeys(out))


def _values(
    method: str,
    train: Dataset,
    valid: Dataset,
    model: Any,
    scorer: Any,
    k_neighbours: int,
    games: dict,
    seed: int,
    point_budget: int,
) -> Any:
    from ..games import ModelUtility

    if method == SPLIT_ROBUST:  # Monte Carlo Shapley of the points, summed per owner
        from ..rewards import split_robust

        points = registry.MethodInput(
            train, valid, model=model, scorer=scorer, players="points", progress=False
        )
        params = {"budget": point_budget, "truncation": 0.01}
        return split_robust(registry.run("permutation_shapley", points, params, seed=seed), train)

    def make_game() -> Any:
        key = train.content_hash() + str(train.contributor_ids)
        if key not in games:  # one game per data set: the game methods share its cache
            games.clear()
            games[key] = ModelUtility(model, train, valid, scorer=scorer, players="contributors")
        return games[key]

    inputs = registry.MethodInput(
        train,
        valid,
        model=model,
        scorer=scorer,
        players="contributors",
        make_game=make_game,
        progress=False,
    )
    if method == ROBUST:  # exact Shapley, then the payout-side similarity discount
        from ..rewards import robust_shapley

        return robust_shapley(registry.run("exact_shapley", inputs), train)
    params = {"k": k_neighbours} if "k" in registry.get(method).defaults else {}
    return registry.run(method, inputs, params, seed=seed)


def replication_experiment(
    train: Dataset,
    valid: Dataset,
    contributor: str,
    *,
    model: Any = None,
    scorer: Any = "accuracy",
    copies: Sequence[int] = (0, 1, 2, 3),
    methods: Sequence[str] = DEFAULT_METHODS,
    modes: Sequence[str] = MODES,
    pool: int = 10**6,
    policy: str = "proportional",
    k_neighbours: int = 5,
    seed: int = 0,
    max_players: int = 14,
    registry: bool = False,
    near_threshold: float = 0.05,
    point_budget: int = 200,
) -> pd.DataFrame:
    """How the copier's payout changes when it replicates its own data ``k`` times.

    Parameters
    ----------
    train, valid : Dataset
        Small training set with contributors (contributor-level games are enumerated
        exactly, so keep ``n_contributors + max(copies)`` at most ``max_players``) and the
        validation set.
    contributor : str
        The copier.
    model : scikit-learn estimator, default LogisticRegression(max_iter=1000)
    copies : sequence of int
        Numbers of extra copies to try (0 = honest baseline).
    methods : sequence of method names (:mod:`openattrib.methods`, ``"robust_shapley"`` or ``"split_robust"``)
        Default: exact Shapley, exact Banzhaf and leave-one-out of the contributor-level
        game (:class:`~openattrib.ModelUtility` with ``players="contributors"``), and
        KNN-Shapley of the points summed per contributor. Monte Carlo methods run with
        their registry defaults and ``seed``. The old names ``"shapley"`` and
        ``"banzhaf"`` (exact enumeration) are deprecated aliases of ``"exact_shapley"``
        and ``"exact_banzhaf"``.
    modes : subset of ("own_name", "sybil", "split")
    pool, policy
        Passed to :func:`~openattrib.rewards.allocate` for each set of values.
    seed : int, default 0
        Seed of the Monte Carlo methods (the same for every manipulation).
    registry : bool, default False
        Value the owned data of a contribution registry (see the module docstring): each
        row once, credited to its first registrant.
    near_threshold : float, default 0.05
        Near-duplicate threshold of the provenance step (``registry=True``).
    point_budget : int, default 200
        Permutations of the point-level Monte Carlo Shapley of ``"split_robust"``.

    Returns
    -------
    pandas.DataFrame
        One row per (mode, method, copies): the copier's summed value over its identities,
        the total value, its amount and share of the pool, the change in share against
        ``copies=0`` and that change relative to the honest share (``relative_gain``);
        methods are labelled by their canonical names.

    Examples
    --------
    >>> import openattrib as oa
    >>> ds = oa.datasets.partition(oa.datasets.make_classification(n_samples=60, n_features=4, n_informative=2, seed=0), 4)
    >>> train, valid = ds.split(test_size=0.5, seed=0)
    >>> from openattrib.experiments import replication_experiment
    >>> table = replication_experiment(train, valid, "c0", copies=(0, 1), methods=("loo",))
    >>> sorted(table.columns)[:3]
    ['copier_amount', 'copier_share', 'copier_value']
    """
    if model is None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=1000)
    copies = sorted({int(c) for c in copies})
    if not copies or copies[0] < 0:
        raise ValidationError(f"copies must be non-negative ints, got {copies}")
    if 0 not in copies:
        copies = [0, *copies]
    methods = _canonical(methods)
    bad_modes = [m for m in modes if m not in MODES]
    if bad_modes:
        raise ValidationError(f"unknown mode(s) {bad_modes}; valid: {MODES}")
    if {"sybil", "split"} & set(modes) and train.n_contributors + max(copies) > max_players:
        raise ValidationError(
            f"{train.n_contributors} contributors + {max(copies)} sybils exceed max_players="
            f"{max_players} for exact enumeration; use fewer contributors or copies"
        )
    if isinstance(point_budget, bool) or not isinstance(point_budget, int) or point_budget < 1:
        raise ValidationError(f"point_budget must be an int >= 1, got {point_budget!r}")
    records = []
    games: dict = {}
    common = (model, scorer, k_neighbours, games, seed, point_budget)
    baseline: dict[str, Any] = {}  # copies=0 is the same data set in every mode
    for mode in modes:
        for k in copies:
            data, identities = replicate(train, contributor, k, mode)
            ownership = _ownership(data, near_threshold) if registry else None
            for method in methods:
                if k == 0 and method in baseline:
                    values = baseline[method]
                elif ownership is not None:
                    owned = ownership.owned()
                    values = ownership.credit(_values(method, owned, valid, *common))
                else:
                    values = _values(method, data, valid, *common)
                if k == 0:
                    baseline[method] = values
                records.append(_record(mode, method, k, identities, values, pool, policy))
    frame = pd.DataFrame.from_records(records)
    base = frame[frame["copies"] == 0].set_index(["mode", "method"])["copier_share"]
    frame["share_change"] = [
        row.copier_share - base[(row.mode, row.method)] for row in frame.itertuples()
    ]
    honest = [base[(row.mode, row.method)] for row in frame.itertuples()]
    frame["relative_gain"] = [  # undefined (NaN) when the honest share is 0 or unknown
        change / share if share > 0 else float("nan")
        for change, share in zip(frame["share_change"], honest, strict=True)
    ]
    frame["mode"] = pd.Categorical(frame["mode"], categories=list(modes), ordered=True)
    frame["method"] = pd.Categorical(frame["method"], categories=methods, ordered=True)
    frame = frame.set_index(["mode", "method", "copies"]).sort_index()
    frame.attrs["contributor"] = contributor
    frame.attrs["policy"] = policy
    frame.attrs["registry"] = registry
    return frame


def _ownership(data: Dataset, near_threshold: float) -> Any:
    """Register ``data``'s identities in order of appearance in a scratch ledger; provenance."""
    import tempfile
    from pathlib import Path

    from ..ledger import Ledger
    from ..rewards import provenance

    groups = data.groups()
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "registry.sqlite") as led:
        for name in groups:
            led.append_contribution(name, data.subset(groups[name]))
        return provenance(data, led, near_threshold=near_threshold)


def _record(
    mode: str, method: str, k: int, identities: list[str], values: Any, pool: int, policy: str
) -> dict[str, Any]:
    by_name = dict(zip(values.names, values.values.tolist(), strict=True))
    try:
        allocation = allocate(values, pool, policy=policy)
        amount: int | None = sum(allocation.amounts[i] for i in identities)
        share = float(Fraction(amount, pool))
    except ValidationError as exc:  # e.g. every LOO value is zero: nothing to pay
        log.warning("replication_experiment: %s with %d copies (%s): %s", method, k, mode, exc)
        amount, share = None, float("nan")
    return {
        "mode": mode,
        "method": method,
        "copies": k,
        "identities": len(identities),
        "copier_value": float(sum(by_name[i] for i in identities)),
        "total_value": float(sum(by_name.values())),
        "copier_amount": amount,
        "copier_share": share,
    }
