"""The model commands (``evaluate``, ``extract``, ``train``) run in-process on a tiny model trained in seconds:
output shapes, offsets that slice the input, the independent scorer agreeing with ``evaluate``, and one-line
errors (exit 2, no traceback) on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from anchoralign.anchor_heads import AnchorConfig
from anchoralign.cli import main
from anchoralign.config import RunConfig
from anchoralign.model import ModelConfig
from anchoralign.train import train

from .tiny import tiny_model, toy_docs, toy_schema

LINES = [
    "John Smith works for Acme Corp in Boston .",
    "",
    "   \t  ",
    " ".join(("Mary Jones lives in Paris on Monday . Acme Corp hired John Smith .".split() * 30)[:330]),
    "Mary 😀 lives in Paris 👍🏽 on Monday ❤️ .",
    "约翰·史密斯在波士顿的艾克米公司工作。",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny full-AnchorAlign model (scorer and alignment heads) trained briefly, saved as a run directory."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli_model") / "run"
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = 40, 3, "fp32", 1
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 40
    torch.manual_seed(0)
    docs = toy_docs()
    train(cfg, docs, docs, toy_schema(), out, model=tiny_model(None, anchor=AnchorConfig()), progress=False)
    return out


@pytest.fixture
def gold_jsonl(tmp_path) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text(
        "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in toy_docs()), encoding="utf-8"
    )
    return path


def _check_extraction(records: list[dict], texts: list[str]) -> None:
    assert [r["text"] for r in records] == texts
    for r in records:
        assert set(r) == {"text", "entities", "relations", "errors", "windows", "cut", "truncated"}
        assert r["truncated"] == 0  # windows are sized in encoder pieces too
        ids = [e["id"] for e in r["entities"]]
        assert ids == list(range(len(ids)))
        for e in r["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(r["text"])
            assert r["text"][e["start"] : e["end"]] == e["text"]
            assert isinstance(e["type"], str) and e["type"] and 0.0 <= e["score"] <= 1.0
        for rel in r["relations"]:
            assert rel["head"] in ids and rel["tail"] in ids and isinstance(rel["type"], str)
            assert 0.0 <= rel["score"] <= 1.0
        if not r["text"].strip():
            assert r["entities"] == [] and r["relations"] == []


def test_evaluate_json_agrees_with_the_independent_scorer(model_dir, gold_jsonl, tmp_path, capsys) -> None:
    pred = tmp_path / "p.json"
    argv = [
        "evaluate",
        "--model",
        str(model_dir),
        "--input",
        str(gold_jsonl),
        "--format",
        "jsonl",
        "--json",
        "--predictions",
        str(pred),
    ]
    assert main(argv) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"ner", "re", "re_strict", "malformed", "malformed_by_kind", "constraint_rejections"} <= set(
        scores
    )
    assert isinstance(scores["malformed"], int) and scores["malformed"] == sum(
        scores["malformed_by_kind"].values()
    )
    for task in ("ner", "re", "re_strict"):
        assert set(scores[task]) == {"micro", "macro", "per_type"}
    assert set(scores["anchor_scorer"]) == {"precision", "recall", "f1", "gold_anchors", "candidate_recall"}

    gold_spert = tmp_path / "gold.json"
    gold_spert.write_text(json.dumps([d.to_spert() for d in toy_docs()]), encoding="utf-8")
    assert main(["score", "--gold", str(gold_spert), "--pred", str(pred), "--json"]) == 0
    rescored = json.loads(capsys.readouterr().out)
    for task in ("ner", "re", "re_strict"):
        for avg in ("micro", "macro"):
            assert rescored[task][avg]["f1"] == pytest.approx(scores[task][avg]["f1"]), (task, avg)
        assert rescored[task]["micro"]["tp"] == scores[task]["micro"]["tp"]


def test_extract_one_object_per_line_with_exact_offsets(model_dir, tmp_path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    # LINES[5] is Chinese, which the model (trained on Latin letters) is refused without --any-script
    assert main(["extract", "--model", str(model_dir), "--input", str(lines), "--output", str(out),
                 "--any-script"]) == 0
    raw = out.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    records = [json.loads(ln) for ln in raw[:-1].split("\n")]
    _check_extraction(records, LINES)
    assert (
        records[0]["entities"] and sum(len(r["entities"]) for r in records[3:]) > 0
    )  # the checks are not vacuous


def test_extract_json_lines_input(model_dir, tmp_path) -> None:
    texts = [LINES[0], "", LINES[5], "Acme Corp hired Mary Jones ."]
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({"text": t, "id": i}, ensure_ascii=False) if t else "" for i, t in enumerate(texts)
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    assert main(["extract", "--model", str(model_dir), "--input", str(src), "--output", str(out), "--any-script"]) == 0
    records = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    _check_extraction(records, texts)


def test_extract_refuses_lines_in_a_script_the_model_never_read(model_dir, tmp_path, capsys) -> None:
    """Trained on Latin letters only: Chinese lines are refused before the model loads, the first named by
    line with its script and the count of the others; a Latin line with a Chinese name in it is read."""
    src = tmp_path / "in.txt"
    src.write_text("Mary met 约翰 in Paris .\n约翰在波士顿工作。\nAcme Corp hired Mary Jones .\n北京\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["extract", "--model", str(model_dir), "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{src}: record 1 (line 2): 8 of its 8 letters" in err
    assert "Han (8)" in err and "Latin 100 %" in err and "1 more line(s)" in err and "--any-script" in err
    assert not out.exists()
    assert main(["extract", "--model", str(model_dir), "--input", str(src), "--output", str(out), "--any-script"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4


def test_extract_malformed_json_lines_fails_in_one_line(model_dir, tmp_path, capsys) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(
        '{"text": "John Smith works for Acme Corp ."}\n{"text": "Mary lives in\n', encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    assert main(["extract", "--model", str(model_dir), "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(src) in err and "line 2" in err and "invalid JSON" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.nope=1", "train.nope"),
        ("nosection.epochs=1", "nosection"),
        ("train.epochs=abc", "train.epochs"),
        ("train.epochs=1.5", "train.epochs"),
        ("train.lr=true", "train.lr"),
        ("train.bf16=maybe", "train.bf16"),
        ("train.epochs=0", "train.epochs"),
        ("model.target_format=tree", "model.target_format"),
        ("decode.num_beams=0", "decode.num_beams"),
    ],
)
def test_train_bad_override_fails_naming_the_field(override, expected, gold_jsonl, tmp_path, capsys) -> None:
    # --train names a missing file: if the override were wrongly accepted, the command fails on reading it
    # (and the message does not name the field) instead of training a real model
    argv = [
        "train",
        "--train",
        str(tmp_path / "missing.jsonl"),
        "--dev",
        str(gold_jsonl),
        "--format",
        "jsonl",
        "--output",
        str(tmp_path / "run"),
        "--set",
        override,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert expected in err
    assert not (tmp_path / "run").exists()


def test_json_lines_text_may_hold_unicode_line_separators(tmp_path, capsys) -> None:
    """U+2028 and U+0085 are legal unescaped inside JSON strings; only newlines separate records."""
    from anchoralign.data.tokenize import tokenize_text
    from anchoralign.types import Document

    text = "John\u2028Smith works\x85for Acme"
    doc = Document("a", text, tokenize_text(text))
    doc = doc.with_annotations([doc.make_entity(0, 2, "Peop"), doc.make_entity(4, 5, "Org")], [])
    path = tmp_path / "sep.jsonl"
    path.write_text(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["validate", str(path), "--format", "jsonl"]) == 0
    assert "source entities:  2" in capsys.readouterr().out


def test_type_labels_that_tokenize_the_same_fail_as_input_error() -> None:
    """Types ``Org`` and ``ORG`` both verbalize to "org": a user's mistake, reported in one line (InputError)."""
    from anchoralign.encoding import add_markers, build_vocab
    from anchoralign.errors import InputError
    from anchoralign.schema import Schema

    from .tiny import tiny_tokenizer

    tok = tiny_tokenizer(None, ["org", "people"])
    add_markers(tok)
    schema = Schema()
    for name in ("Peop", "Org", "ORG"):
        schema.add_entity_type(name)
    with pytest.raises(InputError, match="'Org' and 'ORG'"):
        build_vocab(tok, schema, tok.sep_token_id)


def test_evaluate_prints_a_table_and_writes_the_json(model_dir, gold_jsonl, tmp_path, capsys) -> None:
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--model", str(model_dir), "--input", str(gold_jsonl), "--format", "jsonl",
            "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "NER strict" in printed and "RE+ strict" in printed and "malformed generated pieces: 0" in printed
    saved = json.loads(out.read_text())
    assert saved["violations"] == {"relations_outside_signatures": 0, "spans_with_two_types": 0}


def test_evaluate_with_tagger_spans_and_decode_overrides(model_dir, gold_jsonl, tmp_path, capsys) -> None:
    pred = tmp_path / "p.json"
    base = ["evaluate", "--model", str(model_dir), "--input", str(gold_jsonl), "--format", "jsonl", "--json"]
    assert main([*base, "--set", "decode.tagger_spans=true", "--predictions", str(pred)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["malformed"] == 0 and scores["violations"]["spans_with_two_types"] == 0
    predicted = json.loads(pred.read_text())
    assert len(predicted) == len(toy_docs())
    # with tagger spans, the predicted entities are a subset of the tagger's: NER tp cannot exceed the tagger's
    assert scores["ner"]["micro"]["tp"] <= scores["entity_tagger"]["tp"]
    for bad, expected in (("train.lr=1", "decode.KEY=VALUE"), ("decode.nope=1", "unknown config field"),
                          ("decode.num_beams=0", "num_beams")):
        assert main([*base, "--set", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_command_help_lists_the_command_options(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--model" in out and "--set" in out


def test_extract_decodes_as_the_model_was_evaluated(model_dir, tmp_path, capsys) -> None:
    from dataclasses import asdict

    from anchoralign.api import Extractor, saved_decode_config

    saved = json.loads((model_dir / "model_config.json").read_text())["run"]["decode"]
    assert asdict(Extractor.load(model_dir).decode) == saved == asdict(saved_decode_config(model_dir))
    lines = tmp_path / "in.txt"
    lines.write_text("Mary lives in Paris .\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["extract", "--model", str(model_dir), "--input", str(lines), "--output", str(out)]
    assert main([*argv, "--set", "decode.tagger_spans=true", "--beams", "2"]) == 0
    _check_extraction([json.loads(x) for x in out.read_text().splitlines()], ["Mary lives in Paris ."])
    assert main([*argv, "--set", "decode.nope=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown config field 'decode.nope'" in err and len(err.splitlines()) == 1
