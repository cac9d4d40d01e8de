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
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnsupportedError, ValidationError

__all__ = ["ByteTokenizer", "HFTokenizer", "as_tokenizer", "token_dtype"]


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
    """A HuggingFace ``tokenizers.Tokenizer`` (no special tokens added when encoding)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._json = tokenizer.to_str()
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self.dtype = token_dtype(self.vocab_size)

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
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return np.asarray(ids, dtype=self.dtype)

    def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        # encode_batch_fast (tokenizers >= 0.20) skips character offsets: same ids, less memory
        encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
        batch = encode(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.dtype) for e in batch]

    def decode(self, ids: Any) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def pieces(self, ids: Any) -> list[bytes]:
        """UTF-8 of each token's text, via the offsets of decoding (for highlighting)."""
        ids = [int(i) for i in ids]
        out, previous = [], ""
        for k in range(len(ids)):
            current = self._tokenizer.decode(ids[: k + 1], skip_special_tokens=False)
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
