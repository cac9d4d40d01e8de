"""A corpus of documents, each written by one contributor, with a canonical content hash.

Canonical encoding (what :attr:`Document.content_hash` and :attr:`Corpus.content_hash` hash):

- a document is hashed as ``SHA-256(canonical_json({"contributor", "doc_id", "metadata",
  "text"}))`` where canonical JSON is :func:`openattrib._io.canonical_json` (sorted keys,
  compact separators, UTF-8, no NaN);
- the corpus is hashed as ``SHA-256(b"openattrib.text.corpus/1\\n" + h_0 + h_1 + ...)``
  over the 32-byte document hashes in corpus order.

So the corpus hash changes when any text, contributor, document id, metadata or the order
of the documents changes, and nothing else.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .._io import canonical_json
from ..errors import ValidationError

__all__ = ["Document", "Corpus", "CORPUS_HASH_HEADER"]

CORPUS_HASH_HEADER = b"openattrib.text.corpus/1\n"


@dataclass(frozen=True)
class Document:
    """One document: its ``text``, its ``contributor``, a unique ``doc_id`` and ``metadata``."""

    text: str
    contributor: str
    doc_id: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the document's canonical JSON encoding."""
        return hashlib.sha256(self._canonical()).hexdigest()

    def _canonical(self) -> bytes:
        return canonical_json(
            {
                "contributor": self.contributor,
                "doc_id": self.doc_id,
                "metadata": self.metadata,
                "text": self.text,
            }
        )


def _check_text(value: Any, where: str, field_name: str) -> str:
    if value is None:
        raise ValidationError(f"{where}: the text field {field_name!r} is missing")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{where}: the text is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                "re-encode the file as UTF-8"
            ) from None
    if not isinstance(value, str):
        raise ValidationError(
            f"{where}: the text field {field_name!r} must be a string, got {type(value).__name__}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{where}: the text is not valid UTF-8 (lone surrogate at character {exc.start}); "
            "fix the escape sequences in the source"
        ) from None
    if not value:
        raise ValidationError(
            f"{where}: the text is empty; drop empty documents before building a corpus"
        )
    return value


def _check_name(value: Any, where: str, what: str, field_name: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        raise ValidationError(f"{where}: the {what} field {field_name!r} is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(
            f"{where}: the {what} field {field_name!r} must be a string or an integer, "
            f"got {type(value).__name__}"
        )
    text = str(value)
    if not text:
        raise ValidationError(f"{where}: the {what} field {field_name!r} is empty")
    return text


class Corpus(Sequence[Document]):
    """Documents with contributor ids (and optional document ids and metadata).

    Build one with :meth:`from_records`, :meth:`from_jsonl`, :meth:`from_csv` or
    :meth:`from_frame`; every constructor checks each record and names the line (or record)
    of a missing text or contributor field, empty text, invalid UTF-8 or a duplicate id.

    Examples
    --------
    >>> corpus = Corpus.from_records([{"text": "hello", "contributor": "ann"},
    ...                               {"text": "world", "contributor": "bob"}])
    >>> len(corpus), corpus.contributors
    (2, ['ann', 'bob'])
    >>> corpus.content_hash[:12]
    '0963d812703a'
    """

    def __init__(self, documents: Iterable[Document]) -> None:
        docs = list(documents)
        seen: dict[str, int] = {}
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise ValidationError(
                    f"document {i} must be an oa.text.Document, got {type(doc).__name__}; "
                    "use Corpus.from_records for dicts"
                )
            if doc.doc_id in seen:
                raise ValidationError(
                    f"document {i}: duplicate document id {doc.doc_id!r} (first used by "
                    f"document {seen[doc.doc_id]}); document ids must be unique"
                )
            seen[doc.doc_id] = i
        if not docs:
            raise ValidationError("a corpus needs at least one document")
        self._documents = docs

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        text: str = "text",
        contributor: str = "contributor",
        doc_id: str | None = None,
        metadata: Sequence[str] | None = None,
    ) -> Corpus:
        """Documents from an iterable of mappings (the ``i``-th is named "record i").

        ``text`` and ``contributor`` name the fields holding the text and the contributor
        id; ``doc_id`` names a field of unique document ids (default: the record's position,
        ``"0"``, ``"1"``, ...); ``metadata`` lists fields kept as metadata (default: every
        other field).
        """
        located = ((f"record {i}", record) for i, record in enumerate(records))
        return cls._build(located, text, contributor, doc_id, metadata)

    @classmethod
    def _build(
        cls,
        located: Iterable[tuple[str, Any]],
        text: str,
        contributor: str,
        doc_id: str | None,
        metadata: Sequence[str] | None,
    ) -> Corpus:
        docs: list[Document] = []
        seen: dict[str, str] = {}
        used = {text, contributor} | ({doc_id} if doc_id else set())
        for position, (where, record) in enumerate(located):
            if not isinstance(record, Mapping):
                raise ValidationError(f"{where}: expected an object, got {type(record).__name__}")
            body = _check_text(record.get(text), where, text)
            owner = _check_name(record.get(contributor), where, "contributor", contributor)
            if doc_id is None:
                ident = str(position)
            else:
                ident = _check_name(record.get(doc_id), where, "document id", doc_id)
            if ident in seen:
                raise ValidationError(
                    f"{where}: duplicate document id {ident!r} (first used at {seen[ident]}); "
                    "document ids must be unique"
                )
            seen[ident] = where
            keys = [k for k in record if k not in used] if metadata is None else list(metadata)
            meta = {str(k): record.get(k) for k in keys}
            try:
                canonical_json(meta)
            except (ValidationError, ValueError) as exc:
                raise ValidationError(f"{where}: metadata is not JSON-encodable ({exc})") from None
            docs.append(Document(body, owner, ident, meta))
        if not docs:
            raise ValidationError("the corpus holds no documents")
        return cls(docs)

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike,
        *,
        text: str = "text",
        contributor: str = "contributor",
        doc_id: str | None = None,
        metadata: Sequence[str] | None = None,
    ) -> Corpus:
        """Documents from a JSON Lines file (one JSON object per line; blank lines skipped).

        Examples
        --------
        >>> corpus = Corpus.from_jsonl("corpus.jsonl", text="text", contributor="contributor")  # doctest: +SKIP
        """
        path = Path(path)
        if not path.is_file():
            raise ValidationError(f"corpus file not found: {str(path)!r}")

        def records() -> Iterator[Mapping[str, Any]]:
            with open(path, "rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    where = f"{path}, line {number}"
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise ValidationError(
                            f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                            "re-encode the file as UTF-8"
                        ) from None
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValidationError(f"{where}: not valid JSON ({exc.msg})") from None
                    yield where, record

        return cls._build(records(), text, contributor, doc_id, metadata)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        *,
        text: str = "text",
        contributor: str = "contributor",
        doc_id: str | None = None,
        metadata: Sequence[str] | None = None,
    ) -> Corpus:
        """Documents from a CSV file with a header row (read as UTF-8 strings)."""
        path = Path(path)
        if not path.is_file():
            raise ValidationError(f"corpus file not found: {str(path)!r}")

        def records() -> Iterator[Mapping[str, Any]]:
            try:
                with open(path, encoding="utf-8", newline="") as handle:
                    reader = csv.DictReader(handle)
                    for row in reader:
                        clean = {k: (v if v != "" else None) for k, v in row.items()}
                        if text in clean and clean[text] is None and text in row:
                            clean[text] = ""
                        yield f"{path}, line {reader.line_num}", clean
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                    "re-encode the file as UTF-8"
                ) from None

        return cls._build(records(), text, contributor, doc_id, metadata)

    @classmethod
    def from_frame(
        cls,
        df: Any,
        *,
        text: str = "text",
        contributor: str = "contributor",
        doc_id: str | None = None,
        metadata: Sequence[str] | None = None,
    ) -> Corpus:
        """Documents from a pandas DataFrame (one row per document)."""
        for column in [text, contributor] + ([doc_id] if doc_id else []):
            if column not in df.columns:
                raise ValidationError(
                    f"the frame has no column {column!r}; columns are {list(df.columns)}"
                )
        rows = (
            {k: (None if _is_na(v) else v) for k, v in row.items()} for row in df.to_dict("records")
        )
        located = ((f"row {i}", row) for i, row in enumerate(rows))
        return cls._build(located, text, contributor, doc_id, metadata)

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._documents)

    def __getitem__(self, index: Any) -> Any:
        return self._documents[index]

    def __iter__(self) -> Iterator[Document]:
        return iter(self._documents)

    @cached_property
    def contributors(self) -> list[str]:
        """Distinct contributor ids in order of first appearance."""
        return list(dict.fromkeys(doc.contributor for doc in self._documents))

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the corpus (see the module docstring for the encoding)."""
        digest = hashlib.sha256(CORPUS_HASH_HEADER)
        for doc in self._documents:
            digest.update(bytes.fromhex(doc.content_hash))
        return digest.hexdigest()

    def to_frame(self) -> Any:
        """A DataFrame with columns ``doc_id``, ``contributor``, ``text``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "doc_id": [d.doc_id for d in self._documents],
                "contributor": [d.contributor for d in self._documents],
                "text": [d.text for d in self._documents],
            }
        )

    def __repr__(self) -> str:
        return (
            f"Corpus({len(self)} documents, {len(self.contributors)} contributors, "
            f"hash {self.content_hash[:12]})"
        )


def _is_na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
