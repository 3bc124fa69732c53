"""The exact scorer: hand-computed cases, and a cross-check against a naive second implementation on real data."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys

import pytest

from anchoralign.errors import InputError
from anchoralign.metrics import (
    TASKS,
    average_scores,
    document_triples,
    format_table,
    last_word,
    score_documents,
    score_triples,
)
from anchoralign.schema import Schema
from anchoralign.types import Document, Relation, tokens_from_words

WORDS = ["Sofia", "BTA", "chief", "John", "Smith", "met", "Mary", "."]


def make_doc(entities=(), relations=(), words=WORDS) -> Document:
    """A document from ``(start, end, type)`` entities and ``(head, tail, type)`` relations."""
    text, tokens = tokens_from_words(words)
    doc = Document(id="d", text=text, tokens=tokens)
    doc.entities = [doc.make_entity(s, e, t) for s, e, t in entities]
    doc.relations = [Relation(h, t, r) for h, t, r in relations]
    return doc


def micro(scores, task):
    m = scores[task]["micro"]
    return m["tp"], m["fp"], m["fn"]


def test_identical_documents_score_one():
    gold = make_doc(
        [(0, 1, "Loc"), (1, 2, "Org"), (3, 5, "Peop")], [(1, 0, "OrgBased_In"), (2, 1, "Work_For")]
    )
    s = score_documents([gold], [copy.deepcopy(gold)])
    for task in TASKS:
        assert s[task]["micro"]["f1"] == 1.0 and s[task]["macro"]["f1"] == 1.0
    assert s["ner"]["per_type"]["Peop"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "tp": 1,
        "fp": 0,
        "fn": 0,
        "support": 1,
    }


def test_empty_predictions():
    gold = make_doc([(0, 1, "Loc"), (3, 5, "Peop")], [(1, 0, "Live_In")])
    s = score_documents([gold], [make_doc()])
    assert micro(s, "ner") == (0, 0, 2)
    assert micro(s, "re_strict") == (0, 0, 1)
    assert s["ner"]["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 2}
    assert s["ner"]["macro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert s["ner"]["per_type"]["Loc"]["support"] == 1


def test_empty_gold():
    s = score_documents([make_doc()], [make_doc([(0, 1, "Loc")])])
    assert micro(s, "ner") == (0, 1, 0)
    assert s["ner"]["per_type"]["Loc"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "fp": 1,
        "fn": 0,
        "support": 0,
    }


def test_nothing_at_all_scores_zero_with_no_types():
    s = score_documents([make_doc()], [make_doc()])
    for task in TASKS:
        assert s[task]["micro"]["f1"] == 0.0 and s[task]["macro"]["f1"] == 0.0 and s[task]["per_type"] == {}


def test_duplicates_in_prediction_count_once():
    gold = make_doc([(0, 1, "Loc"), (1, 2, "Org")], [(1, 0, "OrgBased_In")])
    pred = make_doc(
        [(0, 1, "Loc"), (0, 1, "Loc"), (1, 2, "Org")], [(2, 0, "OrgBased_In"), (2, 1, "OrgBased_In")]
    )
    s = score_documents([gold], [pred])
    assert micro(s, "ner") == (2, 0, 0)
    assert micro(s, "re") == (1, 0, 0)
    assert micro(s, "re_strict") == (1, 0, 0)


def test_wrong_type_is_a_miss_and_a_false_alarm():
    s = score_documents([make_doc([(0, 1, "Loc")])], [make_doc([(0, 1, "Org")])])
    assert micro(s, "ner") == (0, 1, 1)
    assert (s["ner"]["per_type"]["Loc"]["fn"], s["ner"]["per_type"]["Org"]["fp"]) == (1, 1)


def test_boundary_error():
    s = score_documents([make_doc([(3, 5, "Peop")])], [make_doc([(4, 5, "Peop")])])
    assert micro(s, "ner") == (0, 1, 1)
    assert s["ner"]["per_type"]["Peop"]["support"] == 1


def test_symmetric_relation_reversed_counts_only_when_symmetric():
    ents = [(0, 1, "Method"), (3, 5, "Method")]
    gold = make_doc(ents, [(0, 1, "Conjunction"), (0, 1, "Used-for")])
    pred = make_doc(ents, [(1, 0, "Conjunction"), (1, 0, "Used-for")])
    schema = Schema()
    schema.add_relation_type("Conjunction", symmetric=True)
    schema.add_relation_type("Used-for")
    with_schema = score_documents([gold], [pred], schema)
    without = score_documents([gold], [pred])
    for task in ("re", "re_strict"):
        assert with_schema[task]["per_type"]["Conjunction"]["tp"] == 1
        assert with_schema[task]["per_type"]["Used-for"]["tp"] == 0  # not symmetric: direction matters
        assert micro(without, task) == (0, 2, 2)


def test_symmetric_arguments_starting_on_the_same_token():
    # Nested arguments that share their first token: SpERT's start-only ordering would miss this match.
    ents = [(3, 5, "Method"), (3, 4, "Method")]
    schema = Schema()
    schema.add_relation_type("Compare", symmetric=True)
    s = score_documents([make_doc(ents, [(0, 1, "Compare")])], [make_doc(ents, [(1, 0, "Compare")])], schema)
    assert micro(s, "re") == (1, 0, 0)


def test_re_correct_but_re_strict_wrong_when_an_argument_type_is_wrong():
    gold = make_doc([(0, 1, "Loc"), (1, 2, "Org")], [(1, 0, "OrgBased_In")])
    pred = make_doc([(0, 1, "Loc"), (1, 2, "Peop")], [(1, 0, "OrgBased_In")])
    s = score_documents([gold], [pred])
    assert micro(s, "ner") == (1, 1, 1)
    assert micro(s, "re") == (1, 0, 0)
    assert micro(s, "re_strict") == (0, 1, 1)
    assert s["re"]["per_type"]["OrgBased_In"]["f1"] == 1.0  # relations are typed by relation type


def test_macro_includes_a_type_only_predicted():
    gold = make_doc([(0, 1, "Loc"), (6, 7, "Loc")])
    pred = make_doc([(0, 1, "Loc"), (6, 7, "Loc"), (3, 5, "Org")])
    s = score_documents([gold], [pred])["ner"]
    assert s["per_type"]["Org"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "fp": 1,
        "fn": 0,
        "support": 0,
    }
    assert s["macro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert s["micro"]["precision"] == pytest.approx(2 / 3)
    assert s["micro"]["f1"] == pytest.approx(0.8)
    assert "Peop" not in s["per_type"]  # neither gold nor predicted: left out


def test_per_type_and_macro_by_hand():
    # Loc: tp 2, fp 1, fn 1; Peop: tp 1; Org: fp 1 (only predicted).
    gold = make_doc([(0, 1, "Loc"), (1, 2, "Loc"), (6, 7, "Loc"), (3, 5, "Peop")])
    pred = make_doc([(0, 1, "Loc"), (1, 2, "Loc"), (5, 7, "Loc"), (3, 5, "Peop"), (2, 3, "Org")])
    s = score_documents([gold], [pred])["ner"]
    assert s["per_type"]["Loc"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "tp": 2, "fp": 1, "fn": 1, "support": 3}
    )
    assert s["macro"] == pytest.approx({"precision": 5 / 9, "recall": 5 / 9, "f1": 5 / 9})
    assert s["micro"] == pytest.approx(
        {"precision": 0.6, "recall": 0.75, "f1": 2 / 3, "tp": 3, "fp": 2, "fn": 1}
    )


def test_macro_f1_is_mean_of_per_type_f1_not_f1_of_means():
    # A: tp 1, fn 3 -> P 1, R .25, F1 .4;  B: tp 1, fp 3 -> P .25, R 1, F1 .4.
    gold = make_doc([(0, 1, "A"), (1, 2, "A"), (2, 3, "A"), (3, 4, "A"), (4, 5, "B")])
    pred = make_doc([(0, 1, "A"), (4, 5, "B"), (5, 6, "B"), (6, 7, "B"), (7, 8, "B")])
    s = score_documents([gold], [pred])["ner"]
    assert s["macro"] == pytest.approx({"precision": 0.625, "recall": 0.625, "f1": 0.4})


def test_counts_add_up_over_documents():
    g = [make_doc([(0, 1, "Loc")]), make_doc([(0, 1, "Loc"), (3, 5, "Peop")])]
    p = [make_doc([(0, 1, "Loc")]), make_doc([(0, 2, "Loc")])]
    assert micro(score_documents(g, p), "ner") == (1, 1, 2)


def test_misaligned_inputs_raise_input_error():
    with pytest.raises(InputError, match="2 records but prediction has 1"):
        score_documents([make_doc(), make_doc()], [make_doc()])
    other = make_doc(words=WORDS[:-1] + ["!"])
    with pytest.raises(InputError, match=r"record 1: .*token 7"):
        score_documents([make_doc(), make_doc()], [make_doc(), other])


def test_score_triples_exact_and_partial():
    gold = [{("Tim Brooke-Taylor", "starring", "Bananaman"), ("Steve Bright", "creator", "Bananaman")}, set()]
    pred = [
        {("Brooke-Taylor", "starring", "Bananaman"), ("Steve Bright", "creator", "Bananaman")},
        {("a", "r", "b")},
    ]
    exact = score_triples(gold, pred)["micro"]
    assert (exact["tp"], exact["fp"], exact["fn"]) == (1, 2, 1)
    partial = score_triples(gold, pred, partial=True)["micro"]
    assert (partial["tp"], partial["fp"], partial["fn"]) == (2, 1, 0)
    assert partial["precision"] == pytest.approx(2 / 3) and partial["recall"] == 1.0
    # Two predictions reducing to the same last-word triple count once.
    dup = score_triples(
        [{("New York", "r", "x")}], [{("New York", "r", "x"), ("York", "r", "x")}], partial=True
    )
    assert (dup["micro"]["tp"], dup["micro"]["fp"]) == (1, 0)
    assert last_word("  A.C. Cesena ") == "Cesena" and last_word("") == ""
    with pytest.raises(InputError):
        score_triples([set()], [])


def test_document_triples():
    doc = make_doc([(0, 1, "Loc"), (3, 5, "Peop")], [(1, 0, "Live_In"), (1, 0, "Live_In")])
    assert document_triples(doc) == {("John Smith", "Live_In", "Sofia")}


def test_average_scores_is_mean_of_folds_not_pooled():
    fold1 = score_documents([make_doc([(0, 1, "Drug")])], [make_doc([(0, 1, "Drug")])])  # F1 1
    fold2 = score_documents(
        [make_doc([(0, 1, "Drug"), (1, 2, "Drug"), (2, 3, "Drug")])], [make_doc()]
    )  # F1 0
    avg = average_scores([fold1, fold2])
    assert avg["ner"]["micro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert avg["ner"]["macro"]["f1"] == pytest.approx(0.5)  # pooled counts would give P 1, R .25, F1 .4
    assert avg["ner"]["folds"] == 2 and set(avg) == set(TASKS)
    t = average_scores(
        [score_triples([{("a", "r", "b")}], [{("a", "r", "b")}]), score_triples([{("a", "r", "b")}], [set()])]
    )
    assert t["micro"]["f1"] == pytest.approx(0.5) and t["folds"] == 2
    with pytest.raises(ValueError):
        average_scores([])


def test_format_table_names_the_protocol_on_every_row():
    s = score_documents([make_doc([(0, 1, "Loc")], [])], [make_doc([(0, 1, "Loc"), (1, 2, "Org")], [])])
    table = format_table(s, "unit test")
    assert "NER strict (micro)" in table and "RE+ strict (macro over types)" in table
    assert "NER strict [type Org]" in table
    names = tuple(TASKS.values())
    for line in table.splitlines()[2:]:
        assert not line or line.startswith(names), line
    avg = format_table(average_scores([s, s]), "two folds")
    assert "NER strict (micro, mean over 2 folds)" in avg
    triples = format_table(score_triples([{("a", "r", "b")}], [{("a", "r", "b")}]), "WebNLG exact triples")
    assert "WebNLG exact triples (micro)" in triples and "100.00" in triples


# -- cross-check against a second, deliberately naive implementation --------------------------------------------


def naive_items(record, task, symmetric):
    """Distinct scoring items of one SpERT record as (type, ...) tuples, built with plain loops."""
    items = []
    ents = record["entities"]
    if task == "ner":
        for e in ents:
            item = (e["type"], e["start"], e["end"])
            if item not in items:
                items.append(item)
        return items
    for r in record["relations"]:
        h, t = ents[r["head"]], ents[r["tail"]]
        if task == "re":
            ha, ta = (h["start"], h["end"]), (t["start"], t["end"])
        else:
            ha, ta = (h["start"], h["end"], h["type"]), (t["start"], t["end"], t["type"])
        if r["type"] in symmetric:
            item = (r["type"], frozenset([ha, ta]))
        else:
            item = (r["type"], ha, ta)
        if item not in items:
            items.append(item)
    return items


def naive_scores(gold, pred, symmetric):
    result = {}
    for task in ("ner", "re", "re_strict"):
        tp, fp, fn = {}, {}, {}
        for g, p in zip(gold, pred, strict=True):
            g_items = naive_items(g, task, symmetric)
            p_items = naive_items(p, task, symmetric)
            for item in p_items:
                bucket = tp if item in g_items else fp
                bucket[item[0]] = bucket.get(item[0], 0) + 1
            for item in g_items:
                if item not in p_items:
                    fn[item[0]] = fn.get(item[0], 0) + 1
        types = sorted(set(tp) | set(fp) | set(fn))
        precisions, recalls, f1s = [], [], []
        for name in types:
            a, b, c = tp.get(name, 0), fp.get(name, 0), fn.get(name, 0)
            precision = a / (a + b) if a + b > 0 else 0.0
            recall = a / (a + c) if a + c > 0 else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
            precisions.append(precision)
            recalls.append(recall)
            f1s.append(f1)
        a, b, c = sum(tp.values()), sum(fp.values()), sum(fn.values())
        precision = a / (a + b) if a + b > 0 else 0.0
        recall = a / (a + c) if a + c > 0 else 0.0
        result[task] = {
            "counts": (a, b, c),
            "micro_p": precision,
            "micro_r": recall,
            "micro_f1": 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0,
            "macro_p": sum(precisions) / len(types) if types else 0.0,
            "macro_r": sum(recalls) / len(types) if types else 0.0,
            "macro_f1": sum(f1s) / len(types) if types else 0.0,
        }
    return result


def perturb(record, rng, entity_types, relation_types):
    """A realistic wrong prediction: drop, shift, retype, flip, add and duplicate entities and relations."""
    n = len(record["tokens"])
    ents, new_index = [], {}
    for i, e in enumerate(record["entities"]):
        e = dict(e)
        roll = rng.random()
        if roll < 0.1:
            continue  # dropped
        if roll < 0.2:
            side, step = rng.choice([("start", -1), ("start", 1), ("end", -1), ("end", 1)])
            e[side] += step
            if not 0 <= e["start"] < e["end"] <= n:
                e[side] -= 2 * step
            if not 0 <= e["start"] < e["end"] <= n:
                e[side] += step
        elif roll < 0.3:
            e["type"] = rng.choice([t for t in entity_types if t != e["type"]])
        new_index[i] = len(ents)
        ents.append(e)
    while rng.random() < 0.3:
        start = rng.randrange(n)
        ents.append(
            {"type": rng.choice(entity_types), "start": start, "end": min(n, start + rng.randint(1, 3))}
        )
    if ents and rng.random() < 0.05:
        ents.append(dict(rng.choice(ents)))
    rels = []
    for r in record["relations"]:
        if r["head"] not in new_index or r["tail"] not in new_index:
            continue
        r = {"type": r["type"], "head": new_index[r["head"]], "tail": new_index[r["tail"]]}
        roll = rng.random()
        if roll < 0.1:
            continue
        if roll < 0.25:
            r["head"], r["tail"] = r["tail"], r["head"]
        elif roll < 0.35:
            r["type"] = rng.choice([t for t in relation_types if t != r["type"]])
        rels.append(r)
    while len(ents) >= 2 and rng.random() < 0.2:
        head, tail = rng.sample(range(len(ents)), 2)
        rels.append({"type": rng.choice(relation_types), "head": head, "tail": tail})
    if rels and rng.random() < 0.05:
        rels.append(dict(rng.choice(rels)))
    return {
        "tokens": list(record["tokens"]),
        "entities": ents,
        "relations": rels,
        "orig_id": record.get("orig_id"),
    }


def to_document(record) -> Document:
    text, tokens = tokens_from_words(record["tokens"])
    doc = Document(id=str(record.get("orig_id")), text=text, tokens=tokens)
    doc.entities = [doc.make_entity(e["start"], e["end"], e["type"]) for e in record["entities"]]
    doc.relations = [Relation(r["head"], r["tail"], r["type"]) for r in record["relations"]]
    return doc


CROSS_CHECK = [
    ("conll04/test.json", "conll04/conll04_types.json", True),
    ("scierc/test.json", "scierc/scierc_types.json", True),
    ("scierc/test.json", "scierc/scierc_types.json", False),
    ("ade/ade_split_0_test.json", "ade/ade_types.json", True),
]


@pytest.mark.parametrize(("gold_file", "types_file", "use_schema"), CROSS_CHECK)
@pytest.mark.parametrize("seed", [0, 1])
def test_cross_check_against_naive_implementation(data_dir, gold_file, types_file, use_schema, seed):
    gold = json.loads((data_dir / gold_file).read_text(encoding="utf-8"))
    types = json.loads((data_dir / types_file).read_text(encoding="utf-8"))
    # An extra type of each kind that gold never uses, so that "only predicted" types reach the macro average.
    entity_types = list(types["entities"]) + ["Spurious-Entity"]
    relation_types = list(types["relations"]) + ["Spurious-Relation"]
    rng = random.Random(seed)
    pred = [perturb(r, rng, entity_types, relation_types) for r in gold]
    symmetric = {n for n, v in types["relations"].items() if v.get("symmetric")} if use_schema else set()
    schema = Schema.from_spert_types(data_dir / types_file) if use_schema else None

    ours = score_documents([to_document(r) for r in gold], [to_document(r) for r in pred], schema)
    theirs = naive_scores(gold, pred, symmetric)
    for task in ("ner", "re", "re_strict"):
        s, n = ours[task], theirs[task]
        assert (s["micro"]["tp"], s["micro"]["fp"], s["micro"]["fn"]) == n["counts"], task
        for avg in ("micro", "macro"):
            for key, short in (("precision", "p"), ("recall", "r"), ("f1", "f1")):
                assert abs(s[avg][key] - n[f"{avg}_{short}"]) < 1e-9, (task, avg, key)
        assert 0.0 < s["micro"]["f1"] < 1.0 and 0.0 < s["macro"]["f1"] < 1.0
        assert s["macro"]["f1"] != s["micro"]["f1"]


def test_cross_check_exercises_symmetric_relations(data_dir):
    gold = json.loads((data_dir / "scierc/test.json").read_text(encoding="utf-8"))
    schema = Schema.from_spert_types(data_dir / "scierc/scierc_types.json")
    rng = random.Random(0)
    pred = [perturb(r, rng, list(schema.entity_types), list(schema.relation_types)) for r in gold]
    g, p = [to_document(r) for r in gold], [to_document(r) for r in pred]
    with_schema, without = score_documents(g, p, schema), score_documents(g, p)
    for name in ("Compare", "Conjunction"):
        assert with_schema["re"]["per_type"][name]["tp"] > without["re"]["per_type"][name]["tp"]
    assert with_schema["re"]["per_type"]["Used-for"] == without["re"]["per_type"]["Used-for"]


def test_macro_matches_spert_flattening_with_sklearn(data_dir):
    """SpERT's evaluator: per record, the union of gold and predicted keys becomes (gold label, pred label) pairs
    (label 0 = absent), then sklearn precision_recall_fscore_support over the labels seen."""
    prfs = pytest.importorskip("sklearn.metrics").precision_recall_fscore_support
    gold = json.loads((data_dir / "conll04/test.json").read_text(encoding="utf-8"))
    types = json.loads((data_dir / "conll04/conll04_types.json").read_text(encoding="utf-8"))
    rng = random.Random(7)
    pred = [perturb(r, rng, list(types["entities"]) + ["X"], list(types["relations"]) + ["Y"]) for r in gold]
    ours = score_documents([to_document(r) for r in gold], [to_document(r) for r in pred])
    for task in ("ner", "re_strict"):
        label_of: dict[str, int] = {}
        y_true, y_pred = [], []
        for g, p in zip(gold, pred, strict=True):
            g_items, p_items = set(naive_items(g, task, set())), set(naive_items(p, task, set()))
            for item in g_items | p_items:
                label = label_of.setdefault(item[0], len(label_of) + 1)
                y_true.append(label if item in g_items else 0)
                y_pred.append(label if item in p_items else 0)
        labels = sorted(label_of.values())
        for avg in ("micro", "macro"):
            p, r, f, _ = prfs(y_true, y_pred, labels=labels, average=avg, zero_division=0)
            assert ours[task][avg]["precision"] == pytest.approx(p, abs=1e-9)
            assert ours[task][avg]["recall"] == pytest.approx(r, abs=1e-9)
            assert ours[task][avg]["f1"] == pytest.approx(f, abs=1e-9)


def test_metrics_and_score_command_are_torch_free():
    code = "import sys, anchoralign.metrics, anchoralign.cli.score_cmd; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_tagger_scores_count_typed_spans() -> None:
    from anchoralign.evaluation import tagger_scores

    text, tokens = tokens_from_words("Mary lives in Paris".split())
    doc = Document("d", text, tokens)
    doc = doc.with_annotations([doc.make_entity(0, 1, "Peop"), doc.make_entity(3, 4, "Loc")], [])
    s = tagger_scores([doc], [[(0, 1, "Peop"), (3, 4, "Org"), (2, 3, "Loc")]])
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 1)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.4)
