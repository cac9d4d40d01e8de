"""Scoring one generated output: which contributors' documents it is built from.

The rule (``SPAN_RULE``), after OLMoTrace (Liu et al., 2025, "OLMoTrace: Tracing language
model outputs back to trillions of training tokens"), which keeps the long spans of an
output that occur verbatim in the training data and are unlikely under a unigram model:

1. Spans: the maximal spans of the output found in the corpus (:meth:`SpanIndex.attribute`),
   at least ``min_len`` tokens long and occurring at most ``max_count`` times.
2. Selection: with ``top_fraction``, only the ``ceil(top_fraction * len(output))`` spans
   with the lowest unigram probability are kept (OLMoTrace's selection); ties keep the
   earlier span.
3. Weight: a span weighs its self-information under the corpus unigram model,
   ``sum over its tokens of -ln(count(token) / n_tokens)``, so long spans of rare tokens
   weigh most. Each token's term is rounded to an integer number of micro-nats, so weights
   are exact integers and reproduce bit for bit on any machine.
4. Sharing: a span found in several documents shares its weight equally among the distinct
   documents holding it (however often each holds it); a contributor's value is the sum of
   its documents' shares. Sums are exact (fractions) and rounded to float once.

The result is an :class:`~openattrib.Attribution` at contributor level, so it goes straight
into :func:`openattrib.rewards.split_fee` and :class:`~openattrib.rewards.Accrual`.
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .._vocab import check_players
from ..errors import ValidationError
from ..result import Attribution, package_version
from .index import Span, SpanIndex

__all__ = ["attribute_output", "TextAttribution", "ScoredSpan", "SPAN_RULE"]

SPAN_RULE = "olmotrace-self-information-equal-share/1"
_MICRO = 10**6
_PALETTE = [
    "#8ecae6", "#ffb703", "#b5e48c", "#f4a261", "#cdb4db", "#ff8fab", "#90be6d",
    "#ffd6a5", "#a0c4ff", "#e9c46a", "#bde0fe", "#fcbf49",
]  # fmt: skip


@dataclass(frozen=True)
class ScoredSpan:
    """A kept span of the output: its position, corpus count, weight and documents."""

    start: int
    end: int
    count: int
    weight: int
    documents: tuple[int, ...]
    contributors: tuple[str, ...]

    def to_list(self) -> list[Any]:
        return [self.start, self.end, self.count, self.weight, list(self.documents)]


class TextAttribution(Attribution):
    """A contributor-level :class:`~openattrib.Attribution` of one output, with its evidence.

    Extra attributes: ``tokens`` (the output's token ids), ``spans`` (the kept
    :class:`ScoredSpan` objects), ``document_values`` (document index -> exact share) and
    ``pieces`` (the text of each token, for display); ``document_values`` are exact
    micro-nats. In Jupyter it displays as the output
    with each matched span highlighted in its main contributor's colour.
    """

    tokens: np.ndarray
    spans: list[ScoredSpan]
    document_values: dict[int, Fraction]
    pieces: list[bytes]
    index: SpanIndex

    def documents(self) -> Attribution:
        """The same attribution at document level (players = documents with a share)."""
        ids = sorted(self.document_values)
        return Attribution(
            [float(self.document_values[d] / _MICRO) for d in ids],
            names=[self.index.doc_ids[d] for d in ids],
            method=self.method,
            parameters=self.parameters,
            provenance=self.provenance,
            players="points",
            contributors=[self.index.contributor_of(d) for d in ids],
        )

    def contributor_values(self) -> dict[str, float]:
        """Each contributor's value (nats), whatever the level of the result."""
        totals = dict.fromkeys(self.index.contributors, Fraction(0))
        for document, value in self.document_values.items():
            totals[self.index.contributor_of(document)] += value
        return {name: float(value / _MICRO) for name, value in totals.items()}

    def _repr_html_(self) -> str:
        colour = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(self.index.contributors)}
        owner: list[tuple[int, ScoredSpan] | None] = [None] * len(self.tokens)
        for span in self.spans:  # each token shows the heaviest span covering it
            for k in range(span.start, span.end):
                if owner[k] is None or owner[k][0] < span.weight:
                    owner[k] = (span.weight, span)
        parts: list[str] = []
        k = 0
        while k < len(self.tokens):
            current = owner[k][1] if owner[k] else None
            j = k
            while j < len(self.tokens) and (owner[j][1] if owner[j] else None) is current:
                j += 1
            text = html.escape(b"".join(self.pieces[k:j]).decode("utf-8", errors="replace"))
            if current is None:
                parts.append(text)
            else:
                main = current.contributors[0]
                tip = html.escape(
                    f"{main}; found {current.count}x in {len(current.documents)} document(s); "
                    f"weight {current.weight / _MICRO:.2f} nats"
                )
                parts.append(
                    f'<span style="background:{colour[main]};border-radius:3px" title="{tip}">'
                    f"{text}</span>"
                )
            k = j
        values = self.contributor_values()
        total = sum(values.values()) or 1.0
        legend = "".join(
            f'<span style="background:{colour[n]};padding:0 6px;margin-right:8px;'
            f'border-radius:3px">{html.escape(n)} {v / total:.0%}</span>'
            for n, v in sorted(values.items(), key=lambda t: -t[1])
            if v > 0
        )
        return (
            f"<div><p><b>TextAttribution</b> &middot; {len(self.spans)} spans &middot; "
            f"index <code>{str(self.provenance.get('index_manifest_hash', ''))[:12]}</code></p>"
            f'<pre style="white-space:pre-wrap">{"".join(parts)}</pre>'
            f"<p>{legend or 'no contributor matched'}</p></div>"
        )


_INFORMATION: weakref.WeakKeyDictionary[SpanIndex, np.ndarray] = weakref.WeakKeyDictionary()


def _token_information(index: SpanIndex) -> np.ndarray:
    """Integer micro-nats ``round(1e6 * -ln(count / n_tokens))`` per token id (0 if absent)."""
    cached = _INFORMATION.get(index)
    if cached is None:
        counts = index.token_counts
        total = max(index.n_tokens, 1)
        cached = np.array(
            [round(-_MICRO * math.log(int(c) / total)) if c else 0 for c in counts],
            dtype=np.int64,
        )
        _INFORMATION[index] = cached
    return cached


def attribute_output(
    index: SpanIndex,
    output: Any,
    *,
    min_len: int = 8,
    max_count: int | None = 1000,
    top_fraction: float | None = None,
    delimiters: Sequence[int] = (),
    players: str = "contributors",
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
) -> TextAttribution:
    """Contributor-level attribution of one generated ``output`` (text, bytes or token ids).

    Parameters
    ----------
    index : SpanIndex
    output : str, bytes or sequence of int
    min_len : int
        Shortest span kept, in tokens.
    max_count : int or None
        Spans found more often than this are common phrases, not evidence; dropped.
    top_fraction : float, optional
        Keep only the ``ceil(top_fraction * len(output))`` spans with the lowest unigram
        probability (OLMoTrace's selection). Default: keep all.
    delimiters : sequence of int
        Token ids a span may not run past (e.g. sentence ends).
    players : {"contributors", "points"}
        The level of the result: every contributor of the index, or the documents holding
        a matched span (with their contributors; ``by_contributor()`` sums them).
    n_jobs, backend, client
        How shards are searched (:mod:`openattrib.parallel`).

    Values are in nats (see the module docstring for the rule).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from openattrib.text import Corpus, SpanIndex, attribute_output
    >>> corpus = Corpus.from_records([{"text": "the quick brown fox", "contributor": "ann"},
    ...                               {"text": "a lazy dog sleeps", "contributor": "bob"}])
    >>> index = SpanIndex.build(corpus, pathlib.Path(tempfile.mkdtemp()) / "i", progress=False)
    >>> att = attribute_output(index, "see the quick brown cat", min_len=6)
    >>> att.names, [round(float(v), 2) for v in att.values]
    (['ann', 'bob'], [49.76, 0.0])
    """
    players = check_players(players)
    if top_fraction is not None and not (
        isinstance(top_fraction, (int, float)) and 0 < top_fraction <= 1
    ):
        raise ValidationError(f"top_fraction must be in (0, 1], got {top_fraction!r}")
    tokens = index.tokens(output)
    found = index.attribute(
        tokens,
        min_len=min_len,
        max_count=max_count,
        delimiters=delimiters,
        n_jobs=n_jobs,
        backend=backend,
        client=client,
    )
    information = _token_information(index)
    weights = [int(information[tokens[s.start : s.end]].sum()) for s in found]
    keep = list(range(len(found)))
    if top_fraction is not None:
        quota = math.ceil(top_fraction * len(tokens))
        keep = sorted(sorted(keep, key=lambda i: -weights[i])[:quota])
    document_values: dict[int, Fraction] = {}
    contributor_values = dict.fromkeys(index.contributors, Fraction(0))
    spans = []
    for i in keep:
        span: Span = found[i]
        docs = span.documents
        share = Fraction(weights[i], len(docs))
        per_contributor: dict[str, Fraction] = {}
        for d in docs:
            document_values[d] = document_values.get(d, Fraction(0)) + share
            name = index.contributor_of(d)
            per_contributor[name] = per_contributor.get(name, Fraction(0)) + share
            contributor_values[name] += share
        ranked = tuple(sorted(per_contributor, key=lambda n: (-per_contributor[n], n)))
        spans.append(ScoredSpan(span.start, span.end, span.count, weights[i], tuple(docs), ranked))
    parameters = {
        "min_len": int(min_len),
        "max_count": None if max_count is None else int(max_count),
        "top_fraction": top_fraction,
        "delimiters": sorted(int(d) for d in delimiters),
        "players": players,
        "rule": SPAN_RULE,
    }
    if players == "points":
        documents = sorted(document_values)
        values = [float(document_values[d] / _MICRO) for d in documents]
        names = [index.doc_ids[d] for d in documents]
        owners: list[str] | None = [index.contributor_of(d) for d in documents]
    else:
        values = [float(v / _MICRO) for v in contributor_values.values()]
        names, owners = list(contributor_values), None
    att = TextAttribution(
        values,
        names=names,
        contributors=owners,
        method="span_match",
        parameters=parameters,
        provenance={
            "dataset_hash": index.manifest["corpus_hash"],
            "index_manifest_hash": index.manifest_hash,
            "tokenizer": index.manifest["tokenizer"],
            "package_version": package_version(),
        },
        players=players,
        diagnostics={"spans": [s.to_list() for s in spans], "n_tokens": len(tokens)},
    )
    att.tokens = tokens
    att.spans = spans
    att.document_values = document_values
    att.pieces = index.tokenizer.pieces(tokens)
    att.index = index
    return att
