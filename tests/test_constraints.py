"""The decoding grammar: no sequence it allows is unparseable (hypothesis), and the LogitsProcessor masks
exactly what the grammar refuses."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anchoralign.constraints import GrammarConstraint
from anchoralign.grammar import Grammar, State
from anchoralign.linearize import parse
from anchoralign.types import Document, tokens_from_words

from .test_linearize import VOCAB, source_for

WORDS = "the cat sat on the mat with the big cat".split()  # repeated words: ambiguous continuations


@pytest.mark.parametrize("fmt", ["anchor", "flat"])
@settings(max_examples=200, deadline=None)
@given(choices=st.lists(st.integers(0, 10_000), min_size=1, max_size=80))
def test_every_allowed_sequence_parses(fmt: str, choices: list[int]) -> None:
    src = source_for(WORDS)
    grammar = Grammar(VOCAB, fmt)
    text, tokens = tokens_from_words(WORDS)
    doc = Document("d", text, tokens)
    state, ids = State(), []
    for c in choices:
        allowed = grammar.allowed(state, src)
        assert allowed, state
        tok = allowed[c % len(allowed)]
        ids.append(tok)
        state = grammar.step(state, tok, src)
        if state.phase == "done":
            break
    if state.phase != "done":  # finish the walk: always take end-of-sequence or the first allowed id
        for _ in range(200):
            allowed = grammar.allowed(state, src)
            tok = VOCAB.eos_id if VOCAB.eos_id in allowed else allowed[-1] if state.phase == "mention" else allowed[0]
            ids.append(tok)
            state = grammar.step(state, tok, src)
            if state.phase == "done":
                break
    assert state.phase == "done"
    result = parse(ids, src, VOCAB, doc, fmt)
    assert result.errors == {}
    parsed = result.document
    n = len(parsed.entities)
    assert all(0 <= r.head < n and 0 <= r.tail < n for r in parsed.relations)


def test_processor_masks_what_grammar_refuses() -> None:
    src = source_for(WORDS)
    grammar = Grammar(VOCAB, "anchor")
    m = VOCAB.markers
    the = src.ids[1]
    prefixes = [[0], [0, m["<ent>"]], [0, m["<anchor>"]], [0, m["<ent>"], the], [0, m["<ent>"], the, m["<type>"]]]
    for p in prefixes:
        proc = GrammarConstraint(grammar, [src], num_beams=1)
        out = proc(torch.tensor([p]), torch.zeros(1, 200))
        allowed = set(torch.nonzero(out[0] == 0).flatten().tolist())
        assert torch.isinf(out[0]).sum() == 200 - len(allowed)
        state = State()
        for tok in p[1:]:
            state = grammar.step(state, tok, src)
        assert allowed == set(grammar.allowed(state, src)), p


def test_a_filler_beam_still_has_a_continuation() -> None:
    """Beam search fills its k rows at -inf when fewer than k ids are allowed; such a prefix (here a mention
    piece that occurs nowhere in the input) must still get one finite score, or its row turns to NaN."""
    src = source_for(WORDS)
    grammar = Grammar(VOCAB, "anchor")
    prefix = [0, VOCAB.markers["<anchor>"], 99]  # id 99 is no piece of the input
    out = GrammarConstraint(grammar, [src], num_beams=1)(torch.tensor([prefix]), torch.zeros(1, 200))
    assert torch.nonzero(torch.isfinite(out[0])).flatten().tolist() == [VOCAB.eos_id]


def test_processor_rows_follow_their_beam_item() -> None:
    words_a, words_b = ["alpha", "beta"], ["gamma", "delta"]
    src_a, src_b = source_for(words_a), source_for(words_b)
    # different sources must give different allowed mention starts
    src_b = type(src_b)(tuple(i + 40 if i >= 100 else i for i in src_b.ids), src_b.piece_token)
    grammar = Grammar(VOCAB, "anchor")
    m = VOCAB.markers
    proc = GrammarConstraint(grammar, [src_a, src_b], num_beams=2)
    ids = torch.tensor([[0, m["<ent>"]]] * 4)
    out = proc(ids, torch.zeros(4, 300))
    allowed = [set(torch.nonzero(row == 0).flatten().tolist()) for row in out]
    assert allowed[0] == allowed[1] == {src_a.ids[p] for p in src_a.word_starts()}
    assert allowed[2] == allowed[3] == {src_b.ids[p] for p in src_b.word_starts()}
    assert allowed[0] != allowed[2]


SIGNATURES = {("Peop", "Work_For", "Org"), ("Peop", "Live_In", "Loc"), ("Org", "Based_In", "Loc"), ("Peop", "Kill", "Peop")}


def _walk(grammar: Grammar, src, choices: list[int]) -> list[int]:
    """Follow random allowed ids, then finish by preferring ids that close pieces; never a dead end."""
    m = VOCAB.markers
    closers = [VOCAB.eos_id, m["</anchor>"], m["<type>"], m["<ent>"]]
    state, ids = State(), []
    for step in range(len(choices) + 300):
        allowed = grammar.allowed(state, src)
        assert allowed, (state, ids)  # the constraint never leaves a beam without a continuation
        if step < len(choices):
            tok = allowed[choices[step] % len(allowed)]
        else:
            tok = next((c for c in closers if c in allowed), allowed[0])
        ids.append(tok)
        state = grammar.step(state, tok, src)
        if state.phase == "done":
            return ids
    raise AssertionError("the walk did not finish")


@pytest.mark.parametrize("fmt", ["anchor", "flat"])
@settings(max_examples=200, deadline=None)
@given(choices=st.lists(st.integers(0, 10_000), min_size=1, max_size=80),
       anchor_words=st.sets(st.integers(0, len(WORDS) - 1), min_size=1, max_size=4),
       entity_words=st.sets(st.integers(0, len(WORDS) - 1), max_size=4))
def test_anchor_guided_constraint_guarantees(fmt: str, choices: list[int], anchor_words: set[int],
                                             entity_words: set[int]) -> None:
    base = source_for(WORDS)
    starts = frozenset(p for p in base.word_starts() if base.piece_token[p] in anchor_words)
    src = type(base)(base.ids, base.piece_token, starts, frozenset(entity_words))
    grammar = Grammar(VOCAB, fmt, signatures=SIGNATURES, symmetric={"Kill"}, consistent_types=True,
                      use_anchor_starts=True, entity_coverage=True)
    ids = _walk(grammar, src, choices)
    text, tokens = tokens_from_words(WORDS)
    result = parse(ids, src, VOCAB, Document("d", text, tokens), fmt, grammar=grammar)
    assert result.errors == {}
    assert Grammar(VOCAB, fmt).run(ids, src).errors == {}  # also well-formed for the plain grammar
    doc = result.document
    spans = [e.span for e in doc.entities]
    assert len(spans) == len(set(spans)), "a span was generated with two types"
    inside = {t for a, b in spans for t in range(a, b)}
    assert entity_words <= inside, "ended before covering the tagger's entity starts"
    for r in doc.relations:
        h, t = doc.entities[r.head], doc.entities[r.tail]
        ok = (h.type, r.type, t.type) in SIGNATURES or (r.type == "Kill" and (t.type, r.type, h.type) in SIGNATURES)
        assert ok, (h.type, r.type, t.type)
    if fmt == "anchor":  # every group opens at an anchor candidate
        events = Grammar(VOCAB, fmt).run(ids, src)
        opened = [i for i, tok in enumerate(ids) if tok == VOCAB.markers["<anchor>"]]
        for i in opened:
            first = ids[i + 1]
            assert any(src.ids[p] == first for p in starts)
        assert events.errors == {}


@st.composite
def tagged_spans(draw) -> frozenset:
    """Non-overlapping typed word spans, as the entity tagger's BIO output gives them."""
    out, w = set(), 0
    while w < len(WORDS):
        w += draw(st.integers(0, 3))
        n = draw(st.integers(1, 3))
        if w + n <= len(WORDS) and draw(st.booleans()):
            out.add((w, w + n, draw(st.sampled_from(["Peop", "Org", "Loc"]))))
        w += n
    return frozenset(out)


@pytest.mark.parametrize("fmt", ["anchor", "flat"])
@pytest.mark.parametrize("sigs", [SIGNATURES, None])
@settings(max_examples=200, deadline=None)
@given(choices=st.lists(st.integers(0, 10_000), min_size=1, max_size=80), spans=tagged_spans(),
       anchor_words=st.sets(st.integers(0, len(WORDS) - 1), min_size=1, max_size=4))
def test_tagger_spans_are_the_only_mentions(fmt: str, sigs, choices: list[int], spans: frozenset,
                                            anchor_words: set[int]) -> None:
    base = source_for(WORDS)
    starts = frozenset(p for p in base.word_starts() if base.piece_token[p] in anchor_words)
    src = type(base)(base.ids, base.piece_token, starts, frozenset(a for a, _, _ in spans), spans)
    grammar = Grammar(VOCAB, fmt, signatures=sigs, symmetric={"Kill"}, consistent_types=True,
                      use_anchor_starts=True, entity_coverage=True, tagger_spans=True)
    ids = _walk(grammar, src, choices)  # never a dead end, even when a relation's tail type is not tagged
    text, tokens = tokens_from_words(WORDS)
    result = parse(ids, src, VOCAB, Document("d", text, tokens), fmt, grammar=grammar)
    assert result.errors == {}
    doc = result.document
    assert {(e.start, e.end, e.type) for e in doc.entities} <= spans
    assert {a for a, _, _ in spans} <= {t for e in doc.entities for t in range(e.start, e.end)}  # all covered
    for r in doc.relations:
        h, t = doc.entities[r.head], doc.entities[r.tail]
        assert h.span != t.span, "a relation from an entity to itself"
        if sigs is not None:
            assert (h.type, r.type, t.type) in sigs or (r.type == "Kill" and (t.type, r.type, h.type) in sigs)
    if not spans:
        assert ids == [VOCAB.eos_id]


def test_no_dead_end_on_an_input_without_words() -> None:
    empty = type(source_for(["x"]))((1, 2), (-1, -1))  # [CLS] [SEP]: every character was dropped
    for grammar in (Grammar(VOCAB, "anchor"), Grammar(VOCAB, "flat", signatures=SIGNATURES, consistent_types=True)):
        assert grammar.allowed(State(), empty) == [VOCAB.eos_id]
    base = source_for(WORDS)
    no_candidates = type(base)(base.ids, base.piece_token, frozenset())
    grammar = Grammar(VOCAB, "anchor", use_anchor_starts=True)
    assert VOCAB.markers["<anchor>"] not in grammar.allowed(State(), no_candidates)
    assert VOCAB.markers["<ent>"] in grammar.allowed(State(), no_candidates)


def test_near_the_length_limit_the_sequence_closes_between_pieces() -> None:
    src = source_for(WORDS)
    m = VOCAB.markers
    grammar = Grammar(VOCAB, "anchor", entity_coverage=True)
    covered = type(src)(src.ids, src.piece_token, None, frozenset({1, 2, 3}))
    cat = src.ids[2]  # token 1
    # after a finished standalone entity, with uncovered tagger starts left: <ent> only, unless near the limit
    prefix = [0, m["<ent>"], cat, m["<type>"], *VOCAB.entity_labels["Peop"]]
    far = GrammarConstraint(grammar, [covered], max_length=100, reserve=4)
    near = GrammarConstraint(grammar, [covered], max_length=len(prefix) + 2, reserve=4)
    allowed_far = set(torch.nonzero(far(torch.tensor([prefix]), torch.zeros(1, 200))[0] == 0).flatten().tolist())
    allowed_near = set(torch.nonzero(near(torch.tensor([prefix]), torch.zeros(1, 200))[0] == 0).flatten().tolist())
    assert VOCAB.eos_id not in allowed_far and m["<ent>"] in allowed_far
    assert VOCAB.eos_id in allowed_near


def test_length_limits_per_item_close_each_row_at_its_own_limit() -> None:
    """One limit per batch item: the item near its own limit may end, the other, far from its own, may not;
    a list of the wrong length is refused."""
    src = source_for(WORDS)
    m = VOCAB.markers
    grammar = Grammar(VOCAB, "anchor", entity_coverage=True)
    covered = type(src)(src.ids, src.piece_token, None, frozenset({1, 2, 3}))
    prefix = [0, m["<ent>"], src.ids[2], m["<type>"], *VOCAB.entity_labels["Peop"]]
    both = GrammarConstraint(grammar, [covered, covered], max_length=[100, len(prefix) + 2], reserve=4)
    masked = both(torch.tensor([prefix, prefix]), torch.zeros(2, 200))
    assert masked[0, VOCAB.eos_id] == float("-inf") and masked[1, VOCAB.eos_id] == 0
    with pytest.raises(ValueError, match="2 limits for 1 sources"):
        GrammarConstraint(grammar, [covered], max_length=[100, 100])


def test_a_start_offered_near_the_limit_parses_though_coverage_would_not_offer_it() -> None:
    # near the length limit the constraint offers mention starts without entity coverage (closing_options);
    # stepping over such a start must keep it as a candidate, else the mention dead-ends and the output breaks
    src = source_for(WORDS)
    m = VOCAB.markers
    grammar = Grammar(VOCAB, "anchor", entity_coverage=True)
    covered = type(src)(src.ids, src.piece_token, None, frozenset({1, 5}))  # tagger starts: tokens 1 and 5
    state = grammar.step(State(), m["<ent>"], covered)
    sat = 3  # piece of token 2, "sat": no tagger start, so coverage offers only tokens 1 and 5 ...
    assert sat not in grammar.options(state, covered)[1]
    assert sat in grammar.closing_options(state, covered)[1]  # ... but near the limit any start is offered
    state = grammar.step(state, covered.ids[sat], covered, pos=sat)
    assert state.cands == (sat,)
    ids, positions = grammar.closing_options(state, covered)
    assert m["<type>"] in ids  # the one-word mention can close
