"""Extraction from raw text: the library face that ``extract`` and ``serve`` sit on.

A line is split into tokens (CJK characters one each, letter/digit runs, other symbols), the tokens into
passages of at most ``max_passage_tokens`` (after sentence ends when possible), each passage is decoded as a
``Document`` whose tokens carry offsets into the whole line, and the passages' results are merged, so every
entity's ``start``/``end`` are character offsets into the original line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .data.tokenize import tokenize_text
from .decode import DecodeConfig, predict
from .types import Document, Token

__all__ = ["Extractor", "saved_decode_config", "split_passages"]

SENTENCE_END_TOKENS = {".", "!", "?", "。", "！", "？", ";", "；"}


def split_passages(tokens: Sequence[Token], max_tokens: int) -> list[list[Token]]:
    """Group tokens into passages of at most ``max_tokens``, cutting after sentence ends where possible."""
    sentences: list[list[Token]] = [[]]
    for t in tokens:
        sentences[-1].append(t)
        if t.text in SENTENCE_END_TOKENS:
            sentences.append([])
    passages: list[list[Token]] = []
    for sent in sentences:
        for s in range(0, len(sent), max_tokens):  # a sentence longer than a passage is cut
            piece = sent[s : s + max_tokens]
            if passages and len(passages[-1]) + len(piece) <= max_tokens:
                passages[-1].extend(piece)
            elif piece:
                passages.append(list(piece))
    return passages


def saved_decode_config(path: str | Path) -> DecodeConfig:
    """The decode settings saved with a model directory (``run.decode`` of model_config.json), else defaults."""
    import json

    from .errors import InputError

    try:
        run = json.loads((Path(path) / "model_config.json").read_text(encoding="utf-8")).get("run", {})
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read model_config.json: {e}", path=path) from None
    fields = DecodeConfig.__dataclass_fields__
    return DecodeConfig(**{k: v for k, v in run.get("decode", {}).items() if k in fields})


class Extractor:
    """A loaded model plus decoding settings: text lines in, entities and relations with offsets out."""

    def __init__(self, model, decode: DecodeConfig | None = None, max_passage_tokens: int = 100) -> None:
        self.model = model
        self.decode = decode or DecodeConfig()
        self.max_passage_tokens = max_passage_tokens
        self.last_errors: dict[str, int] = {}

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", decode: DecodeConfig | None = None, **kwargs) -> Extractor:
        """A model directory, decoded as it was evaluated (its saved decode settings) unless ``decode`` is given."""
        from .model import load_model

        model = load_model(path, device)  # first: a path that is not a model directory fails here, in one line
        return cls(model, decode=decode or saved_decode_config(path), **kwargs)

    def extract(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[dict]:
        """One result per text: ``{"text", "entities": [{"id", "start", "end", "type", "text"}],
        "relations": [{"head", "tail", "type"}]}``; malformed-output counts go to ``last_errors``."""
        docs: list[Document] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for passage in split_passages(tokenize_text(text), self.max_passage_tokens):
                docs.append(Document(f"{i}:{len(docs)}", text, passage))
                owner.append(i)
        result = predict(self.model, docs, self.decode, progress=progress) if docs else None
        self.last_errors = dict(result.errors) if result else {}
        out = [{"text": t, "entities": [], "relations": []} for t in texts]
        for i, doc in zip(owner, result.documents if result else [], strict=True):
            ents, rels = out[i]["entities"], out[i]["relations"]
            base = len(ents)
            for e in doc.entities:
                ents.append({"id": len(ents), "start": e.char_start, "end": e.char_end, "type": e.type,
                             "text": doc.text[e.char_start : e.char_end]})
            for r in doc.relations:
                rels.append({"head": base + r.head, "tail": base + r.tail, "type": r.type})
        return out
