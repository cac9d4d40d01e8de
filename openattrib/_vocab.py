"""The shared vocabulary's helpers: one size parser and one way to deprecate a spelling.

DESIGN.md "One vocabulary": ``memory_budget`` is an int number of bytes or a string such
as ``"512MB"`` (:func:`parse_memory_budget`), ``players`` is ``"points"`` or
``"contributors"`` (:func:`check_players`), and old spellings of renamed keywords, or
arguments that used to be positional and are now keyword-only, keep working for one release
with a :class:`DeprecationWarning` naming the new spelling (:func:`deprecated_keywords`).
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from .errors import ValidationError

__all__ = ["PLAYERS", "check_players", "deprecated_keywords", "parse_memory_budget"]

F = TypeVar("F", bound=Callable[..., Any])

PLAYERS = ("points", "contributors")

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30})


def parse_memory_budget(value: int | str, name: str = "memory_budget") -> int:
    """Bytes from ``1_000_000``, ``"512MB"`` or ``"2GiB"`` (decimal and binary units).

    Examples
    --------
    >>> parse_memory_budget("512MB"), parse_memory_budget("1KiB"), parse_memory_budget(10)
    (512000000, 1024, 10)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).upper() if match else ""
        if not match or unit not in _UNITS:
            raise ValidationError(
                f"{name}={value!r} is not a size; give bytes as an int or a string such as "
                "'512MB' or '2GiB'"
            )
        number = int(float(match.group(1)) * _UNITS[unit])
    if number <= 0:
        raise ValidationError(f"{name} must be positive, got {value!r}")
    return number


def check_players(players: Any) -> str:
    """``players`` as ``"points"`` or ``"contributors"`` (anything else refused)."""
    if players not in PLAYERS:
        raise ValidationError(f"players must be 'points' or 'contributors', got {players!r}")
    return str(players)


def _warn(message: str) -> None:
    # stacklevel 3: the caller of the decorated function
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def deprecated_keywords(*, positional: Sequence[str] = (), **renamed: str) -> Callable[[F], F]:
    """Decorate a function whose keywords were renamed or made keyword-only.

    Parameters
    ----------
    positional : sequence of str
        Names of keyword-only parameters that used to be accepted positionally, in their
        old order after the positional ones; passing them positionally still works, with a
        :class:`DeprecationWarning` naming the keyword.
    **renamed : str
        ``old="new"``: the old keyword still works, with a warning naming the new one;
        giving both is refused (the call could be read two ways).

    Examples
    --------
    >>> @deprecated_keywords(level="players")
    ... def f(x, *, players="points"):
    ...     return players
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     f(1, level="contributors"), str(caught[0].message)
    ('contributors', 'f(): level= is deprecated and will be removed in the next release; use players= instead')
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        n_positional = sum(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in signature.parameters.values()
        )
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(positional):
                    raise TypeError(
                        f"{name}() takes {n_positional} positional argument(s) but "
                        f"{len(args)} were given"
                    )
                moved = positional[: len(extra)]
                for key, value in zip(moved, extra, strict=True):
                    if key in kwargs:
                        raise TypeError(f"{name}() got multiple values for argument {key!r}")
                    kwargs[key] = value
                _warn(
                    f"{name}(): passing {', '.join(moved)} positionally is deprecated and "
                    f"will be removed in the next release; pass "
                    f"{', '.join(k + '=' for k in moved)} as keyword(s)"
                )
                args = args[:n_positional]
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ValidationError(
                            f"{name}() got both {old}= (deprecated) and {new}=; pass only {new}="
                        )
                    _warn(
                        f"{name}(): {old}= is deprecated and will be removed in the next "
                        f"release; use {new}= instead"
                    )
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
