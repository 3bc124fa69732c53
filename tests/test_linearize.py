"""linearize/parse are exact inverses; malformed generations are counted, never dropped silently."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchoralign.anchors import gold_anchor_groups, head_groups
from anchoralign.grammar import Source, TargetVocab
from anchoralign.linearize import canonical, linearize, parse
from anchoralign.types import Document, Relation, tokens_from_words

# A hand-made vocabulary: ids 0-3 special, 10-17 markers, 20+ label pieces, 100+ word pieces.
MARK = {m: 10 + i for i, m in enumerate(("<anchor>", "</anchor>", "<rel>", "<rel-inv>", "<tail>", "<type>", "<ent>", "<head>"))}
VOCAB = TargetVocab(
    markers=MARK,
    entity_labels={"Peop": (20,), "Org": (21,), "Loc": (22,), "OrgLoc": (21, 22)},  # a label that extends another
    relation_labels={"Work_For": (30, 31), "Live_In": (32, 33), "Based_In": (34, 33), "Kill": (35,)},
    eos_id=3,
)
ETYPES = list(VOCAB.entity_labels)
RTYPES = list(VOCAB.relation_labels)


def source_for(words: list[str]) -> Source:
    """[CLS] + one or two pieces per word (the same word always gets the same ids) + [SEP]."""
    ids, piece_token = [1], [-1]
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        base = 100 + 2 * index.setdefault(w, len(index))
        for k in range(1 + (len(w) > 3)):
            ids.append(base + k)
            piece_token.append(i)
    return Source(tuple(ids + [2]), tuple(piece_token + [-1]))


@st.composite
def documents(draw) -> Document:
    n = draw(st.integers(1, 12))
    # distinct words, so that every mention has one placement (repeats are tested separately)
    words = [f"w{i}x{'y' * draw(st.integers(0, 3))}" for i in range(n)]
    text, tokens = tokens_from_words(words)
    doc = Document("d", text, tokens)
    spans = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 3), st.sampled_from(ETYPES)),
                          max_size=6, unique_by=lambda x: (x[0], x[1])))
    ents = []
    seen = set()
    for s, length, t in spans:
        e = min(n, s + length)
        if (s, e) not in seen:
            seen.add((s, e))
            ents.append(doc.make_entity(s, e, t))
    rels = set()
    if ents:
        for h, t, r in draw(st.lists(st.tuples(st.integers(0, len(ents) - 1), st.integers(0, len(ents) - 1),
                                               st.sampled_from(RTYPES)), max_size=6)):
            rels.add((h, t, r))
    return doc.with_annotations(ents, [Relation(h, t, r) for h, t, r in sorted(rels)])


def _mentions_unique(doc: Document, src: Source) -> bool:
    pieces = [src.ids[slice(*src.span_pieces(e.start, e.end))] for e in doc.entities]
    return all(src.occurrences(p)[:1] == [src.span_pieces(e.start, e.end)[0]] for p, e in zip(pieces, doc.entities, strict=True))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.sampled_from([("anchor", "anchor"), ("anchor", "anchor-head"), ("anchor", "head"), ("flat", "anchor")]))
def test_parse_inverts_linearize(doc: Document, fmt_grouping) -> None:
    fmt, grouping = fmt_grouping
    src = source_for(doc.words)
    assert _mentions_unique(doc, src)
    lin = linearize(doc, src, VOCAB, fmt, grouping)
    assert lin.skipped == {}
    parsed = parse(lin.ids, src, VOCAB, doc, fmt)
    assert parsed.errors == {}
    assert canonical(parsed.document) == canonical(doc)
    for e in parsed.document.entities:  # character offsets are exact
        assert parsed.document.text[e.char_start : e.char_end] == " ".join(doc.words[e.start : e.end])


def test_greedy_anchor_cover() -> None:
    text, tokens = tokens_from_words("A B C D E".split())
    doc = Document("x", text, tokens)
    ents = [doc.make_entity(i, i + 1, "Peop") for i in range(5)]
    # C touches three relations, A one (A-B), B two (A-B, B-D); E is in none
    rels = [Relation(2, 0, "Kill"), Relation(2, 3, "Kill"), Relation(1, 2, "Kill"), Relation(0, 1, "Kill")]
    doc = doc.with_annotations(ents, rels)
    groups = gold_anchor_groups(doc)
    assert [(g.anchor, g.relations) for g in groups] == [(0, (3,)), (2, (0, 1, 2))]
    assert {g.anchor for g in head_groups(doc)} == {0, 1, 2}


def test_tie_prefers_earlier_mention() -> None:
    text, tokens = tokens_from_words("A B".split())
    doc = Document("x", text, tokens)
    doc = doc.with_annotations([doc.make_entity(1, 2, "Org"), doc.make_entity(0, 1, "Peop")], [Relation(1, 0, "Work_For")])
    assert [g.anchor for g in gold_anchor_groups(doc)] == [1]  # entity 1 starts at token 0
    assert [g.anchor for g in gold_anchor_groups(doc, "head")] == [1]  # it is also the relation's head


def test_head_ties_prefer_the_relation_head() -> None:
    text, tokens = tokens_from_words("In Boston Acme works".split())
    doc = Document("x", text, tokens)
    doc = doc.with_annotations([doc.make_entity(1, 2, "Loc"), doc.make_entity(2, 3, "Org")], [Relation(1, 0, "Based_In")])
    assert [g.anchor for g in gold_anchor_groups(doc)] == [0]  # text order: the earlier mention, written <rel-inv>
    assert [g.anchor for g in gold_anchor_groups(doc, "head")] == [1]  # head first: the organisation
    src = source_for(doc.words)
    inv, fwd = (linearize(doc, src, VOCAB, "anchor", g).ids for g in ("anchor", "anchor-head"))
    assert MARK["<rel-inv>"] in inv and MARK["<rel-inv>"] not in fwd and MARK["<rel>"] in fwd
    # a strict majority still wins over the tie rule: C covers two relations as their tail
    text, tokens = tokens_from_words("A B C".split())
    doc = Document("y", text, tokens)
    doc = doc.with_annotations([doc.make_entity(i, i + 1, "Peop") for i in range(3)],
                               [Relation(0, 2, "Kill"), Relation(1, 2, "Kill")])
    assert [(g.anchor, g.relations) for g in gold_anchor_groups(doc, "head")] == [(2, (0, 1))]


def test_repeated_mention_is_counted_when_ambiguous() -> None:
    words = "Paris and Paris".split()
    text, tokens = tokens_from_words(words)
    doc = Document("x", text, tokens)
    doc = doc.with_annotations([doc.make_entity(2, 3, "Loc")], [])
    src = source_for(words)
    lin = linearize(doc, src, VOCAB)
    assert lin.skipped == {"ambiguous_mention": 1}
    assert [e.span for e in parse(lin.ids, src, VOCAB, doc).document.entities] == [(0, 1)]


def test_truncated_entities_are_counted() -> None:
    words = "a b c d".split()
    text, tokens = tokens_from_words(words)
    doc = Document("x", text, tokens)
    doc = doc.with_annotations([doc.make_entity(0, 1, "Peop"), doc.make_entity(3, 4, "Loc")], [Relation(0, 1, "Live_In")])
    full = source_for(words)
    cut = Source(full.ids[:3] + (2,), full.piece_token[:3] + (-1,))  # the last words were truncated away
    lin = linearize(doc, cut, VOCAB)
    assert lin.skipped["truncated_entity"] >= 1 and lin.skipped["truncated_relation"] == 1


def test_malformed_generations_are_counted() -> None:
    words = ["alpha", "beta", "gamma"]
    text, tokens = tokens_from_words(words)
    doc = Document("x", text, tokens)
    src = source_for(words)
    a = src.ids[1:3]  # "alpha" (two pieces)
    m = MARK
    cases = {
        "unplaceable_mention": [m["<ent>"], 99, m["<type>"], 20, 3],
        "bad_entity_type": [m["<ent>"], *a, m["<type>"], 33, 3],
        "unexpected_marker": [m["<ent>"], m["<rel>"], 3],
        "truncated": [m["<anchor>"], *a, m["<type>"], 20, m["<rel>"]],
        "bad_relation_label": [m["<anchor>"], *a, m["<type>"], 20, m["<rel>"], 20, 3],
    }
    for kind, ids in cases.items():
        result = parse(ids, src, VOCAB, doc)
        assert kind in result.errors, (kind, result.errors)
    # a good entity after a broken one is still read
    ok = parse([m["<ent>"], 99, m["<type>"], 20, m["<ent>"], *a, m["<type>"], 20, 3], src, VOCAB, doc)
    assert ok.errors == {"unplaceable_mention": 1}
    assert [(e.span, e.type) for e in ok.document.entities] == [((0, 1), "Peop")]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.sampled_from([("anchor", "anchor-head"), ("anchor", "head"), ("flat", "anchor")]),
       st.integers(0, 2**16))
def test_any_drawn_target_order_parses_to_the_same_document(doc: Document, fmt_grouping, seed: int) -> None:
    import random

    fmt, grouping = fmt_grouping
    src = source_for(doc.words)
    lin = linearize(doc, src, VOCAB, fmt, grouping, random.Random(seed))
    parsed = parse(lin.ids, src, VOCAB, doc, fmt, positions=lin.positions)
    assert parsed.errors == {}
    assert canonical(parsed.document) == canonical(doc)
    assert sorted(lin.ids) == sorted(linearize(doc, src, VOCAB, fmt, grouping).ids)  # the same pieces, reordered


def test_drawn_orders_differ_and_repeat_for_a_seed() -> None:
    import random

    words = "a b c d e f g h".split()
    text, tokens = tokens_from_words(words)
    doc = Document("d", text, tokens)
    doc.entities = [doc.make_entity(i, i + 1, "Peop") for i in range(8)]
    doc.relations = [Relation(0, 1, "Kill"), Relation(2, 3, "Kill"), Relation(4, 5, "Kill")]
    src = source_for(words)
    orders = {tuple(linearize(doc, src, VOCAB, "anchor", "anchor-head", random.Random(s)).ids) for s in range(20)}
    assert len(orders) > 5  # 3 groups and 2 standalone entities: 12 orders
    assert linearize(doc, src, VOCAB, "anchor", "anchor-head", random.Random(7)).ids == \
        linearize(doc, src, VOCAB, "anchor", "anchor-head", random.Random(7)).ids
