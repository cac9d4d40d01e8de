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
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise ValidationError(
                    f"document {i} must be an oa.text.Document, got {type(doc).__name__}; "
                    "use Corpus.from_records for dicts"
                )
        self._documents: list[Document] | None = docs
        self._source: _JsonlSource | None = None
        self._catalogue = _Catalogue()
        for i, doc in enumerate(docs):
            self._catalogue.add(doc, f"document {i}")
        if not docs:
            raise ValidationError("a corpus needs at least one document")

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
        source: _JsonlSource | None = None,
    ) -> Corpus:
        """Check every record; keep the documents (or, with ``source``, only their catalogue
        and where they are in the file)."""
        docs: list[Document] = []
        catalogue = _Catalogue()
        fields = _Fields(text, contributor, doc_id, metadata)
        for position, (where, record) in enumerate(located):
            doc = fields.document(record, where, position)
            catalogue.add(doc, where)
            if source is None:
                docs.append(doc)
        if not catalogue.doc_ids:
            raise ValidationError("the corpus holds no documents")
        corpus = cls.__new__(cls)
        corpus._documents = docs if source is None else None
        corpus._source = source
        corpus._catalogue = catalogue
        if source is not None:
            source.fields = fields
        return corpus

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike,
        *,
        text: str = "text",
        contributor: str = "contributor",
        doc_id: str | None = None,
        metadata: Sequence[str] | None = None,
        in_memory: bool = False,
    ) -> Corpus:
        """Documents from a JSON Lines file (one JSON object per line; blank lines skipped).

        The file is read once to check every line and hash every document; unless
        ``in_memory=True`` the texts are not kept but streamed from the file again when
        needed (an index build reads them in chunks), and each is checked against its hash
        so a file changed after loading is refused.
        """
        path = _existing(path)
        source = None if in_memory else _JsonlSource(path)
        return cls._build(
            _jsonl_records(path, source), text, contributor, doc_id, metadata, source=source
        )

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
        path = _existing(path)

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
        return len(self._catalogue.doc_ids)

    def __getitem__(self, index: Any) -> Any:
        if self._documents is not None:
            return self._documents[index]
        if isinstance(index, slice):
            return list(self._source.read(range(len(self))[index], self._catalogue))
        position = range(len(self))[index]
        return next(iter(self._source.read([position], self._catalogue)))

    def __iter__(self) -> Iterator[Document]:
        if self._documents is not None:
            return iter(self._documents)
        return self._source.read(range(len(self)), self._catalogue)

    @property
    def streamed(self) -> bool:
        """Whether the texts are read from their file when needed, not kept in memory."""
        return self._documents is None

    @property
    def doc_ids(self) -> list[str]:
        """The document ids, in corpus order."""
        return self._catalogue.doc_ids

    @property
    def doc_contributors(self) -> list[str]:
        """The contributor of each document, in corpus order."""
        return self._catalogue.contributors

    @property
    def doc_hashes(self) -> list[str]:
        """Each document's :attr:`Document.content_hash`, in corpus order."""
        return [h.hex() for h in self._catalogue.hashes]

    @property
    def text_sizes(self) -> list[int]:
        """UTF-8 length of each document's text, in corpus order."""
        return self._catalogue.sizes

    @cached_property
    def contributors(self) -> list[str]:
        """Distinct contributor ids in order of first appearance."""
        return list(dict.fromkeys(self._catalogue.contributors))

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the corpus (see the module docstring for the encoding)."""
        digest = hashlib.sha256(CORPUS_HASH_HEADER)
        for value in self._catalogue.hashes:
            digest.update(value)
        return digest.hexdigest()

    def to_frame(self) -> Any:
        """A DataFrame with columns ``doc_id``, ``contributor``, ``text``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "doc_id": self.doc_ids,
                "contributor": self.doc_contributors,
                "text": [d.text for d in self],
            }
        )

    def __repr__(self) -> str:
        return (
            f"Corpus({len(self)} documents, {len(self.contributors)} contributors, "
            f"hash {self.content_hash[:12]})"
        )


class _Fields:
    """Which fields of a record are the text, contributor, id and metadata."""

    def __init__(
        self, text: str, contributor: str, doc_id: str | None, metadata: Sequence[str] | None
    ) -> None:
        self.text, self.contributor, self.doc_id, self.metadata = (
            text,
            contributor,
            doc_id,
            metadata,
        )
        self.used = {text, contributor} | ({doc_id} if doc_id else set())

    def document(self, record: Any, where: str, position: int) -> Document:
        if not isinstance(record, Mapping):
            raise ValidationError(f"{where}: expected an object, got {type(record).__name__}")
        body = _check_text(record.get(self.text), where, self.text)
        owner = _check_name(record.get(self.contributor), where, "contributor", self.contributor)
        if self.doc_id is None:
            ident = str(position)
        else:
            ident = _check_name(record.get(self.doc_id), where, "document id", self.doc_id)
        keys = [k for k in record if k not in self.used] if self.metadata is None else self.metadata
        meta = {str(k): record.get(k) for k in keys}
        try:
            canonical_json(meta)
        except (ValidationError, ValueError) as exc:
            raise ValidationError(f"{where}: metadata is not JSON-encodable ({exc})") from None
        return Document(body, owner, ident, meta)


class _Catalogue:
    """What a corpus keeps of each document without its text: id, contributor, hash, size."""

    def __init__(self) -> None:
        self.doc_ids: list[str] = []
        self.contributors: list[str] = []
        self.hashes: list[bytes] = []
        self.sizes: list[int] = []
        self._where: dict[str, str] = {}

    def add(self, doc: Document, where: str) -> None:
        if doc.doc_id in self._where:
            raise ValidationError(
                f"{where}: duplicate document id {doc.doc_id!r} (first used at "
                f"{self._where[doc.doc_id]}); document ids must be unique"
            )
        self._where[doc.doc_id] = where
        self.doc_ids.append(doc.doc_id)
        self.contributors.append(doc.contributor)
        self.hashes.append(bytes.fromhex(doc.content_hash))
        self.sizes.append(len(doc.text.encode("utf-8")))


class _JsonlSource:
    """Where each document of a streamed JSONL corpus starts in its file, and the SHA-256
    of its line (a re-read line is compared by that, then parsed as when loaded)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: list[int] = []
        self.line_hashes: list[bytes] = []
        self.fields: _Fields | None = None

    def read(self, positions: Iterable[int], catalogue: _Catalogue) -> Iterator[Document]:
        with open(self.path, "rb") as handle:
            for position in positions:
                handle.seek(self.offsets[position])
                raw = handle.readline()
                if hashlib.sha256(raw).digest() != self.line_hashes[position]:
                    raise ValidationError(
                        f"{self.path} changed after the corpus was loaded (document "
                        f"{position} differs); load it again"
                    )
                where = f"{self.path} (document {position})"
                yield self.fields.document(_parse_line(raw, where), where, position)


def _parse_line(raw: bytes, where: str) -> Any:
    """The JSON value of one JSONL line (``None`` for a blank line), or a clear error."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start}); "
            "re-encode the file as UTF-8"
        ) from None
    if not line.strip():
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: not valid JSON ({exc.msg})") from None


def _jsonl_records(path: Path, source: _JsonlSource | None) -> Iterator[tuple[str, Any]]:
    with open(path, "rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            where = f"{path}, line {number}"
            start, offset = offset, offset + len(raw)
            record = _parse_line(raw, where)
            if record is None:
                continue
            if source is not None:
                source.offsets.append(start)
                source.line_hashes.append(hashlib.sha256(raw).digest())
            yield where, record


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"corpus file not found: {str(path)!r}")
    return path


def _is_na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
