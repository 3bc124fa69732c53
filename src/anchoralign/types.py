"""Core data types: tokens with character offsets, entities, relations, documents.

Torch-free. Token spans are ``[start, end)`` in token indices; character spans are ``[char_start, char_end)``
into ``Document.text``. Both are kept on every entity so that a caller can use either without recomputing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "Token",
    "Entity",
    "Relation",
    "Document",
    "tokens_from_words",
    "char_to_token_span",
    "token_to_char_span",
]


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its text and its character span ``[start, end)`` in the document text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity mention: token span ``[start, end)``, character span ``[char_start, char_end)`` and type.

    ``score`` (predictions only) is the decoder's confidence in [0, 1]; it takes no part in equality."""

    start: int
    end: int
    type: str
    char_start: int
    char_end: int
    score: float | None = field(default=None, compare=False)

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation between two entities, given by their indices in ``Document.entities``; ``score`` as for
    ``Entity``."""

    head: int
    tail: int
    type: str
    score: float | None = field(default=None, compare=False)


@dataclass(slots=True)
class Document:
    """A sentence or passage with its tokens, entities and relations.

    Nested and overlapping entities are allowed; two entities with the same span and type are not (readers
    merge them).
    """

    id: str
    text: str
    tokens: list[Token]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]

    def entity_text(self, entity: Entity) -> str:
        """The surface string of an entity, sliced from the document text."""
        return self.text[entity.char_start : entity.char_end]

    def make_entity(self, start: int, end: int, type: str, score: float | None = None) -> Entity:
        """Build an entity from a token span, filling in its character span."""
        char_start, char_end = token_to_char_span(self.tokens, start, end)
        return Entity(start, end, type, char_start, char_end, score)

    def with_annotations(self, entities: list[Entity], relations: list[Relation]) -> Document:
        """A copy with other entities and relations (same text and tokens)."""
        return replace(self, entities=list(entities), relations=list(relations), meta=dict(self.meta))

    def to_dict(self) -> dict:
        """The project's JSON Lines schema (see docs/format.md)."""
        return {
            "id": self.id,
            "text": self.text,
            "tokens": [[t.text, t.start, t.end] for t in self.tokens],
            "entities": [
                {"start": e.start, "end": e.end, "type": e.type, "char_start": e.char_start, "char_end": e.char_end,
                 **_score(e.score)}
                for e in self.entities
            ],
            "relations": [{"head": r.head, "tail": r.tail, "type": r.type, **_score(r.score)} for r in self.relations],
        }

    def to_spert(self) -> dict:
        """SpERT JSON: tokens, entities with token offsets (end exclusive), relations by entity index."""
        return {
            "tokens": self.words,
            "entities": [{"type": e.type, "start": e.start, "end": e.end} for e in self.entities],
            "relations": [{"type": r.type, "head": r.head, "tail": r.tail} for r in self.relations],
            "orig_id": self.id,
        }


def _score(score: float | None) -> dict:
    return {} if score is None else {"score": score}


def tokens_from_words(words: Sequence[str], sep: str = " ") -> tuple[str, list[Token]]:
    """Join pre-tokenized words with ``sep`` into a text, returning the text and the tokens' offsets."""
    tokens: list[Token] = []
    pos = 0
    for i, w in enumerate(words):
        if i:
            pos += len(sep)
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w)
    return sep.join(words), tokens


def token_to_char_span(tokens: Sequence[Token], start: int, end: int) -> tuple[int, int]:
    """Character span ``[tokens[start].start, tokens[end-1].end)`` of a non-empty token span."""
    if not 0 <= start < end <= len(tokens):
        raise ValueError(f"token span [{start}, {end}) is empty or outside 0..{len(tokens)}")
    return tokens[start].start, tokens[end - 1].end


def char_to_token_span(tokens: Sequence[Token], char_start: int, char_end: int) -> tuple[int, int] | None:
    """The smallest token span covering ``[char_start, char_end)``, or None when it touches no token.

    The span is exact (its character span equals the input) only when the input is token-aligned.
    """
    covered = [i for i, t in enumerate(tokens) if t.start < char_end and t.end > char_start]
    if not covered:
        return None
    return covered[0], covered[-1] + 1


def iter_entity_pairs(doc: Document) -> Iterable[tuple[Entity, Entity, str]]:
    """Each relation as (head entity, tail entity, type)."""
    for r in doc.relations:
        yield doc.entities[r.head], doc.entities[r.tail], r.type
