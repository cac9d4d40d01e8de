"""Language models: which contributors' text a generated output is built from.

- :class:`Corpus`: documents with contributor ids, from JSONL, CSV, a frame or records.
- :class:`SpanIndex`: a sharded, memory-mapped suffix-array index (infini-gram's layout).
- :func:`attribute_output`: the contributor-level :class:`~openattrib.Attribution` of one
  output, with its matched spans as evidence.
- :func:`inference_record` / :func:`reproduce`: canonical per-inference records that a
  ledger batch (``Ledger.append_batch``) commits to, and their bit-for-bit recomputation.
"""

from __future__ import annotations

from .corpus import Corpus, Document
from .index import Occurrence, Span, SpanIndex
from .records import batch_context, inference_record, reproduce
from .scoring import ScoredSpan, TextAttribution, attribute_output
from .tokenize import ByteTokenizer, HFTokenizer

__all__ = [
    "ByteTokenizer",
    "Corpus",
    "Document",
    "HFTokenizer",
    "Occurrence",
    "ScoredSpan",
    "Span",
    "SpanIndex",
    "TextAttribution",
    "attribute_output",
    "batch_context",
    "inference_record",
    "reproduce",
]
