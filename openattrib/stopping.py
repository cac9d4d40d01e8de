"""Stopping rules for the Monte Carlo estimators (``oa.stop``).

A rule looks at the progress of a run between rounds of samples and says whether to stop.
Rules compose: ``a | b`` stops when either does, ``a & b`` when both do.

>>> import openattrib as oa
>>> rule = oa.stop.StdErr(atol=0.01) | oa.stop.MaxSamples(5000) | oa.stop.MaxTime(600)
>>> str(rule)
'StdErr(atol=0.01) | MaxSamples(5000) | MaxTime(600)'
>>> oa.stop.parse(str(rule)) == rule
True

Rules are checked between rounds of a fixed number of samples, so a run stops at the
same sample whatever the number of workers. :class:`MaxSamples` and
:class:`MaxEvaluations` are exact budgets (the last round is shortened to fit them);
:class:`MaxTime`, :class:`StdErr` and :class:`RankStable` are checked after each round.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = [
    "Progress",
    "StoppingRule",
    "MaxSamples",
    "MaxEvaluations",
    "MaxTime",
    "StdErr",
    "RankStable",
    "AnyOf",
    "AllOf",
    "parse",
]


@dataclass(frozen=True)
class Progress:
    """What a stopping rule sees: the state of a run after a round of samples.

    ``samples`` counts permutations (permutation methods) or coalitions (MSR Banzhaf)
    over the whole run, including any run it continues; ``evaluations`` counts utility
    evaluations the same way; ``elapsed`` is wall time of the current session in seconds.
    ``samples_per_draw`` and ``max_evaluations_per_draw`` describe one unit of work (an
    antithetic pair is one draw of two permutations) so budgets can size the last round.
    """

    samples: int
    evaluations: int
    elapsed: float
    values: np.ndarray
    stderr: np.ndarray
    samples_per_draw: int = 1
    max_evaluations_per_draw: int = 1


def _fmt(value: float) -> str:
    return (
        repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    )


def _positive_int(rule: str, name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{rule}: {name} must be a positive integer, got {value!r}")
    if (
        isinstance(value, (float, np.floating))
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        value = int(value)
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(
            f"{rule}: {name} must be a positive integer, got {value!r}; a budget of zero or less "
            "would stop before taking any sample"
        )
    return int(value)


def _positive_float(rule: str, name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{rule}: {name} must be a number, got {value!r}") from None
    if (
        isinstance(value, (bool, np.bool_))
        or not math.isfinite(number)
        or number < 0
        or (number == 0 and not allow_zero)
    ):
        bound = "non-negative" if allow_zero else "positive"
        raise ValidationError(f"{rule}: {name} must be a finite {bound} number, got {value!r}")
    return number


class StoppingRule:
    """Base class of stopping rules; combine rules with ``|`` (either) and ``&`` (both)."""

    def check(self, state: Progress) -> str | None:
        """Return a description of why the run should stop now, or ``None`` to go on."""
        raise NotImplementedError

    def draws_left(self, state: Progress) -> int | None:
        """At most how many more draws the rule allows (``None``: no sample budget)."""
        return None

    def is_bounded(self) -> bool:
        """True when the rule is certain to stop a run eventually (it holds a budget)."""
        return False

    def fresh(self) -> StoppingRule:
        """A copy with any memory from earlier runs cleared."""
        return parse(str(self))

    def __or__(self, other: StoppingRule) -> AnyOf:
        return AnyOf(self, _check_rule(other))

    def __and__(self, other: StoppingRule) -> AllOf:
        return AllOf(self, _check_rule(other))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoppingRule) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return str(self)


def _check_rule(rule: Any) -> StoppingRule:
    if not isinstance(rule, StoppingRule):
        raise ValidationError(
            f"stopping rules combine only with other rules, got {type(rule).__name__}; "
            "use e.g. oa.stop.MaxSamples(1000) | oa.stop.MaxTime(60)"
        )
    return rule


class MaxSamples(StoppingRule):
    """Stop after ``n`` samples: permutations for permutation methods, coalitions for MSR Banzhaf.

    With antithetic sampling permutations come in pairs, so an odd ``n`` is rounded up by one.
    """

    def __init__(self, n: int) -> None:
        self.n = _positive_int("MaxSamples", "n", n)

    def check(self, state: Progress) -> str | None:
        return str(self) if state.samples >= self.n else None

    def draws_left(self, state: Progress) -> int:
        return max(0, -(-(self.n - state.samples) // state.samples_per_draw))

    def is_bounded(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"MaxSamples({self.n})"


class MaxEvaluations(StoppingRule):
    """Stop before the number of utility evaluations could exceed ``n``.

    The estimator only starts a sample it can afford in the worst case (a permutation of
    ``n_players`` costs ``n_players + 1`` evaluations without truncation).
    """

    def __init__(self, n: int) -> None:
        self.n = _positive_int("MaxEvaluations", "n", n)

    def draws_left(self, state: Progress) -> int:
        return max(0, (self.n - state.evaluations) // max(state.max_evaluations_per_draw, 1))

    def check(self, state: Progress) -> str | None:
        return str(self) if self.draws_left(state) == 0 else None

    def is_bounded(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"MaxEvaluations({self.n})"


class MaxTime(StoppingRule):
    """Stop after ``seconds`` of wall time in this session (checked between rounds)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = _positive_float("MaxTime", "seconds", seconds)

    def check(self, state: Progress) -> str | None:
        return str(self) if state.elapsed >= self.seconds else None

    def is_bounded(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"MaxTime({_fmt(self.seconds)})"


class StdErr(StoppingRule):
    """Stop when every player's standard error is at most ``atol + rtol * (max - min of values)``.

    Give ``atol`` (absolute), ``rtol`` (relative to the range of the current values) or
    both. The rule waits for ``min_samples`` samples, because a standard error estimated
    from a handful of samples can be zero by chance (e.g. a player whose marginals so far
    were all zero).
    """

    def __init__(
        self, atol: float | None = None, rtol: float | None = None, min_samples: int = 30
    ) -> None:
        if atol is None and rtol is None:
            raise ValidationError(
                "StdErr needs atol= (absolute) or rtol= (relative to the value range), e.g. StdErr(atol=0.01)"
            )
        self.atol = None if atol is None else _positive_float("StdErr", "atol", atol)
        self.rtol = None if rtol is None else _positive_float("StdErr", "rtol", rtol)
        self.min_samples = _positive_int("StdErr", "min_samples", min_samples)

    def tolerance(self, values: np.ndarray) -> float:
        finite = values[np.isfinite(values)]
        spread = float(finite.max() - finite.min()) if finite.size else 0.0
        return (self.atol or 0.0) + (self.rtol or 0.0) * spread

    def check(self, state: Progress) -> str | None:
        if state.samples < self.min_samples or state.stderr.size == 0:
            return None
        stderr = state.stderr
        if not np.isfinite(stderr).all() or not np.isfinite(state.values).all():
            return None
        return str(self) if float(stderr.max()) <= self.tolerance(state.values) else None

    def __str__(self) -> str:
        parts = []
        if self.atol is not None:
            parts.append(f"atol={_fmt(self.atol)}")
        if self.rtol is not None:
            parts.append(f"rtol={_fmt(self.rtol)}")
        if self.min_samples != 30:
            parts.append(f"min_samples={self.min_samples}")
        return f"StdErr({', '.join(parts)})"


class RankStable(StoppingRule):
    """Stop when the ranking settles: Spearman correlation of the values at two successive
    checkpoints, ``every`` samples apart, is at least ``rho``.

    The rule remembers the previous checkpoint within one run (a continued run starts a
    new sequence of checkpoints).
    """

    def __init__(self, rho: float = 0.99, every: int = 100) -> None:
        try:
            rho = float(rho)
        except (TypeError, ValueError):
            raise ValidationError(
                f"RankStable: rho must be a number in (-1, 1], got {rho!r}"
            ) from None
        if not -1.0 < rho <= 1.0:
            raise ValidationError(
                f"RankStable: rho must be in (-1, 1], got {rho!r} (typical: 0.99)"
            )
        self.rho = rho
        self.every = _positive_int("RankStable", "every", every)
        self._last_samples: int | None = None
        self._last_values: np.ndarray | None = None
        self.last_correlation: float | None = None

    def check(self, state: Progress) -> str | None:
        from scipy.stats import spearmanr

        if self._last_samples is not None and state.samples - self._last_samples < self.every:
            return None
        values = np.asarray(state.values, dtype=np.float64)
        previous, self._last_values, self._last_samples = (
            self._last_values,
            values.copy(),
            state.samples,
        )
        if (
            previous is None
            or values.size < 2
            or not (np.isfinite(values).all() and np.isfinite(previous).all())
        ):
            return None
        if np.ptp(values) == 0 or np.ptp(previous) == 0:
            return None
        corr = float(spearmanr(previous, values).statistic)
        self.last_correlation = corr
        return f"{self} (correlation {corr:.4f})" if corr >= self.rho else None

    def __str__(self) -> str:
        return f"RankStable(rho={_fmt(self.rho)}, every={self.every})"


class _Composite(StoppingRule):
    symbol = ""

    def __init__(self, *rules: StoppingRule) -> None:
        flat: list[StoppingRule] = []
        for rule in rules:
            rule = _check_rule(rule)
            flat.extend(rule.rules if type(rule) is type(self) else [rule])
        self.rules = tuple(flat)

    def __str__(self) -> str:
        def show(rule: StoppingRule) -> str:
            return f"({rule})" if isinstance(rule, _Composite) else str(rule)

        return f" {self.symbol} ".join(show(r) for r in self.rules)


class AnyOf(_Composite):
    """Stop as soon as any of the rules says stop (``a | b``)."""

    symbol = "|"

    def check(self, state: Progress) -> str | None:
        reasons = [r.check(state) for r in self.rules]  # every rule sees every checkpoint
        fired = [reason for reason in reasons if reason is not None]
        return " | ".join(fired) if fired else None

    def draws_left(self, state: Progress) -> int | None:
        bounds = [b for b in (r.draws_left(state) for r in self.rules) if b is not None]
        return min(bounds) if bounds else None

    def is_bounded(self) -> bool:
        return any(r.is_bounded() for r in self.rules)


class AllOf(_Composite):
    """Stop when all of the rules say stop (``a & b``)."""

    symbol = "&"

    def check(self, state: Progress) -> str | None:
        reasons = [r.check(state) for r in self.rules]
        return " & ".join(reasons) if all(reason is not None for reason in reasons) else None  # type: ignore[misc]

    def draws_left(self, state: Progress) -> int | None:
        bounds = [r.draws_left(state) for r in self.rules]
        return None if any(b is None for b in bounds) else max(bounds)  # type: ignore[type-var]

    def is_bounded(self) -> bool:
        return all(r.is_bounded() for r in self.rules)


_RULES = {cls.__name__: cls for cls in (MaxSamples, MaxEvaluations, MaxTime, StdErr, RankStable)}


def parse(text: str) -> StoppingRule:
    """Read a rule from its text form, e.g. ``"StdErr(atol=0.01) | MaxSamples(1000)"``.

    Accepts the rule names of this module with numeric arguments, combined with ``|``
    and ``&`` and parentheses; ``str(rule)`` gives this form back.

    >>> parse("MaxSamples(500) | MaxTime(60)")
    MaxSamples(500) | MaxTime(60)
    """
    if isinstance(text, StoppingRule):
        return text
    if not isinstance(text, str):
        raise ValidationError(
            f"a stopping rule must be an oa.stop rule or a string, got {type(text).__name__}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValidationError(
            f"cannot read stopping rule {text!r}; write e.g. 'MaxSamples(1000) | MaxTime(60)'"
        ) from None
    return _build(tree.body, text)


def _number(node: ast.AST, text: str) -> float | int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(node.operand, text)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return node.value
    raise ValidationError(f"stopping rule {text!r}: arguments must be numbers")


def _build(node: ast.AST, text: str) -> StoppingRule:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.BitAnd)):
        left, right = _build(node.left, text), _build(node.right, text)
        return left | right if isinstance(node.op, ast.BitOr) else left & right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _RULES:
        args = [_number(a, text) for a in node.args]
        kwargs = {k.arg: _number(k.value, text) for k in node.keywords if k.arg is not None}
        try:
            return _RULES[node.func.id](*args, **kwargs)
        except TypeError as exc:
            raise ValidationError(f"stopping rule {text!r}: {exc}") from None
    raise ValidationError(
        f"cannot read stopping rule {text!r}: use {', '.join(_RULES)} joined by | or &, "
        "e.g. 'StdErr(atol=0.01) | MaxSamples(1000)'"
    )
