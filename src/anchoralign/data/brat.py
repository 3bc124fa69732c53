"""brat standoff (``.txt`` + ``.ann``; Chinese Literature / SanWen), read into character-token passages."""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from ..errors import InputError
from ..types import Document
from .base import AnnotationBuilder, ReadResult, TokenIndex, read_text
from .brat_ann import parse_ann
from .passages import pack_passages
from .tokenize import char_tokens

__all__ = ["read_brat"]


def _pairs(path: Path) -> list[tuple[Path, Path]]:
    """(.txt, .ann) pairs: of a directory, sorted by name (numerically when the stems are numbers), or one pair."""
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    if path.is_dir():
        txts = {p.stem: p for p in path.glob("*.txt")}
        anns = {p.stem: p for p in path.glob("*.ann")}
        if not txts and not anns:
            raise InputError("no .txt/.ann files in this directory", path=path)
        for stem in sorted(set(txts) ^ set(anns)):
            have, lack = ("txt", "ann") if stem in txts else ("ann", "txt")
            raise InputError(f"{stem}.{have} has no {stem}.{lack}", path=path)
        stems = sorted(txts, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
        return [(txts[s], anns[s]) for s in stems]
    if path.suffix not in (".txt", ".ann"):
        raise InputError("expected a brat directory, or a .txt or .ann file", path=path)
    return [(path.with_suffix(".txt"), path.with_suffix(".ann"))]


def read_brat(path: str | Path, max_chars: int = 250, repair_shifts: bool = True) -> ReadResult:
    """Read brat documents, each cut into passages of at most ``max_chars`` characters (see ``pack_passages``).

    Tokens are the passage's non-whitespace characters, one each. Entities keep character offsets relative to
    the passage (``meta["offset"]`` is the passage's offset in the file). An entity that cannot lie inside one
    passage is counted ``entity_crosses_passage`` and dropped, its relations counted
    ``relation_to_dropped_entity``; a relation whose arguments land in different passages is counted
    ``cross_passage_relation``. ``source_documents`` = .txt files, ``source_entities`` = T lines,
    ``source_relations`` = R lines. ``repair_shifts``: see ``parse_ann``.
    """
    result = ReadResult()
    for txt, ann in _pairs(Path(path)):
        text = read_text(txt)
        entities, relations = parse_ann(ann, text, result, repair_shifts)
        result.source_documents += 1
        result.source_entities += len(entities)
        result.source_relations += len(relations)
        ranges = pack_passages(text, ((e.start, e.end) for e in entities), max_chars)
        starts = [s for s, _ in ranges]
        docs = []
        for k, (s, e) in enumerate(ranges):
            doc_text = text[s:e]
            meta = {"source": txt.name, "doc_id": txt.stem, "offset": s}
            docs.append(Document(f"{txt.stem}:{k}", doc_text, char_tokens(doc_text), meta=meta))
        builders = [AnnotationBuilder(result, d.id) for d in docs]
        indexes = [TokenIndex(d.tokens) for d in docs]
        placed: dict[str, tuple[int, int]] = {}  # T id -> (passage, entity index)
        for ent in sorted(entities, key=lambda x: (x.start, x.end, x.type)):
            p = bisect_right(starts, ent.start) - 1
            where = f"{txt.name} {ent.id} [{ent.start}, {ent.end})"
            if p < 0 or ent.end > ranges[p][1]:
                result.warn("entity_crosses_passage", f"{where} {ent.type}")
                continue
            off = ranges[p][0]
            entity = indexes[p].entity(ent.start - off, ent.end - off, ent.type)
            if entity is None:
                result.warn("whitespace_entity_dropped", where)
                continue
            if (entity.char_start + off, entity.char_end + off) != (ent.start, ent.end):
                result.warn("entity_whitespace_trimmed", where)
            placed[ent.id] = (p, builders[p].entity(entity))
        for r in relations:
            where = f"{ann.name} {r.id} {r.type} {r.arg1}->{r.arg2}"
            if r.arg1 not in placed or r.arg2 not in placed:
                result.warn("relation_to_dropped_entity", where)
            elif placed[r.arg1][0] != placed[r.arg2][0]:
                result.warn("cross_passage_relation", where)
            else:
                builders[placed[r.arg1][0]].relation(placed[r.arg1][1], placed[r.arg2][1], r.type)
        for doc, build in zip(docs, builders, strict=True):
            doc.entities, doc.relations = build.entities, build.relations
            result.documents.append(doc)
    return result
