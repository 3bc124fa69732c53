"""The project's own JSON Lines: one ``Document.to_dict()`` per line (see docs/format.md)."""

from __future__ import annotations

from pathlib import Path

from ..types import Document, Entity, Token
from .base import AnnotationBuilder, ReadResult, TokenIndex, Where, load_jsonl
from .spert import check_token_span
from .tokenize import whitespace_tokens

__all__ = ["read_jsonl"]


def _tokens(where: Where, rec: dict, text: str) -> list[Token]:
    """``tokens`` as ``[text, start, end]`` triples that slice ``text`` in order; absent: split at whitespace."""
    raw = where.field(rec, "tokens", list, default=None)
    if raw is None:
        return whitespace_tokens(text)
    tokens: list[Token] = []
    for i, item in enumerate(raw):
        ok = isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
        if not ok or not all(isinstance(x, int) and not isinstance(x, bool) for x in item[1:]):
            raise where.error(f"token {i}: expected [text, start, end], found {item!r}")
        tok, start, end = item
        prev_end = tokens[-1].end if tokens else 0
        if not prev_end <= start < end <= len(text):
            raise where.error(
                f"token {i}: characters [{start}, {end}) are empty, overlap token {i - 1} or pass the text's {len(text)}"
            )
        if text[start:end] != tok:
            raise where.error(
                f"token {i}: {tok!r} differs from the text at [{start}, {end}): {text[start:end]!r}"
            )
        tokens.append(Token(tok, start, end))
    return tokens


def _entity(
    where: Where, raw: object, j: int, tokens: list[Token], index: TokenIndex, n_chars: int
) -> Entity:
    """A token-span entity (its optional character span checked against the tokens) or a character-only one."""
    what = f"entity {j}"
    ent = where.obj(raw, what)
    type_ = where.field(ent, "type", str, what)
    if "start" in ent or "end" in ent:
        start, end = where.field(ent, "start", int, what), where.field(ent, "end", int, what)
        check_token_span(where, what, start, end, len(tokens))
        chars = (tokens[start].start, tokens[end - 1].end)
        given = (
            where.field(ent, "char_start", int, what, chars[0]),
            where.field(ent, "char_end", int, what, chars[1]),
        )
        if given != chars:
            raise where.error(
                f"{what}: characters [{given[0]}, {given[1]}) disagree with tokens [{start}, {end}), "
                f"which cover characters [{chars[0]}, {chars[1]})"
            )
        return Entity(start, end, type_, *chars)
    char_start, char_end = where.field(ent, "char_start", int, what), where.field(ent, "char_end", int, what)
    return _char_entity(where, what, type_, char_start, char_end, index, n_chars)


def _char_entity(
    where: Where, what: str, type_: str, char_start: int, char_end: int, index: TokenIndex, n_chars: int
) -> Entity:
    """A character-only entity must start and end on token boundaries (tokens are never cut to fit gold)."""
    if char_start < 0 or char_end > n_chars:
        raise where.error(f"{what}: characters [{char_start}, {char_end}) are outside the text's {n_chars}")
    if char_start >= char_end:
        raise where.error(f"{what}: empty span, char_start {char_start} >= char_end {char_end}")
    if not index.aligned(char_start, char_end):
        raise where.error(
            f"{what}: characters [{char_start}, {char_end}) do not start and end on token boundaries; "
            "give tokens that do"
        )
    entity = index.entity(char_start, char_end, type_)
    assert entity is not None  # aligned spans cover at least one token
    return entity


def read_jsonl(path: str | Path) -> ReadResult:
    """Read the project's JSON Lines, validating that tokens slice the text and entity offsets agree."""
    result = ReadResult()
    name = Path(path).name
    for where, rec in load_jsonl(path):
        text = where.field(rec, "text", str)
        doc_id = str(where.field(rec, "id", (str, int), default=len(result.documents)))
        tokens = _tokens(where, rec, text)
        index = TokenIndex(tokens)
        build = AnnotationBuilder(result, f"{name} record {where.record}")
        raw_entities = where.field(rec, "entities", list, default=[])
        kept = [
            build.entity(_entity(where, raw, j, tokens, index, len(text)))
            for j, raw in enumerate(raw_entities)
        ]
        raw_relations = where.field(rec, "relations", list, default=[])
        for j, raw in enumerate(raw_relations):
            what = f"relation {j}"
            rel = where.obj(raw, what)
            type_ = where.field(rel, "type", str, what)
            head, tail = where.field(rel, "head", int, what), where.field(rel, "tail", int, what)
            for key, value in (("head", head), ("tail", tail)):
                if not 0 <= value < len(kept):
                    raise where.error(
                        f"{what}: {key} {value} is not an entity index (the record has {len(kept)})"
                    )
            build.relation(kept[head], kept[tail], type_)
        meta = where.field(rec, "meta", dict, default={})
        result.documents.append(
            Document(doc_id, text, tokens, build.entities, build.relations, meta=dict(meta))
        )
        result.source_entities += len(raw_entities)
        result.source_relations += len(raw_relations)
    result.source_documents = len(result.documents)
    return result
