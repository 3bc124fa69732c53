"""Mention replacement (``augment.py``, ``train.mention_swap``): swapped documents are well-formed, keep their
relations and the mentions of types outside the pool, and a run with it trains and resumes exactly."""

from __future__ import annotations

import random

import pytest

from anchoralign.augment import mention_pool, mention_swap_epoch, relation_argument_types, swapped_mentions
from anchoralign.config import TrainConfig

from .test_schedule import assert_resumes_exactly_and_changes_training
from .tiny import make_doc, toy_docs


def _well_formed(doc) -> None:
    for t in doc.tokens:
        assert doc.text[t.start : t.end] == t.text
    for e in doc.entities:
        assert doc.text[e.char_start : e.char_end] == doc.text[doc.tokens[e.start].start : doc.tokens[e.end - 1].end]


def _mention(doc, e) -> str:
    return doc.text[e.char_start : e.char_end]


def test_relation_argument_types_leave_out_types_no_relation_takes() -> None:
    assert relation_argument_types(toy_docs()) == {"Peop", "Org", "Loc"}
    plain = [make_doc("x", "Mary on Monday .".split(), [(0, 1, "Peop"), (2, 3, "Other")], [])]
    assert relation_argument_types(plain) == {"Peop", "Other"}  # no relation anywhere: every type


def test_pool_holds_each_typed_string_once_with_relative_offsets() -> None:
    pool = mention_pool(toy_docs())
    assert sorted(pool) == ["Loc", "Org", "Peop"]
    assert [m.text for m in pool["Peop"]] == ["John Smith", "Mary", "Mary Jones"]
    assert [m.text for m in pool["Org"]] == ["Acme Corp"]  # seen twice, pooled once
    assert pool["Peop"][0].tokens == (("John", 0, 4), ("Smith", 5, 10))


def test_swapped_document_is_well_formed_and_keeps_its_relations() -> None:
    docs = toy_docs()
    pool = mention_pool(docs)
    for seed in range(20):
        for doc in docs:
            new = swapped_mentions(doc, pool, random.Random(seed))
            assert new is not None
            _well_formed(new)
            assert new.relations == doc.relations
            assert [e.type for e in new.entities] == [e.type for e in doc.entities]
            for old_e, new_e in zip(doc.entities, new.entities, strict=True):
                if old_e.type == "Other":  # not a relation argument: never replaced
                    assert _mention(new, new_e) == _mention(doc, old_e)
                else:
                    assert _mention(new, new_e) in {m.text for m in pool[old_e.type]}
            # the words outside the mentions are the original's, in order
            inside_old = {i for e in doc.entities for i in range(e.start, e.end)}
            inside_new = {i for e in new.entities for i in range(e.start, e.end)}
            assert [t.text for i, t in enumerate(new.tokens) if i not in inside_new] == \
                [t.text for i, t in enumerate(doc.tokens) if i not in inside_old]


def test_a_string_gets_one_replacement_and_another_string_where_there_is_one() -> None:
    doc = make_doc("r", "Mary met Ann and Mary left .".split(),
                   [(0, 1, "Peop"), (2, 3, "Peop"), (4, 5, "Peop")], [(0, 1, "Kill")])
    pool = mention_pool([doc, *toy_docs()])
    for seed in range(30):
        new = swapped_mentions(doc, pool, random.Random(seed))
        names = [_mention(new, e) for e in new.entities]
        assert names[0] == names[2]  # "Mary" twice: one replacement
        assert names[0] != "Mary" and names[1] != "Ann"  # the pool has other people


def test_overlapping_or_unswappable_documents_are_left_and_counted() -> None:
    nested = make_doc("n", "Bank of Boston fell .".split(), [(0, 3, "Org"), (2, 3, "Loc")], [(0, 1, "OrgBased_In")])
    assert swapped_mentions(nested, mention_pool(toy_docs()), random.Random(0)) is None
    only_other = make_doc("o", "On Monday .".split(), [(1, 2, "Other")], [])
    docs = [*toy_docs(), nested, only_other]
    result = mention_swap_epoch(docs, 1.0, seed=1, epoch=1, pool=mention_pool(toy_docs()))
    assert result.counts == {"swapped": 3, "unchanged": 2}
    assert result.documents[3] is nested and result.documents[4] is only_other


def test_each_epoch_draws_its_documents_from_the_seed() -> None:
    docs = [make_doc(str(i), f"P{i} works for O{i} .".split(), [(0, 1, "Peop"), (3, 4, "Org")], [(0, 1, "Work_For")])
            for i in range(40)]

    def swapped(seed: int, epoch: int) -> list[int]:
        res = mention_swap_epoch(docs, 0.25, seed, epoch)
        return [i for i, d in enumerate(res.documents) if d is not docs[i]]

    assert len(swapped(1, 1)) == 10
    assert swapped(1, 1) == swapped(1, 1)
    assert swapped(1, 1) != swapped(1, 2) or swapped(1, 1) != swapped(2, 1)
    assert mention_swap_epoch(docs, 0.0, 1, 1).documents == docs
    with pytest.raises(ValueError, match="fraction"):
        mention_swap_epoch(docs, 1.5, 1, 1)


def test_config_refuses_a_fraction_outside_zero_to_one() -> None:
    tc = TrainConfig(mention_swap=-0.1)
    with pytest.raises(ValueError, match="mention_swap"):
        tc.validate()


def test_training_with_mention_swap_resumes_exactly_and_trains_other_weights(tmp_path) -> None:
    # the swapped sentences were trained on: without them, other weights
    assert_resumes_exactly_and_changes_training(tmp_path, lambda tc, v: setattr(tc, "mention_swap", v), 0.7, 0.0)
