"""What extraction returns for one text: entities with character offsets and scores, relations between them,
and the counts of what could not be read. Torch-free.

``merge`` joins the documents decoded from overlapping windows of one text: entities by character span (the
best score wins, with its type), relations by their merged arguments and type (the best score wins).
``Extraction.filtered`` applies a confidence threshold the same way everywhere (API, CLI, server, web view): a
relation is kept when its score reaches the threshold, an entity when its score does or when it is an argument
of a kept relation, so a kept relation never points at a dropped entity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .types import Document

__all__ = ["ExtractedEntity", "ExtractedRelation", "Extraction", "merge"]


@dataclass(frozen=True, slots=True)
class ExtractedEntity:
    """An entity: ``text[start:end]`` (Python string indices, end exclusive), its type and score in [0, 1]."""

    id: int  # its index in ``Extraction.entities``
    start: int
    end: int
    type: str
    text: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "start": self.start, "end": self.end, "type": self.type, "text": self.text,
                "score": round(self.score, 6)}


@dataclass(frozen=True, slots=True)
class ExtractedRelation:
    """A relation from entity ``head`` to entity ``tail`` (ids into ``Extraction.entities``)."""

    head: int
    tail: int
    type: str
    score: float

    def to_dict(self) -> dict:
        return {"head": self.head, "tail": self.tail, "type": self.type, "score": round(self.score, 6)}


@dataclass
class Extraction:
    """One text's result. ``errors``: malformed generated pieces by kind (decoding without the constraint can
    produce them); ``windows``: passages the text was read in; ``cut``: sentences longer than a passage, read in
    overlapping pieces; ``truncated``: tokens past the encoder's input length that were not read."""

    text: str
    entities: list[ExtractedEntity] = field(default_factory=list)
    relations: list[ExtractedRelation] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    cut: int = 0
    truncated: int = 0

    def to_dict(self) -> dict:
        """The ``extract`` output format (docs/format.md)."""
        return {"text": self.text, "entities": [e.to_dict() for e in self.entities],
                "relations": [r.to_dict() for r in self.relations], "errors": dict(self.errors),
                "windows": self.windows, "cut": self.cut, "truncated": self.truncated}

    def filtered(self, threshold: float) -> Extraction:
        """A copy with the relations scoring at least ``threshold``, and the entities that do or that a kept
        relation needs; entity ids are renumbered."""
        if threshold <= 0:
            return self
        rels = [r for r in self.relations if r.score >= threshold]
        needed = {i for r in rels for i in (r.head, r.tail)}
        kept = [e for e in self.entities if e.score >= threshold or e.id in needed]
        new_id = {e.id: i for i, e in enumerate(kept)}
        return Extraction(
            self.text,
            [ExtractedEntity(new_id[e.id], e.start, e.end, e.type, e.text, e.score) for e in kept],
            [ExtractedRelation(new_id[r.head], new_id[r.tail], r.type, r.score) for r in rels],
            dict(self.errors), self.windows, self.cut, self.truncated,
        )


def merge(text: str, docs: Iterable[Document]) -> Extraction:
    """One Extraction from the documents decoded for ``text``'s windows (their entities carry character
    offsets into ``text`` and scores; an unscored prediction counts as 1)."""
    best: dict[tuple[int, int], tuple[float, str]] = {}
    rels: dict[tuple[tuple[int, int], tuple[int, int], str], float] = {}
    n = 0
    for doc in docs:
        n += 1
        for e in doc.entities:
            span, score = (e.char_start, e.char_end), _score(e.score)
            if span not in best or score > best[span][0]:
                best[span] = (score, e.type)
        for r in doc.relations:
            h, t = doc.entities[r.head], doc.entities[r.tail]
            key = ((h.char_start, h.char_end), (t.char_start, t.char_end), r.type)
            rels[key] = max(rels.get(key, 0.0), _score(r.score))
    spans = sorted(best)
    index = {s: i for i, s in enumerate(spans)}
    entities = [ExtractedEntity(i, s, e, best[(s, e)][1], text[s:e], best[(s, e)][0]) for i, (s, e) in enumerate(spans)]
    relations = [ExtractedRelation(index[h], index[t], r, score)
                 for (h, t, r), score in sorted(rels.items(), key=lambda kv: (index[kv[0][0]], index[kv[0][1]], kv[0][2]))]
    return Extraction(text, entities, relations, windows=n)


def _score(score: float | None) -> float:
    return 1.0 if score is None else float(score)
