"""Building the pieces of one experiment unit from a resolved config: data, noise, model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import ValidationError

__all__ = ["Unit", "prepare_unit", "build_model", "derive_seed"]


def derive_seed(seed: int, *keys: str) -> int:
    """A seed for a sub-task, a function of the unit seed and the sub-task's names only.

    ``SeedSequence(seed, spawn_key=...)`` with the names hashed to integers, so adding or
    reordering methods does not change the seeds of the others.
    """
    import zlib

    spawn_key = tuple(zlib.crc32(k.encode("utf-8")) for k in keys)
    state = np.random.SeedSequence(int(seed), spawn_key=spawn_key).generate_state(
        1, dtype=np.uint32
    )
    return int(state[0])


@dataclass
class Unit:
    """One (data set, seed) cell: noisy training data, clean validation data, ground truth."""

    dataset: str
    seed: int
    train: Dataset
    valid: Dataset
    flipped: (
        np.ndarray
    )  # flipped training rows, or noisy contributors' positions for contributor games
    level: str  # "points" or "contributors"


def build_model(spec: dict[str, Any], task: str) -> Any:
    """The scikit-learn estimator named by ``model`` in the config, with its ``params`` set.

    The names mean what they mean everywhere in the package (:func:`openattrib.recipe.make_model`).
    """
    from ..recipe import make_model

    try:
        model = make_model(spec["name"], task, seed=0)
    except ValidationError as exc:
        raise ValidationError(f"config key 'model.name': {exc}") from None
    try:
        model.set_params(**spec["params"])
    except ValueError as exc:
        raise ValidationError(f"config key 'model.params': {exc}".splitlines()[0]) from None
    return model


def _load(spec: dict[str, Any]) -> Dataset:
    from .. import datasets

    if spec["name"] != "synthetic":
        return datasets.load(spec["name"])
    params = {
        "n_samples": spec["n_samples"] or 300,
        "n_features": 10,
        "n_informative": 5,
        **spec["params"],
    }
    return datasets.make_classification(**params)


def prepare_unit(spec: dict[str, Any], noise_fraction: float, seed: int) -> Unit:
    """Load, subsample, split, standardise, partition and add label noise for one seed."""
    from .. import datasets

    full = _load(spec)
    if spec["n_samples"] is not None and spec["name"] != "synthetic":
        if spec["n_samples"] > full.n_samples:
            raise ValidationError(
                f"config key 'n_samples' of data set {spec['label']!r}: {spec['n_samples']} is more "
                f"than the {full.n_samples} rows available"
            )
        rng = np.random.default_rng(derive_seed(seed, "subsample", spec["label"]))
        full = full.subset(np.sort(rng.choice(full.n_samples, spec["n_samples"], replace=False)))
    train, valid = full.split(
        test_size=spec["test_size"], seed=derive_seed(seed, "split", spec["label"])
    )
    if spec["standardize"]:
        from ..recipe import standardize

        train, valid = standardize(train, valid)
    level = "points"
    noise_seed = derive_seed(seed, "noise", spec["label"])
    if spec["n_contributors"] is not None:
        level = "contributors"
        train = datasets.partition(
            train, spec["n_contributors"], seed=derive_seed(seed, "partition", spec["label"])
        )
    if noise_fraction > 0 and train.task != "classification":
        raise ValidationError(
            f"config key 'noise.fraction': label noise needs a classification data set, "
            f"{spec['label']!r} is a regression target (set fraction = 0)"
        )
    if noise_fraction == 0:
        return Unit(spec["label"], seed, train, valid, np.zeros(0, dtype=np.int64), level)
    if level == "points":
        train, flipped = datasets.flip_labels(train, noise_fraction, seed=noise_seed)
        return Unit(spec["label"], seed, train, valid, flipped, level)
    # contributor level: flip every label of round(fraction * k) contributors
    ids = train.contributor_ids
    n_noisy = int(np.floor(noise_fraction * len(ids) + 0.5))
    rng = np.random.default_rng(noise_seed)
    noisy = np.sort(rng.choice(len(ids), size=n_noisy, replace=False))
    groups = train.groups()
    rows = (
        np.sort(np.concatenate([groups[ids[i]] for i in noisy]))
        if n_noisy
        else np.zeros(0, np.int64)
    )
    # same rule as datasets.flip_labels (a uniformly drawn *other* class of the whole
    # training set), which cannot be called on the rows alone: they may hold one class only
    classes = train.classes
    y = np.array(train.y, copy=True)
    shift = rng.integers(1, classes.size, size=rows.size)
    y[rows] = classes[(np.searchsorted(classes, y[rows]) + shift) % classes.size]
    return Unit(spec["label"], seed, train.with_labels(y), valid, noisy.astype(np.int64), level)
