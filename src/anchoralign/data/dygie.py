"""SciERC / DyGIE++ / PURE document JSON Lines: one abstract per line, split here into sentence documents."""

from __future__ import annotations

from pathlib import Path

from ..schema import Schema
from ..types import Document, Entity, tokens_from_words
from .base import AnnotationBuilder, ReadResult, Where, load_jsonl, map_labels

__all__ = ["read_dygie", "PTB_BRACKETS"]

# Penn Treebank escapes in SciERC/DyGIE tokens; SpERT's copy of SciERC has the plain characters for these
# four but keeps -LCB-/-RCB- (one train sentence), so those stay escaped here too and both formats agree.
PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]"}


def _span(
    where: Where, what: str, start: object, end: object, offset: int, length: int, sent: int
) -> tuple[int, int]:
    """A document-level inclusive span -> sentence-local ``[start, end)``, checked to lie in the sentence."""
    if (
        not isinstance(start, int)
        or not isinstance(end, int)
        or isinstance(start, bool)
        or isinstance(end, bool)
    ):
        raise where.error(f"{what}: span bounds must be integers, found {start!r}, {end!r}")
    if start > end:
        raise where.error(f"{what}: empty span, start {start} > end {end} (ends are inclusive)")
    if start < offset or end >= offset + length:
        raise where.error(
            f"{what}: span [{start}, {end}] (document-level, inclusive) is outside sentence {sent}, "
            f"tokens [{offset}, {offset + length - 1}]"
        )
    return start - offset, end - offset + 1


def _per_sentence(where: Where, rec: dict, key: str, n: int) -> list[list]:
    """``ner``/``relations``: one list per sentence (missing means none)."""
    value = where.field(rec, key, list, default=[[] for _ in range(n)])
    if len(value) != n:
        raise where.error(f'field "{key}" has {len(value)} lists for {n} sentences')
    for i, items in enumerate(value):
        if not isinstance(items, list):
            raise where.error(f'field "{key}": sentence {i}: expected an array')
    return value


def read_dygie(path: str | Path, schema: Schema | None = None, unescape_brackets: bool = True) -> ReadResult:
    """Read DyGIE JSONL: ``ner`` ``[s, e, label]`` and ``relations`` ``[s1, e1, s2, e2, label]`` use
    document-level, inclusive token indices; each sentence becomes a ``Document`` with id ``doc_key:i``.

    A relation argument must be an entity span of the same sentence. With ``schema``, labels are renamed to
    the schema's spelling case-insensitively (SciERC's ``USED-FOR`` is the types file's ``Used-for``).
    With ``unescape_brackets``, the tokens in ``PTB_BRACKETS`` (``-LRB-`` etc.) become the brackets they
    stand for, so that the text is the real text and SciERC's two formats give identical documents.
    """
    result = ReadResult()
    name = Path(path).name
    records = load_jsonl(path)
    for where, rec in records:
        doc_key = str(where.field(rec, "doc_key", (str, int)))
        sentences = where.field(rec, "sentences", list)
        for i, sent in enumerate(sentences):
            where.str_list(sent, f"sentence {i}")
        ner = _per_sentence(where, rec, "ner", len(sentences))
        relations = _per_sentence(where, rec, "relations", len(sentences))
        offset = 0
        for i, words in enumerate(sentences):
            doc_id = f"{doc_key}:{i}"
            if unescape_brackets:
                words = [PTB_BRACKETS.get(w, w) for w in words]
            text, tokens = tokens_from_words(words)
            build = AnnotationBuilder(result, doc_id)
            by_span: dict[tuple[int, int], int] = {}
            for j, item in enumerate(ner[i]):
                what = f"sentence {i}: ner {j}"
                if not isinstance(item, list) or len(item) != 3 or not isinstance(item[2], str):
                    raise where.error(f"{what}: expected [start, end, label], found {item!r}")
                start, end = _span(where, what, item[0], item[1], offset, len(words), i)
                k = build.entity(Entity(start, end, item[2], tokens[start].start, tokens[end - 1].end))
                by_span.setdefault((start, end), k)  # two types on one span: relations take the first
            for j, item in enumerate(relations[i]):
                what = f"sentence {i}: relation {j}"
                if not isinstance(item, list) or len(item) != 5 or not isinstance(item[4], str):
                    raise where.error(f"{what}: expected [s1, e1, s2, e2, label], found {item!r}")
                args = []
                for arg, (s, e) in (("head", item[0:2]), ("tail", item[2:4])):
                    span = _span(where, f"{what}: {arg}", s, e, offset, len(words), i)
                    if span not in by_span:
                        raise where.error(f"{what}: {arg} span [{s}, {e}] is not an entity of sentence {i}")
                    args.append(by_span[span])
                build.relation(args[0], args[1], item[4])
            result.documents.append(
                Document(
                    doc_id,
                    text,
                    tokens,
                    build.entities,
                    build.relations,
                    meta={"source": name, "doc_key": doc_key, "sentence": i},
                )
            )
            result.source_entities += len(ner[i])
            result.source_relations += len(relations[i])
            offset += len(words)
    result.source_documents = len(records)  # abstracts (JSONL lines); passages = their sentences
    if schema is not None:
        map_labels(result.documents, schema)
    return result
