"""What every evaluation and a whole run return, and the coercion of "values" given in several shapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..result import Attribution
from ._setup import Unit

__all__ = ["ExperimentResult", "ExperimentRun", "as_value_dict", "as_values"]


@dataclass
class ExperimentResult:
    """A tidy table, a one-line summary per method, and a lazily drawn figure.

    Unpacks as ``frame, figure = result``.

    Attributes
    ----------
    name : str
        Which evaluation produced it (``"noisy_label_detection"``, ``"point_removal"``...).
    frame : pandas.DataFrame
        Tidy results: one row per observation (per method, per bin, per checkpoint...).
    summary : pandas.DataFrame
        One row per method with the headline numbers of the evaluation.
    """

    name: str
    frame: pd.DataFrame
    summary: pd.DataFrame
    _draw: Callable[[Any], Any] | None = field(default=None, repr=False)
    _figure: Any = field(default=None, repr=False)

    def plot(self, ax: Any = None) -> Any:
        """Draw the evaluation's figure (on ``ax`` if given) and return the Figure."""
        if self._draw is None:
            raise ValidationError(f"{self.name} has no figure")
        return self._draw(ax)

    @property
    def figure(self) -> Any:
        """The figure, drawn on first access and kept."""
        if self._figure is None:
            self._figure = self.plot()
        return self._figure

    def __iter__(self) -> Iterator[Any]:
        return iter((self.frame, self.figure))

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        return f"<p><b>{self.name}</b></p>" + self.summary.to_html(
            float_format=lambda v: f"{v:.4g}"
        )


def as_values(values: Any, n: int | None = None, name: str = "values") -> np.ndarray:
    """A finite float64 vector from an Attribution, a Series or an array-like."""
    if isinstance(values, Attribution):
        arr = values.values
    elif isinstance(values, pd.Series):
        arr = values.to_numpy(dtype=np.float64)
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(
                f"{name} must be an Attribution or a 1-D array of numbers, got {type(values).__name__}"
            ) from None
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be 1-D (one value per player), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValidationError(f"{name} has {arr.shape[0]} entries but there are {n} players")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValidationError(
            f"{name} contains NaN or infinity (first at position {bad}); an estimator that did not "
            "sample every player leaves NaN - give it a larger budget"
        )
    return arr


def as_value_dict(values: Any, n: int | None = None) -> dict[str, np.ndarray]:
    """``{method: values}`` from a mapping, a single Attribution (keyed by its method) or an array."""
    if isinstance(values, Mapping):
        if not values:
            raise ValidationError("no methods given: the mapping of method name to values is empty")
        out = {str(k): as_values(v, n, name=f"values of {k!r}") for k, v in values.items()}
    elif isinstance(values, Attribution):
        out = {values.method: as_values(values, n)}
    else:
        out = {"values": as_values(values, n)}
    sizes = {v.shape[0] for v in out.values()}
    if len(sizes) != 1:
        raise ValidationError(
            f"all methods must value the same players; got lengths {sorted(sizes)}"
        )
    return out


@dataclass
class ExperimentRun:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    out_dir : Path
        The results folder.
    config : dict
        The resolved config (as written to ``config.json``).
    tables : dict of str to DataFrame
        Every table, timing columns included (``"summary"``, ``"detection"``, ``"removal"``...).
    files : dict of str to Path
        Every file written.
    figures : dict of str to bytes
        PNG images by name (``"<dataset>_seed<k>_<evaluation>"``, ``"summary_<metric>"``).
    attributions : dict of (dataset, seed, method) to Attribution
    units : dict of (dataset, seed) to Unit
        The prepared data: ``train`` (with the noisy labels), ``valid`` and ``flipped``.
    """

    out_dir: Path
    config: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    attributions: dict[tuple[str, int, str], Attribution] = field(default_factory=dict)
    units: dict[tuple[str, int], Unit] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"
