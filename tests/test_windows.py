"""Windows over long text, merging the windows' results, and the confidence threshold. Torch-free."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchoralign.data.tokenize import tokenize_text
from anchoralign.extraction import ExtractedEntity, ExtractedRelation, Extraction, merge
from anchoralign.types import Document, Relation, Token
from anchoralign.windows import passage_shape, sentence_ranges, windows


def _sentences(text: str) -> list[str]:
    tokens = tokenize_text(text)
    return [" ".join(t.text for t in tokens[a:b]) for a, b in sentence_ranges(tokens, text)]


def test_sentences_end_at_punctuation_not_at_abbreviations() -> None:
    text = 'Mr. Smith met Dr. J. Jones in the U.S. on Dec. 13. He said "no." Then he left!\nNew line here'
    assert _sentences(text) == [
        "Mr . Smith met Dr . J . Jones in the U . S . on Dec . 13 .",
        'He said " no . "',
        "Then he left !",
        "New line here",
    ]
    assert _sentences("他来了。她走了！好") == ["他 来 了 。", "她 走 了 ！", "好"]


def test_pretokenized_periods_on_words_end_sentences_before_a_capital() -> None:
    words = "The company said. Acme Corp was sold on Dec. 3 in the U.S. yesterday .".split()
    tokens, pos = [], 0
    for w in words:
        tokens.append(Token(w, pos, pos + len(w)))
        pos += len(w) + 1
    got = [" ".join(t.text for t in tokens[a:b]) for a, b in sentence_ranges(tokens)]
    assert got == ["The company said.", "Acme Corp was sold on Dec. 3 in the U.S. yesterday ."]


def _toks(n_sent: int, length: int) -> list[Token]:
    out, pos = [], 0
    for s in range(n_sent):
        for i in range(length):
            w = "." if i == length - 1 else f"w{s}x{i}"
            out.append(Token(w, pos, pos + len(w)))
            pos += len(w) + 1
    return out


def test_a_text_within_a_training_passage_is_one_window() -> None:
    tokens = _toks(3, 5)
    assert windows(tokens, max_tokens=15, max_sentences=1).ranges == [(0, 15)]


def test_one_sentence_windows_do_not_overlap_and_cover_everything() -> None:
    tokens = _toks(4, 5)
    w = windows(tokens, max_tokens=8, max_sentences=1)
    assert w.ranges == [(0, 5), (5, 10), (10, 15), (15, 20)] and w.cut == 0


def test_multi_sentence_windows_read_every_neighbouring_pair_together() -> None:
    tokens = _toks(6, 5)
    w = windows(tokens, max_tokens=12)
    sents = sentence_ranges(tokens)
    for (a, _), (_, b) in zip(sents, sents[1:], strict=False):
        assert any(s <= a and b <= e for s, e in w.ranges), (a, b, w.ranges)


def test_a_sentence_longer_than_a_window_is_cut_in_overlapping_pieces_and_counted() -> None:
    tokens = _toks(1, 25)
    w = windows(tokens, max_tokens=10)
    assert w.cut == 1
    assert w.ranges[0][0] == 0 and w.ranges[-1][1] == 25
    for (a1, b1), (a2, _) in zip(w.ranges, w.ranges[1:], strict=False):
        assert a2 < b1 and a2 > a1  # overlapping, advancing


def test_windows_respect_the_piece_budget() -> None:
    tokens = _toks(3, 4)
    sizes = [3] * len(tokens)
    w = windows(tokens, max_tokens=100, sizes=sizes, max_size=12, max_sentences=None)
    assert all(sum(sizes[a:b]) <= 12 for a, b in w.ranges)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    max_tokens=st.integers(1, 40),
    max_sentences=st.one_of(st.none(), st.integers(1, 4)),
)
def test_windows_cover_every_token_within_limits(lengths, max_tokens, max_sentences) -> None:
    tokens, pos = [], 0
    for n in lengths:
        for i in range(n):
            w = "." if i == n - 1 else "a"
            tokens.append(Token(w, pos, pos + 1))
            pos += 2
    w = windows(tokens, max_tokens=max_tokens, max_sentences=max_sentences)
    covered = set()
    for a, b in w.ranges:
        assert 0 <= a < b <= len(tokens) and b - a <= max_tokens
        covered |= set(range(a, b))
    assert covered == set(range(len(tokens)))
    assert w.ranges == sorted(w.ranges)


def test_passage_shape() -> None:
    docs = [Document(str(i), "", _toks(1 + (i == 0), 3)) for i in range(30)]
    assert passage_shape(docs) == {"tokens": 6, "sentences": 1}


def _doc(text: str, spans: list[tuple[int, int, str, float]], rels: list[tuple[int, int, str, float]]) -> Document:
    tokens = tokenize_text(text)
    doc = Document("d", text, tokens)
    ents = []
    for a, b, t, s in spans:
        ta = next(i for i, tok in enumerate(tokens) if tok.start == a)
        tb = next(i for i, tok in enumerate(tokens) if tok.end == b) + 1
        ents.append(doc.make_entity(ta, tb, t, s))
    return doc.with_annotations(ents, [Relation(h, t, r, s) for h, t, r, s in rels])


def test_merge_takes_the_best_score_per_span_and_per_relation() -> None:
    text = "John Smith works for Acme . Acme is in Boston ."
    w1 = _doc(text, [(0, 10, "Peop", 0.9), (21, 25, "Org", 0.6)], [(0, 1, "Work_For", 0.5)])
    w2 = _doc(text, [(21, 25, "Loc", 0.8), (39, 45, "Loc", 0.7), (0, 10, "Peop", 0.4)],
              [(2, 0, "Work_For", 0.7), (0, 1, "Located_In", 0.3)])
    out = merge(text, [w1, w2])
    assert [(e.text, e.type, e.score) for e in out.entities] == [
        ("John Smith", "Peop", 0.9), ("Acme", "Loc", 0.8), ("Boston", "Loc", 0.7)]
    assert {(out.entities[r.head].text, out.entities[r.tail].text, r.type, r.score) for r in out.relations} == {
        ("John Smith", "Acme", "Work_For", 0.7), ("Acme", "Boston", "Located_In", 0.3)}
    assert out.windows == 2


def test_threshold_keeps_relations_with_their_arguments() -> None:
    ents = [ExtractedEntity(0, 0, 4, "Peop", "John", 0.3), ExtractedEntity(1, 10, 14, "Org", "Acme", 0.9),
            ExtractedEntity(2, 20, 26, "Loc", "Boston", 0.2)]
    rels = [ExtractedRelation(0, 1, "Work_For", 0.6), ExtractedRelation(1, 2, "OrgBased_In", 0.1)]
    ex = Extraction("x" * 30, ents, rels, {"truncated": 0}, 1, 0, 0)
    kept = ex.filtered(0.5)
    assert [e.text for e in kept.entities] == ["John", "Acme"]  # John only because Work_For needs him
    assert [(r.head, r.tail, r.type) for r in kept.relations] == [(0, 1, "Work_For")]
    assert [e.id for e in kept.entities] == [0, 1]
    assert ex.filtered(0.0) is ex
    assert ex.filtered(0.95).to_dict()["entities"] == []
    d = kept.to_dict()
    assert set(d) == {"text", "entities", "relations", "errors", "windows", "cut", "truncated"}


@pytest.mark.parametrize("bad", [0, -3])
def test_window_limits_must_be_positive(bad) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        windows(_toks(1, 3), max_tokens=bad)


def test_a_line_that_fits_is_one_window_for_a_sentence_level_model() -> None:
    text = "He said no. Then he left.\nAcme Corp. was sold. Later.\n" + " ".join(["word"] * 30) + " . End ."
    tokens = tokenize_text(text)
    w = windows(tokens, max_tokens=12, max_sentences=1, text=text)
    got = [" ".join(t.text for t in tokens[a:b]) for a, b in w.ranges]
    assert got[:2] == ["He said no . Then he left .", "Acme Corp . was sold . Later ."]
    assert got[-1] == "End ." and w.cut == 1  # the 31-token sentence is cut; its line did not fit
