"""Confidence scores: each entity's and relation's score is the product of the step probabilities of the ids
that wrote it. Checked against an attribution computed here from the target grammar's definition (not with
the grammar's own bookkeeping), on every document linearize can produce."""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchoralign.linearize import linearize, parse

from .test_linearize import MARK, VOCAB, documents, source_for

OPENERS = {MARK["<ent>"], MARK["<anchor>"], MARK["<head>"], MARK["<tail>"]}
STOPS = set(MARK.values()) | {VOCAB.eos_id}


def _attribute(ids: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
    """Independent reading of a well-formed target: (entity step ranges in order of appearance, and per
    relation (anchor or head range start, its end, relation range start) with the relation range ending where
    its tail's range ends)."""
    ents: list[tuple[int, int]] = []
    rels: list[tuple[int, int, int]] = []
    head = (0, 0)
    rel_start = None
    i = 0
    while i < len(ids):
        tok = ids[i]
        if tok in (MARK["<rel>"], MARK["<rel-inv>"]):
            rel_start = i
        if tok in OPENERS:
            start = i
            j = ids.index(MARK["<type>"], i + 1) + 1
            while ids[j] not in STOPS:  # the type label's pieces
                j += 1
            ents.append((start, j))
            if tok in (MARK["<anchor>"], MARK["<head>"]):
                head = (start, j)
            if tok == MARK["<tail>"]:  # a relation's own range runs from its marker to its tail's end
                rels.append((head[0], head[1], rel_start))
            i = j
            continue
        i += 1
    return ents, rels


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.sampled_from(["anchor", "flat"]), st.integers(0, 10_000))
def test_scores_are_products_of_the_steps_that_wrote_each_piece(doc, fmt, seed) -> None:
    src = source_for(doc.words)
    ids = linearize(doc, src, VOCAB, fmt).ids
    rng = random.Random(seed)
    lp = [math.log(rng.uniform(0.05, 1.0)) for _ in ids]
    pred = parse(ids, src, VOCAB, doc, fmt, log_probs=lp).document

    ents, rels = _attribute(ids)
    events = parse(ids, src, VOCAB, doc, fmt).document  # same document, unscored
    assert [e.score for e in events.entities] == [None] * len(events.entities)

    def prob(a: int, b: int) -> float:
        return math.exp(sum(lp[a:b]))

    # every entity's score is the best of its occurrences' probabilities
    expected_entity = sorted(prob(a, b) for a, b in ents)
    got = sorted(e.score for e in pred.entities)
    # duplicates (an entity written twice) keep the best, so compare each predicted score with some occurrence
    for s in got:
        assert any(math.isclose(s, x, rel_tol=1e-9) for x in expected_entity)
    assert all(0.0 < e.score <= 1.0 for e in pred.entities)
    # every relation's score is (its anchor or head's steps) x (its marker ... its tail's type label)
    tail_ends = [b for (a, b), tok in zip(ents, [ids[a] for a, _ in ents], strict=True) if tok == MARK["<tail>"]]
    expected_rel = [prob(h0, h1) * prob(r0, t_end) for (h0, h1, r0), t_end in zip(rels, tail_ends, strict=True)]
    for r in pred.relations:
        assert any(math.isclose(r.score, x, rel_tol=1e-9) for x in expected_rel), (r, expected_rel)
    assert len(pred.relations) <= len(expected_rel)


def test_a_relation_never_scores_above_its_anchor() -> None:
    from .tiny import make_doc

    doc = make_doc("a", "John Smith works for Acme Corp in Boston .".split(),
                   [(0, 2, "Peop"), (4, 6, "Org"), (7, 8, "Loc")], [(0, 1, "Live_In"), (1, 2, "Based_In")])
    src = source_for(doc.words)
    ids = linearize(doc, src, VOCAB, "anchor").ids
    lp = [math.log(0.9)] * len(ids)
    pred = parse(ids, src, VOCAB, doc, "anchor", log_probs=lp).document
    for r in pred.relations:
        ends = (pred.entities[r.head].score, pred.entities[r.tail].score)
        assert r.score <= max(ends) + 1e-12
