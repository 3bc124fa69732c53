"""Document <-> target ids (DESIGN.md §3), exact inverses. Torch-free and model-free.

A mention is emitted as the exact slice of the source ids, so ``parse`` maps it back to token (and so
character) offsets without string matching. When the same slice occurs more than once in the source, ``parse``
places it at the earliest word-aligned occurrence; ``linearize`` counts the mentions for which that rule gives
another span (``ambiguous_mention``), so the loss is measured, not hidden.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .anchors import gold_anchor_groups, head_groups
from .grammar import Events, Grammar, Source, Span, TargetVocab
from .types import Document, Entity, Relation

__all__ = ["GROUPINGS", "LinearizeResult", "ParseResult", "linearize", "parse", "canonical", "groups_of"]

# grouping name -> tie rule of the greedy anchor cover (anchors.gold_anchor_groups); "head" groups by head
_TIES = {"anchor": "text", "anchor-head": "head"}
GROUPINGS = (*_TIES, "head")


def groups_of(doc: Document, grouping: str = "anchor"):
    """The relation groups of ``doc`` under ``grouping`` (one of ``GROUPINGS``)."""
    if grouping == "head":
        return head_groups(doc)
    if grouping not in _TIES:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    return gold_anchor_groups(doc, _TIES[grouping])


@dataclass
class LinearizeResult:
    ids: list[int]
    positions: list[int] = field(default_factory=list)  # source piece of each mention id, -1 for the rest
    skipped: dict[str, int] = field(default_factory=dict)  # entities/relations that could not be encoded


@dataclass
class ParseResult:
    document: Document
    errors: dict[str, int]  # counted malformed pieces, by kind

    @property
    def malformed(self) -> int:
        return sum(self.errors.values())


def _count(d: dict[str, int], kind: str) -> None:
    d[kind] = d.get(kind, 0) + 1


def linearize(
    doc: Document, source: Source, vocab: TargetVocab, fmt: str = "anchor", grouping: str = "anchor",
    rng: random.Random | None = None,
) -> LinearizeResult:
    """The target ids of ``doc`` (ending with end-of-sequence).

    ``fmt`` is "anchor" (anchor-grouped) or "flat" (one triple after another); ``grouping`` is "anchor"
    (greedy anchor cover) or "head" (group by relation head: the no-anchor-selection ablation). With ``rng``,
    one of the format's other valid orders, drawn from it: the groups, the relations within each group (the
    triples, for flat) and the standalone entities each in a random order instead of text order (the parse
    is the same document).
    """
    m = vocab.markers
    skipped: dict[str, int] = {}
    pieces: dict[int, tuple[int, ...] | None] = {}
    for i, e in enumerate(doc.entities):
        span = source.span_pieces(e.start, e.end)
        if span is None:
            pieces[i] = None
            _count(skipped, "truncated_entity")
            continue
        pieces[i] = tuple(source.ids[span[0] : span[1]])

    pos: list[int] = []

    def mention(i: int) -> list[int]:
        e = doc.entities[i]
        span = source.span_pieces(e.start, e.end)
        assert span is not None
        pos.extend(range(span[0], span[1]))
        label = [m["<type>"], *vocab.entity_labels[e.type]]
        pos.extend([-1] * len(label))
        return list(pieces[i] or ()) + label

    def emit(*ids: int) -> list[int]:
        pos.extend([-1] * len(ids))
        return list(ids)

    def order(i: int) -> tuple[int, int, str]:
        e = doc.entities[i]
        return (e.start, e.end, e.type)

    ok_rels = []
    for ri, r in enumerate(doc.relations):
        if pieces[r.head] is None or pieces[r.tail] is None:
            _count(skipped, "truncated_relation")
        else:
            ok_rels.append(ri)
    kept = doc.with_annotations(doc.entities, [doc.relations[ri] for ri in ok_rels])

    out: list[int] = []
    def arranged(items: list, key) -> list:
        items = sorted(items, key=key)
        if rng is not None:
            rng.shuffle(items)
        return items

    if fmt == "anchor":
        groups = groups_of(kept, grouping)
        if rng is not None:
            rng.shuffle(groups)
        for g in groups:
            out += emit(m["<anchor>"])
            out += mention(g.anchor)
            rels = [kept.relations[ri] for ri in g.relations]
            other = {id(r): (r.tail if r.head == g.anchor else r.head) for r in rels}
            for r in arranged(rels, lambda r, other=other: (order(other[id(r)]), r.type)):
                inv = r.head != g.anchor
                out += emit(m["<rel-inv>"] if inv else m["<rel>"], *vocab.relation_labels[r.type], m["<tail>"])
                out += mention(other[id(r)])
            out += emit(m["</anchor>"])
    elif fmt == "flat":
        for r in arranged(kept.relations, lambda r: (order(r.head), order(r.tail), r.type)):
            out += emit(m["<head>"])
            out += mention(r.head)
            out += emit(m["<rel>"], *vocab.relation_labels[r.type], m["<tail>"])
            out += mention(r.tail)
    else:
        raise ValueError(f"unknown target format {fmt!r}")
    in_relation = {i for r in kept.relations for i in (r.head, r.tail)}
    for i in arranged(list(range(len(doc.entities))), order):
        if i not in in_relation and pieces[i] is not None:
            out += emit(m["<ent>"])
            out += mention(i)
    out += emit(vocab.eos_id)
    assert len(pos) == len(out)
    # A repeated mention string is placed by a rule (see Grammar._place); count the entities it misplaces.
    encodable = {(e.start, e.end, e.type) for i, e in enumerate(doc.entities) if pieces[i] is not None}
    back = {(e.start, e.end, e.type) for e in parse(out, source, vocab, doc, fmt).document.entities}
    if encodable - back:
        skipped["ambiguous_mention"] = len(encodable - back)
    return LinearizeResult(out, pos, skipped)


def events_to_document(template: Document, events: Events, log_probs: list[float] | None = None) -> Document:
    """Entities (deduplicated, in text order) and relations from a grammar run, on ``template``'s text.

    With ``log_probs`` (one per generated id), each entity and relation gets a ``score``: the probability the
    decoder gave to the ids that wrote it (``Events.entity_steps``/``relation_steps``), that is the product of
    their step probabilities; a relation's includes its anchor's (or head's) steps, so it is the probability of
    the whole triple given what came before. An event written more than once keeps its best score. An entity
    that only appears inside relations (a tail) is scored by its tail steps."""
    spans: list[Span] = sorted(set(events.entities) | {s for h, t, _ in events.relations for s in (h, t)})
    index = {s: i for i, s in enumerate(spans)}
    ent_score: dict[Span, float] = {}
    rel_score: dict[tuple[int, int, str], float] = {}
    if log_probs is not None:
        def prob(*ranges: tuple[int, int]) -> float:
            return math.exp(sum(sum(log_probs[a:b]) for a, b in ranges))

        for span, steps in zip(events.entities, events.entity_steps, strict=True):
            ent_score[span] = max(ent_score.get(span, 0.0), prob(steps))
        for (h, t, r), (head, rel) in zip(events.relations, events.relation_steps, strict=True):
            key = (index[h], index[t], r)
            rel_score[key] = max(rel_score.get(key, 0.0), prob(head, rel))
    scored = log_probs is not None
    entities = [template.make_entity(s, e, t, ent_score.get((s, e, t), 0.0) if scored else None) for s, e, t in spans]
    rels = sorted({(index[h], index[t], r) for h, t, r in events.relations})
    return template.with_annotations(entities, [Relation(h, t, r, rel_score.get((h, t, r)) if scored else None)
                                                for h, t, r in rels])


def parse(
    ids: list[int], source: Source, vocab: TargetVocab, template: Document, fmt: str = "anchor",
    grammar: Grammar | None = None, positions: list[int] | None = None, log_probs: list[float] | None = None,
) -> ParseResult:
    """Generated ids -> a Document on ``template``'s text, with every malformed piece counted by kind.

    ``positions`` (one per id: the source position a mention piece was copied from, -1 otherwise) places each
    copied mention exactly where it was copied. A mention without positions is placed by rule: pass the
    ``grammar`` that constrained decoding used, so that a repeated mention goes where the constraint placed it;
    the default is the plain grammar of ``fmt``. ``log_probs`` (one per id) scores every entity and relation
    (``events_to_document``).
    """
    events = (grammar or Grammar(vocab, fmt)).run(ids, source, positions)
    return ParseResult(events_to_document(template, events, log_probs), dict(events.errors))


def canonical(doc: Document) -> tuple[frozenset, frozenset]:
    """Entities and relations as sets of spans, for comparing documents regardless of order."""
    ents = frozenset((e.start, e.end, e.type, e.char_start, e.char_end) for e in doc.entities)

    def key(e: Entity) -> tuple[int, int, str]:
        return (e.start, e.end, e.type)

    rels = frozenset((key(doc.entities[r.head]), key(doc.entities[r.tail]), r.type) for r in doc.relations)
    return ents, rels
