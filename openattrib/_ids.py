"""Payee identity: the rule every contributor id must follow, checked in one place.

A contributor id names who gets paid, so two ids that *look* the same must *be* the same
and an id must print safely. The rule, applied wherever contributor ids enter (a
:class:`~openattrib.data.Dataset`, a contributor-level
:class:`~openattrib.result.Attribution`, :func:`~openattrib.rewards.allocate`, a loaded
allocation, an address map):

1. An id is a non-empty ``str``, used exactly as written (never re-typed: ``"007"`` and
   ``"7"`` are two ids) and without leading or trailing white space.
2. It contains no control characters (C0/C1, e.g. ESC, which starts terminal escape
   sequences), no invisible format characters (zero-width space and joiners, byte-order
   mark, soft hyphen, bidirectional overrides), no line or paragraph separators, no
   surrogate, private-use or unassigned code points, and no white space other than the
   ordinary space U+0020.
3. It is in Unicode normalisation form NFC (``"e\\u0301"`` is refused; write ``"\\u00e9"``).
4. No two distinct ids of one input are equal after NFKC normalisation (``"bob"`` and the
   full-width ``"ｂｏｂ"``, or ``"ﬁ"`` and ``"fi"``): such look-alikes are refused, not merged.

Ids breaking the rule are refused (never normalised silently), with the offending id shown
escaped (``ascii()``) so that nothing invisible reaches the terminal. Not covered:
confusable letters of different scripts (Latin ``a`` and Cyrillic ``а``), which need the
Unicode confusables table (UTS #39).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .errors import ValidationError

__all__ = ["check_ids", "id_problem"]

_FORBIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a surrogate code point",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def id_problem(value: object) -> str | None:
    """What is wrong with one id under the module's rule (``None`` when it is fine)."""
    if not isinstance(value, str):
        return f"is a {type(value).__name__}, not a string"
    if not value.strip():
        return "is empty"
    if value != value.strip():
        return "has leading or trailing white space"
    for char in value:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            return f"contains {_FORBIDDEN_CATEGORIES[category]} (U+{ord(char):04X})"
        if char.isspace() and char != " ":
            return f"contains white space other than a plain space (U+{ord(char):04X})"
    if not value.isascii() and unicodedata.normalize("NFC", value) != value:
        return (
            "is not in Unicode normal form NFC (write it as "
            f"{ascii(unicodedata.normalize('NFC', value))})"
        )
    return None


def check_ids(ids: Iterable[object], what: str = "contributor id") -> None:
    """Raise :class:`ValidationError` unless every id follows the rule (module docstring).

    ``what`` names the input in the message (e.g. ``"contributor column 'owner'"``). The
    ids are checked once each; repeated ids (one contributor on many rows) are fine.
    """
    seen: dict[str, str] = {}
    for value in dict.fromkeys(ids):
        problem = id_problem(value)
        if problem is not None:
            raise ValidationError(
                f"{what}: id {ascii(value)} {problem}; contributor ids name who is paid, so they "
                "must be plain visible text (see openattrib._ids for the rule)"
            )
        key = value if value.isascii() else unicodedata.normalize("NFKC", value)  # type: ignore[union-attr]
        other = seen.get(key)
        if other is not None and other != value:
            raise ValidationError(
                f"{what}: ids {ascii(other)} and {ascii(value)} are different but look the same "
                "(equal after Unicode NFKC normalisation); use one spelling per "
                "contributor"
            )
        seen.setdefault(key, value)  # type: ignore[arg-type]
