"""``anchoralign score`` run in-process: JSON and table output, symmetric types, and malformed input files."""

from __future__ import annotations

import json

import pytest

from anchoralign.cli import main
from anchoralign.cli.score_cmd import read_spert_strict
from anchoralign.metrics import score_documents

GOLD = [
    {
        "tokens": ["Sofia", "BTA", "chief", "John", "Smith", "."],
        "entities": [
            {"type": "Loc", "start": 0, "end": 1},
            {"type": "Org", "start": 1, "end": 2},
            {"type": "Peop", "start": 3, "end": 5},
        ],
        "relations": [
            {"type": "OrgBased_In", "head": 1, "tail": 0},
            {"type": "Work_For", "head": 2, "tail": 1},
        ],
        "orig_id": 1,
    },
    {"tokens": ["Nothing", "here", "."], "entities": [], "relations": [], "orig_id": 2},
]
# Org predicted as Loc: NER loses one, RE keeps both relations, RE+ loses both.
PRED = [
    {
        "tokens": ["Sofia", "BTA", "chief", "John", "Smith", "."],
        "entities": [
            {"type": "Loc", "start": 0, "end": 1},
            {"type": "Loc", "start": 1, "end": 2},
            {"type": "Peop", "start": 3, "end": 5},
        ],
        "relations": [
            {"type": "OrgBased_In", "head": 1, "tail": 0},
            {"type": "Work_For", "head": 2, "tail": 1},
        ],
    },
    {"tokens": ["Nothing", "here", "."], "entities": [], "relations": []},
]


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "gold.json", GOLD), write(tmp_path / "pred.json", PRED)


def test_json_output(files, capsys):
    gold, pred = files
    assert main(["score", "--gold", str(gold), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"ner", "re", "re_strict"}
    assert set(out["ner"]) == {"micro", "macro", "per_type"}
    assert out["ner"]["micro"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "tp": 2, "fp": 1, "fn": 1}
    )
    # Loc: tp 1, fp 1 -> P .5, R 1, F1 2/3; Org: fn 1 -> 0; Peop: 1. Macro F1 = (2/3 + 0 + 1) / 3.
    assert out["ner"]["macro"]["f1"] == pytest.approx(5 / 9)
    assert out["ner"]["per_type"]["Org"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "fp": 0,
        "fn": 1,
        "support": 1,
    }
    assert out["re"]["micro"]["f1"] == 1.0
    assert (out["re_strict"]["micro"]["tp"], out["re_strict"]["micro"]["fp"]) == (0, 2)


def test_table_output_names_protocols(files, capsys):
    gold, pred = files
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 0
    out = capsys.readouterr().out
    for label in ("NER strict (micro)", "RE (boundaries) (macro over types)", "RE+ strict (micro)", "66.67"):
        assert label in out
    assert "symmetric relation types (compared without direction): none" in out


def test_symmetric_types_from_types_file(data_dir, tmp_path, capsys):
    words = ["parsing", "and", "tagging", "."]
    ents = [{"type": "Task", "start": 0, "end": 1}, {"type": "Task", "start": 2, "end": 3}]
    gold = write(
        tmp_path / "g.json",
        [{"tokens": words, "entities": ents, "relations": [{"type": "Conjunction", "head": 0, "tail": 1}]}],
    )
    pred = write(
        tmp_path / "p.json",
        [{"tokens": words, "entities": ents, "relations": [{"type": "Conjunction", "head": 1, "tail": 0}]}],
    )
    types = data_dir / "scierc" / "scierc_types.json"
    assert main(["score", "--gold", str(gold), "--pred", str(pred), "--types", str(types), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["re_strict"]["micro"]["f1"] == 1.0
    assert main(["score", "--gold", str(gold), "--pred", str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["re_strict"]["micro"]["f1"] == 0.0


def test_real_gold_against_itself_and_a_perturbed_copy(data_dir, tmp_path, capsys):
    gold_path = data_dir / "conll04" / "test.json"
    assert main(["score", "--gold", str(gold_path), "--pred", str(gold_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(out[t]["micro"]["f1"] == 1.0 and out[t]["macro"]["f1"] == 1.0 for t in out)
    assert out["ner"]["micro"]["tp"] == 1079 and out["re_strict"]["micro"]["tp"] == 422

    records = json.loads(gold_path.read_text(encoding="utf-8"))
    for rec in records[::3]:
        rec["relations"] = [{**r, "head": r["tail"], "tail": r["head"]} for r in rec["relations"]]
    pred_path = write(tmp_path / "pred.json", records)
    assert main(["score", "--gold", str(gold_path), "--pred", str(pred_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = score_documents(read_spert_strict(gold_path), read_spert_strict(pred_path))
    assert out == json.loads(json.dumps(expected))
    assert out["ner"]["micro"]["f1"] == 1.0 and 0.0 < out["re"]["micro"]["f1"] < 1.0


def _record(**changes):
    rec = json.loads(json.dumps(PRED[0]))
    rec.update(changes)
    return rec


BAD_PREDICTIONS = {
    "other length": ([PRED[0]], "prediction has 1 records but gold"),
    "other tokens": (
        [PRED[0], {"tokens": ["Nothing", "there", "."], "entities": [], "relations": []}],
        "record 1: tokens differ from gold",
    ),
    "invalid json": ('[{"tokens": ["a"],', "invalid JSON at line 1"),
    "empty file": ("", "file is empty"),
    "whitespace only": ("  \n", "file is empty"),
    "top-level object": ({"tokens": []}, "expected a JSON list"),
    "record not an object": ([["Sofia"], PRED[1]], "record 0: the record must be an object"),
    "missing tokens": ([{"entities": [], "relations": []}, PRED[1]], 'record 0: the record has no "tokens"'),
    "missing entities": ([{"tokens": ["a"], "relations": []}, PRED[1]], 'has no "entities"'),
    "missing relations": ([{"tokens": ["a"], "entities": []}, PRED[1]], 'has no "relations"'),
    "token not a string": (
        [_record(tokens=["Sofia", 3, "chief", "John", "Smith", "."]), PRED[1]],
        "token 1 must be a string",
    ),
    "entity missing type": (
        [_record(entities=[{"start": 0, "end": 1}], relations=[]), PRED[1]],
        'entity 0 has no "type"',
    ),
    "entity start not int": (
        [_record(entities=[{"type": "Loc", "start": "0", "end": 1}], relations=[]), PRED[1]],
        'entity 0 field "start" must be int',
    ),
    "span out of range": (
        [_record(entities=[{"type": "Loc", "start": 4, "end": 9}], relations=[]), PRED[1]],
        "record 0: entity 0 span [4, 9) is empty or outside the 6 tokens",
    ),
    "empty span": (
        [_record(entities=[{"type": "Loc", "start": 2, "end": 2}], relations=[]), PRED[1]],
        "entity 0 span [2, 2) is empty",
    ),
    "negative start": (
        [_record(entities=[{"type": "Loc", "start": -1, "end": 1}], relations=[]), PRED[1]],
        "is empty or outside",
    ),
    "relation index out of range": (
        [_record(relations=[{"type": "Work_For", "head": 2, "tail": 3}]), PRED[1]],
        "record 0: relation 0 tail 3 is not an index into the 3 entities",
    ),
    "relation missing head": (
        [_record(relations=[{"type": "Work_For", "tail": 1}]), PRED[1]],
        'relation 0 has no "head"',
    ),
    "not utf-8": ('[{"tokens": ["Caf\xe9"]}]'.encode("latin-1"), "not UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_malformed_prediction_exits_2_naming_the_file(case, tmp_path, capsys):
    content, message = BAD_PREDICTIONS[case]
    gold = write(tmp_path / "gold.json", GOLD)
    pred = write(tmp_path / "bad_pred.json", content)
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("anchoralign score: error: ") and str(pred) in err
    assert message in err
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    "content", ["", "{", b"\xff\xfe", [{"tokens": ["a"], "entities": [], "relations": [{}]}]]
)
def test_malformed_gold_is_rejected_like_predictions(content, tmp_path, capsys):
    gold = write(tmp_path / "bad_gold.json", content)
    pred = write(tmp_path / "pred.json", PRED)
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err
    assert str(gold) in err and "Traceback" not in err


def test_missing_files_exit_2(tmp_path, capsys):
    gold = write(tmp_path / "gold.json", GOLD)
    assert main(["score", "--gold", str(gold), "--pred", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    args = ["score", "--gold", str(gold), "--pred", str(gold), "--types", str(tmp_path / "types.json")]
    assert main(args) == 2
    assert "types.json" in capsys.readouterr().err


def test_unknown_types_warn_but_still_score(data_dir, files, capsys):
    gold, pred = files
    types = data_dir / "conll04" / "conll04_types.json"
    rec = _record(entities=[{"type": "Spaceship", "start": 0, "end": 1}], relations=[])
    pred = write(pred, [rec, PRED[1]])
    assert main(["score", "--gold", str(gold), "--pred", str(pred), "--types", str(types), "--json"]) == 0
    captured = capsys.readouterr()
    assert "entity type 'Spaceship'" in captured.err and str(pred) in captured.err
    assert json.loads(captured.out)["ner"]["per_type"]["Spaceship"]["fp"] == 1
