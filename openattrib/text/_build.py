"""Writing an index folder: tokenise the corpus in chunks into shards, sort, describe.

Shards are contiguous runs of documents. With ``shards=N`` they have about equal text
sizes; otherwise each holds at most ``memory_budget / 5`` bytes of tokens, since sorting a
shard holds its bytes plus a 4-byte suffix-array entry per byte (libdivsufsort, 32-bit).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, canonical_json
from ._shard import HashingWriter, file_digest, write_suffix_table
from .corpus import Corpus

__all__ = ["build_into", "DOCUMENTS", "TOKEN_COUNTS"]

DOCUMENTS = "documents.json"
TOKEN_COUNTS = "token_counts.npy"
_CHUNK_DOCUMENTS = 1024
_CHUNK_BYTES = 1 << 20  # texts read at once (tokenizers bound their own batches)


def _shard_plan(corpus: Corpus, shards: int | None, budget: int, width: int) -> list[int]:
    """Where each shard starts (document indices), from sizes estimated by UTF-8 length."""
    sizes = np.array(corpus.text_sizes, dtype=np.int64)
    if shards is None:
        limit = max(1, min(budget // 5, 2**31 - 1) // width)
        starts, used = [0], 0
        for i, size in enumerate(sizes.tolist()):
            if used and used + size + 1 > limit:
                starts.append(i)
                used = 0
            used += size + 1
        return starts
    cumulative = np.cumsum(sizes + 1)
    targets = cumulative[-1] * np.arange(1, shards) / shards
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    starts = [0]
    for cut in cuts.tolist():  # keep every shard non-empty
        starts.append(min(max(cut, starts[-1] + 1), len(corpus) - (shards - len(starts))))
    return starts


def _progress_bar(total: int, progress: bool) -> Any:
    if not progress:
        return None  # tqdm not even imported
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tokenising documents")


def _return_freed_memory() -> None:
    """Give memory freed by the tokenizer back to the system (glibc keeps it otherwise,
    and it would add to the peak of the suffix sort that follows)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to do
            pass


def _chunks(sizes: list[int], begin: int, end: int) -> list[tuple[int, int]]:
    """Runs of documents of at most ``_CHUNK_BYTES`` of text (or one document) each."""
    out, start, used = [], begin, 0
    for i in range(begin, end):
        if i > start and (used + sizes[i] > _CHUNK_BYTES or i - start == _CHUNK_DOCUMENTS):
            out.append((start, i))
            start, used = i, 0
        used += sizes[i]
    out.append((start, end))
    return out


def build_into(
    tmp: Path, corpus: Corpus, tok: Any, shards: int | None, budget: int, progress: bool
) -> dict[str, Any]:
    """Write every index file but the manifest into ``tmp``; returns the manifest.

    Two passes, so the tokenizer's working memory and the suffix sort never overlap:
    tokenise every shard to its files (a chunk of documents at a time), hand the freed
    memory back to the system, then sort the shards one at a time.
    """
    dtype = tok.dtype.newbyteorder("<")
    width = dtype.itemsize
    separator = np.iinfo(dtype).max  # no token uses it (see tokenize.token_dtype)
    starts = _shard_plan(corpus, shards, budget, width)
    ends = starts[1:] + [len(corpus)]
    tok.save(tmp)
    counts = np.zeros(tok.vocab_size, dtype=np.int64)
    contributors = corpus.contributors
    code = {name: i for i, name in enumerate(contributors)}
    shard_info = []
    files: dict[str, dict[str, Any]] = {}
    bar = _progress_bar(len(corpus), progress)
    for number, (begin, end) in enumerate(zip(starts, ends, strict=True)):
        tokenized = tmp / f"tokenized.{number}"
        offsets = np.zeros(end - begin, dtype="<u8")
        position = 0
        with HashingWriter(tokenized) as out:
            for chunk, stop in _chunks(corpus.text_sizes, begin, end):
                encoded = tok.encode_many([doc.text for doc in corpus[chunk:stop]])
                lengths = np.fromiter((len(ids) for ids in encoded), np.int64, len(encoded))
                # one buffer per chunk: SEP + tokens for each document, written in one call
                heads = np.cumsum(lengths + 1) - (lengths + 1)
                buffer = np.empty(int(lengths.sum()) + len(encoded), dtype=dtype)
                buffer[heads] = separator
                for head, ids in zip(heads.tolist(), encoded, strict=True):
                    buffer[head + 1 : head + 1 + len(ids)] = ids
                del encoded
                offsets[chunk - begin : stop - begin] = position + width * heads
                position += width * len(buffer)
                out.write(buffer)
                buffer[heads] = 0  # count tokens, not separators (up to 2**32 - 1)
                counts += np.bincount(buffer, minlength=tok.vocab_size)
                counts[0] -= len(heads)
                if bar is not None:
                    bar.update(stop - chunk)
        files[tokenized.name] = out.record
        with HashingWriter(tmp / f"offset.{number}") as out:
            out.write(offsets)
        files[f"offset.{number}"] = out.record
        shard_info.append({"doc_start": begin, "n_documents": end - begin, "n_bytes": position})
    if bar is not None:
        bar.close()
    del offsets
    _return_freed_memory()
    for number, info in enumerate(shard_info):
        info["ptr_size"], files[f"table.{number}"] = write_suffix_table(
            tmp / f"tokenized.{number}", tmp / f"table.{number}", width
        )
    np.save(tmp / TOKEN_COUNTS, counts.astype("<u8"))
    documents = {
        "contributors": contributors,
        "contributor_index": [code[c] for c in corpus.doc_contributors],
        "doc_ids": corpus.doc_ids,
        "doc_hashes": corpus.doc_hashes,
    }
    atomic_write_bytes(tmp / DOCUMENTS, canonical_json(documents))
    names = [DOCUMENTS, TOKEN_COUNTS]
    if (tmp / "tokenizer.json").exists():
        names.append("tokenizer.json")
    for name in names:
        files[name] = {"size": (tmp / name).stat().st_size, "sha256": file_digest(tmp / name)}
    from importlib.metadata import version

    return {
        "corpus_hash": corpus.content_hash,
        "n_documents": len(corpus),
        "n_tokens": int(counts.sum()),
        "tokenizer": tok.describe(),
        "token_dtype": dtype.str.lstrip("<|"),
        "build": {
            "shards": len(starts),
            "requested_shards": shards,
            "memory_budget": budget,
            "suffix_array": f"pydivsufsort {version('pydivsufsort')}",
        },
        "shards": shard_info,
        "files": files,
    }
