"""Tokenizer glue: documents -> ``Source`` (piece ids with their token indices), schema -> ``TargetVocab``.

Knows tokenizers (duck-typed Hugging Face fast tokenizers), not models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import InputError
from .grammar import MARKERS, Source, TargetVocab
from .schema import Schema
from .types import Document

__all__ = ["add_markers", "build_vocab", "encode_source", "missing_characters", "special_ids"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def add_markers(tokenizer: Any) -> int:
    """Add the target markers as special tokens; returns how many were new."""
    return tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})


def special_ids(tokenizer: Any, kind: str) -> tuple[int, int, int]:
    """(decoder start, end of sequence, padding) ids for a backbone kind ("copy" for BERT-style, else "hf")."""
    if kind == "copy":
        return tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    return tokenizer.pad_token_id, eos, tokenizer.pad_token_id


def build_vocab(tokenizer: Any, schema: Schema, eos_id: int) -> TargetVocab:
    """Marker ids and the piece ids of each verbalized type and relation label."""
    markers = {m: tokenizer.convert_tokens_to_ids(m) for m in MARKERS}
    unk = getattr(tokenizer, "unk_token_id", None)
    if any(v is None or v == unk for v in markers.values()):
        raise ValueError("the tokenizer lacks the target markers; call add_markers(tokenizer) first")

    def ids(label: str) -> tuple[int, ...]:
        return tuple(tokenizer(label, add_special_tokens=False)["input_ids"])

    vocab = TargetVocab(
        markers=markers,
        entity_labels={n: ids(t.label) for n, t in schema.entity_types.items()},
        relation_labels={n: ids(t.label) for n, t in schema.relation_types.items()},
        eos_id=eos_id,
    )
    for kind, labels in (("entity", vocab.entity_labels), ("relation", vocab.relation_labels)):
        seen: dict[tuple[int, ...], str] = {}
        for name, pieces in labels.items():
            # A user's types (file or data) cause this, so it is an InputError: one line from the CLI, no traceback.
            if not pieces:
                raise InputError(f"{kind} type {name!r}: its label tokenizes to nothing; give it another label")
            if pieces in seen:
                raise InputError(
                    f"{kind} types {seen[pieces]!r} and {name!r} have labels that tokenize the same {pieces}; "
                    'give them distinct labels (the types file\'s "verbose")'
                )
            seen[pieces] = name
    return vocab


def encode_source(tokenizer: Any, doc: Document, max_length: int) -> Source:
    """Encode a document's tokens (``is_split_into_words``) keeping each piece's token index."""
    words = doc.words or [""]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = enc.word_ids()
    ids = tuple(int(i) for i in enc["input_ids"])
    piece_token = tuple(-1 if w is None else int(w) for w in word_ids)
    if not doc.words:
        piece_token = tuple(-1 for _ in piece_token)
    return Source(ids, piece_token)


def missing_characters(tokenizer: Any, docs: Iterable[Document]) -> list[str]:
    """CJK characters of ``docs`` that the tokenizer maps to its unknown token (for vocabulary extension)."""
    unk = tokenizer.unk_token_id
    chars = sorted({c for d in docs for c in d.text if _CJK.match(c)})
    if not chars or unk is None:
        return []
    ids = tokenizer.convert_tokens_to_ids(chars)
    return [c for c, i in zip(chars, ids, strict=True) if i == unk or i is None]
