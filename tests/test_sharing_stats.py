"""anchors.sharing_stats and experiment.by_sharing: how much structure an anchor has to group, and the scores where
it has some, counted by hand on small documents."""

from __future__ import annotations

from anchoralign.anchors import shares_an_entity, sharing_stats
from anchoralign.data.tokenize import tokenize_text
from anchoralign.experiment import by_sharing
from anchoralign.protocols import get_protocol
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


def test_shares_an_entity_by_hand() -> None:
    assert shares_an_entity(_doc(3, [(0, 1), (0, 2)]))
    assert shares_an_entity(_doc(3, [(0, 1), (2, 1)]))  # a shared tail counts as well
    assert not shares_an_entity(_doc(4, [(0, 1), (2, 3)]))
    assert not shares_an_entity(_doc(2, [(0, 1)]))
    assert shares_an_entity(_doc(2, [(0, 1), (1, 0)]))  # the same pair both ways shares both entities


def test_by_sharing_scores_each_part_apart() -> None:
    gold = [
        _doc(3, [(0, 1), (0, 2)]),  # sharing: 2 relations
        _doc(4, [(0, 1), (2, 3)]),  # rest: 2 relations
        _doc(2, [(0, 1)]),  # rest: 1 relation
    ]
    pred = [
        gold[0],  # every relation right
        gold[1].with_annotations(gold[1].entities, gold[1].relations[:1]),  # 1 of 2
        gold[2].with_annotations(gold[2].entities, []),  # 0 of 1
    ]
    parts = by_sharing(gold, pred, None, get_protocol("micro"))
    assert parts["sharing"] == {"sentences": 1, "relations": 2, "main": 1.0, "ner": 1.0, "re": 1.0, "re_strict": 1.0}
    rest = parts["rest"]
    assert (rest["sentences"], rest["relations"]) == (2, 3)
    # RE+ over the rest by hand: tp 1, fp 0, fn 2 -> P 1, R 1/3, F1 0.5; NER every entity right
    assert rest["re_strict"] == rest["main"] == 0.5 and rest["ner"] == 1.0
    # no sentence in a part: counted, not scored
    assert by_sharing(gold[1:], pred[1:], None, get_protocol("micro"))["sharing"] == {"sentences": 0, "relations": 0}
