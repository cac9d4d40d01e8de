"""The single result type every estimator returns: :class:`Attribution`."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._ids import check_ids
from ._io import atomic_write_bytes, canonical_json, read_json
from ._vocab import deprecated_keywords
from .errors import ValidationError

__all__ = ["Attribution", "ContributorSums", "make_provenance", "package_version"]

_LEVELS = ("points", "contributors", "players")
FORMAT = "openattrib.attribution/1"


def package_version() -> str:
    """The installed openattrib version (``"0+unknown"`` when running from a bare checkout)."""
    try:
        from importlib.metadata import version

        return version("openattrib")
    except Exception:  # pragma: no cover - only without an install
        return "0+unknown"


def _library_version(module: str, distribution: str) -> str:
    """``module.__version__`` if loaded, else the installed distribution's version.

    Never imports the library: importing scikit-learn (and scipy.stats with it) only to
    read its version cost seconds per fresh process.
    """
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, "__version__"):
        return str(loaded.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:  # pragma: no cover - a required dependency
        return "unknown"


def make_provenance(**items: Any) -> dict[str, Any]:
    """Provenance for a result: the given items plus package/library versions and a UTC time."""
    base = {
        "package_version": package_version(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _library_version("scipy", "scipy"),
        "sklearn": _library_version("sklearn", "scikit-learn"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    base.update(items)
    return base


def _as_float_array(name: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise ValidationError(f"{name} has length {arr.shape[0]} but there are {n} names")
    return arr


def _encode_floats(arr: np.ndarray | None) -> list | None:
    if arr is None:
        return None
    return [float(v) if np.isfinite(v) else None for v in arr]


def _decode_floats(values: list | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ContributorSums:
    """Per-contributor sums of point values measured draw by draw, with their own errors.

    Permutation sampling on points that have contributors also accumulates, for every
    drawn permutation, the sum of each contributor's point estimates: the mean of those
    per-draw sums is the contributor's sum and their spread gives its standard error (which
    the per-point errors cannot: estimates of points in one permutation are correlated).

    Attributes
    ----------
    names : list of str
        Contributor ids, in order of first appearance among the points.
    values, stderr : ndarray of float
        Mean and standard error of the per-draw sums (NaN where not measured).
    counts : ndarray of int
        Samples behind each value.
    estimator : str
        How the numbers were obtained.
    """

    names: list[str]
    values: np.ndarray
    stderr: np.ndarray
    counts: np.ndarray
    estimator: str = "per-draw contributor sums"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (non-finite floats become ``null``)."""
        return {
            "names": list(self.names),
            "values": _encode_floats(self.values),
            "stderr": _encode_floats(self.stderr),
            "counts": [int(c) for c in self.counts],
            "estimator": self.estimator,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContributorSums:
        """Inverse of :meth:`to_dict`."""
        return cls(
            [str(n) for n in data["names"]],
            _decode_floats(data["values"]),  # type: ignore[arg-type]
            _decode_floats(data["stderr"]),  # type: ignore[arg-type]
            np.asarray(data["counts"], dtype=np.int64),
            str(data.get("estimator", "per-draw contributor sums")),
        )


_FIELDS = {
    "format",
    "names",
    "values",
    "stderr",
    "counts",
    "method",
    "parameters",
    "seed",
    "provenance",
    "level",
    "contributors",
    "contributor_sums",
    "diagnostics",
}


def _integrity(data: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every field except ``integrity`` itself."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in data.items() if k != "integrity"})
    ).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_float_list(data: Mapping[str, Any], key: str, n: int, required: bool) -> None:
    value = data.get(key)
    if value is None:
        if required:
            raise ValidationError(f"attribution field {key!r} is missing")
        return
    if not isinstance(value, list) or len(value) != n:
        got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
        raise ValidationError(f"attribution field {key!r} must be a list of {n} numbers, got {got}")
    for i, v in enumerate(value):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValidationError(
                f"attribution field {key}[{i}] must be a finite number or null, got {v!r}"
            )


def _check_sums(sums: Mapping[str, Any]) -> None:
    names = sums.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(
            "attribution field 'contributor_sums.names' must be a list of strings"
        )
    m = len(names)
    for key in ("values", "stderr"):
        _check_float_list(sums, key, m, required=True)
    counts = sums.get("counts")
    if (
        not isinstance(counts, list)
        or len(counts) != m
        or not all(_is_int(c) and c >= 0 for c in counts)
    ):
        raise ValidationError(
            f"attribution field 'contributor_sums.counts' must be a list of {m} non-negative "
            "integers"
        )
    if not isinstance(sums.get("estimator", ""), str):
        raise ValidationError("attribution field 'contributor_sums.estimator' must be a string")


def _check_schema(data: Any) -> None:
    """Refuse anything that :meth:`Attribution.to_dict` cannot have written."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"not an openattrib attribution: a {type(data).__name__}, not an object"
        )
    if data.get("format") != FORMAT:
        raise ValidationError(
            f"not an openattrib attribution (format {data.get('format')!r}, expected {FORMAT!r})"
        )
    unknown = sorted(set(map(str, data)) - _FIELDS - {"integrity"})
    if unknown:
        raise ValidationError(f"attribution has unknown field(s) {unknown[:5]}")
    names = data.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("attribution field 'names' must be a list of strings")
    n = len(names)
    _check_float_list(data, "values", n, required=True)
    _check_float_list(data, "stderr", n, required=False)
    counts = data.get("counts")
    if counts is not None and (
        not isinstance(counts, list)
        or len(counts) != n
        or not all(_is_int(c) and c >= 0 for c in counts)
    ):
        raise ValidationError(
            f"attribution field 'counts' must be a list of {n} non-negative integers"
        )
    contributors = data.get("contributors")
    if contributors is not None and (
        not isinstance(contributors, list)
        or len(contributors) != n
        or not all(isinstance(c, str) for c in contributors)
    ):
        raise ValidationError(f"attribution field 'contributors' must be a list of {n} strings")
    for key in ("parameters", "provenance", "diagnostics", "contributor_sums"):
        if data.get(key) is not None and not isinstance(data[key], Mapping):
            raise ValidationError(f"attribution field {key!r} must be an object")
    sums = data.get("contributor_sums")
    if sums is not None:
        _check_sums(sums)
    if not isinstance(data.get("method", ""), str):
        raise ValidationError("attribution field 'method' must be a string")
    seed = data.get("seed")
    if seed is not None and not _is_int(seed):
        raise ValidationError(f"attribution field 'seed' must be an integer or null, got {seed!r}")
    if data.get("level", "players") not in _LEVELS:
        raise ValidationError(f"attribution field 'level' must be one of {_LEVELS}")
    integrity = data.get("integrity")
    if integrity is not None and not isinstance(integrity, str):
        raise ValidationError("attribution field 'integrity' must be a hex string")


class Attribution:
    """Values of players (training points, contributors, or players of a game) plus uncertainty.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        Attribution value of each player.
    names : sequence of str
        One unique name per player.
    stderr : array-like of float, optional
        Standard error of each value (Monte Carlo estimators); ``None`` for exact methods.
    counts : array-like of int, optional
        Number of samples behind each value.
    method : str
        Name of the method that produced the values.
    parameters : dict
        The method's parameters (JSON-serialisable).
    seed : int, optional
        Seed of a stochastic method (``None`` for deterministic ones).
    provenance : dict
        Where the numbers come from: dataset hash, model, scorer, package versions, time.
    players : {"points", "contributors", "players"}
        What the players are (``"players"``: the players of an abstract game). Available
        as ``result.level``. Formerly ``level=`` (deprecated).
    contributors : array-like of str, optional
        For ``players="points"``: the contributor of each point, used by :meth:`by_contributor`.
    contributor_sums : ContributorSums, optional
        Per-contributor sums measured draw by draw (permutation sampling); with the
        attribution's own contributors, :meth:`by_contributor` returns them with their errors.
    diagnostics : dict
        Anything else worth keeping: stopping rule, convergence history, failed fits...

    Examples
    --------
    >>> a = Attribution([0.5, 0.25], names=["a", "b"], method="demo")
    >>> a.ranking()
    ['a', 'b']
    """

    @deprecated_keywords(level="players")
    def __init__(
        self,
        values: Any,
        names: Sequence[str],
        *,
        stderr: Any = None,
        counts: Any = None,
        method: str = "unknown",
        parameters: Mapping[str, Any] | None = None,
        seed: int | None = None,
        provenance: Mapping[str, Any] | None = None,
        players: str = "players",
        contributors: Any = None,
        contributor_sums: ContributorSums | None = None,
        diagnostics: Mapping[str, Any] | None = None,
    ) -> None:
        names = [str(n) for n in names]
        n = len(names)
        if len(set(names)) != n:
            seen: set[str] = set()
            dup = next(x for x in names if x in seen or seen.add(x))
            raise ValidationError(f"Attribution names must be unique; {dup!r} appears twice")
        if players not in _LEVELS:
            raise ValidationError(f"players must be one of {_LEVELS}, got {players!r}")
        if players == "contributors":
            check_ids(names, "contributor name")
        self.names: list[str] = names
        self.values: np.ndarray = _as_float_array("values", values, n)
        self.stderr: np.ndarray | None = (
            None if stderr is None else _as_float_array("stderr", stderr, n)
        )
        if counts is None:
            self.counts: np.ndarray | None = None
        else:
            counts_arr = np.asarray(counts).reshape(-1)
            if counts_arr.shape[0] != n:
                raise ValidationError(f"counts has length {counts_arr.shape[0]}, expected {n}")
            self.counts = counts_arr.astype(np.int64)
        if contributors is not None:
            contributors = np.asarray([str(c) for c in contributors], dtype=object)
            if contributors.shape[0] != n:
                raise ValidationError(
                    f"contributors has length {contributors.shape[0]}, expected {n} (one per point)"
                )
        self.contributors: np.ndarray | None = contributors
        self.method = str(method)
        self.parameters: dict[str, Any] = dict(parameters or {})
        self.seed = None if seed is None else int(seed)
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.level = players
        if contributor_sums is not None and not isinstance(contributor_sums, ContributorSums):
            raise ValidationError(
                f"contributor_sums must be a ContributorSums, got {type(contributor_sums).__name__}"
            )
        self.contributor_sums: ContributorSums | None = contributor_sums
        self.diagnostics: dict[str, Any] = dict(diagnostics or {})

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> float:
        try:
            return float(self.values[self.names.index(str(name))])
        except ValueError:
            raise KeyError(f"no player named {name!r} in this attribution") from None

    def __repr__(self) -> str:
        err = "" if self.stderr is None else f", max stderr={np.nanmax(self.stderr):.3g}"
        return (
            f"Attribution(method={self.method!r}, players={self.level!r}, "
            f"n={len(self)}, sum={self.values.sum():.6g}{err})"
        )

    @property
    def players(self) -> str:
        """What the players are: ``"points"``, ``"contributors"`` or ``"players"``."""
        return self.level

    @property
    def interrupted(self) -> bool:
        """True when the run was stopped early by the user (KeyboardInterrupt)."""
        return bool(self.diagnostics.get("interrupted", False))

    def to_series(self) -> pd.Series:
        """Values as a pandas Series indexed by name."""
        return pd.Series(self.values, index=pd.Index(self.names, name=self.level), name="value")

    def to_frame(self, sort: bool = False) -> pd.DataFrame:
        """A table with one row per player: value, stderr, 95% interval, counts, rank."""
        frame = pd.DataFrame({"value": self.values}, index=pd.Index(self.names, name=self.level))
        if self.contributors is not None:
            frame.insert(0, "contributor", self.contributors)
        if self.stderr is not None:
            frame["stderr"] = self.stderr
            frame["ci_low"] = self.values - 1.96 * self.stderr
            frame["ci_high"] = self.values + 1.96 * self.stderr
        if self.counts is not None:
            frame["counts"] = self.counts
        frame["rank"] = frame["value"].rank(ascending=False, method="min").astype(int)
        return frame.sort_values("value", ascending=False, kind="stable") if sort else frame

    def ranking(self, ascending: bool = False) -> list[str]:
        """Names ordered by value, highest first (ties keep input order)."""
        order = np.argsort(self.values if ascending else -self.values, kind="stable")
        return [self.names[i] for i in order]

    # ----------------------------------------------------------- aggregation
    def by_contributor(self, contributors: Any = None) -> Attribution:
        """Sum point values per contributor.

        The result is labelled ``"<method> (sum over points by contributor)"``; this is the
        sum of point values, which is *not* the value of the contributor as a player in a
        contributor-level game. Monte Carlo estimates of points that share samples are
        correlated (strongly, within one permutation), so the error of a sum cannot be
        recovered from the per-point errors. Permutation-sampling results (permutation,
        TMC and Beta Shapley) on points with contributors therefore also accumulate each
        contributor's per-draw sum (the ``contributor_sums`` field); with the
        attribution's own contributors, those give the values, standard errors and counts
        here. Otherwise the result carries **no standard errors** (a wrong error bar would
        mislead uncertainty-aware payouts); for contributor-level error bars, value a game
        with ``players="contributors"``.
        """
        if self.level == "contributors":
            return self
        own = contributors is None
        if contributors is None:
            contributors = self.contributors
        elif hasattr(contributors, "contributors"):
            contributors = contributors.contributors
        if contributors is None:
            raise ValidationError(
                "this attribution has no contributor per point; pass contributors= "
                "(one id per point) or value a Dataset that has contributors"
            )
        contributors = np.asarray([str(c) for c in contributors], dtype=object)
        if contributors.shape[0] != len(self):
            raise ValidationError(
                f"contributors has length {contributors.shape[0]}, expected {len(self)}"
            )
        ids = list(dict.fromkeys(contributors.tolist()))
        codes = np.array([ids.index(c) for c in contributors]) if ids else np.zeros(0, int)
        values = np.bincount(codes, weights=self.values, minlength=len(ids))
        n_points = np.bincount(codes, minlength=len(ids))
        diagnostics: dict[str, Any] = {
            "aggregation": "sum over points by contributor",
            "n_points": dict(zip(ids, n_points.tolist(), strict=True)),
            "point_method": self.method,
        }
        if not own and self.contributors is not None:
            own = contributors.tolist() == self.contributors.tolist()
        sums = self.contributor_sums
        stderr = counts = None
        if own and sums is not None and list(sums.names) == ids:
            # per-draw contributor sums accumulated by the sampler: their spread is the error
            values, stderr, counts = sums.values, sums.stderr, sums.counts
            diagnostics["stderr"] = sums.estimator
        elif self.stderr is not None:
            diagnostics["stderr"] = (
                "not available for sums of correlated point estimates; "
                "value players='contributors' for contributor-level error bars"
            )
        return Attribution(
            values,
            ids,
            stderr=stderr,
            counts=counts,
            method=f"{self.method} (sum over points by contributor)",
            parameters=self.parameters,
            seed=self.seed,
            provenance=self.provenance,
            players="contributors",
            diagnostics=diagnostics,
        )

    def reindex(self, names: Sequence[str]) -> Attribution:
        """The same result with its players in the order of ``names``.

        ``names`` must be a permutation of :attr:`names` (a missing or unknown name is
        refused, naming it). Values, stderr, counts and contributors move together;
        everything else is kept.

        Examples
        --------
        >>> a = Attribution([1.0, 2.0, 3.0], ["a", "b", "c"])
        >>> a.reindex(["c", "a", "b"]).values.tolist()
        [3.0, 1.0, 2.0]
        """
        names = [str(n) for n in names]
        position = {name: i for i, name in enumerate(self.names)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise ValidationError(
                f"reindex: {unknown[0]!r} is not a player of this attribution "
                f"(players: {', '.join(self.names[:5])}{', ...' if len(self) > 5 else ''})"
            )
        if len(names) != len(self) or len(set(names)) != len(names):
            missing = [n for n in self.names if n not in set(names)]
            raise ValidationError(
                f"reindex needs every player exactly once; {len(names)} names given for "
                f"{len(self)} players" + (f", missing {missing[0]!r}" if missing else "")
            )
        order = np.array([position[n] for n in names], dtype=np.int64)
        return Attribution(
            self.values[order],
            names,
            stderr=None if self.stderr is None else self.stderr[order],
            counts=None if self.counts is None else self.counts[order],
            method=self.method,
            parameters=self.parameters,
            seed=self.seed,
            provenance=self.provenance,
            players=self.level,
            contributors=None if self.contributors is None else self.contributors[order],
            contributor_sums=self.contributor_sums,
            diagnostics=self.diagnostics,
        )

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict holding everything (non-finite floats become ``null``)."""
        return {
            "format": FORMAT,
            "names": list(self.names),
            "values": _encode_floats(self.values),
            "stderr": _encode_floats(self.stderr),
            "counts": None if self.counts is None else [int(c) for c in self.counts],
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "provenance": self.provenance,
            "level": self.level,
            "contributors": None if self.contributors is None else list(self.contributors),
            "contributor_sums": None
            if self.contributor_sums is None
            else self.contributor_sums.to_dict(),
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribution:
        """Inverse of :meth:`to_dict`, checking the schema (and ``integrity`` when present).

        Refused, with a :class:`ValidationError` naming the field: a missing or unknown
        field, a wrong type (a string where a list belongs, a fractional or negative count,
        a non-integer seed), a non-finite number (``null`` is the format's "not
        available"), lists of the wrong length, and an ``integrity`` digest that does not
        match the content.
        """
        _check_schema(data)
        integrity = data.get("integrity")
        if integrity is not None and integrity != _integrity(data):
            raise ValidationError(
                "the attribution's integrity digest does not match its content: the file was "
                "changed after it was saved (recompute it, or restore the original file)"
            )
        diagnostics = dict(data.get("diagnostics") or {})
        sums = data.get("contributor_sums")
        if sums is None and isinstance(diagnostics.get("by_contributor"), Mapping):
            sums = diagnostics.pop("by_contributor")  # files written before the field existed
            _check_sums(sums)
        return cls(
            _decode_floats(data["values"]),
            data["names"],
            stderr=_decode_floats(data.get("stderr")),
            counts=data.get("counts"),
            method=data.get("method", "unknown"),
            parameters=data.get("parameters"),
            seed=data.get("seed"),
            provenance=data.get("provenance"),
            players=data.get("level", "players"),
            contributors=data.get("contributors"),
            contributor_sums=None if sums is None else ContributorSums.from_dict(sums),
            diagnostics=diagnostics,
        )

    def result_hash(self) -> str:
        """SHA-256 (hex) of the reproducible part of the result.

        Covers names, values, stderr, counts, level, method, parameters, seed and the dataset
        hash; excludes wall-clock times, diagnostics and ``contributor_sums`` (a
        by-product of the same draws, kept out so hashes match those of earlier versions),
        so rerunning a seeded computation on the same data gives the same hash.
        """
        core = {
            "names": self.names,
            "values": _encode_floats(self.values),
            "stderr": _encode_floats(self.stderr),
            "counts": None if self.counts is None else [int(c) for c in self.counts],
            "level": self.level,
            "method": self.method,
            "parameters": self.parameters,
            "seed": self.seed,
            "dataset_hash": self.provenance.get("dataset_hash"),
        }
        return hashlib.sha256(canonical_json(core)).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write canonical JSON atomically; :meth:`load` reads it back exactly.

        The file carries ``integrity``, the SHA-256 of the canonical JSON of every other
        field, which :meth:`load` checks: it catches any edit or damage. It is a checksum,
        not a signature (whoever edits the file can recompute it); for a tamper-evident
        record append the result to a :class:`~openattrib.ledger.Ledger`.
        """
        data = self.to_dict()
        data["integrity"] = _integrity(data)
        return atomic_write_bytes(path, canonical_json(data))

    @classmethod
    def load(cls, path: str | Path) -> Attribution:
        """Read an attribution written by :meth:`save`, checking schema and integrity.

        Files saved before the ``integrity`` field existed (same format tag, no
        ``integrity``) still load; their schema is checked all the same.
        """
        data = read_json(path, "attribution file")
        return cls.from_dict(data)

    # ---------------------------------------------------------------- display
    def plot(self, ax: Any = None, top: int | None = 30, sort: bool = True) -> Any:
        """Horizontal bar chart of values with 95% error bars when stderr is known."""
        from .plots import plot_attribution

        title = f"{self.method} - {self.level}"
        return plot_attribution(self.to_frame(), ax=ax, top=top, sort=sort, title=title)

    def _repr_html_(self) -> str:
        frame = self.to_frame(sort=True).head(20)
        head = (
            f"<p><b>Attribution</b> &middot; method <code>{self.method}</code> &middot; "
            f"{len(self)} {self.level} &middot; sum {self.values.sum():.6g}"
        )
        if self.provenance.get("dataset_hash"):
            head += f" &middot; dataset <code>{str(self.provenance['dataset_hash'])[:12]}</code>"
        if self.interrupted:
            head += " &middot; <b>interrupted</b>"
        head += "</p>"
        more = f"<p>({len(self) - 20} more rows)</p>" if len(self) > 20 else ""
        return head + frame.to_html(float_format=lambda v: f"{v:.4g}") + more
