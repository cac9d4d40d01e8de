"""Pluggable tokenisers: UTF-8 bytes by default, or any HuggingFace tokenizer the user has.

Nothing is downloaded: a tokenizer is the string ``"bytes"``, a ``tokenizers.Tokenizer``,
a path to a ``tokenizer.json`` file, or a ``transformers`` fast tokenizer object already in
memory (its ``backend_tokenizer`` is used). Token ids are stored in the narrowest unsigned
type that fits the vocabulary with one id to spare: the largest value of the type separates
documents in the index (infini-gram's convention), so ``uint8`` holds vocabularies of up to
255 ids, ``uint16`` up to 65,535 and ``uint32`` the rest. UTF-8 never contains the byte
``0xFF``, so the byte tokeniser fits ``uint8``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnsupportedError, ValidationError

__all__ = ["ByteTokenizer", "HFTokenizer", "as_tokenizer", "token_dtype"]

# A tokenizer holds ~100 bytes per character of the texts it encodes at once (one 4 MB
# document would cost ~400 MB): texts are encoded in batches of about _BATCH_CHARS
# characters, long ones in pieces of at least _PIECE_CHARS characters when cutting them
# gives the same ids (see _splits_exactly).
_PIECE_CHARS = 1 << 16
_BATCH_CHARS = 1 << 18
# Where a text may be cut (see _splits_exactly): after a printable ASCII character and the
# ASCII whitespace following it, before a space and a printable ASCII character; or after
# a printable character and one tab or newline, before a printable character.
_CUT = re.compile(r"[!-~](?:[ \t\n\r]*(?= [!-~])|[\t\n\r](?=[!-~]))")


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned dtype holding ids ``0..vocab_size-1`` plus a separator id."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise UnsupportedError(f"a vocabulary of {vocab_size} ids does not fit 32-bit token ids")


class ByteTokenizer:
    """UTF-8 bytes as tokens (ids 0..254; ``0xFF`` never occurs in UTF-8)."""

    vocab_size = 255
    dtype = np.dtype(np.uint8)

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Any) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8)).decode("utf-8", errors="replace")

    def pieces(self, ids: Any) -> list[bytes]:
        """The bytes each token stands for (used to highlight spans in text)."""
        return [bytes([int(i)]) for i in ids]

    def describe(self) -> dict[str, Any]:
        return {"kind": "bytes", "encoding": "utf-8"}

    def save(self, directory: Path) -> None:
        """Nothing to save: the description is enough to rebuild it."""

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class HFTokenizer:
    """A HuggingFace ``tokenizers.Tokenizer`` (no special tokens added when encoding).

    It is kept as its JSON; the in-memory tokenizer (~20 MB for a 16k vocabulary) can be
    dropped with :meth:`release` and is rebuilt from the JSON when next used, and it is
    not pickled (a worker process rebuilds it).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer: Any = tokenizer
        self._json = tokenizer.to_str()
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self.dtype = token_dtype(self.vocab_size)
        self.splits_exactly = _splits_exactly(json.loads(self._json))

    @property
    def backend(self) -> Any:
        """The ``tokenizers.Tokenizer`` (rebuilt from the JSON after :meth:`release`)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_str(self._json)
        return self._tokenizer

    def release(self) -> None:
        """Drop the in-memory tokenizer (this object's reference to it)."""
        self._tokenizer = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> HFTokenizer:
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise ValidationError(f"tokenizer file not found: {str(path)!r}")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:
            raise ValidationError(
                f"{path} is not a HuggingFace tokenizer.json file ({exc}); pass 'bytes', a "
                "tokenizer.json path or a tokenizers.Tokenizer"
            ) from None

    def encode(self, text: str) -> np.ndarray:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return np.asarray(ids, dtype=self.dtype)

    def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text, encoded in batches of about ``_BATCH_CHARS`` characters
        (long texts in exact pieces, see ``_splits_exactly``), so the tokenizer's working
        memory stays bounded whatever the texts' sizes."""
        # encode_batch_fast (tokenizers >= 0.20) skips character offsets: same ids, less memory
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        out: list[list[np.ndarray]] = [[] for _ in texts]
        batch: list[str] = []
        owners: list[int] = []
        size = 0

        def flush() -> None:
            for number, e in zip(owners, encode(batch, add_special_tokens=False), strict=True):
                out[number].append(np.asarray(e.ids, dtype=self.dtype))
            batch.clear()
            owners.clear()

        for number, text in enumerate(texts):
            for piece in _pieces(text) if self.splits_exactly else (text,):
                batch.append(piece)
                owners.append(number)
                size += len(piece)
                if size >= _BATCH_CHARS:
                    flush()
                    size = 0
        if batch:
            flush()
        return [parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in out]

    def decode(self, ids: Any) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def pieces(self, ids: Any) -> list[bytes]:
        """UTF-8 of each token's text, via the offsets of decoding (for highlighting)."""
        ids = [int(i) for i in ids]
        out, previous = [], ""
        for k in range(len(ids)):
            current = self.backend.decode(ids[: k + 1], skip_special_tokens=False)
            out.append(current[len(previous) :].encode("utf-8"))
            previous = current
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "huggingface",
            "sha256": hashlib.sha256(self._json.encode("utf-8")).hexdigest(),
            "vocab_size": self.vocab_size,
        }

    def save(self, directory: Path) -> None:
        (directory / "tokenizer.json").write_text(self._json, encoding="utf-8")

    def __repr__(self) -> str:
        return f"HFTokenizer(vocab_size={self.vocab_size})"


def _splits_exactly(config: dict[str, Any]) -> bool:
    """Whether cutting a text where ``_CUT`` matches never changes its ids: true for
    byte-level BPE with GPT-2's pre-tokenizer and nothing context-dependent around it.

    GPT-2's pre-tokenizer regex (Radford et al., 2019, used by ``ByteLevel(use_regex=True)``)
    has no look-behind and splits a run of whitespace ``W`` between non-space ``x`` and
    ``y`` as ``W[:-1]`` then either ``" " + y...`` (if ``W`` ends in a space) or the last
    character alone. So a text cut before that last space (or, when ``W`` is one tab or
    newline, after it) ends with the same pre-token it had in the whole text, the rest
    starts with the same pre-tokens, and the model encodes each pre-token on its own.
    Anything that sees across a cut rules it out: a normalizer, a prefix space, BPE
    dropout, or an added token containing whitespace or stripping it.
    """
    pre = config.get("pre_tokenizer") or {}
    model = config.get("model") or {}
    return (
        config.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space", False)
        and model.get("type") in ("BPE", "WordLevel", "WordPiece")
        and model.get("dropout") is None
        and all(
            not any(c.isspace() for c in token.get("content", ""))
            and not token.get("lstrip", False)
            and not token.get("rstrip", False)
            for token in config.get("added_tokens") or []
        )
    )


def _pieces(text: str) -> list[str]:
    """``text`` cut where ``_CUT`` matches into pieces of at least ``_PIECE_CHARS``
    characters (the last may be shorter; a text without such a place stays whole)."""
    if len(text) <= 2 * _PIECE_CHARS:
        return [text]
    out, begin = [], 0
    while len(text) - begin > 2 * _PIECE_CHARS:
        match = _CUT.search(text, begin + _PIECE_CHARS)
        if match is None:
            break
        out.append(text[begin : match.end()])
        begin = match.end()
    out.append(text[begin:])
    return out


def as_tokenizer(spec: Any) -> ByteTokenizer | HFTokenizer:
    """Turn ``"bytes"``, a path, a ``tokenizers.Tokenizer`` or a transformers fast tokenizer
    into a tokenizer object; anything else is refused with the accepted forms."""
    if isinstance(spec, (ByteTokenizer, HFTokenizer)):
        return spec
    if spec is None or (isinstance(spec, str) and spec == "bytes"):
        return ByteTokenizer()
    if isinstance(spec, (str, os.PathLike)):
        return HFTokenizer.from_file(spec)
    backend = getattr(spec, "backend_tokenizer", None)  # transformers "fast" tokenizers
    if backend is not None:
        return HFTokenizer(backend)
    if hasattr(spec, "to_str") and hasattr(spec, "get_vocab_size") and hasattr(spec, "encode"):
        return HFTokenizer(spec)
    raise UnsupportedError(
        f"tokenizer must be 'bytes', a tokenizer.json path, a tokenizers.Tokenizer or a "
        f"transformers fast tokenizer, got {type(spec).__name__}"
    )


def tokenizer_from_description(description: dict[str, Any], directory: Path) -> Any:
    """Rebuild the tokenizer an index was built with (from its manifest and folder)."""
    if description.get("kind") == "bytes":
        return ByteTokenizer()
    path = directory / "tokenizer.json"
    tokenizer = HFTokenizer.from_file(path)
    if tokenizer.describe() != description:
        raise ValidationError(
            f"{path} does not match the tokenizer recorded in the index manifest; the index "
            "folder was altered -- rebuild it"
        )
    return tokenizer
