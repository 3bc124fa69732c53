"""SpERT JSON (CoNLL04, ADE, SciERC): an array of ``{tokens, entities, relations, orig_id}`` sentences."""

from __future__ import annotations

from pathlib import Path

from ..types import Document, Entity, tokens_from_words
from .base import AnnotationBuilder, ReadResult, Where, load_json_array

__all__ = ["read_spert", "check_token_span"]


def check_token_span(where: Where, what: str, start: int, end: int, n_tokens: int) -> None:
    """A token span ``[start, end)`` must be non-empty and inside the ``n_tokens`` tokens."""
    if start < 0:
        raise where.error(f"{what}: start {start} is negative")
    if end > n_tokens:
        raise where.error(f"{what}: end {end} is past the {n_tokens} tokens")
    if start >= end:
        raise where.error(f"{what}: empty span, start {start} >= end {end}")


def read_spert(path: str | Path) -> ReadResult:
    """Read a SpERT file: text is the tokens joined by single spaces; spans are token offsets, end exclusive.

    Two entities with the same span and type are merged (relations remapped) and duplicate relations kept
    once; both are counted in the warnings.
    """
    result = ReadResult()
    name = Path(path).name
    for i, raw in enumerate(load_json_array(path)):
        where = Where(path, i)
        rec = where.obj(raw, "sentence")
        words = where.str_list(where.field(rec, "tokens", list), "tokens")
        orig_id = where.field(rec, "orig_id", (str, int), default=None)
        doc_id = str(orig_id) if orig_id is not None else str(i)
        text, tokens = tokens_from_words(words)
        build = AnnotationBuilder(result, f"{name} record {i}")
        raw_entities = where.field(rec, "entities", list)
        index: list[int] = []
        for j, raw_entity in enumerate(raw_entities):
            what = f"entity {j}"
            ent = where.obj(raw_entity, what)
            type_ = where.field(ent, "type", str, what)
            start = where.field(ent, "start", int, what)
            end = where.field(ent, "end", int, what)
            check_token_span(where, what, start, end, len(tokens))
            index.append(build.entity(Entity(start, end, type_, tokens[start].start, tokens[end - 1].end)))
        raw_relations = where.field(rec, "relations", list, default=[])
        for j, raw_relation in enumerate(raw_relations):
            what = f"relation {j}"
            rel = where.obj(raw_relation, what)
            type_ = where.field(rel, "type", str, what)
            ends = [where.field(rel, key, int, what) for key in ("head", "tail")]
            for key, value in zip(("head", "tail"), ends, strict=True):
                if not 0 <= value < len(index):
                    raise where.error(
                        f"{what}: {key} {value} is not an entity index (the sentence has {len(index)})"
                    )
            build.relation(index[ends[0]], index[ends[1]], type_)
        result.documents.append(
            Document(
                doc_id, text, tokens, build.entities, build.relations, meta={"source": name, "record": i}
            )
        )
        result.source_entities += len(raw_entities)
        result.source_relations += len(raw_relations)
    result.source_documents = len(result.documents)
    return result
