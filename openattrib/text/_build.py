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


def _equal_starts(corpus: Corpus, shards: int) -> list[int]:
    """Where each of ``shards`` shards of about equal text size starts (document indices)."""
    cumulative = np.cumsum(np.array(corpus.text_sizes, dtype=np.int64) + 1)
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


# Below this many token bytes the tokenizer's garbage is too small to matter to the sort's
# peak, while a full gc.collect in a large process (a notebook, a test run) costs far more
# than the tiny build itself.
_TRIM_BYTES = 16 * 2**20


def _return_freed_memory() -> None:
    """Give memory freed by the tokenizer back to the system (glibc keeps it otherwise,
    and it would add to the peak of the suffix sort that follows)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to do
            pass


def _chunks(sizes: list[int], breaks: set[int]) -> list[tuple[int, int]]:
    """Runs of documents of at most ``_CHUNK_BYTES`` of text (or one document) each, never
    running across a document index in ``breaks``."""
    out, start, used = [], 0, 0
    for i in range(len(sizes)):
        if i > start and (
            used + sizes[i] > _CHUNK_BYTES or i - start == _CHUNK_DOCUMENTS or i in breaks
        ):
            out.append((start, i))
            start, used = i, 0
        used += sizes[i]
    out.append((start, len(sizes)))
    return out


class _ShardFiles:
    """The token and offset files of one shard, written as its documents come."""

    def __init__(self, tmp: Path, number: int, doc_start: int, width: int) -> None:
        self.tmp, self.number, self.doc_start, self.width = tmp, number, doc_start, width
        self.tokens = HashingWriter(tmp / f"tokenized.{number}")
        self.offsets: list[np.ndarray] = []
        self.size = 0  # bytes written
        self.n_documents = 0

    def add(self, buffer: np.ndarray, heads: np.ndarray) -> None:
        """Documents laid out in ``buffer`` (each ``SEP + tokens``) starting at ``heads``."""
        self.offsets.append((self.size + self.width * heads).astype("<u8"))
        self.tokens.write(buffer)
        self.size += self.width * len(buffer)
        self.n_documents += len(heads)

    def close(self, files: dict[str, Any]) -> dict[str, Any]:
        self.tokens.__exit__()
        files[f"tokenized.{self.number}"] = self.tokens.record
        with HashingWriter(self.tmp / f"offset.{self.number}") as out:
            out.write(np.concatenate(self.offsets))
        files[f"offset.{self.number}"] = out.record
        return {"doc_start": self.doc_start, "n_documents": self.n_documents, "n_bytes": self.size}


def tokenise_into(
    tmp: Path, corpus: Corpus, tok: Any, shards: int | None, limit: int, progress: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], np.ndarray]:
    """Tokenise ``corpus`` into shard files in ``tmp``, a chunk of documents at a time.

    With ``shards`` the shards have about equal text sizes; otherwise a new shard starts
    when the next document would take the current one past ``limit`` bytes of tokens.
    Returns each shard's description, the files' manifest records and the token counts.
    """
    dtype = tok.dtype.newbyteorder("<")
    width = dtype.itemsize
    separator = np.iinfo(dtype).max  # no token uses it (see tokenize.token_dtype)
    breaks = set(_equal_starts(corpus, shards)[1:]) if shards else set()
    counts = np.zeros(tok.vocab_size, dtype=np.int64)
    files: dict[str, Any] = {}
    info: list[dict[str, Any]] = []
    shard = _ShardFiles(tmp, 0, 0, width)
    bar = _progress_bar(len(corpus), progress)
    for chunk, stop in _chunks(corpus.text_sizes, breaks):
        encoded = tok.encode_many([doc.text for doc in corpus[chunk:stop]])
        lengths = np.fromiter((len(ids) for ids in encoded), np.int64, len(encoded))
        ends = np.cumsum(lengths + 1)  # one buffer per chunk: SEP + tokens for each document
        heads = ends - (lengths + 1)
        buffer = np.empty(int(ends[-1]), dtype=dtype)
        buffer[heads] = separator
        for head, ids in zip(heads.tolist(), encoded, strict=True):
            buffer[head + 1 : head + 1 + len(ids)] = ids
        del encoded
        first = 0
        while first < len(heads):
            document = chunk + first
            if shards:  # chunks never run across an equal-size break: it is their first
                full = document in breaks
            else:
                full = shard.size + width * int(ends[first] - heads[first]) > limit
            if full and shard.n_documents:
                info.append(shard.close(files))
                shard = _ShardFiles(tmp, len(info), document, width)
            if shards:
                last = len(heads)
            else:  # the documents that fit the budget (at least one)
                room = int(heads[first]) + (limit - shard.size) // width
                last = max(int(np.searchsorted(ends, room, side="right")), first + 1)
            shard.add(buffer[heads[first] : ends[last - 1]], heads[first:last] - heads[first])
            first = last
        buffer[heads] = 0  # count tokens, not separators (up to 2**32 - 1)
        counts += np.bincount(buffer, minlength=tok.vocab_size)
        counts[0] -= len(heads)
        if bar is not None:
            bar.update(stop - chunk)
    info.append(shard.close(files))
    if bar is not None:
        bar.close()
    return info, files, counts


def build_into(
    tmp: Path, corpus: Corpus, tok: Any, shards: int | None, budget: int, progress: bool
) -> dict[str, Any]:
    """Write every index file but the manifest into ``tmp``; returns the manifest.

    Two passes, so the tokenizer's working memory and the suffix sort never overlap:
    tokenise every shard to its files (for a corpus streamed from a file, in a process of
    its own, whose memory is all returned when it ends), then sort the shards one at a
    time, each holding its bytes and a 4-byte suffix-array entry per byte (so shards are
    cut at ``memory_budget / 5`` bytes of tokens).
    """
    width = tok.dtype.itemsize
    limit = max(width, min(budget // 5, 2**31 - 1))
    tok.save(tmp)
    arguments = (tmp, corpus, tok, shards, limit, progress)
    if corpus.streamed:
        from ..parallel import run_isolated

        if hasattr(tok, "release"):  # the child rebuilds it; this process no longer needs it
            tok.release()
        shard_info, files, counts = run_isolated(tokenise_into, *arguments)
        _return_freed_memory()
    else:
        shard_info, files, counts = tokenise_into(*arguments)
        if int(counts.sum()) * width >= _TRIM_BYTES:
            _return_freed_memory()
    for number, info in enumerate(shard_info):
        info["ptr_size"], files[f"table.{number}"] = write_suffix_table(
            tmp / f"tokenized.{number}", tmp / f"table.{number}", width
        )
    contributors = corpus.contributors
    code = {name: i for i, name in enumerate(contributors)}
    dtype = tok.dtype.newbyteorder("<")
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
            "shards": len(shard_info),
            "requested_shards": shards,
            "memory_budget": budget,
            "suffix_array": f"pydivsufsort {version('pydivsufsort')}",
        },
        "shards": shard_info,
        "files": files,
    }
