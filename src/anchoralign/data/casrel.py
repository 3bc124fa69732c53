"""CasRel JSON (WebNLG, WebNLG*, NYT): ``{text, triple_list: [[subject, relation, object]]}``, strings only."""

from __future__ import annotations

from pathlib import Path

from ..types import Document
from .base import AnnotationBuilder, ReadResult, TokenIndex, Where, load_json_array
from .tokenize import whitespace_tokens

__all__ = ["read_casrel", "locate"]


def locate(text: str, index: TokenIndex, needle: str) -> tuple[int, int] | None:
    """Character span of ``needle`` in ``text``: its first token-aligned occurrence, else its first
    occurrence anywhere, else None."""
    pos = text.find(needle)
    first = pos
    while pos >= 0:
        if index.aligned(pos, pos + len(needle)):
            return pos, pos + len(needle)
        pos = text.find(needle, pos + 1)
    return None if first < 0 else (first, first + len(needle))


def read_casrel(path: str | Path, entity_type: str = "entity") -> ReadResult:
    """Read CasRel triples, locating each subject/object string in the whitespace-tokenized text.

    Location rule: the string's first token-aligned occurrence; if it is nowhere token-aligned, its first
    character-level occurrence, widened to the tokens that cover it (counted ``unaligned_string_widened``);
    if it does not occur, the triple is dropped and counted (``unlocated_string``, ``dropped_triple``).
    Every entity has the one type ``entity_type``. Triples whose head and tail resolve to the same entity
    are kept (WebNLG* has ``["Texas", "state", "Texas"]``). The source triples, all of them, stay in
    ``doc.meta["triples"]`` for string-level scoring. ``source_entities`` counts distinct located strings
    per sentence.
    """
    result = ReadResult()
    name = Path(path).name
    for i, raw in enumerate(load_json_array(path)):
        where = Where(path, i)
        rec = where.obj(raw, "sentence")
        text = where.field(rec, "text", str)
        triples = where.field(rec, "triple_list", list)
        tokens = whitespace_tokens(text)
        index = TokenIndex(tokens)
        build = AnnotationBuilder(result, f"{name} record {i}")
        found: dict[str, int | None] = {}  # entity string -> entity index (None: not in the text)
        for j, triple in enumerate(triples):
            what = f"triple {j}"
            if not isinstance(triple, list) or len(triple) != 3:
                raise where.error(f"{what}: expected [subject, relation, object], found {triple!r}")
            subject, relation, obj = where.str_list(triple, what)
            for string in (subject, obj):
                if string in found:
                    continue
                span = locate(text, index, string)
                entity = None if span is None else index.entity(span[0], span[1], entity_type)
                if span is None or entity is None:  # entity None: a whitespace-only string
                    result.warn("unlocated_string", f"{name} record {i}: {string!r} is not in the text")
                    found[string] = None
                    continue
                if not index.aligned(*span):
                    result.warn("unaligned_string_widened", f"{name} record {i}: {string!r} inside a word")
                found[string] = build.entity(entity)
            head, tail = found[subject], found[obj]
            if head is None or tail is None:
                result.warn("dropped_triple", f"{name} record {i}: {triple}")
                continue
            build.relation(head, tail, relation)
        result.documents.append(
            Document(
                str(i),
                text,
                tokens,
                build.entities,
                build.relations,
                meta={"source": name, "record": i, "triples": [list(t) for t in triples]},
            )
        )
        result.source_entities += sum(k is not None for k in found.values())
        result.source_relations += len(triples)
    result.source_documents = len(result.documents)
    return result
