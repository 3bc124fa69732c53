"""``anchoralign datasets`` and ``anchoralign validate``: counts, summaries, and one-line errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anchoralign.cli import main

# documents, entities, relations per split, as PROVENANCE.md gives them (casrel entities: distinct located
# strings per sentence, which PROVENANCE does not list; checked against this reader's own count)
EXPECTED = {
    "conll04": {"train": (922, 3377, 1283), "dev": (231, 893, 343), "test": (288, 1079, 422)},
    "scierc": {"train": (1861, 5598, 3219), "dev": (275, 811, 455), "test": (551, 1685, 974)},
    "scierc_doc": {"train": (350, 5598, 3219), "dev": (50, 811, 455), "test": (100, 1685, 974)},
    "webnlg": {"train": (5019, 16257, 11313), "dev": (500, 1718, 1224), "test": (703, 2292, 1607)},
    "webnlg_star": {"train": (5019, 15854, 11776), "dev": (500, 1538, 1118), "test": (703, 2187, 1591)},
    "chinese_literature": {
        "train": (695, 124992, 13464),
        "dev": (58, 11924, 1347),
        "test": (84, 16811, 1675),
    },
    "ade": {"full": (4272, 10839, 6821), "fold9-train": (3843, 9770, 6173), "fold9-test": (429, 1069, 648)},
}


def test_datasets_json_reproduces_provenance(data_dir, capsys):
    assert main(["datasets", "--data-dir", str(data_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {*EXPECTED}
    for name, split_counts in EXPECTED.items():
        for split, counts in split_counts.items():
            s = report[name][split]
            assert (s["documents"], s["entities"], s["relations"]) == counts, (name, split)
    assert len(report["ade"]) == 21
    assert sum(report["ade"][f"fold{i}-test"]["relations"] for i in range(10)) == 6821
    lit = report["chinese_literature"]["train"]
    assert lit["passages"] == 5667 and lit["entity_types"] == 18
    assert (
        lit["warnings"]["cross_passage_relation"] == 495 and lit["warnings"]["discontinuous_entity"] == 2937
    )
    assert report["webnlg"]["train"]["relation_types"] == 211
    assert report["conll04"]["train"] == {
        "documents": 922, "entities": 3377, "relations": 1283, "passages": 922,
        "entity_types": 4, "relation_types": 5, "warnings": {},
    }  # fmt: skip


def test_datasets_table(data_dir, capsys):
    assert main(["datasets", "--data-dir", str(data_dir), "--dataset", "conll04", "scierc"]) == 0
    out = capsys.readouterr().out
    assert "conll04 (en, spert; NER strict, RE+ strict, micro)" in out
    assert "train        922       922     3,377      1,283" in out
    assert "warnings train: duplicate_relation_merged 4" in out


def test_datasets_missing_data_dir(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "ANCHORALIGN_DATA" in err and len(err.strip().splitlines()) == 1


def test_validate_summary(data_dir, capsys):
    conll = data_dir / "conll04"
    assert (
        main(
            [
                "validate",
                str(conll / "train.json"),
                "--format",
                "spert",
                "--types",
                str(conll / "conll04_types.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "source documents: 922" in out and "source relations: 1,283" in out and "Peop 1,087" in out
    scierc = data_dir / "scierc"
    args = [
        "validate",
        str(scierc / "doc_level" / "dev.json"),
        "--format",
        "dygie",
        "--types",
        str(scierc / "scierc_types.json"),
    ]
    assert main(args) == 0  # USED-FOR matches Used-for
    assert main(["validate", str(data_dir / "chinese_literature" / "dev"), "--format", "brat"]) == 0
    out = capsys.readouterr().out
    assert "source entities:  11,924" in out and "warning discontinuous_entity: 283" in out
    assert main(["validate", str(data_dir / "chinese_literature" / "dev" / "3.ann"), "--format", "brat"]) == 0


def test_validate_unknown_types_fail(data_dir, capsys):
    args = ["validate", str(data_dir / "conll04" / "dev.json"), "--format", "spert"]
    assert main([*args, "--types", str(data_dir / "ade" / "ade_types.json")]) == 2
    err = capsys.readouterr().err
    assert "entity type 'Peop'" in err and "relation type 'Kill'" in err and "Traceback" not in err


def spert(records: list) -> bytes:
    return json.dumps(records).encode()


GOOD = {
    "tokens": ["a", "b"],
    "entities": [{"type": "X", "start": 0, "end": 1}],
    "relations": [],
    "orig_id": 1,
}
TWENTY = {"tokens": ["w"] * 20, "relations": [], "entities": [{"type": "X", "start": i, "end": 31 if i == 2 else i + 1} for i in range(3)]}  # fmt: skip

# (case, format, {file: bytes}, the path given to validate, what the message must say)
MALFORMED = [
    ("invalid_json", "spert", {"bad.json": b'[{"tokens": ["a"],}]'}, "bad.json", ["invalid JSON at line 1, column 19"]),
    ("empty_file", "spert", {"empty.json": b" \n"}, "empty.json", ["file is empty"]),
    ("top_level", "casrel", {"obj.json": b'{"text": "a"}'}, "obj.json", ["expected a JSON array", "found an object"]),
    ("missing_field", "spert", {"m.json": spert([GOOD, {"entities": []}])}, "m.json", ["record 1", 'missing field "tokens"']),
    ("mistyped_field", "spert", {"t.json": spert([{**GOOD, "entities": [{"type": "X", "start": 0, "end": "1"}]}])},
     "t.json", ["record 0: entity 0", 'field "end" must be an integer, found a string']),
    ("span_out_of_range", "spert", {"train.json": spert([GOOD] * 17 + [TWENTY])}, "train.json",
     ["train.json: record 17: entity 2: end 31 is past the 20 tokens"]),
    ("empty_span", "spert", {"e.json": spert([{**GOOD, "entities": [{"type": "X", "start": 1, "end": 1}]}])},
     "e.json", ["record 0: entity 0: empty span, start 1 >= end 1"]),
    ("relation_index", "spert", {"r.json": spert([GOOD, {**GOOD, "relations": [{"type": "R", "head": 0, "tail": 5}]}])},
     "r.json", ["record 1: relation 0: tail 5 is not an entity index"]),
    ("non_utf8", "spert", {"latin1.json": b'[{"tokens": ["caf\xe9"]}]'}, "latin1.json", ["not UTF-8: byte 0xe9", "line 1"]),
    ("missing_file", "spert", {}, "nothing.json", ["cannot read file"]),
    ("brat_bad_line", "brat", {"0.txt": "我们".encode(), "0.ann": "T1\tPerson 0 1\t我\nT2\tPerson zero 1\t们\n".encode()},
     "0.ann", ["0.ann: line 2: cannot parse"]),
    ("brat_offsets_past_text", "brat", {"0.txt": "我们".encode(), "0.ann": "T1\tPerson 0 9\t我们\n".encode()},
     "0.ann", ["0.ann: line 1: T1: offsets 0 9 are past the 2 characters"]),
    ("brat_unknown_id", "brat", {"0.txt": "我们".encode(), "0.ann": "T1\tP 0 1\t我\nR1\tS Arg1:T1 Arg2:T9\n".encode()},
     "0.ann", ["0.ann: line 2: R1: argument T9 is not a T id"]),
    ("brat_missing_ann", "brat", {"5.txt": "我们".encode()}, ".", ["5.txt has no 5.ann"]),
    ("jsonl_char_offsets", "jsonl", {"d.jsonl": json.dumps({"text": "a b", "tokens": [["a", 0, 1], ["b", 2, 3]],
     "entities": [{"start": 0, "end": 1, "char_start": 0, "char_end": 2, "type": "x"}]}).encode()},
     "d.jsonl", ["record 0 (line 1): entity 0: characters [0, 2) disagree with tokens [0, 1)"]),
    ("jsonl_token_text", "jsonl", {"d.jsonl": b'\n{"text": "a b", "tokens": [["a", 0, 1], ["c", 2, 3]]}\n'},
     "d.jsonl", ["record 0 (line 2): token 1: 'c' differs from the text"]),
    ("jsonl_unaligned_chars", "jsonl", {"d.jsonl": b'{"text": "Boston, MA", "entities": [{"char_start": 0, "char_end": 6, "type": "x"}]}'},
     "d.jsonl", ["entity 0: characters [0, 6) do not start and end on token boundaries"]),
    ("dygie_span_outside_sentence", "dygie", {"doc.json": json.dumps({"doc_key": "k", "sentences": [["a"], ["b", "c"]],
     "ner": [[[0, 1, "X"]], []]}).encode()}, "doc.json", ["record 0 (line 1): sentence 0: ner 0: span [0, 1] (document-level, inclusive) is outside sentence 0"]),
    ("casrel_bad_triple", "casrel", {"c.json": b'[{"text": "a b", "triple_list": [["a", "r"]]}]'}, "c.json",
     ["record 0: triple 0: expected [subject, relation, object]"]),
    ("duie_missing_predicate", "duie", {"d.json": '{"text": "张三", "spo_list": [{"subject": "张三", "subject_type": "人",'
     ' "object": "张三", "object_type": "人"}]}'.encode()}, "d.json", ['record 0 (line 1): spo 0: missing field "predicate"']),
]  # fmt: skip


@pytest.mark.parametrize("case, fmt, files, target, expected", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_validate_malformed_input(tmp_path, capsys, case, fmt, files, target, expected):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert main(["validate", str(tmp_path / target), "--format", fmt]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("anchoralign validate: error: ") and "Traceback" not in err
    assert (Path(target).name if target != "." else tmp_path.name) in err
    for part in expected:
        assert part in err


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "anchoralign", *args], capture_output=True, text=True, env=env
    )


def test_subprocess_entry_point(data_dir, tmp_path):
    ok = run_module("datasets", "--data-dir", str(data_dir), "--dataset", "conll04", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["conll04"]["test"]["relations"] == 422
    bad = tmp_path / "bad.json"
    bad.write_text('[{"tokens": ["a"], "entities": [{"type": "X", "start": 0, "end": 4}]}]', encoding="utf-8")
    res = run_module("validate", str(bad), "--format", "spert")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (
        res.stderr.strip()
        == f"anchoralign validate: error: {bad}: record 0: entity 0: end 4 is past the 1 tokens"
    )
