"""benchmarks/veto_removals.py on a tiny trained model with a fitted veto: every relation the veto takes out is
listed once, marked true exactly when the gold holds it, and the cue words are counted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from anchoralign.anchor_heads import AnchorConfig
from anchoralign.decode import DecodeConfig, predict
from anchoralign.errors import InputError
from anchoralign.model import save_model
from anchoralign.veto import fit_veto

from .tiny import make_doc, overfit_tiny_model, toy_docs

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "veto_removals.py"


def _main():
    spec = importlib.util.spec_from_file_location("veto_removals", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _spert(doc) -> dict:
    return {"tokens": [t.text for t in doc.tokens],
            "entities": [{"type": e.type, "start": e.start, "end": e.end} for e in doc.entities],
            "relations": [{"type": r.type, "head": r.head, "tail": r.tail} for r in doc.relations]}


def test_every_removed_relation_is_listed_and_marked(tmp_path, data_dir, capsys) -> None:
    model = overfit_tiny_model(tmp_path, anchor=AnchorConfig(pair_classifier=True))
    extra = make_doc("d", "Mary Jones was not born in Boston .".split(), [(0, 2, "Peop"), (6, 7, "Loc")],
                     [(0, 1, "Live_In")])
    fit_veto(model, toy_docs() + [extra], 0.5, epochs=1, batch_size=4)
    k = list(model.schema.relation_types).index("Work_For")
    with torch.no_grad():  # a veto that doubts Work_For and nothing else
        last = model.heads.veto.pair.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(20.0)
        last.bias[k] = -20.0
    save_model(model, tmp_path / "m", extra_config={"run": {"decode": {"pair_relations": "union"}}})
    gold = [*toy_docs()[:2], make_doc("n", "Mary does not work for Acme Corp .".split(),
                                      [(0, 1, "Peop"), (4, 6, "Org")], [(0, 1, "Work_For")])]
    data = tmp_path / "data" / "conll04"
    data.mkdir(parents=True)
    (data / "conll04_types.json").write_text((data_dir / "conll04" / "conll04_types.json").read_text())
    (data / "test.json").write_text(json.dumps([_spert(d) for d in gold]))
    out = tmp_path / "r.json"
    assert _main()(["--model", str(tmp_path / "m"), "--veto", "0.5", "--data-dir", str(tmp_path / "data"),
                    "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    from anchoralign.data.registry import load_split

    docs = load_split("conll04", "test", tmp_path / "data").documents
    pred = predict(model, docs, DecodeConfig(pair_relations="union")).documents
    want_true = want_false = want_cue = cue_false = 0
    for g, p in zip(docs, pred, strict=True):
        truth = {(g.entities[r.head].start, g.entities[r.tail].start, r.type) for r in g.relations}
        for r in p.relations:
            if r.type != "Work_For":
                continue
            hit = (p.entities[r.head].start, p.entities[r.tail].start, r.type) in truth
            want_true += hit
            want_false += not hit
            cue_false += (not hit) and "not" in g.text.split()
            want_cue += hit and "not" in g.text.split()
    kept_types = {r.type for p in pred for r in p.relations} - {"Work_For"}
    assert want_true > 0 and want_cue + cue_false > 0 and kept_types  # some lost, one under "not", some kept
    assert (report["true_lost"], report["false_removed"]) == (want_true, want_false)
    assert (report["true_lost_with_cue"], report["false_removed_with_cue"]) == (want_cue, cue_false)
    assert {x["type"] for x in report["removed"]} == {"Work_For"}
    assert (report["gold_relations"], report["gold_relations_with_cue"]) == (4, 1)  # the third sentence's "not"
    assert {x["cue"] for x in report["removed"] if x["id"].endswith("2")} <= {"not"}
    assert "true relations lost" in capsys.readouterr().out


def test_bad_settings_are_one_line_errors(tmp_path) -> None:
    import pytest

    model = overfit_tiny_model(tmp_path, anchor=AnchorConfig(pair_classifier=True), steps=1)
    save_model(model, tmp_path / "m", extra_config={"run": {"decode": {"pair_relations": "off"}}})
    for extra, says in ((["--set", "decode.nonsense=1"], "unknown config field"),
                        ([], "pair_relations: union"),
                        (["--set", "pair_relations=union", "--set", "num_beams=zero"], "num_beams")):
        with pytest.raises(InputError, match=says):
            _main()(["--model", str(tmp_path / "m"), "--veto", "0.1", *extra])
