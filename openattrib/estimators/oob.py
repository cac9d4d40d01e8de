"""Data-OOB (Kwon & Zou, ICML 2023): the out-of-bag estimate as a data value.

Bag a model ``n_estimators`` times on bootstrap samples of the training set. The value of
a point is the average, over the bags that left it out, of how well that bag's model
predicts it: correctness ``1[prediction == label]`` for classification, negative squared
error ``-(prediction - target)^2`` for regression (Kwon & Zou, 2023, "Data-OOB: out-of-bag
estimate as a simple and efficient data value", eq. (3)).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._vocab import check_players, deprecated_keywords
from ..data import Dataset
from ..errors import UnsupportedError, ValidationError
from ..parallel import Executor
from ..result import Attribution, make_provenance
from ._checks import TASKS, check_int, check_labels, check_n_jobs

__all__ = ["data_oob", "bag_sample"]

log = logging.getLogger("openattrib")

# bags per task: a task's bags are one batch of the fast path (32 amortise its products)
_BAGS_PER_TASK = 32
NEVER_OUT_OF_BAG_RULE = (
    "value set to the mean value of the players that were out of bag at least once; "
    "counts 0 and stderr NaN mark them"
)


def bag_sample(seed: int, bag: int, n: int, size: int) -> tuple[np.ndarray, np.random.Generator]:
    """Bootstrap draw of bag ``bag``: ``size`` indices in ``[0, n)`` with replacement.

    The stream is ``np.random.default_rng(np.random.SeedSequence(seed).spawn(n_bags)[bag])``
    (the same as ``SeedSequence(entropy=seed, spawn_key=(bag,))``), so a bag's sample
    depends only on ``seed`` and its index, never on ``n_jobs``. Returns the indices and
    the generator, which then seeds the bag's estimator.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(bag,)))
    return rng.integers(0, n, size=size), rng


def _resolve_task(task: str, estimator: Any, train: Dataset) -> str:
    from sklearn.base import is_classifier, is_regressor

    if task not in TASKS:
        raise ValidationError(f"task must be one of {TASKS}, got {task!r}")
    if task == "auto":
        if estimator is not None and is_classifier(estimator):
            task = "classification"
        elif estimator is not None and is_regressor(estimator):
            task = "regression"
        else:
            task = train.task
    check_labels(task, {"train": train})
    if estimator is not None:
        if task == "classification" and is_regressor(estimator):
            raise UnsupportedError(
                f"{type(estimator).__name__} is a regressor but the task is classification; "
                "pass a classifier or task='regression'"
            )
        if task == "regression" and is_classifier(estimator):
            raise UnsupportedError(
                f"{type(estimator).__name__} is a classifier but the task is regression; "
                "pass a regressor or task='classification'"
            )
    return task


class _Bagger:
    """Everything a worker needs to fit and score bags (picklable)."""

    def __init__(
        self,
        train: Dataset,
        estimator: Any,
        task: str,
        size: int,
        seed: int,
        groups: list[np.ndarray] | None,
    ) -> None:
        self.X, self.y = train.X, train.y
        self.estimator, self.task, self.size, self.seed = estimator, task, size, seed
        self.groups = groups
        self.n_players = train.n_samples if groups is None else len(groups)
        self.fast = task == "classification"
        self._fast: Any = None
        if groups is not None:
            self._owner = np.zeros(train.n_samples, dtype=np.int64)
            for c, rows in enumerate(groups):
                self._owner[rows] = c

    def run(self, bag: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Out-of-bag players of one bag, their scores, and a status."""
        from sklearn.base import clone

        drawn, rng = bag_sample(self.seed, bag, self.n_players, self.size)
        out = np.flatnonzero(np.bincount(drawn, minlength=self.n_players) == 0)
        if out.size == 0:
            return out, np.zeros(0), "no_out_of_bag"
        if self.groups is None:
            rows, oob_rows = drawn, out
        else:
            rows = np.concatenate([self.groups[c] for c in drawn])
            oob_rows = self._rows_of(out)
        X, y = self.X[rows], self.y[rows]
        model = clone(self.estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=int(rng.integers(0, 2**31 - 1)))
        status = "fitted"
        if self.task == "classification" and np.unique(y).size == 1:
            prediction = np.full(oob_rows.size, y[0], dtype=y.dtype)  # any classifier's answer
            status = "single_class"
        else:
            try:
                model.fit(X, y)
                prediction = model.predict(self.X[oob_rows])
            except (ValueError, np.linalg.LinAlgError) as exc:
                return out, np.zeros(0), f"failed: {type(exc).__name__}: {str(exc)[:100]}"
        return out, self._scores(out, oob_rows, prediction), status

    def _rows_of(self, players: np.ndarray) -> np.ndarray:
        if self.groups is None:
            return players
        return np.concatenate([self.groups[c] for c in players])

    def _scores(self, out: np.ndarray, oob_rows: np.ndarray, prediction: Any) -> np.ndarray:
        truth = self.y[oob_rows]
        if self.task == "classification":
            scores = (np.asarray(prediction) == truth).astype(np.float64)
        else:
            scores = -((np.asarray(prediction, dtype=np.float64) - truth) ** 2)
        if self.groups is not None:  # a contributor's score: mean over its rows
            sizes = np.array([self.groups[c].size for c in out])
            owner = np.repeat(np.arange(out.size), sizes)
            scores = np.bincount(owner, weights=scores, minlength=out.size) / sizes
        return scores

    def run_many(self, bags: range) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """:meth:`run` for several bags; with an exact fast path, all fitted at once.

        The fast path (:meth:`openattrib.fast.logistic.LogisticFastPath.weighted_outputs`)
        fits each bag as sample weights on the full data (a row's weight is how often the
        bootstrap drew it or its contributor), the same objective as fitting the drawn rows.
        Bags the path cannot solve are refitted here and counted under the status
        ``"fast_fallback: <reason>"``.
        """
        fast = self._fast_path()
        if fast is None:
            return [self.run(b) for b in bags]
        results: list[Any] = [None] * len(bags)
        pending: list[tuple[int, int, np.ndarray]] = []
        weights = []
        for j, bag in enumerate(bags):
            drawn, _ = bag_sample(self.seed, bag, self.n_players, self.size)
            counts = np.bincount(drawn, minlength=self.n_players)
            out = np.flatnonzero(counts == 0)
            row_weights = counts if self.groups is None else counts[self._owner]
            if out.size == 0 or np.unique(self.y[row_weights > 0]).size < 2:
                results[j] = self.run(bag)  # nothing to score, or a single-class bag
                continue
            pending.append((j, bag, out))
            weights.append(row_weights)
        if pending:
            outputs, troubles = fast.weighted_outputs(np.array(weights, dtype=np.float64))
            classes = fast.utility.classes_
            for (j, bag, out), output, trouble in zip(pending, outputs, troubles, strict=True):
                if trouble is not None:
                    refit = self.run(bag)
                    status = f"fast_fallback: {trouble}" if refit[2] == "fitted" else refit[2]
                    results[j] = (refit[0], refit[1], status)
                    continue
                oob_rows = self._rows_of(out)
                results[j] = (out, self._scores(out, oob_rows, classes[output[oob_rows]]), "fitted")
        return results

    def _fast_path(self) -> Any:
        """The estimator's sample-weighted fast path (built once per process), or None."""
        if not self.fast:
            return None
        if self._fast is None:
            from ..games import ModelUtility

            train = Dataset(self.X, self.y)
            path = ModelUtility(self.estimator, train, train, scorer="accuracy").fast_path
            self._fast = path if hasattr(path, "weighted_outputs") else False
        return self._fast or None


def _run_bags(bagger: _Bagger, bags: range) -> list[tuple[np.ndarray, np.ndarray, str]]:
    return bagger.run_many(bags)


@deprecated_keywords(
    positional=("estimator", "n_estimators", "bag_fraction", "seed", "n_jobs"),
    max_samples="bag_fraction",
)
def data_oob(
    train: Dataset,
    *,
    estimator: Any = None,
    n_estimators: int = 1000,
    bag_fraction: float | int = 1.0,
    seed: int = 0,
    n_jobs: int = 1,
    players: str = "points",
    task: str = "auto",
    progress: bool = True,
) -> Attribution:
    """Data-OOB values (Kwon & Zou, 2023): mean out-of-bag score of each training point.

    Bag ``b`` (b = 0 .. n_estimators-1) draws ``size`` players with replacement from the
    stream ``SeedSequence(seed).spawn(n_estimators)[b]`` (see ``bag_sample``), fits a
    clone of ``estimator`` on them (its ``random_state``, if it has one, drawn from the same
    stream) and scores every player left out: ``1[prediction == label]`` for
    classification, ``-(prediction - target)^2`` for regression. A player's value is the
    mean of its scores over the bags that left it out; ``counts`` says how many that is and
    ``stderr`` is the standard error of that mean (NaN with fewer than 2 scores).

    Players that no bag left out cannot be scored: their value is set by a documented rule
    (the mean value of the scored players), their ``counts`` is 0, and they are listed in
    ``diagnostics["never_out_of_bag"]``. Results are identical for every ``n_jobs``.

    Classifiers with an exact sample-weighted fast path (``LogisticRegression``, see
    ``openattrib.fast``) fit all bags of a task at once as bootstrap counts on the full
    data, the same objective as the drawn rows; a bag the path cannot solve is refitted
    and counted in ``diagnostics["bags"]`` as ``"fast_fallback: <reason>"``.

    Parameters
    ----------
    train : Dataset
        Training data; no validation set is needed.
    estimator : scikit-learn estimator, optional
        Default: a decision tree (``DecisionTreeClassifier`` or ``DecisionTreeRegressor``),
        as in the paper's experiments.
    n_estimators : int, default 1000
        Number of bags (the paper uses 1000).
    bag_fraction : float or int, default 1.0
        Bootstrap size of each bag: a fraction of the players (rounded, at least 1) or, as
        an int, a count. Formerly ``max_samples`` (deprecated: it collided with
        ``oa.stop.MaxSamples``, a sampling budget).
    seed : int, default 0
        Seed of all randomness, recorded in ``result.seed``.
    n_jobs : int
        Local worker processes (``openattrib.parallel``; -1 = all cores).
    players : {"points", "contributors"}
        ``"contributors"`` bootstraps whole contributors (a drawn contributor brings all its
        rows) and scores an out-of-bag contributor by the mean score of its rows.
    task : {"auto", "classification", "regression"}
        ``"auto"``: from the estimator type, else from ``train.task``.
    progress : bool
        Show a progress bar.

    Examples
    --------
    >>> import openattrib as oa
    >>> noisy, flipped = oa.datasets.flip_labels(oa.datasets.load_iris(), 0.1, seed=0)
    >>> values = oa.data_oob(noisy, n_estimators=50, seed=0, progress=False)
    >>> float(values.values[flipped].mean()) < float(values.values.mean())
    True
    """
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if not isinstance(train, Dataset):
        raise ValidationError(
            f"train must be an openattrib Dataset, got {type(train).__name__}; build one with "
            "oa.Dataset(X, y)"
        )
    if estimator is not None and not all(
        hasattr(estimator, attr) for attr in ("fit", "predict", "get_params")
    ):
        raise UnsupportedError(
            f"estimator must be a scikit-learn estimator (get_params, fit, predict), got "
            f"{type(estimator).__name__}"
        )
    n_estimators = check_int("n_estimators", n_estimators, 1)
    seed = check_int("seed", seed, 0)
    n_jobs = check_n_jobs(n_jobs)
    players = check_players(players)
    task = _resolve_task(task, estimator, train)
    if estimator is None:
        estimator = (
            DecisionTreeClassifier() if task == "classification" else DecisionTreeRegressor()
        )
    if players == "points":
        groups, names = None, [str(i) for i in range(train.n_samples)]
    else:
        grouped = train.groups()  # raises a clear error without contributors
        groups, names = list(grouped.values()), list(grouped)
    n_players = len(names)
    size = _bootstrap_size(bag_fraction, n_players)
    bagger = _Bagger(train, estimator, task, size, seed, groups)

    total = np.zeros(n_players)
    mean = np.zeros(n_players)
    m2 = np.zeros(n_players)
    counts = np.zeros(n_players, dtype=np.int64)
    status: dict[str, int] = {}
    failures: list[str] = []
    tasks = [
        range(start, min(start + _BAGS_PER_TASK, n_estimators))
        for start in range(0, n_estimators, _BAGS_PER_TASK)
    ]
    bar = tqdm(total=n_estimators, desc="data_oob", unit="bag", disable=not progress)
    with bar, Executor(n_jobs=n_jobs) as executor:
        results = (r for batch in executor.imap(_run_bags, tasks, shared=bagger) for r in batch)
        for out, scores, state in results:
            key = "failed" if state.startswith("failed") else state
            if key == "failed" and state not in failures and len(failures) < 5:
                log.warning("data_oob: a bag's model failed (%s); that bag is skipped", state)
                failures.append(state)
            status[key] = status.get(key, 0) + 1
            bar.update(1)
            if scores.size == 0:
                continue
            counts[out] += 1  # Welford's update, vectorised over the bag's players
            total[out] += scores
            delta = scores - mean[out]
            mean[out] += delta / counts[out]
            m2[out] += delta * (scores - mean[out])
    scored = counts > 0
    if status.get("failed", 0) == n_estimators:
        raise UnsupportedError(
            f"the estimator failed on every bag, e.g. {failures[0]}; check that it can be "
            "fitted on this data"
        )
    if not scored.any():
        raise ValidationError(
            f"no player was ever out of bag in {n_estimators} bags ({status}); raise "
            "n_estimators or lower bag_fraction"
        )
    values = np.zeros(n_players)
    values[scored] = total[scored] / counts[scored]
    never = [names[i] for i in np.flatnonzero(~scored)]
    if never:
        values[~scored] = values[scored].mean()
        log.warning(
            "data_oob: %d player(s) were never out of bag; %s", len(never), NEVER_OUT_OF_BAG_RULE
        )
    stderr = np.full(n_players, np.nan)
    several = counts >= 2
    stderr[several] = np.sqrt(m2[several] / (counts[several] - 1) / counts[several])
    return Attribution(
        values,
        names,
        stderr=stderr,
        counts=counts,
        method="data_oob",
        parameters={
            "n_estimators": n_estimators,
            # recorded under its original key: renaming it would change the result hash
            # of every Data-OOB run already in a ledger (see Attribution.result_hash)
            "max_samples": bag_fraction,
            "bootstrap_size": size,
            "players": players,
            "task": task,
            "score": "correctness 1[prediction == label]"
            if task == "classification"
            else "negative squared error",
        },
        seed=seed,
        provenance=make_provenance(
            dataset_hash=train.content_hash(),
            model=repr(estimator),
            model_class=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        ),
        players=players,
        contributors=train.contributors if players == "points" else None,
        diagnostics={
            "never_out_of_bag": never,
            "never_out_of_bag_rule": NEVER_OUT_OF_BAG_RULE,
            "bags": status,
            "bag_failures": failures,
            "min_count": int(counts.min()),
        },
    )


def _bootstrap_size(bag_fraction: Any, n_players: int) -> int:
    if isinstance(bag_fraction, (bool, np.bool_)):
        raise ValidationError(
            f"bag_fraction must be a fraction in (0, 1] or a count, got {bag_fraction!r}"
        )
    if isinstance(bag_fraction, (int, np.integer)):
        if not 1 <= int(bag_fraction) <= n_players:
            raise ValidationError(
                f"bag_fraction={bag_fraction} must be between 1 and the {n_players} players"
            )
        return int(bag_fraction)
    if isinstance(bag_fraction, (float, np.floating)) and 0.0 < float(bag_fraction) <= 1.0:
        return max(1, round(float(bag_fraction) * n_players))
    raise ValidationError(
        f"bag_fraction must be a fraction in (0, 1] or an int count, got {bag_fraction!r}"
    )
