"""DuIE 2.0 / CMeIE JSON Lines: ``{text, spo_list: [{subject, subject_type, predicate, object, object_type}]}``."""

from __future__ import annotations

from pathlib import Path

from ..types import Document
from .base import AnnotationBuilder, ReadResult, TokenIndex, Where, load_jsonl
from .tokenize import tokenize_text

__all__ = ["read_duie"]


def _value(where: Where, spo: dict, key: str, what: str, result: ReadResult) -> str:
    """A plain string, or the ``@value`` of DuIE 2.0's complex object; other slots are counted, not read."""
    value = where.field(spo, key, (str, dict), what)
    if isinstance(value, dict):
        extra = sorted(k for k in value if k != "@value")
        if extra and key == "object":
            result.warn("complex_object_slot_ignored", f"{where.record}: {what}: slots {extra}")
        value = where.field(value, "@value", str, f"{what}: {key}")
    if not value.strip():
        raise where.error(f'{what}: field "{key}" is empty')
    return value


def read_duie(path: str | Path) -> ReadResult:
    """Read DuIE/CMeIE: tokens from ``tokenize_text`` (CJK characters one each, Latin words whole).

    Location rule: each subject/object string at its first character-level occurrence in ``text``, widened
    to the tokens that cover it when it starts or ends inside a Latin word (counted ``unaligned_string_widened``);
    a string that does not occur drops its triple (counted ``unlocated_string``, ``dropped_triple``). The
    source triples stay in ``doc.meta["triples"]``; ``source_entities`` counts distinct located (string,
    type) pairs per record.
    """
    result = ReadResult()
    name = Path(path).name
    for where, rec in load_jsonl(path):
        text = where.field(rec, "text", str)
        spo_list = where.field(rec, "spo_list", list)
        tokens = tokenize_text(text)
        index = TokenIndex(tokens)
        doc_id = str(where.field(rec, "id", (str, int), default=len(result.documents)))
        build = AnnotationBuilder(result, f"{name} record {where.record}")
        found: dict[tuple[str, str], int | None] = {}
        triples = []
        for j, raw in enumerate(spo_list):
            what = f"spo {j}"
            spo = where.obj(raw, what)
            predicate = where.field(spo, "predicate", str, what)
            strings: list[str] = []
            indices: list[int | None] = []
            for key in ("subject", "object"):
                string = _value(where, spo, key, what, result)
                type_ = _value(where, spo, f"{key}_type", what, result)
                strings.append(string)
                if (string, type_) not in found:
                    pos = text.find(string)
                    entity = None if pos < 0 else index.entity(pos, pos + len(string), type_)
                    if entity is None:
                        result.warn(
                            "unlocated_string", f"{name} record {where.record}: {string!r} is not in the text"
                        )
                    elif not index.aligned(pos, pos + len(string)):
                        result.warn("unaligned_string_widened", f"{name} record {where.record}: {string!r}")
                    found[string, type_] = None if entity is None else build.entity(entity)
                indices.append(found[string, type_])
            triples.append([strings[0], predicate, strings[1]])
            head, tail = indices
            if head is None or tail is None:
                result.warn("dropped_triple", f"{name} record {where.record}: {triples[-1]}")
                continue
            build.relation(head, tail, predicate)
        result.documents.append(
            Document(
                doc_id,
                text,
                tokens,
                build.entities,
                build.relations,
                meta={"source": name, "triples": triples},
            )
        )
        result.source_entities += sum(k is not None for k in found.values())
        result.source_relations += len(spo_list)
    result.source_documents = len(result.documents)
    return result
