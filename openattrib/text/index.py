"""``SpanIndex``: a sharded, memory-mapped suffix-array index of a tokenised corpus.

Queries follow infini-gram (Liu et al., 2024) and OLMoTrace (Liu et al., 2025):
:meth:`SpanIndex.count` counts the occurrences of a token sequence, :meth:`SpanIndex.find`
lists them with their documents and contributors, and :meth:`SpanIndex.attribute` returns
the maximal spans of a query that occur verbatim in the corpus.

An index folder holds the shard files (see :mod:`openattrib.text._shard`), the document
table ``documents.json``, the corpus token counts ``token_counts.npy``, the tokenizer (for
HuggingFace tokenizers) and ``manifest.json``: the format version, the corpus hash, the
tokenizer description, the build parameters and the size and SHA-256 of every other file.
:meth:`SpanIndex.open` checks all of it and refuses a mismatched, truncated or altered
index with one :class:`~openattrib.errors.VerificationError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, canonical_json
from .._vocab import parse_memory_budget
from ..errors import ValidationError, VerificationError
from ._build import DOCUMENTS, TOKEN_COUNTS, build_into
from ._shard import Shard, file_digest, fsync_directory
from .corpus import Corpus
from .tokenize import ByteTokenizer, as_tokenizer, tokenizer_from_description

__all__ = ["SpanIndex", "Span", "Occurrence", "FORMAT"]

log = logging.getLogger("openattrib")

FORMAT = "openattrib.text.span_index/1"
_MANIFEST = "manifest.json"
_DEFAULT_BUDGET = "1GB"


@dataclass(frozen=True)
class Occurrence:
    """Where a token sequence occurs: its document (index, id, contributor) and position.

    ``position`` is the token offset inside the document; ``shard`` and ``pointer`` (byte
    offset in the shard's ``tokenized`` file) locate it in the index files.
    """

    document: int
    doc_id: str
    contributor: str
    position: int
    shard: int
    pointer: int


@dataclass(frozen=True)
class Span:
    """A span ``query[start:end]`` of a query found ``count`` times in the corpus."""

    start: int
    end: int
    count: int
    occurrences: tuple[Occurrence, ...]

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def documents(self) -> list[int]:
        """Distinct documents holding the span, ascending."""
        return sorted({o.document for o in self.occurrences})


class SpanIndex:
    """A suffix-array index over a tokenised corpus (build with :meth:`build`, reopen with
    :meth:`open`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from openattrib.text import Corpus, SpanIndex
    >>> corpus = Corpus.from_records([{"text": "the cat sat", "contributor": "ann"},
    ...                               {"text": "the dog sat", "contributor": "bob"}])
    >>> index = SpanIndex.build(corpus, pathlib.Path(tempfile.mkdtemp()) / "idx", progress=False)
    >>> index.count(b"sat"), [o.contributor for o in index.find(b"the c")]
    (2, ['ann'])
    >>> [(s.start, s.end, s.count) for s in index.attribute(b"a dog sat", min_len=3)]
    [(1, 9, 1)]
    """

    def __init__(self, path: Path, manifest: dict[str, Any], manifest_bytes: bytes) -> None:
        self.path = path
        self.manifest = manifest
        self.manifest_hash = hashlib.sha256(manifest_bytes).hexdigest()
        self.tokenizer = tokenizer_from_description(manifest["tokenizer"], path)
        self.dtype = np.dtype(manifest["token_dtype"]).newbyteorder("<")
        self.width = self.dtype.itemsize
        self.separator = int(np.iinfo(self.dtype).max)
        documents = json.loads((path / DOCUMENTS).read_text(encoding="utf-8"))
        self.contributors: list[str] = documents["contributors"]
        self.doc_ids: list[str] = documents["doc_ids"]
        self._doc_contributor = np.asarray(documents["contributor_index"], dtype=np.int64)
        self.shards: list[Shard] = []
        for number, info in enumerate(manifest["shards"]):
            self.shards.append(Shard(path, number, self.width, info["doc_start"]))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        corpus: Corpus,
        path: str | os.PathLike,
        *,
        tokenizer: Any = "bytes",
        shards: int | None = None,
        memory_budget: int | str | None = None,
        overwrite: bool = False,
        progress: bool = True,
    ) -> SpanIndex:
        """Tokenise ``corpus`` and write a suffix-array index to the folder ``path``.

        Parameters
        ----------
        corpus : Corpus
        path : str or Path
            The index folder; it is built in a temporary sibling folder and renamed into
            place, so a failed build leaves nothing behind.
        tokenizer : "bytes", path, tokenizers.Tokenizer or transformers fast tokenizer
        shards : int, optional
            Number of shards (contiguous runs of documents of about equal size). Default:
            as few as ``memory_budget`` allows.
        memory_budget : int or str, optional
            Peak memory of sorting one shard (its bytes plus 4 bytes per byte); default
            ``"1GB"``.
        overwrite : bool
            Replace an existing index at ``path``.
        progress : bool
            Show a progress bar while tokenising.
        """
        if not isinstance(corpus, Corpus):
            raise ValidationError(f"corpus must be an oa.text.Corpus, got {type(corpus).__name__}")
        tok = as_tokenizer(tokenizer)
        budget = parse_memory_budget(_DEFAULT_BUDGET if memory_budget is None else memory_budget)
        path = Path(path)
        if path.exists() and not overwrite:
            raise ValidationError(
                f"{path} already exists; choose another folder or overwrite it (overwrite=True, "
                "or --overwrite on the command line)"
            )
        if shards is not None and (
            isinstance(shards, bool)
            or not isinstance(shards, int)
            or not 1 <= shards <= len(corpus)
        ):
            raise ValidationError(
                f"shards must be an int in 1..{len(corpus)} (the number of documents), got {shards!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".building", dir=path.parent))
        try:
            manifest = build_into(tmp, corpus, tok, shards, budget, progress)
            manifest = {"format": FORMAT, **manifest}
            manifest_bytes = canonical_json(manifest)
            atomic_write_bytes(tmp / _MANIFEST, manifest_bytes)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private; give the usual mode
            fsync_directory(tmp)
            if path.exists():
                old = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)
                )
                os.replace(path, old / "index")
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
            fsync_directory(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path, manifest, manifest_bytes)

    # ------------------------------------------------------------------- open
    @classmethod
    def open(
        cls, path: str | os.PathLike, *, corpus: Corpus | None = None, verify: bool = True
    ) -> SpanIndex:
        """Open an index folder, checking its manifest (and, with ``corpus``, that it was
        built from that corpus).

        ``verify=True`` (default) re-hashes every file; ``verify=False`` checks only sizes
        (enough to catch truncation; use it for very large indexes you trust).
        """
        path = Path(path)
        manifest_path = path / _MANIFEST
        if not manifest_path.is_file():
            raise VerificationError(
                f"{path} is not a span index (no {_MANIFEST}); build one with "
                "oa.text.SpanIndex.build or `openattrib text index`"
            )
        manifest_bytes = manifest_path.read_bytes()
        try:
            manifest = json.loads(manifest_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VerificationError(
                f"{manifest_path} is damaged ({exc}); rebuild the index"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise VerificationError(
                f"{path} has index format {found!r}, expected {FORMAT!r}; rebuild it with this "
                "version of openattrib"
            )
        if canonical_json(manifest) != manifest_bytes:
            raise VerificationError(
                f"{manifest_path} was edited (not canonical JSON); rebuild the index"
            )
        for name, expected in manifest["files"].items():
            file = path / name
            if not file.is_file():
                raise VerificationError(
                    f"{path}: the index file {name} is missing; rebuild the index"
                )
            size = file.stat().st_size
            if size != expected["size"]:
                raise VerificationError(
                    f"{path}: {name} has {size} bytes but the manifest records "
                    f"{expected['size']} (truncated or altered); rebuild the index"
                )
            if verify and file_digest(file) != expected["sha256"]:
                raise VerificationError(
                    f"{path}: {name} does not match its SHA-256 in the manifest (altered); "
                    "rebuild the index"
                )
        if corpus is not None and corpus.content_hash != manifest["corpus_hash"]:
            raise VerificationError(
                f"{path} was built from corpus {manifest['corpus_hash'][:12]}..., not from this "
                f"corpus ({corpus.content_hash[:12]}...); rebuild the index from this corpus"
            )
        return cls(path, manifest, manifest_bytes)

    # ---------------------------------------------------------------- queries
    def tokens(self, query: Any) -> np.ndarray:
        """Token ids of a query: a ``str`` (tokenised), ``bytes`` (byte tokenizer only) or
        a sequence of ints; refuses ids outside the vocabulary."""
        if isinstance(query, str):
            return self.tokenizer.encode(query).astype(self.dtype)
        if isinstance(query, (bytes, bytearray, memoryview)):
            if not isinstance(self.tokenizer, ByteTokenizer):
                raise ValidationError(
                    "a bytes query needs an index built with tokenizer='bytes'; pass token ids "
                    "or a str for this index"
                )
            ids = np.frombuffer(bytes(query), dtype=np.uint8)
        else:
            try:
                ids = np.asarray(query)
            except Exception as exc:  # pragma: no cover - exotic inputs
                raise ValidationError(f"query must be str, bytes or token ids ({exc})") from None
            if ids.size == 0:
                ids = ids.astype(np.int64)
            if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
                raise ValidationError(
                    f"query must be a str, bytes or a 1-d sequence of int token ids, got {query!r:.80}"
                )
        if ids.size and (ids.min() < 0 or ids.max() >= self.separator):
            raise ValidationError(
                f"token ids must be in 0..{self.separator - 1} for this index, got "
                f"{int(ids.min())}..{int(ids.max())}"
            )
        return ids.astype(self.dtype)

    def _bytes(self, query: Any) -> bytes:
        return self.tokens(query).astype(self.dtype, copy=False).tobytes()

    def count(self, query: Any) -> int:
        """Number of occurrences of the token sequence ``query`` in the corpus."""
        raw = self._bytes(query)
        if not raw:
            raise ValidationError("count needs a non-empty query")
        return sum(end - begin for begin, end in (s.bounds(raw) for s in self.shards))

    def find(self, query: Any, *, limit: int | None = None) -> list[Occurrence]:
        """Every occurrence of ``query`` (at most ``limit``), in suffix-array order per shard."""
        raw = self._bytes(query)
        if not raw:
            raise ValidationError("find needs a non-empty query")
        out: list[Occurrence] = []
        for shard in self.shards:
            begin, end = shard.bounds(raw)
            if limit is not None:
                end = min(end, begin + max(0, limit - len(out)))
            out.extend(self._occurrences(shard, begin, end))
        return out

    def next_token_counts(self, context: Any, *, max_occurrences: int = 10_000) -> dict[int, int]:
        """How often each token follows ``context`` in the corpus (infini-gram's next-token
        distribution; an n-gram language model served from the index).

        Occurrences at the end of a document are skipped. Above ``max_occurrences`` per
        shard, an evenly spaced subset of the suffix-array range is counted (deterministic).
        """
        raw = self._bytes(context)
        if not raw:
            raise ValidationError("next_token_counts needs a non-empty context")
        counts: dict[int, int] = {}
        for shard in self.shards:
            begin, end = shard.bounds(raw)
            if end <= begin:
                continue
            if end - begin > max_occurrences:
                ranks = begin + (np.arange(max_occurrences) * (end - begin)) // max_occurrences
                pointers = np.array([shard.pointer(int(r)) for r in ranks], dtype=np.uint64)
            else:
                pointers = shard.pointers(begin, end)
            follow = pointers + len(raw)
            follow = follow[follow + self.width <= shard.size]
            data = np.frombuffer(shard.ds, dtype=self.dtype)
            tokens = data[(follow // self.width).astype(np.int64)]
            values, freq = np.unique(tokens[tokens != self.separator], return_counts=True)
            for token, n in zip(values.tolist(), freq.tolist(), strict=True):
                counts[token] = counts.get(token, 0) + n
        return counts

    def _occurrences(self, shard: Shard, begin: int, end: int) -> list[Occurrence]:
        if end <= begin:
            return []
        pointers = shard.pointers(begin, end)
        docs, positions = shard.locate(pointers)
        out = []
        for ptr, doc, pos in zip(pointers.tolist(), docs.tolist(), positions.tolist(), strict=True):
            document = shard.doc_start + doc
            out.append(
                Occurrence(
                    document,
                    self.doc_ids[document],
                    self.contributors[self._doc_contributor[document]],
                    pos,
                    shard.number,
                    ptr,
                )
            )
        return out

    def attribute(
        self,
        query: Any,
        *,
        min_len: int = 1,
        max_count: int | None = None,
        delimiters: Sequence[int] = (),
        n_jobs: int = 1,
        backend: str | None = None,
        client: Any = None,
    ) -> list[Span]:
        """The maximal spans of ``query`` that occur in the corpus (infini-gram's
        ``attribute``, as used by OLMoTrace).

        For each start position ``l`` the longest prefix of ``query[l:]`` found in the corpus
        is taken (cut after the first token in ``delimiters``, if any); it is kept when it
        is at least ``min_len`` tokens long, occurs at most ``max_count`` times and ends
        after every span kept before it (so no kept span lies inside an earlier one).
        Shards are searched through :mod:`openattrib.parallel` (``n_jobs``, ``backend``,
        ``client``); the answer does not depend on how.
        """
        ids = self.tokens(query)
        min_len = _positive_int(min_len, "min_len")
        if max_count is not None:
            max_count = _positive_int(max_count, "max_count")
        delims = {int(d) for d in delimiters}
        width = self.width
        raw = ids.tobytes()
        from ..parallel import map_batches

        lengths_by_shard = map_batches(
            _shard_longest, self.shards, n_jobs=n_jobs, backend=backend, client=client, shared=raw
        )
        lengths = np.max(
            np.asarray(lengths_by_shard, dtype=np.int64).reshape(len(self.shards), -1), axis=0
        )
        candidates = []
        for left in range(len(ids)):
            length = int(lengths[left])
            if delims:
                for k in range(length - 1):
                    if int(ids[left + k]) in delims:
                        length = k + 1
                        break
            # Span ends never decrease with ``left`` (a match minus its first token is a
            # match), and among spans with the same end the first is the longest and the
            # rarest: it is kept or, if too frequent, so are all the others. So only the
            # first span of each end needs counting.
            if length >= min_len and (not candidates or left + length > candidates[-1][1]):
                candidates.append((left, left + length))
        queries = [raw[left * width : right * width] for left, right in candidates]
        bounds_by_shard = map_batches(
            _shard_bounds,
            self.shards,
            n_jobs=n_jobs,
            backend=backend,
            client=client,
            shared=queries,
        )
        spans: list[Span] = []
        last_end = 0
        for c, (left, right) in enumerate(candidates):
            count = sum(b[c][1] - b[c][0] for b in bounds_by_shard)
            if max_count is not None and count > max_count:
                continue
            if right <= last_end:
                continue
            last_end = right
            occurrences: list[Occurrence] = []
            for shard, b in zip(self.shards, bounds_by_shard, strict=True):
                occurrences.extend(self._occurrences(shard, *b[c]))
            spans.append(Span(left, right, count, tuple(occurrences)))
        return spans

    # ------------------------------------------------------------- statistics
    @cached_property
    def token_counts(self) -> np.ndarray:
        """Occurrences of each token id in the corpus (separators excluded), ``int64``."""
        return np.load(self.path / TOKEN_COUNTS).astype(np.int64)

    @property
    def n_tokens(self) -> int:
        """Tokens in the corpus (separators excluded)."""
        return int(self.manifest["n_tokens"])

    @property
    def n_documents(self) -> int:
        return len(self.doc_ids)

    def contributor_of(self, document: int) -> str:
        return self.contributors[int(self._doc_contributor[document])]

    def document_tokens(self, document: int) -> np.ndarray:
        """The token ids of document ``document`` (by index)."""
        for shard in self.shards:
            local = document - shard.doc_start
            if 0 <= local < len(shard.offsets):
                begin = int(shard.offsets[local]) + self.width
                end = (
                    int(shard.offsets[local + 1]) if local + 1 < len(shard.offsets) else shard.size
                )
                return np.frombuffer(shard.ds[begin:end], dtype=self.dtype).copy()
        raise ValidationError(f"document must be in 0..{self.n_documents - 1}, got {document!r}")

    def describe(self) -> dict[str, Any]:
        """The manifest's identity: format, corpus hash, tokenizer, manifest hash."""
        return {
            "format": FORMAT,
            "corpus_hash": self.manifest["corpus_hash"],
            "tokenizer": self.manifest["tokenizer"],
            "manifest_hash": self.manifest_hash,
        }

    def __repr__(self) -> str:
        return (
            f"SpanIndex({str(self.path)!r}, {self.n_documents} documents, {self.n_tokens} tokens, "
            f"{len(self.shards)} shards, corpus {self.manifest['corpus_hash'][:12]})"
        )


def _shard_longest(query: bytes, shard: Shard) -> list[int]:
    """Per start position, the longest prefix of ``query[l:]`` found in ``shard`` (tokens)."""
    w = shard.width
    return [shard.longest_prefix(query[left * w :]) for left in range(len(query) // w)]


def _shard_bounds(queries: list[bytes], shard: Shard) -> list[tuple[int, int]]:
    return [shard.bounds(q) for q in queries]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"{name} must be a positive int, got {value!r}")
    return int(value)
