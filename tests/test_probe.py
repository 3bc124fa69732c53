"""The relation probe: built deterministically with the promised sizes and exact spans, its real items chosen
as documented, its scorer's rates against hand-computed ones, and ``anchoralign probe`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from anchoralign.data.tokenize import tokenize_text
from anchoralign.extraction import ExtractedEntity, ExtractedRelation, Extraction
from anchoralign.probe import (
    COOCCURRENCE,
    PEOPLE,
    POOLS,
    SIGNATURES,
    Probe,
    ProbeEntity,
    ProbeItem,
    build_probe,
    real_items,
    score_probe,
    target_check,
)
from anchoralign.types import Document, Relation

from .tiny import make_doc


def test_probe_is_deterministic_and_has_the_promised_sizes() -> None:
    a, b = build_probe(seed=3), build_probe(seed=3)
    assert a.items == b.items and a.documents == b.documents == []
    assert [it.text for it in build_probe(seed=4).items] != [it.text for it in a.items]
    assert a.counts() == {"negated": 120, "hedged": 80, "cooccurrence": 60, "control": 100,
                          "real_cooccurrence": 0, "real_pairs": 0}
    for cat, per in (("negated", 24), ("hedged", 16), ("control", 20)):
        assert Counter(it.relation for it in a.items if it.category == cat) == {r: per for r in SIGNATURES}
    assert len({it.template for it in a.items if it.category == "cooccurrence"}) == len(COOCCURRENCE)
    assert build_probe(seed=0, repeats=1).counts()["negated"] == 30
    assert len({it.id for it in a.items}) == len(a.items)
    assert a.inputs() == [it.text for it in a.items]  # templated items are read from their own texts
    assert [it.input for it in a.items] == list(range(len(a.items)))


def test_probe_is_torch_free() -> None:
    code = "import sys, anchoralign.probe; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_every_entity_slices_to_its_name_on_token_boundaries() -> None:
    probe = build_probe(seed=1)
    for it in probe.items:
        starts = {t.start for t in tokenize_text(it.text)}
        ends = {t.end for t in tokenize_text(it.text)}
        names = [e.text for e in it.entities]
        assert len(set(names)) == len(names), it.text  # never one name twice in a sentence
        assert "{" not in it.text and "}" not in it.text
        for e in it.entities:
            assert it.text[e.start : e.end] == e.text and e.start in starts and e.end in ends, (it.text, e)
        assert [e.start for e in it.entities] == sorted(e.start for e in it.entities)
        if it.relation is not None:
            assert (it.entities[it.head].type, it.entities[it.tail].type) == SIGNATURES[it.relation]
            assert it.head != it.tail


def test_names_are_used_evenly() -> None:
    probe = build_probe(seed=0)
    used = Counter(e.text for it in probe.items for e in it.entities if e.type == "Peop")
    assert set(used) == set(PEOPLE)  # every name is drawn
    assert max(used.values()) - min(used.values()) <= 1


def test_names_do_not_occur_in_conll04(data_dir) -> None:
    from anchoralign.data.registry import load_split

    text = "\n".join(d.text for s in ("train", "dev", "test") for d in load_split("conll04", s, data_dir).documents)
    assert [n for pool in POOLS.values() for n in pool if n in text] == []


def _real_docs() -> list[Document]:
    return [
        # Work_For between Ann Lee and Acme is gold; Ann Lee-Paris (Live_In) and Acme-Paris (OrgBased_In) are not
        make_doc("r0", "Ann Lee of Acme visited Paris .".split(), [(0, 2, "Peop"), (3, 4, "Org"), (5, 6, "Loc")],
                 [(0, 1, "Work_For")]),
        # no gold relation: a real co-occurrence sentence and one pair
        make_doc("r1", "Bo Ek saw Rome .".split(), [(0, 2, "Peop"), (3, 4, "Loc")], []),
        # no pair of types the schema could relate: left out
        make_doc("r2", "Acme and Zeta met on Monday .".split(), [(0, 1, "Org"), (2, 3, "Org"), (4, 5, "Other")], []),
        # every pair related: left out
        make_doc("r3", "Cy killed Di .".split(), [(0, 1, "Peop"), (2, 3, "Peop")], [(0, 1, "Kill")]),
    ]


def test_real_items_are_the_unrelated_pairs_that_could_be_related() -> None:
    items, kept = real_items(_real_docs(), first_input=7)
    assert [d.id for d in kept] == ["r0", "r1"]
    got = [(it.category, it.input, it.relation, tuple(e.text for e in it.entities)) for it in items]
    assert got == [
        ("real_pairs", 7, "Live_In", ("Ann Lee", "Paris")),
        ("real_pairs", 7, "OrgBased_In", ("Acme", "Paris")),
        ("real_cooccurrence", 8, None, ("Bo Ek", "Rome")),
        ("real_pairs", 8, "Live_In", ("Bo Ek", "Rome")),
    ]
    for it in items:
        for e in it.entities:
            assert it.text[e.start : e.end] == e.text
    probe = build_probe(seed=0, repeats=1, documents=_real_docs())
    assert probe.counts()["real_pairs"] == 3 and probe.counts()["real_cooccurrence"] == 1
    assert probe.inputs()[-2:] == kept  # the real sentences follow the templated texts


# -- the scorer, on hand-made predictions ------------------------------------------------------------------

def _item(cat: str, i: int, text: str, names: list[tuple[str, str]], relation: str | None = None) -> ProbeItem:
    ents = tuple(ProbeEntity(text.index(n), text.index(n) + len(n), t, n) for n, t in names)
    return ProbeItem(f"{cat}-{i}", cat, text, ents, i, relation, 0 if relation else None, 1 if relation else None)


def _ex(text: str, ents: list[tuple[str, str, float]], rels: list[tuple[int, int, str, float]]) -> Extraction:
    entities = [ExtractedEntity(k, text.index(n), text.index(n) + len(n), t, n, s) for k, (n, t, s) in enumerate(ents)]
    return Extraction(text, entities, [ExtractedRelation(h, t, r, s) for h, t, r, s in rels])


def _hand_probe() -> tuple[Probe, list]:
    t0, t1 = "Ann Lee never worked for Acme.", "Bob Ray did not kill Cy Dunn."
    t2, t3, t4 = "Eve Hall and Gus Ito met.", "Dee Fox works for Zeta.", "Hal Orr works for Ypsilon."
    items = [
        _item("negated", 0, t0, [("Ann Lee", "Peop"), ("Acme", "Org")], "Work_For"),
        _item("negated", 1, t1, [("Bob Ray", "Peop"), ("Cy Dunn", "Peop")], "Kill"),
        _item("cooccurrence", 2, t2, [("Eve Hall", "Peop"), ("Gus Ito", "Peop")]),
        _item("control", 3, t3, [("Dee Fox", "Peop"), ("Zeta", "Org")], "Work_For"),
        _item("control", 4, t4, [("Hal Orr", "Peop"), ("Ypsilon", "Org")], "Work_For"),
    ]
    real, docs = real_items(_real_docs(), first_input=5)
    p1 = Document("p1", t1, tokenize_text(t1))  # a Document prediction: Bob Ray = tokens 0-1, Cy Dunn = 5-6
    p1 = p1.with_annotations([p1.make_entity(0, 2, "Peop", 0.95), p1.make_entity(5, 7, "Peop", 0.4)],
                             [Relation(1, 0, "Kill", 0.8)])  # reversed: still between the two
    r0, r1 = docs
    preds = [
        _ex(t0, [("Ann Lee", "Peop", 0.9), ("Acme", "Org", 0.8)], [(0, 1, "Work_For", 0.6)]),
        p1,
        _ex(t2, [("Eve Hall", "Peop", 0.7)], []),
        _ex(t3, [("Dee Fox", "Peop", 0.95), ("Zeta", "Org", 0.95)], [(0, 1, "Work_For", 0.95)]),
        _ex(t4, [("Hal Orr", "Peop", 0.99), ("Ypsilon", "Org", 0.99)], [(1, 0, "Work_For", 0.99)]),  # wrong way
        r0.with_annotations([r0.make_entity(0, 2, "Peop", 0.9), r0.make_entity(3, 4, "Org", 0.9),
                             r0.make_entity(5, 6, "Loc", 0.9)],
                            [Relation(0, 1, "Work_For", 0.9), Relation(1, 2, "OrgBased_In", 0.6)]),
        r1.with_annotations([r1.make_entity(0, 2, "Peop", 0.9), r1.make_entity(3, 4, "Loc", 0.9)],
                            [Relation(0, 1, "Live_In", 0.3)]),
    ]
    return Probe(items + real, docs), preds


def test_scorer_rates_by_hand() -> None:
    probe, preds = _hand_probe()
    report = score_probe(probe, preds, [0.0, 0.5, 0.7, 0.9])
    rows = {r["threshold"]: r["categories"] for r in report["thresholds"]}
    neg = {th: rows[th]["negated"] for th in rows}
    # relation scores 0.6 (Work_For) and 0.8 (Kill): both kept to 0.5, the Kill alone at 0.7, none at 0.9
    assert [neg[t]["with_relation"] for t in (0.0, 0.5, 0.7, 0.9)] == [2, 2, 1, 0]
    assert [neg[t]["fp_rate"] for t in (0.0, 0.5, 0.7, 0.9)] == [1.0, 1.0, 0.5, 0.0]
    assert [neg[t]["target_rate"] for t in (0.0, 0.5, 0.7, 0.9)] == [1.0, 1.0, 0.5, 0.0]
    assert neg[0.7]["per_relation"] == {"Kill": {"items": 1, "with_relation": 1, "rate": 1.0},
                                        "Work_For": {"items": 1, "with_relation": 0, "rate": 0.0}}
    # 4 mentions; at 0.9 Acme (0.8) and Cy Dunn (0.4, no longer needed by a kept relation) drop out
    assert [neg[t]["entity_recall"] for t in (0.0, 0.5, 0.7, 0.9)] == [1.0, 1.0, 1.0, 0.5]
    assert neg[0.9]["items_all_entities_found"] == 0.0 and neg[0.7]["items_all_entities_found"] == 1.0
    # over the items whose entities were all found at threshold 0 (both): 2, 1 and 0 of them related
    assert [neg[t]["fp_rate_when_entities_found"] for t in (0.0, 0.7, 0.9)] == [1.0, 0.5, 0.0]
    co = {th: rows[th]["cooccurrence"] for th in rows}
    assert [co[t]["fp_rate"] for t in (0.0, 0.9)] == [0.0, 0.0]
    assert [co[t]["entity_recall"] for t in (0.0, 0.5, 0.7, 0.9)] == [0.5, 0.5, 0.5, 0.0]
    ctl = {th: rows[th]["control"] for th in rows}
    # Dee Fox -> Zeta found up to 0.95; Ypsilon -> Hal Orr is the wrong direction
    assert [ctl[t]["recall"] for t in (0.0, 0.5, 0.7, 0.9)] == [0.5, 0.5, 0.5, 0.5]
    assert ctl[0.0]["found"] == 1 and ctl[0.0]["entity_recall"] == 1.0
    assert ctl[0.0]["recall_when_entities_found"] == 0.5  # both controls' entities found, one relation right
    assert co[0.0]["fp_rate_when_entities_found"] is None  # Gus Ito was never found
    per = report["per_template_at_0"]["negated"]  # the hand-made items have one (empty) template
    assert list(per) == [""] and per[""]["items"] == 2 and per[""]["fp_rate"] == 1.0 and "per_relation" not in per[""]
    # real pairs: Acme-Paris related at 0.6, Bo Ek-Rome at 0.3, Ann Lee-Paris never; Ann Lee-Acme is gold
    pairs = {th: rows[th]["real_pairs"] for th in rows}
    assert [pairs[t]["with_relation"] for t in (0.0, 0.5, 0.7)] == [2, 1, 0]
    assert pairs[0.0]["fp_rate"] == pytest.approx(2 / 3) and pairs[0.0]["sentences"] == 2
    sent = {th: rows[th]["real_cooccurrence"] for th in rows}
    assert [sent[t]["fp_rate"] for t in (0.0, 0.5)] == [1.0, 0.0]
    assert report["counts"]["real_pairs"] == 3
    assert report["target"] == {"max_fp_rate": 0.2, "min_control_recall": 0.85, "fp_met_at": 0.9,
                                "control_recall_there": 0.5, "met_at": None}
    ex = report["examples"]
    assert ex["negated"][0] == {"text": "Bob Ray did not kill Cy Dunn.", "relation": ["Cy Dunn", "Kill", "Bob Ray"],
                                "argument_types": ["Peop", "Peop"], "score": 0.8}
    assert [r["expected"] for r in ex["control"]] == [["Hal Orr", "Work_For", "Ypsilon"]]
    assert [r["relation"] for r in ex["real_pairs"]] == [["Acme", "OrgBased_In", "Paris"],
                                                          ["Bo Ek", "Live_In", "Rome"]]
    with pytest.raises(ValueError, match="predictions"):
        score_probe(probe, preds[:-1])


def test_target_check_by_hand() -> None:
    def row(th, neg, co, rec):
        return {"threshold": th, "categories": {"negated": {"fp_rate": neg}, "cooccurrence": {"fp_rate": co},
                                                "control": {"recall": rec}}}

    rows = [row(0.0, 0.5, 0.1, 0.95), row(0.5, 0.2, 0.15, 0.8), row(0.7, 0.1, 0.0, 0.9)]
    assert target_check(rows) == {"max_fp_rate": 0.2, "min_control_recall": 0.85, "fp_met_at": 0.5,
                                  "control_recall_there": 0.8, "met_at": 0.7}


# -- the command, end to end on a tiny random model --------------------------------------------------------

TYPES = {"entities": {t: {"short": t, "verbose": t} for t in ("Loc", "Org", "Peop", "Other")},
         "relations": {r: {"short": r, "verbose": r.replace("_", " "), "symmetric": False} for r in SIGNATURES}}


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny random (untrained) model directory, and a data root whose conll04 test split is four sentences."""
    import torch

    from anchoralign.model import save_model

    from .tiny import tiny_model

    root = tmp_path_factory.mktemp("probe")
    torch.manual_seed(0)
    save_model(tiny_model(None), root / "model", metadata={"commit": "abc123"})
    data = root / "data" / "conll04"
    data.mkdir(parents=True)
    (data / "conll04_types.json").write_text(json.dumps(TYPES), encoding="utf-8")
    (data / "test.json").write_text(json.dumps([d.to_spert() for d in _real_docs()]), encoding="utf-8")
    return root / "model", root / "data"


def test_probe_command_end_to_end(tiny_setup, tmp_path, capsys) -> None:
    from anchoralign.cli import main

    model, data = tiny_setup
    out = tmp_path / "probe.json"
    argv = ["probe", "--model", str(model), "--data-dir", str(data), "--repeats", "1", "--threshold", "0.5", "0",
            "--threshold", "0.5", "--output", str(out), "--batch-size", "16", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "negated" in printed and "stated found" in printed
    report = json.loads(out.read_text())
    assert report["model"] == str(model) and report["model_commit"] == "abc123" and report["seed"] == 0
    assert report["real_split"] == "conll04/test" and report["cpu_capability"]
    assert report["counts"] == {"negated": 30, "hedged": 20, "cooccurrence": 15, "control": 25,
                                "real_cooccurrence": 1, "real_pairs": 3}
    assert report["inputs"] == 30 + 20 + 15 + 25 + 2
    assert [r["threshold"] for r in report["thresholds"]] == [0.0, 0.5]
    for row in report["thresholds"]:
        cats = row["categories"]
        assert set(cats) == set(report["counts"])
        for name in ("negated", "hedged", "cooccurrence", "real_cooccurrence", "real_pairs"):
            assert 0.0 <= cats[name]["fp_rate"] <= 1.0
        assert 0.0 <= cats["control"]["recall"] <= 1.0 and 0.0 <= cats["negated"]["target_rate"] <= 1.0
    assert set(report["target"]) == {"max_fp_rate", "min_control_recall", "fp_met_at", "control_recall_there",
                                     "met_at"}
    assert main([*argv[:-4], "--json", "--split", ""]) == 0  # no real items
    printed = json.loads(capsys.readouterr().out)
    assert printed["real_split"] is None and printed["counts"]["real_pairs"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--model", "{tmp}/nope"], "not a model directory"),
    (["--split", "nosuch"], "no split 'nosuch'"),
    (["--data-dir", "{tmp}/nodata"], "does not exist"),
    (["--threshold", "1.5"], "--threshold"),
    (["--set", "decode.nope=1"], "nope"),
])
def test_probe_command_bad_input_fails_in_one_line(tiny_setup, tmp_path, capsys, extra, message) -> None:
    from anchoralign.cli import main

    model, data = tiny_setup
    argv = ["probe", "--model", str(model), "--data-dir", str(data)] + [a.format(tmp=tmp_path) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("anchoralign probe: error:") and message in err
