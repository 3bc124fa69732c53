"""Readers: counts equal to shared/data/PROVENANCE.md, exact offsets, format rules on tiny files, properties."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anchoralign.data import (
    load_split,
    read_brat,
    read_casrel,
    read_duie,
    read_dygie,
    read_jsonl,
    read_spert,
    tokenize_text,
)
from anchoralign.data.base import ReadResult, TokenIndex
from anchoralign.data.brat_ann import parse_ann
from anchoralign.data.passages import pack_passages
from anchoralign.types import Document, char_to_token_span, token_to_char_span, tokens_from_words

SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def loaded(data_dir: Path):
    """Each (dataset, split) read once per module."""
    cache: dict[tuple[str, str], ReadResult] = {}

    def get(name: str, split: str) -> ReadResult:
        if (name, split) not in cache:
            cache[name, split] = load_split(name, split, data_dir)
        return cache[name, split]

    return get


def n_entities(result: ReadResult) -> int:
    return sum(len(d.entities) for d in result.documents)


def n_relations(result: ReadResult) -> int:
    return sum(len(d.relations) for d in result.documents)


# -- CoNLL04 -----------------------------------------------------------------------------------------------

CONLL04 = {  # sentences, tokens, entities (Loc, Org, Peop, Other), relations by type
    "train": (922, 26525, (1219, 616, 1087, 455), dict(Work_For=256, Kill=179, OrgBased_In=271, Live_In=330, Located_In=247)),
    "dev": (231, 6993, (322, 170, 283, 118), dict(Work_For=69, Kill=42, OrgBased_In=76, Live_In=91, Located_In=65)),
    "test": (288, 8336, (427, 198, 321, 133), dict(Work_For=76, Kill=47, OrgBased_In=105, Live_In=100, Located_In=94)),
}  # fmt: skip


@pytest.mark.parametrize("split", SPLITS)
def test_conll04_counts(loaded, split):
    sents, tokens, ents, rels = CONLL04[split]
    r = loaded("conll04", split)
    assert r.source_documents == len(r.documents) == sents
    assert sum(len(d.tokens) for d in r.documents) == tokens
    by_type = Counter(e.type for d in r.documents for e in d.entities)
    assert (by_type["Loc"], by_type["Org"], by_type["Peop"], by_type["Other"]) == ents
    assert r.source_entities == n_entities(r) == sum(ents)
    assert Counter(x.type for d in r.documents for x in d.relations) == rels
    assert r.source_relations == n_relations(r) == sum(rels.values())
    assert r.warnings == {}


def test_spert_char_offsets_exact(loaded):
    for name, split in [("conll04", "train"), ("scierc", "dev"), ("ade", "full")]:
        for doc in loaded(name, split).documents:
            assert all(doc.text[t.start : t.end] == t.text for t in doc.tokens)
            for e in doc.entities:
                assert doc.text[e.char_start : e.char_end] == " ".join(doc.words[e.start : e.end])
                assert (e.char_start, e.char_end) == token_to_char_span(doc.tokens, e.start, e.end)


# -- ADE ---------------------------------------------------------------------------------------------------

ADE_TEST_RELATIONS = (666, 724, 688, 657, 648, 732, 666, 704, 688, 648)


def test_ade_full(loaded):
    r = loaded("ade", "full")
    assert r.source_documents == 4272
    assert sum(len(d.tokens) for d in r.documents) == 90714
    assert Counter(e.type for d in r.documents for e in d.entities) == {"Adverse-Effect": 5776, "Drug": 5063}
    assert r.source_relations == n_relations(r) == 6821
    assert {x.type for d in r.documents for x in d.relations} == {"Adverse-Effect"}


def test_ade_folds(loaded):
    full = Counter(d.id for d in loaded("ade", "full").documents)
    test_ids: Counter = Counter()
    for i in range(10):
        train, test = loaded("ade", f"fold{i}-train"), loaded("ade", f"fold{i}-test")
        assert (train.source_documents, test.source_documents) == ((3845, 427) if i < 9 else (3843, 429))
        assert test.source_relations == n_relations(test) == ADE_TEST_RELATIONS[i]
        assert train.source_relations + test.source_relations == 6821
        assert train.source_entities + test.source_entities == 10839
        assert not {d.id for d in train.documents} & {d.id for d in test.documents}
        test_ids.update(d.id for d in test.documents)
    assert test_ids == full  # the ten test folds are disjoint and together are ade_full.json


# -- SciERC ------------------------------------------------------------------------------------------------

SCIERC = {"train": (1861, 45412, 5598, 3219), "dev": (275, 6521, 811, 455), "test": (551, 13401, 1685, 974)}
SCIERC_TYPES = {  # train, dev, test
    "Method": (1445, 216, 430), "OtherScientificTerm": (1536, 212, 522), "Task": (894, 127, 263),
    "Generic": (950, 147, 241), "Material": (542, 71, 158), "Metric": (231, 38, 71),
}  # fmt: skip


@pytest.mark.parametrize("split", SPLITS)
def test_scierc_both_formats(loaded, split):
    sents, tokens, ents, rels = SCIERC[split]
    spert, dygie = loaded("scierc", split), loaded("scierc_doc", split)
    assert dygie.source_documents == {"train": 350, "dev": 50, "test": 100}[split]  # abstracts
    for r in (spert, dygie):
        assert len(r.documents) == sents
        assert r is dygie or r.source_documents == sents
        assert sum(len(d.tokens) for d in r.documents) == tokens
        assert r.source_entities == n_entities(r) == ents
        assert r.source_relations == rels == n_relations(r) + r.warnings.get("duplicate_relation_merged", 0)
        k = SPLITS.index(split)
        assert Counter(e.type for d in r.documents for e in d.entities) == {
            t: c[k] for t, c in SCIERC_TYPES.items()
        }
    assert [(d.text, d.tokens, d.entities, d.relations) for d in spert.documents] == [
        (d.text, d.tokens, d.entities, d.relations) for d in dygie.documents
    ]
    assert dygie.documents[0].id.count(":") == 1  # doc_key:sentence


def test_scierc_duplicate_relations_counted(loaded):
    assert loaded("scierc", "train").warnings == {"duplicate_relation_merged": 4}


# -- WebNLG ------------------------------------------------------------------------------------------------

WEBNLG = {"webnlg": ((5019, 11313, 211), (500, 1224, 144), (703, 1607, 149)),
          "webnlg_star": ((5019, 11776, 170), (500, 1118, 110), (703, 1591, 125))}  # fmt: skip


@pytest.mark.parametrize("name", WEBNLG)
def test_webnlg_counts(loaded, name):
    all_types: set[str] = set()
    for split, (sents, triples, types) in zip(SPLITS, WEBNLG[name], strict=True):
        r = loaded(name, split)
        assert r.source_documents == sents
        assert r.source_relations == triples == sum(len(d.meta["triples"]) for d in r.documents)
        assert n_relations(r) + r.warnings.get("duplicate_relation_merged", 0) == triples  # nothing else lost
        assert set(r.warnings) <= {"duplicate_relation_merged"}
        rel_types = {t[1] for d in r.documents for t in d.meta["triples"]}
        assert len(rel_types) == types == len({x.type for d in r.documents for x in d.relations})
        all_types |= rel_types
        for doc in r.documents:
            strings = {s for t in doc.meta["triples"] for s in (t[0], t[2])}
            assert {doc.entity_text(e) for e in doc.entities} == strings  # every string located, exactly
            assert doc.text.split(" ") == doc.words
    assert len(all_types) == (216 if name == "webnlg" else 171)


def test_webnlg_star_self_relation_kept(loaded):
    docs = loaded("webnlg_star", "train").documents
    assert any(x.head == x.tail for d in docs for x in d.relations)


# -- Chinese Literature ------------------------------------------------------------------------------------

SANWEN = {  # docs, characters, T lines, R lines, coreference sets, discontinuous
    "train": (695, 1188780, 124992, 13464, 6723, 2937),
    "dev": (58, 113036, 11924, 1347, 730, 283),
    "test": (84, 154771, 16811, 1675, 900, 378),
}


@pytest.mark.parametrize("split", SPLITS)
def test_chinese_literature_counts_and_no_silent_loss(loaded, data_dir, split):
    docs, chars, mentions, relations, coref, discontinuous = SANWEN[split]
    r = loaded("chinese_literature", split)
    w = Counter(r.warnings)
    assert (r.source_documents, r.source_entities, r.source_relations) == (docs, mentions, relations)
    assert (
        sum(
            len(p.read_text(encoding="utf-8"))
            for p in (data_dir / "chinese_literature" / split).glob("*.txt")
        )
        == chars
    )
    assert (w["ignored_coreference"], w["discontinuous_entity"]) == (coref, discontinuous)
    # every R line is kept, or counted: cross-passage, argument dropped, or a merged duplicate
    lost = w["cross_passage_relation"] + w["relation_to_dropped_entity"] + w["duplicate_relation_merged"]
    assert n_relations(r) + lost == relations
    dropped = w["entity_crosses_passage"] + w["whitespace_entity_dropped"] + w["duplicate_entity_merged"]
    assert n_entities(r) + dropped == mentions
    assert all(len(d.text) <= 250 for d in r.documents)
    assert all(len(d.tokens) == sum(not c.isspace() for c in d.text) for d in r.documents)


def test_chinese_literature_offsets_are_the_source(loaded, data_dir):
    """Dev has no shifted offsets: every entity is an annotated span of its .txt, at the passage offset."""
    folder = data_dir / "chinese_literature" / "dev"
    spans = set()
    for ann in folder.glob("*.ann"):
        text = ann.with_suffix(".txt").read_text(encoding="utf-8")
        for e in parse_ann(ann, text, ReadResult())[0]:
            spans.add((ann.stem, e.start, e.end, e.type))
    texts = {p.stem: p.read_text(encoding="utf-8") for p in folder.glob("*.txt")}
    for doc in loaded("chinese_literature", "dev").documents:
        off, stem = doc.meta["offset"], doc.meta["doc_id"]
        assert texts[stem][off : off + len(doc.text)] == doc.text
        for e in doc.entities:
            assert (stem, off + e.char_start, off + e.char_end, e.type) in spans
            assert doc.entity_text(e) == texts[stem][off + e.char_start : off + e.char_end]


# -- format rules on tiny files ----------------------------------------------------------------------------


def write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_spert_merges_duplicate_entities(tmp_path):
    rec = {"tokens": ["John", "lives", "in", "Paris"], "orig_id": 7,
           "entities": [{"type": "Peop", "start": 0, "end": 1}, {"type": "Loc", "start": 3, "end": 4},
                        {"type": "Loc", "start": 3, "end": 4}],
           "relations": [{"type": "Live_In", "head": 0, "tail": 1}, {"type": "Live_In", "head": 0, "tail": 2}]}  # fmt: skip
    r = read_spert(write(tmp_path / "a.json", [rec]))
    doc = r.documents[0]
    assert doc.id == "7" and doc.text == "John lives in Paris"
    assert [(e.start, e.end, e.type) for e in doc.entities] == [(0, 1, "Peop"), (3, 4, "Loc")]
    assert [(x.head, x.tail) for x in doc.relations] == [(0, 1)]
    assert r.warnings == {"duplicate_entity_merged": 1, "duplicate_relation_merged": 1}
    assert (r.source_entities, r.source_relations) == (3, 2)


def test_dygie_inclusive_document_offsets(tmp_path):
    rec = {"doc_key": "D1", "sentences": [["A", "b", "."], ["We", "use", "-LRB-", "X", "-RRB-", "."]],
           "ner": [[[0, 0, "Task"]], [[6, 6, "Method"], [3, 3, "Generic"]]],
           "relations": [[], [[3, 3, 6, 6, "USED-FOR"]]]}  # fmt: skip
    r = read_dygie(write(tmp_path / "d.json", json.dumps(rec) + "\n\n"))
    assert [d.id for d in r.documents] == ["D1:0", "D1:1"]
    doc = r.documents[1]
    assert doc.text == "We use ( X ) ."
    assert [(e.start, e.end) for e in doc.entities] == [(3, 4), (0, 1)]  # local, end exclusive
    assert doc.relations[0].type == "USED-FOR" and doc.entities[doc.relations[0].head].type == "Generic"


def test_casrel_location_rule(tmp_path):
    recs = [{"text": "Texasville is in Texas , USA .",
             "triple_list": [["Texas", "state", "Texas"], ["Texasville", "country", "USA"],
                             ["ville", "x", "USA"], ["Ohio", "y", "USA"]]}]  # fmt: skip
    r = read_casrel(write(tmp_path / "c.json", recs))
    doc = r.documents[0]
    ents = {doc.entity_text(e): e for e in doc.entities}
    assert ents["Texas"].start == 3  # the first token-aligned occurrence, not inside "Texasville"
    assert (
        doc.entity_text(doc.entities[doc.relations[0].head])
        == "Texas"
        == doc.entity_text(doc.entities[doc.relations[0].tail])
    )
    assert r.warnings == {
        "unaligned_string_widened": 1,  # "ville", widened to the token "Texasville"...
        "duplicate_entity_merged": 1,  # ...which is already an entity
        "unlocated_string": 1,
        "dropped_triple": 1,
    }
    assert len(doc.relations) == 3 and len(doc.meta["triples"]) == r.source_relations == 4
    assert r.source_entities == 4  # distinct located strings: Texas, Texasville, USA, ville


def write_brat(folder: Path, stem: str, text: str, ann: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{stem}.txt").write_text(text, encoding="utf-8")
    (folder / f"{stem}.ann").write_text(ann, encoding="utf-8")


def test_brat_rules(tmp_path):
    text = "我和妈妈去北京。她很高兴！\n我\n们回家了。"
    ann = ("T1\tPerson 0 1\t我\nT2\tPerson 2 4\t妈妈\nT3\tLocation 5 7\t北京\nT4\tPerson 8 9\t她\n"
           "T5\tPerson 14 15;16 17\t我 们\nT6\tThing 10 15\t高兴！\n我\nR1\tLocated Arg1:T2 Arg2:T3\t\n"
           "R2\tSocial Arg1:T4 Arg2:T5\n*\tCoreference T2 T4\n#1\tAnnotatorNotes T1\tnote\n")  # fmt: skip
    write_brat(tmp_path / "d", "0", text, ann)
    r = read_brat(tmp_path / "d", max_chars=10)
    # the sentence end after ！ and the line breaks lie inside T5/T6, so the second passage is cut at 10 chars
    assert [d.text for d in r.documents] == ["我和妈妈去北京。", "她很高兴！\n我\n们回", "家了。"]
    assert [d.meta["offset"] for d in r.documents] == [0, 8, 18]
    p2 = r.documents[1]
    # T6's surface continues on the next .ann line; T5 "14 15;16 17" spans first begin to last end
    assert [p2.entity_text(e) for e in p2.entities] == ["她", "高兴！\n我", "我\n们"]
    assert len(p2.tokens) == 8  # one per non-space character
    assert (r.source_documents, r.source_entities, r.source_relations) == (1, 6, 2)
    assert r.warnings == {"discontinuous_entity": 1, "ignored_coreference": 1, "ignored_note": 1}
    assert n_relations(r) == 2


def test_brat_stray_surface_line(tmp_path):
    write_brat(tmp_path / "d", "3", "我们", "T1\tPerson 0 1\t我\n多余\nT2\tPerson 1 2\t们\n")
    r = read_brat(tmp_path / "d")
    assert n_entities(r) == 2
    assert r.warnings == {"extra_surface_line": 1, "surface_mismatch": 1}


def test_brat_cross_passage_relation_counted(tmp_path):
    write_brat(
        tmp_path / "d",
        "1",
        "甲去了乙。丙在丁。",
        "T1\tP 0 1\t甲\nT2\tL 7 8\t丁\nR1\tLocated Arg1:T1 Arg2:T2\n",
    )
    r = read_brat(tmp_path / "d" / "1.ann", max_chars=5)
    assert len(r.documents) == 2 and n_relations(r) == 0
    assert r.warnings == {"cross_passage_relation": 1}


def test_brat_repairs_shifted_offsets(tmp_path):
    write_brat(tmp_path / "d", "2", "走在路上", "T1\tThing 3 4\t路\n")
    r = read_brat(tmp_path / "d")
    assert r.documents[0].entity_text(r.documents[0].entities[0]) == "路"
    assert r.warnings == {"offset_shift_repaired": 1}
    strict = read_brat(tmp_path / "d", repair_shifts=False)
    assert strict.documents[0].entity_text(strict.documents[0].entities[0]) == "上"
    assert strict.warnings == {"surface_mismatch": 1}


def test_jsonl_tokens_and_char_only_entities(tmp_path):
    doc = Document("a", "Acme hired Bo .", tokens_from_words(["Acme", "hired", "Bo", "."])[1])
    doc.entities = [doc.make_entity(0, 1, "org"), doc.make_entity(2, 3, "per")]
    doc.relations = []
    lines = [json.dumps(doc.to_dict()),
             json.dumps({"id": "b", "text": "Bo  met Al", "entities": [{"char_start": 8, "char_end": 10, "type": "per"}],
                         "relations": []})]  # fmt: skip
    r = read_jsonl(write(tmp_path / "x.jsonl", "\n".join(lines) + "\n"))
    assert r.documents[0].to_dict() == doc.to_dict()
    b = r.documents[1]
    assert b.words == ["Bo", "met", "Al"] and (b.entities[0].start, b.entities[0].end) == (2, 3)


def test_duie(tmp_path):
    rec = {"text": "《Python编程》的作者是张三", "spo_list": [
        {"subject": "Python编程", "subject_type": "图书作品", "predicate": "作者",
         "object": {"@value": "张三", "inWork": "x"}, "object_type": {"@value": "人物", "inWork": "作品"}},
        {"subject": "Python编程", "subject_type": "图书作品", "predicate": "出版社", "object": "李四", "object_type": "机构"}]}  # fmt: skip
    r = read_duie(write(tmp_path / "d.jsonl", json.dumps(rec, ensure_ascii=False) + "\n"))
    doc = r.documents[0]
    assert doc.words[:4] == ["《", "Python", "编", "程"]
    assert [doc.entity_text(e) for e in doc.entities] == ["Python编程", "张三"]
    assert r.warnings == {"complex_object_slot_ignored": 1, "unlocated_string": 1, "dropped_triple": 1}
    assert doc.meta["triples"] == [["Python编程", "作者", "张三"], ["Python编程", "出版社", "李四"]]


# -- properties --------------------------------------------------------------------------------------------

words_st = st.lists(
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=6), min_size=1, max_size=12
)


@given(words_st, st.data())
def test_token_char_round_trip(words, data):
    text, tokens = tokens_from_words(words)
    assert [text[t.start : t.end] for t in tokens] == words
    start = data.draw(st.integers(0, len(tokens) - 1))
    end = data.draw(st.integers(start + 1, len(tokens)))
    cs, ce = token_to_char_span(tokens, start, end)
    assert char_to_token_span(tokens, cs, ce) == (start, end)
    assert TokenIndex(tokens).covering(cs, ce) == (start, end)


MARKS = "\u0301\ufe0f\U0001f3fd"  # a combining accent, a variation selector, a skin tone


@given(st.text(st.sampled_from("ab1 .,中文字\n\t\u3000é_-❤\u200d" + MARKS), max_size=40), st.data())
def test_tokenize_text_offsets(text, data):
    tokens = tokenize_text(text)
    assert all(text[t.start : t.end] == t.text and t.text.strip() == t.text != "" for t in tokens)
    assert all(a.end <= b.start for a, b in zip(tokens, tokens[1:], strict=False))
    assert "".join(t.text for t in tokens) == "".join(text.split())
    # one CJK character per token; a mark never starts a token right after a character
    assert all(len(t.text.rstrip(MARKS)) == 1 for t in tokens if any("\u4e00" <= c <= "\u9fff" for c in t.text))
    for a, b in zip(tokens, tokens[1:], strict=False):
        assert not (a.end == b.start and b.text[0] in MARKS)
    if tokens:
        i = data.draw(st.integers(0, len(tokens) - 1))
        j = data.draw(st.integers(i + 1, len(tokens)))
        cs, ce = token_to_char_span(tokens, i, j)
        assert char_to_token_span(tokens, cs, ce) == TokenIndex(tokens).covering(cs, ce) == (i, j)


def test_tokenize_text_keeps_accents_and_emoji_whole() -> None:
    text = "Jose\u0301 met Rene\u0301e ❤️ 👍🏽 👨\u200d👩\u200d👧 ."
    assert [t.text for t in tokenize_text(text)] == ["Jose\u0301", "met", "Rene\u0301e", "❤️", "👍🏽",
                                                     "👨\u200d👩\u200d👧", "."]


@given(st.text(st.sampled_from("甲乙。！\n "), max_size=60), st.integers(1, 12), st.data())
def test_pack_passages_cover_text(text, max_chars, data):
    spans = []
    for _ in range(data.draw(st.integers(0, 4))):
        if len(text) >= 2:
            s = data.draw(st.integers(0, len(text) - 2))
            spans.append((s, data.draw(st.integers(s + 1, min(len(text), s + max_chars)))))
    passages = pack_passages(text, spans, max_chars)
    assert all(0 <= s < e <= len(text) and e - s <= max_chars for s, e in passages)
    assert all(a[1] <= b[0] for a, b in zip(passages, passages[1:], strict=False))
    covered = {i for s, e in passages for i in range(s, e)}
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    if (
        len(spans) == 1 and text[spans[0][0]].strip() and text[spans[0][1] - 1].strip()
    ):  # one short span: never cut
        assert any(s <= spans[0][0] and spans[0][1] <= e for s, e in passages)


def test_zero_width_joiner_never_glues_a_cjk_character() -> None:
    """Found by the property test above: '_' + U+200D + '中' came out as one token holding a CJK character."""
    assert [t.text for t in tokenize_text("_\u200d中")] == ["_", "\u200d", "中"]
    assert [t.text for t in tokenize_text("👨\u200d👩\u200d👧")] == ["👨\u200d👩\u200d👧"]  # emoji sequences stay whole
