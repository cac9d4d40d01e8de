"""Self-contained HTML reports (``oa.report``).

A :class:`Report` is a list of blocks (headings, text, tables, figures, raw HTML) rendered
into **one** HTML file with no external resources: figures are embedded as base64 PNG,
tables are HTML, and the style sheet is inline. The experiment runner and the main job
both write their results this way.

>>> import pandas as pd
>>> report = Report("Example")
>>> report.add_heading("Numbers").add_table(pd.DataFrame({"a": [1, 2]}))  # doctest: +ELLIPSIS
<openattrib.report.Report object at ...>
>>> "<h2 id=" in report.to_html()
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._io import atomic_write_text
from .errors import ValidationError

__all__ = ["Report", "write_report", "figure_to_png"]

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.5; background: #fff; }
h1 { border-bottom: 3px solid #2f6db5; padding-bottom: .3em; color: #16365c; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccd6e3; padding-bottom: .2em; color: #1f4e89; }
h3 { margin-top: 1.5em; color: #2f6db5; }
p.meta { color: #5b6470; font-size: .9em; }
nav.toc { background: #f3f6fa; border: 1px solid #dbe3ee; padding: .6em 1.2em; border-radius: 6px; }
nav.toc ul { margin: .2em 0; padding-left: 1.2em; }
table.oa { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
table.oa th, table.oa td { border: 1px solid #ccd6e3; padding: .3em .7em; text-align: right; }
table.oa th { background: #e8eef6; }
table.oa tbody tr:nth-child(even) { background: #f7f9fc; }
table.oa caption { caption-side: top; text-align: left; font-weight: bold; padding: .3em 0; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e1e6ee; }
figcaption { color: #5b6470; font-size: .9em; }
pre { background: #f3f6fa; padding: .8em; overflow-x: auto; border-radius: 4px; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; }
dl.kv dt { font-weight: bold; } dl.kv dd { margin: 0; font-family: monospace; }
"""


def figure_to_png(figure: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib Figure (or of the figure an Axes belongs to)."""
    fig = getattr(figure, "figure", figure) if not hasattr(figure, "savefig") else figure
    if not hasattr(fig, "savefig"):
        raise ValidationError(f"expected a matplotlib Figure or Axes, got {type(figure).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


class Report:
    """A self-contained HTML report built block by block; every ``add_*`` returns ``self``.

    Parameters
    ----------
    title : str
        Page title and top heading.
    subtitle : str, optional
        A line of small text under the title (for example what produced the report).
    toc : bool, default True
        Put a table of contents of the level-2 headings at the top.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], [1, 0])
    >>> r = Report("Run").add_heading("Curve").add_figure(fig, caption="a line")
    >>> "data:image/png;base64," in r.to_html()
    True
    """

    def __init__(self, title: str, subtitle: str | None = None, *, toc: bool = True) -> None:
        if not str(title).strip():
            raise ValidationError("report title must be a non-empty string")
        self.title = str(title)
        self.subtitle = subtitle
        self.toc = bool(toc)
        self._blocks: list[tuple[str, Any]] = []

    # ------------------------------------------------------------------ blocks
    def add_heading(self, text: str, level: int = 2) -> Report:
        """A section heading (level 2) or sub-heading (level 3 or 4)."""
        if level not in (2, 3, 4):
            raise ValidationError(
                f"heading level must be 2, 3 or 4 (1 is the title), got {level!r}"
            )
        self._blocks.append(("heading", (str(text), int(level))))
        return self

    def add_text(self, text: str) -> Report:
        """Plain text (HTML-escaped); blank lines separate paragraphs."""
        for paragraph in re.split(r"\n\s*\n", str(text).strip()):
            if paragraph.strip():
                self._blocks.append(("html", f"<p>{html.escape(paragraph.strip())}</p>"))
        return self

    def add_code(self, text: str) -> Report:
        """Preformatted text (a command line, a config file, a log excerpt)."""
        self._blocks.append(("html", f"<pre>{html.escape(str(text))}</pre>"))
        return self

    def add_table(
        self,
        frame: Any,
        caption: str | None = None,
        *,
        index: bool = True,
        float_format: str = "{:.4g}",
        max_rows: int = 200,
    ) -> Report:
        """A pandas DataFrame (or Series) as an HTML table; long tables are cut at ``max_rows``."""
        import pandas as pd

        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(f"add_table needs a pandas DataFrame, got {type(frame).__name__}")
        shown = frame.head(max_rows)
        table = shown.to_html(
            classes="oa",
            border=0,
            index=index,
            na_rep="",
            float_format=lambda v: float_format.format(v),
            escape=True,
        )
        if caption:
            table = table.replace(">", f"><caption>{html.escape(caption)}</caption>", 1)
        more = len(frame) - len(shown)
        if more > 0:
            table += f"<p class='meta'>({more} more rows not shown)</p>"
        self._blocks.append(("html", table))
        return self

    def add_figure(
        self, figure: Any, caption: str | None = None, *, dpi: int = 110, close: bool = True
    ) -> Report:
        """A matplotlib Figure (or Axes), embedded as a base64 PNG; closed afterwards by default."""
        png = figure_to_png(figure, dpi=dpi)
        if close:
            import matplotlib.pyplot as plt

            plt.close(getattr(figure, "figure", figure))
        return self.add_png(png, caption=caption)

    def add_png(self, png: bytes, caption: str | None = None, alt: str | None = None) -> Report:
        """PNG bytes embedded as an image (``alt`` defaults to the caption)."""
        if not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
            raise ValidationError(
                "add_png needs PNG bytes (they must start with the PNG signature)"
            )
        data = base64.b64encode(bytes(png)).decode("ascii")
        alt_text = html.escape(alt or caption or "figure", quote=True)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(
            (
                "html",
                f'<figure><img alt="{alt_text}" src="data:image/png;base64,{data}">{cap}</figure>',
            )
        )
        return self

    def add_key_values(self, items: Mapping[str, Any]) -> Report:
        """A two-column list of names and values (settings, versions, hashes)."""
        rows = "".join(
            f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in items.items()
        )
        self._blocks.append(("html", f"<dl class='kv'>{rows}</dl>"))
        return self

    def add_html(self, markup: str) -> Report:
        """Raw, trusted HTML (inserted as is)."""
        self._blocks.append(("html", str(markup)))
        return self

    def add(self, item: Any) -> Report:
        """Add by type: DataFrame/Series -> table, Figure/Axes -> figure, PNG bytes -> image,
        object with ``_repr_html_`` -> its HTML, str -> text, mapping -> key/values."""
        import pandas as pd

        if isinstance(item, (pd.DataFrame, pd.Series)):
            return self.add_table(item)
        if hasattr(item, "savefig") or hasattr(getattr(item, "figure", None), "savefig"):
            return self.add_figure(item)
        if isinstance(item, (bytes, bytearray)):
            return self.add_png(bytes(item))
        if isinstance(item, str):
            return self.add_text(item)
        if isinstance(item, Mapping):
            return self.add_key_values(item)
        if hasattr(item, "_repr_html_"):
            return self.add_html(item._repr_html_())
        raise ValidationError(
            f"cannot add an object of type {type(item).__name__} to a report; give a DataFrame, "
            "a matplotlib Figure, PNG bytes, text, a mapping or an object with _repr_html_"
        )

    # ------------------------------------------------------------------ output
    def to_html(self) -> str:
        """The whole report as one HTML document (UTF-8, no external resources)."""
        taken: set[str] = set()
        body: list[str] = []
        toc: list[tuple[str, str]] = []
        for kind, payload in self._blocks:
            if kind == "heading":
                text, level = payload
                slug = _slug(text, taken)
                if level == 2:
                    toc.append((slug, text))
                body.append(f'<h{level} id="{slug}">{html.escape(text)}</h{level}>')
            else:
                body.append(payload)
        created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        meta = html.escape(self.subtitle) + " &middot; " if self.subtitle else ""
        head = [
            f"<h1>{html.escape(self.title)}</h1>",
            f"<p class='meta'>{meta}generated {created}</p>",
        ]
        if self.toc and len(toc) > 1:
            items = "".join(f'<li><a href="#{s}">{html.escape(t)}</a></li>' for s, t in toc)
            head.append(f"<nav class='toc'><b>Contents</b><ul>{items}</ul></nav>")
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(head + body)
            + "\n</body>\n</html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report atomically to ``path`` and return the path."""
        return atomic_write_text(path, self.to_html())

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        return "\n".join(
            p if k == "html" else f"<h{p[1]}>{html.escape(p[0])}</h{p[1]}>" for k, p in self._blocks
        )


def write_report(
    path: str | Path,
    title: str,
    sections: Iterable[tuple[str, Any]],
    *,
    subtitle: str | None = None,
) -> Path:
    """Write a report from ``(heading, content)`` sections in one call.

    ``content`` is anything :meth:`Report.add` accepts, or a list of such items.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "r.html")
    >>> _ = write_report(path, "Demo", [("Table", pd.DataFrame({"x": [1]})), ("Notes", "done")])
    >>> "<h2 id=\\"table\\">Table</h2>" in open(path).read()
    True
    """
    report = Report(title, subtitle=subtitle)
    for section in sections:
        try:
            heading, content = section
        except (TypeError, ValueError):
            raise ValidationError(
                f"each section must be a (heading, content) pair, got {section!r:.80}"
            ) from None
        report.add_heading(heading)
        items = content if isinstance(content, (list, tuple)) else [content]
        for item in items:
            report.add(item)
    return report.write(path)
