"""scripts/relation_errors.py sorts every RE+ error into exactly one cause."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "relation_errors.py"
spec = importlib.util.spec_from_file_location("relation_errors", SCRIPT)
relation_errors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(relation_errors)


def _doc(ents, rels):
    return {"tokens": list("abcdefgh"), "entities": [{"start": s, "end": e, "type": t} for s, e, t in ents],
            "relations": [{"head": h, "tail": t, "type": r} for h, t, r in rels]}


def test_each_error_has_one_cause(tmp_path, capsys) -> None:
    ents = [(0, 1, "Peop"), (2, 3, "Org"), (4, 5, "Loc"), (6, 7, "Peop")]
    gold = [_doc(ents, [(0, 1, "Work_For"), (0, 2, "Live_In"), (3, 1, "Work_For"), (1, 2, "Based_In")])]
    # Work_For found; Live_In not written; Peop at 6 typed Loc; Org at 2 cut to other boundaries + a false one
    pred = [_doc([(0, 1, "Peop"), (2, 3, "Org"), (4, 5, "Loc"), (6, 7, "Loc")],
                 [(0, 1, "Work_For"), (3, 1, "Work_For"), (2, 0, "Kill")])]
    c = relation_errors.relation_errors(gold, pred)
    assert c["tp"] == 1 and c["gold"] == 4 and c["predicted"] == 3
    assert c["fn_arguments_found_relation_not_written"] == 2  # Live_In and Based_In
    assert c["fn_argument_with_other_type"] == 1
    assert c["fp_argument_wrong"] == 1 and c["fp_arguments_correct"] == 1
    fn = sum(v for k, v in c.items() if k.startswith("fn_"))
    fp = sum(v for k, v in c.items() if k.startswith("fp_"))
    assert fn == c["gold"] - c["tp"] and fp == c["predicted"] - c["tp"]

    g, p = tmp_path / "g.json", tmp_path / "p.json"
    g.write_text(json.dumps(gold))
    p.write_text(json.dumps(pred + pred))
    assert relation_errors.main(["--gold", str(g), "--pred", str(p)]) == 2
    assert "has 2 documents" in capsys.readouterr().err


def test_each_entity_error_has_one_cause() -> None:
    gold = [_doc([(0, 2, "Org"), (3, 4, "Peop"), (5, 6, "Loc")], [])]
    # Org cut to (0, 1); Peop typed Loc; Loc at 5 found; a false Other at 7
    pred = [_doc([(0, 1, "Org"), (3, 4, "Loc"), (5, 6, "Loc"), (7, 8, "Other")], [])]
    c = relation_errors.entity_errors(gold, pred)
    assert c["ent_tp"] == 1
    assert c["ent_fp_other_boundaries"] == 1 and c["ent_fn_other_boundaries"] == 1
    assert c["ent_fp_other_type"] == 1 and c["ent_fn_other_type"] == 1
    assert c["ent_fp_no_overlap"] == 1 and "ent_fn_no_overlap" not in c


def test_a_malformed_record_is_named(tmp_path, capsys) -> None:
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    g.write_text(json.dumps([_doc([(0, 1, "Peop")], [])]))
    p.write_text(json.dumps([{"entities": [{"start": 0}], "relations": []}]))
    assert relation_errors.main(["--gold", str(g), "--pred", str(p)]) == 2
    err = capsys.readouterr().err
    assert "record 0" in err and str(p) in err and len(err.strip().splitlines()) == 1
