"""Gold anchor selection (DESIGN.md §2): a greedy cover of the entity–relation graph.

Torch-free. The learned anchor scorer that predicts anchors at inference lives in ``model``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Document

__all__ = ["AnchorGroup", "gold_anchor_groups", "head_groups", "shares_an_entity", "sharing_stats"]


@dataclass(frozen=True)
class AnchorGroup:
    """An anchor entity (index into ``doc.entities``) and the relations (indices) grouped under it."""

    anchor: int
    relations: tuple[int, ...]


def _text_order(doc: Document, i: int) -> tuple[int, int, str]:
    e = doc.entities[i]
    return (e.start, e.end, e.type)


def gold_anchor_groups(doc: Document, ties: str = "text") -> list[AnchorGroup]:
    """Greedy cover: repeatedly take the entity touching the most uncovered relations.

    ``ties="text"`` (DESIGN.md §2) breaks ties by the earlier mention. ``ties="head"`` first prefers the entity
    that is the head of more of the relations it would cover, then the earlier mention: the anchor is then
    usually the relation's head (a person, an organisation), fewer relations are written ``<rel-inv>``, and
    which entity is the anchor depends on the relation rather than on word order.

    Every relation ends up in exactly one group, under the anchor that covers it in either direction. An
    entity in no relation is never an anchor. Groups are returned in text order of their anchors.
    """
    if ties not in ("text", "head"):
        raise ValueError(f"ties must be 'text' or 'head', got {ties!r}")
    uncovered = set(range(len(doc.relations)))
    touching: dict[int, set[int]] = {}
    for ri, r in enumerate(doc.relations):
        touching.setdefault(r.head, set()).add(ri)
        touching.setdefault(r.tail, set()).add(ri)
    groups: list[AnchorGroup] = []
    def heads(e: int) -> int:
        return sum(1 for ri in touching[e] & uncovered if doc.relations[ri].head == e) if ties == "head" else 0

    while uncovered:
        best = min(touching, key=lambda e: (-len(touching[e] & uncovered), -heads(e), _text_order(doc, e)))
        covered = touching[best] & uncovered
        groups.append(AnchorGroup(best, tuple(sorted(covered))))
        uncovered -= covered
    return sorted(groups, key=lambda g: _text_order(doc, g.anchor))


def head_groups(doc: Document) -> list[AnchorGroup]:
    """The no-anchor-selection ablation: group every relation under its head entity."""
    by_head: dict[int, list[int]] = {}
    for ri, r in enumerate(doc.relations):
        by_head.setdefault(r.head, []).append(ri)
    groups = [AnchorGroup(h, tuple(rs)) for h, rs in by_head.items()]
    return sorted(groups, key=lambda g: _text_order(doc, g.anchor))


def shares_an_entity(doc: Document) -> bool:
    """Whether two or more of ``doc``'s relations share an entity: the structure an anchor groups."""
    seen: set[int] = set()
    for r in doc.relations:
        for e in {r.head, r.tail}:
            if e in seen:
                return True
            seen.add(e)
    return False


def sharing_stats(docs: list[Document]) -> dict:
    """How much work anchoring has in ``docs``: sentences, relations per sentence, the share of sentences with
    two or more relations, and with two or more relations that share an entity (the structure an anchor
    groups), and the groups the anchor cover makes against grouping by head."""
    n = len(docs)
    rels = sum(len(d.relations) for d in docs)
    multi = sum(1 for d in docs if len(d.relations) >= 2)
    shared = sum(1 for d in docs if shares_an_entity(d))
    return {
        "sentences": n,
        "relations": rels,
        "relations_per_sentence": rels / n if n else 0.0,
        "share_two_or_more_relations": multi / n if n else 0.0,
        "share_relations_sharing_an_entity": shared / n if n else 0.0,
        "groups_anchor_cover": sum(len(gold_anchor_groups(d, "head")) for d in docs),
        "groups_by_head": sum(len(head_groups(d)) for d in docs),
    }
