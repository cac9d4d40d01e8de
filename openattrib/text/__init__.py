"""Language models: which contributors' text a generated output is built from.

- :class:`Corpus`: documents with contributor ids, from JSONL, CSV, a frame or records.
- :class:`SpanIndex`: a sharded, memory-mapped suffix-array index (infini-gram's layout).
- :func:`attribute_output`: the contributor-level :class:`~openattrib.Attribution` of one
  output, with its matched spans as evidence.
- :func:`inference_record` / :func:`reproduce`: canonical per-inference records that a
  ledger batch (``Ledger.append_batch``) commits to, and their bit-for-bit recomputation.
"""

from __future__ import annotations

import importlib
from typing import Any

from .corpus import Corpus, Document
from .index import Occurrence, Span, SpanIndex
from .tokenize import ByteTokenizer, HFTokenizer

# Scoring produces an Attribution (openattrib.result imports pandas, ~50 MB): loaded on
# first use, so building or querying an index does not pay for it.
_LAZY = {
    "ScoredSpan": "scoring",
    "TextAttribution": "scoring",
    "attribute_output": "scoring",
    "batch_context": "records",
    "inference_record": "records",
    "reproduce": "records",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
