"""Reading CSV files the user gives us: one clear error per way a file can be wrong.

:func:`read_csv` is the one place a CSV file becomes a DataFrame. Before pandas sees the
text it checks, naming the file and the line, that the file

- exists, is a regular file and can be read;
- is UTF-8 (a Latin-1 or binary file is refused, not guessed at);
- has a header row, no empty and no duplicate column names (pandas would silently rename a
  second ``label`` to ``label.1``, which then becomes a feature and leaks the answer);
- has at least one data row, and every row has as many fields as the header.

Columns listed in ``text_columns`` (identifiers such as contributor ids) are read as the
exact strings written in the file: no type inference (``007``, ``07`` and ``7`` stay three
different ids, ``True`` stays ``True``) and no missing-value sentinels (a contributor called
``NA`` is a contributor); only a truly empty cell is empty. Other columns are parsed as
:func:`pandas.read_csv` parses them.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ValidationError

__all__ = ["read_csv", "PANDAS_NA_VALUES"]

#: The strings :func:`pandas.read_csv` reads as missing by default (pandas' documented list).
PANDAS_NA_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
# read_csv options that change which lines are the header and the rows: with any of them
# the structural checks below would not describe what pandas reads, so they are skipped
_STRUCTURAL = {"header", "names", "skiprows", "skipfooter", "nrows", "comment", "usecols"}


def _read_text(path: Path, what: str) -> str:
    if path.is_dir():
        raise ValidationError(f"{what} {str(path)!r} is a directory, not a CSV file")
    if not path.exists():
        raise ValidationError(f"{what} not found: {str(path)!r} (resolved: {path.resolve()})")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    if not raw.strip():
        raise ValidationError(
            f"{what} {str(path)!r} is empty ({len(raw)} bytes); it needs a header row and at "
            "least one data row"
        )
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ValidationError(
            f"{what} {str(path)!r} contains a NUL byte (line {line}): it is a binary file, "
            "not CSV text"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValidationError(
            f"{what} {str(path)!r} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line "
            f"{line}); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`"
        ) from None


def _check_structure(text: str, path: Path, what: str, delimiter: str) -> list[str]:
    """The header's column names, after checking names and row lengths."""
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = next(reader, [])
        width, n_rows = len(header), 0
        for row in reader:
            if not row:  # blank line: pandas skips it too
                continue
            n_rows += 1
            if len(row) != width:
                raise ValidationError(
                    f"{what} {str(path)!r} line {reader.line_num} has {len(row)} field(s) but "
                    f"the header has {width} column(s); every row needs one value per column"
                )
    except csv.Error as exc:
        raise ValidationError(f"{what} {str(path)!r} is not a readable CSV file: {exc}") from None
    if not header or not "".join(header).strip():
        raise ValidationError(f"{what} {str(path)!r} has no header row (its first line is blank)")
    unnamed = [i for i, name in enumerate(header) if not name.strip()]
    if unnamed:
        raise ValidationError(
            f"{what} {str(path)!r} column {unnamed[0] + 1} has no name in the header row; name "
            "every column (a file written with DataFrame.to_csv needs index=False)"
        )
    seen: set[str] = set()
    duplicates = [n for n in header if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if duplicates:
        raise ValidationError(
            f"{what} {str(path)!r} has duplicate column name(s) "
            f"{', '.join(repr(d) for d in dict.fromkeys(duplicates))}; every column needs a "
            "distinct name (which of the two is meant cannot be guessed)"
        )
    if n_rows == 0:
        raise ValidationError(
            f"{what} {str(path)!r} has a header ({', '.join(header[:8])}) but no data rows"
        )
    return header


def read_csv(
    path: str | os.PathLike,
    *,
    text_columns: Sequence[str] = (),
    what: str = "CSV file",
    **read_csv_kwargs: Any,
) -> pd.DataFrame:
    """Read a CSV file after checking it (see the module docstring); errors name the file.

    Parameters
    ----------
    path : str or PathLike
    text_columns : sequence of str
        Columns kept as the exact strings in the file (no type inference, no NA sentinels;
        an empty cell is ``""``).
    what : str
        How error messages name the file (e.g. ``"validation file"``).
    **read_csv_kwargs
        Passed to :func:`pandas.read_csv`.
    """
    path = Path(path)
    text = _read_text(path, what)
    delimiter = read_csv_kwargs.get("sep", read_csv_kwargs.get("delimiter", ","))
    structural = _STRUCTURAL & set(read_csv_kwargs) or not (
        isinstance(delimiter, str) and len(delimiter) == 1
    )
    header = None if structural else _check_structure(text, path, what, delimiter)
    options = dict(read_csv_kwargs)
    text_columns = [c for c in text_columns if c is not None]
    if text_columns and header is not None and "dtype" not in options:
        text_set = set(text_columns)
        options.setdefault("keep_default_na", False)
        options.setdefault(
            "na_values", {c: list(PANDAS_NA_VALUES) for c in header if c not in text_set}
        )
        options["dtype"] = {c: str for c in text_columns if c in header}
    try:
        return pd.read_csv(io.StringIO(text), **options)
    except (ValueError, pd.errors.ParserError, csv.Error) as exc:
        message = " ".join(str(exc).split())
        raise ValidationError(f"{what} {str(path)!r} could not be parsed: {message}") from None
