"""anchors.sharing_stats: how much structure an anchor has to group, counted by hand on small documents."""

from __future__ import annotations

from anchoralign.anchors import sharing_stats
from anchoralign.data.tokenize import tokenize_text
from anchoralign.types import Document, Entity, Relation


def _doc(n_entities: int, relations: list[tuple[int, int]]) -> Document:
    text = " ".join(f"w{i}" for i in range(n_entities))
    tokens = tokenize_text(text)
    ents = [Entity(i, i + 1, "T", tokens[i].start, tokens[i].end) for i in range(n_entities)]
    return Document("d", text, tokens, ents, [Relation(h, t, "R") for h, t in relations])


def test_sharing_stats_by_hand() -> None:
    docs = [
        _doc(2, [(0, 1)]),  # one relation
        _doc(3, [(0, 1), (0, 2)]),  # two, sharing entity 0: one anchor group, one head group
        _doc(4, [(0, 1), (2, 3)]),  # two, disjoint
        _doc(3, [(0, 1), (2, 1)]),  # two sharing the tail 1: the cover groups them under 1, heads do not
        _doc(1, []),
    ]
    s = sharing_stats(docs)
    assert s["sentences"] == 5 and s["relations"] == 7
    assert s["relations_per_sentence"] == 7 / 5
    assert s["share_two_or_more_relations"] == 3 / 5
    assert s["share_relations_sharing_an_entity"] == 2 / 5
    assert s["groups_by_head"] == 1 + 1 + 2 + 2
    assert s["groups_anchor_cover"] == 1 + 1 + 2 + 1
    assert sharing_stats([])["relations_per_sentence"] == 0.0
