"""``openattrib text``: build a span index of a corpus, count spans, attribute an output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._io import canonical_json
from ..errors import ValidationError
from ._groups import command_group

__all__ = ["add_text_parser"]


def add_text_parser(commands: Any) -> None:
    """Add the ``text`` command and its sub-commands to an argparse sub-parsers object."""
    sub = command_group(
        commands,
        "text",
        summary="span attribution of language-model outputs (suffix-array index)",
        description="Index a contributors' corpus with a suffix array and attribute generated "
        "text to the contributors whose documents it copies (infini-gram / OLMoTrace spans).",
    )

    p = sub.add_parser("index", help="build a span index from a JSONL corpus")
    p.add_argument("corpus", type=Path, help="JSON Lines file, one document per line")
    p.add_argument("--out", type=Path, required=True, help="index folder (must not exist)")
    p.add_argument("--tokenizer", default="bytes", help="'bytes' (default) or a tokenizer.json")
    p.add_argument("--shards", type=int, help="number of shards (default: from --memory-budget)")
    p.add_argument(
        "--memory-budget",
        "--memory",
        dest="memory_budget",
        default="1GB",
        help="peak memory of sorting one shard, e.g. 512MB (default 1GB)",
    )
    p.add_argument("--text-field", default="text", help="JSON field of the text")
    p.add_argument("--contributor-field", default="contributor", help="JSON field of the owner")
    p.add_argument("--doc-id-field", help="JSON field of unique document ids")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_index)

    p = sub.add_parser("attribute", help="attribute an output to contributors")
    p.add_argument("index", type=Path, help="index folder")
    p.add_argument("--input", required=True, help="file with the output text, or - for stdin")
    p.add_argument("--min-len", type=int, default=8, help="shortest span in tokens (default 8)")
    p.add_argument("--max-count", type=int, default=1000, help="drop spans found more often")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=run_attribute)

    p = sub.add_parser("count", help="count the occurrences of a text in the corpus")
    p.add_argument("index", type=Path, help="index folder")
    p.add_argument("text", help="the text to count")
    p.set_defaults(handler=run_count)


def run_index(args: argparse.Namespace) -> int:
    from ..text import Corpus, SpanIndex

    corpus = Corpus.from_jsonl(
        args.corpus,
        text=args.text_field,
        contributor=args.contributor_field,
        doc_id=args.doc_id_field,
    )
    index = SpanIndex.build(
        corpus,
        args.out,
        tokenizer=args.tokenizer,
        shards=args.shards,
        memory_budget=args.memory_budget,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(
        f"indexed {index.n_documents} documents, {index.n_tokens} tokens, "
        f"{len(index.contributors)} contributors in {len(index.shards)} shard(s) -> {index.path}"
    )
    return 0


def _read_input(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise ValidationError(f"input file not found: {source!r}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{source} is not valid UTF-8 ({exc.reason})") from None


def run_attribute(args: argparse.Namespace) -> int:
    from ..text import SpanIndex, attribute_output

    index = SpanIndex.open(args.index)
    text = _read_input(args.input)
    if not text:
        raise ValidationError("the input is empty; nothing to attribute")
    att = attribute_output(index, text, min_len=args.min_len, max_count=args.max_count)
    if args.json:
        payload = {
            "index": index.manifest_hash,
            "values": dict(zip(att.names, [float(v) for v in att.values], strict=True)),
            "spans": [
                {
                    "start": s.start,
                    "end": s.end,
                    "count": s.count,
                    "weight": s.weight,
                    "documents": [index.doc_ids[d] for d in s.documents],
                    "contributors": list(s.contributors),
                    "text": index.tokenizer.decode(att.tokens[s.start : s.end]),
                }
                for s in att.spans
            ],
            "result_hash": att.result_hash(),
        }
        sys.stdout.write(canonical_json(payload).decode("utf-8") + "\n")
        return 0
    total = float(att.values.sum())
    print(f"{len(att.spans)} spans matched in {len(att.tokens)} tokens")
    for name, value in sorted(zip(att.names, att.values, strict=True), key=lambda t: -t[1]):
        if value > 0:
            print(f"  {name:<24} {value:12.3f} nats  {value / total:6.1%}")
    return 0


def run_count(args: argparse.Namespace) -> int:
    from ..text import SpanIndex

    index = SpanIndex.open(args.index)
    if not args.text:
        raise ValidationError("the text to count is empty")
    print(index.count(args.text))
    return 0
