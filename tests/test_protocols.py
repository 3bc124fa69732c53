"""The benchmark protocols: every registry spec has one; on prediction files with realistic errors, built by
perturbing the real gold files with a seeded RNG, the ADE fold average, SciERC's symmetric relations and the
WebNLG / WebNLG* string triples equal a second implementation written here from the definitions alone (plain
dicts and sets over the raw JSON, nothing from ``anchoralign.metrics``); ``evaluate`` prints and writes the
protocol's figures, and training selects the dev epoch by the protocol's main figure."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from anchoralign.cli import main
from anchoralign.cli.score_cmd import read_spert_strict
from anchoralign.data.registry import DATASETS, DatasetSpec, dataset_protocol, load_split
from anchoralign.errors import InputError
from anchoralign.protocols import PROTOCOLS, Protocol, average_folds, format_folds, get_protocol
from anchoralign.schema import Schema

EXPECTED = {
    "conll04": "micro",
    "ade": "ade",
    "scierc": "scierc",
    "scierc_doc": "scierc",
    "webnlg": "webnlg",
    "webnlg_star": "webnlg_star",
    "chinese_literature": "micro",
}


# ---------------------------------------------------------------------------------------------------------
# The second implementation: from the definitions in DESIGN.md §7, on raw SpERT / CasRel JSON records.


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _ref_keys(rec: dict, task: str, symmetric: frozenset[str]) -> set:
    """One record's keys as sets: NER ``(type, start, end)``; RE ``(type, args)``, args ``(head, tail)`` or,
    for a symmetric type, the frozenset of the two; an argument is ``(start, end)`` (+ type for RE+)."""
    ents = rec["entities"]
    if task == "ner":
        return {(e["type"], e["start"], e["end"]) for e in ents}
    out = set()
    for r in rec["relations"]:
        args = []
        for i in (r["head"], r["tail"]):
            e = ents[i]
            args.append((e["start"], e["end"], e["type"]) if task == "re_strict" else (e["start"], e["end"]))
        out.add((r["type"], frozenset(args) if r["type"] in symmetric else tuple(args)))
    return out


def _ref_counts(gold: list[dict], pred: list[dict], task: str, symmetric=frozenset()) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for g, p in zip(gold, pred, strict=True):
        gk, pk = _ref_keys(g, task, symmetric), _ref_keys(p, task, symmetric)
        for key in gk & pk:
            counts.setdefault(key[0], [0, 0, 0])[0] += 1
        for key in pk - gk:
            counts.setdefault(key[0], [0, 0, 0])[1] += 1
        for key in gk - pk:
            counts.setdefault(key[0], [0, 0, 0])[2] += 1
    return counts


def _ref_micro(counts: dict[str, list[int]]) -> tuple[float, float, float]:
    return _prf(*(sum(c[i] for c in counts.values()) for i in range(3)))


def _ref_macro(counts: dict[str, list[int]]) -> tuple[float, float, float]:
    """Mean over the types seen in gold or prediction of each type's own P, R and F1."""
    per = [_prf(*c) for c in counts.values()]
    p, r, f = (sum(x[i] for x in per) / len(per) if per else 0.0 for i in range(3))
    return p, r, f


def _ref_spans(gold, pred, tasks, average, symmetric=frozenset()) -> dict[str, float]:
    out = {}
    for task in tasks:
        p, r, f = (_ref_micro if average == "micro" else _ref_macro)(_ref_counts(gold, pred, task, symmetric))
        out.update({task: f, f"{task}_precision": p, f"{task}_recall": r})
    return out


def _ref_triples(gold_raw: list[dict], pred: list[dict], last: bool) -> dict[str, float]:
    """Triple F1 over strings: gold from the CasRel ``triple_list``, predictions from their token spans."""

    def norm(s: str) -> str:
        return (s.split() or [""])[-1] if last else s

    tp = fp = fn = 0
    for g, p in zip(gold_raw, pred, strict=True):
        gold_set = {(norm(h), r, norm(t)) for h, r, t in g["triple_list"]}
        toks, ents = p["tokens"], p["entities"]

        def text(i: int, toks=toks, ents=ents) -> str:
            return norm(" ".join(toks[ents[i]["start"] : ents[i]["end"]]))

        pred_set = {(text(r["head"]), r["type"], text(r["tail"])) for r in p["relations"]}
        tp, fp, fn = (
            tp + len(gold_set & pred_set),
            fp + len(pred_set - gold_set),
            fn + len(gold_set - pred_set),
        )
    p_, r_, f_ = _prf(tp, fp, fn)
    return {"triples": f_, "triples_precision": p_, "triples_recall": r_}


# ---------------------------------------------------------------------------------------------------------
# Realistic errors, seeded.


def perturb(
    records: list[dict],
    rng: random.Random,
    ent_types: list[str],
    rel_types: list[str],
    *,
    symmetric: frozenset[str] = frozenset(),
    same_last_word: bool = False,
) -> list[dict]:
    """A prediction file: gold with wrong boundaries, wrong types, swapped head/tail, reversed symmetric
    relations, missing and spurious entities and relations, duplicate predictions (the same entity twice,
    with relations on either copy; the same relation twice) and, with ``same_last_word``, entities widened
    to the left (same last word, another string)."""
    out = []
    for rec in records:
        n = len(rec["tokens"])
        ents = [dict(e) for e in rec["entities"]]
        for e in ents:
            x = rng.random()
            if x < 0.07:  # wrong boundary
                if e["end"] < n and rng.random() < 0.5:
                    e["end"] += 1
                elif e["end"] - e["start"] > 1:
                    e["end"] -= 1
                elif e["start"] > 0:
                    e["start"] -= 1
            elif x < 0.13:  # wrong type, now and then one the schema does not know
                e["type"] = rng.choice([t for t in ent_types if t != e["type"]] or ["Unknown-Type"])
                if rng.random() < 0.1:
                    e["type"] = "Unknown-Type"
            elif same_last_word and x < 0.25 and e["start"] > 0:  # same last word, longer string
                e["start"] -= 1
        rels = []
        for r in rec["relations"]:
            r = dict(r)
            x = rng.random()
            if x < 0.08:
                continue  # missing
            if x < 0.16 or (r["type"] in symmetric and x < 0.6):  # swapped (for a symmetric type: harmless)
                r["head"], r["tail"] = r["tail"], r["head"]
            elif x < 0.22:
                r["type"] = rng.choice([t for t in rel_types if t != r["type"]] or ["Unknown-Relation"])
            rels.append(r)
            if rng.random() < 0.05:
                rels.append(dict(r))  # duplicate relation
        if ents and rng.random() < 0.15:  # duplicate entity; a relation moves to the copy
            i = rng.randrange(len(ents))
            ents.append(dict(ents[i]))
            for r in rels:
                if r["head"] == i:
                    r["head"] = len(ents) - 1
                    break
        if rng.random() < 0.2:  # spurious entity
            s = rng.randrange(n)
            ents.append({"type": rng.choice(ent_types), "start": s, "end": min(n, s + rng.randint(1, 3))})
        if len(ents) >= 2 and rng.random() < 0.2:  # spurious relation
            h, t = rng.sample(range(len(ents)), 2)
            rels.append({"type": rng.choice(rel_types), "head": h, "tail": t})
        if ents and rng.random() < 0.05:  # a missing entity, with its relations
            k = rng.randrange(len(ents))
            ents.pop(k)
            rels = [
                {**r, "head": r["head"] - (r["head"] > k), "tail": r["tail"] - (r["tail"] > k)}
                for r in rels
                if k not in (r["head"], r["tail"])
            ]
        out.append({"tokens": list(rec["tokens"]), "entities": ents, "relations": rels})
    return out


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _close(result: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


# ---------------------------------------------------------------------------------------------------------
# The registry


def test_every_spec_has_its_protocol_and_selection_figure():
    assert {name: spec.protocol.name for name, spec in DATASETS.items()} == EXPECTED
    for spec in DATASETS.values():
        p = spec.protocol
        assert isinstance(p, Protocol) and p is PROTOCOLS[p.name]
        assert p.select_key in p.figures and "ner" in p.figures and str(p) == p.description
    assert PROTOCOLS["ade"].select_key == "re_strict" and PROTOCOLS["webnlg"].select_key == "triples"
    assert (
        dataset_protocol("") is PROTOCOLS["micro"] and dataset_protocol("scierc_doc") is PROTOCOLS["scierc"]
    )
    with pytest.raises(InputError, match="unknown protocol 'f1'; known: micro, ade"):
        get_protocol("f1")
    with pytest.raises(InputError, match="unknown dataset"):
        dataset_protocol("nyt")


def test_a_spec_takes_a_protocol_name_or_description():
    """docs/own-data.md registers a dataset with the protocol's description; a name works too."""
    files = {"train": "x/train.json"}
    assert (
        DatasetSpec("x", "en", "spert", files, None, "NER strict, RE+ strict, micro").protocol.name == "micro"
    )
    assert DatasetSpec("x", "en", "spert", files, None, "ade").protocol is PROTOCOLS["ade"]
    assert DatasetSpec("x", "en", "spert", files, None, PROTOCOLS["scierc"]).protocol is PROTOCOLS["scierc"]
    with pytest.raises(ValueError, match="dataset 'x': unknown protocol 'F1, micro'; known: micro"):
        DatasetSpec("x", "en", "spert", files, None, "F1, micro")


def test_every_protocol_result_has_the_suite_shape():
    for name, p in PROTOCOLS.items():
        result = p.score([], [], None)
        assert result["protocol"] == name and set(result) == {"protocol", "main", *p.figures}
        assert all(0.0 <= result[k] <= 1.0 for k in p.figures) and result["main"] == result[p.select_key]
        text = p.format(result, "title")
        assert f"Protocol {name}" in text and all(f"[{t.key}]" in text for t in p.tasks)


def test_average_folds_checks_its_input():
    a = {"protocol": "ade", "main": 0.5, "ner": 0.2}
    one = average_folds([a])
    assert one["mean"] == a and one["std"] == {"main": 0.0, "ner": 0.0} and one["folds"] == [a]
    with pytest.raises(ValueError, match="same protocol"):
        average_folds([a, {**a, "protocol": "micro"}])
    with pytest.raises(ValueError, match="fold 1 has figures"):
        average_folds([a, {"protocol": "ade", "main": 0.5}])
    with pytest.raises(ValueError, match="at least one fold"):
        average_folds([])


# ---------------------------------------------------------------------------------------------------------
# Against the second implementation, on the real files


def test_ade_fold_average_equals_the_definition(data_dir: Path, tmp_path, capsys):
    schema = Schema.from_spert_types(data_dir / "ade" / "ade_types.json")
    protocol = DATASETS["ade"].protocol
    results, expected = [], []
    for i in range(10):
        gold_path = data_dir / "ade" / f"ade_split_{i}_test.json"
        gold_raw = json.loads(gold_path.read_text(encoding="utf-8"))
        rng = random.Random(1000 + i)
        pred_raw = perturb(gold_raw, rng, ["Drug", "Adverse-Effect"], ["Adverse-Effect", "Causes"])
        pred_path = _write(tmp_path / f"pred{i}.json", pred_raw)
        gold = load_split("ade", f"fold{i}-test", data_dir).documents
        result = protocol.score(gold, read_spert_strict(pred_path), schema)
        ref = _ref_spans(gold_raw, pred_raw, ("ner", "re_strict"), "macro")
        _close(result, {**ref, "main": ref["re_strict"]})
        results.append(result)
        expected.append(ref)
        if i == 3:  # the CLI on one fold: the same figures
            argv = ["score", "--gold", str(gold_path), "--pred", str(pred_path), "--protocol", "ade"]
            assert main([*argv, "--json"]) == 0
            out = json.loads(capsys.readouterr().out)
            assert out["protocol"] == "ade" and out["main"] == pytest.approx(ref["re_strict"], abs=1e-12)
            _close(out["figures"], ref)
    avg = average_folds(results)
    assert avg["mean"]["protocol"] == "ade" and len(avg["folds"]) == 10
    for key in ref:
        values = [e[key] for e in expected]
        assert avg["mean"][key] == pytest.approx(statistics.fmean(values), abs=1e-12), key
        assert avg["std"][key] == pytest.approx(statistics.stdev(values), abs=1e-12), key
    assert avg["mean"]["main"] == pytest.approx(avg["mean"]["re_strict"], abs=1e-12)
    # the errors are realistic: every figure dropped, and macro differs from micro (the unknown types count)
    assert 0.2 < avg["mean"]["re_strict"] < 0.95 and 0.3 < avg["mean"]["ner"] < 0.95
    micro_ner = _ref_micro(_ref_counts(gold_raw, pred_raw, "ner"))[2]
    assert abs(micro_ner - expected[-1]["ner"]) > 1e-3
    assert "mean ± sample std over 10 folds" in format_folds(avg, "ADE")


@pytest.mark.parametrize("dataset", ["conll04", "scierc"])
def test_span_protocols_equal_the_definition(dataset: str, data_dir: Path, tmp_path):
    gold_raw = json.loads((data_dir / dataset / "test.json").read_text(encoding="utf-8"))
    types = json.loads((data_dir / dataset / f"{dataset}_types.json").read_text(encoding="utf-8"))
    symmetric = frozenset({"Compare", "Conjunction"}) if dataset == "scierc" else frozenset()
    pred_raw = perturb(
        gold_raw, random.Random(7), list(types["entities"]), list(types["relations"]), symmetric=symmetric
    )
    pred = read_spert_strict(_write(tmp_path / "pred.json", pred_raw))
    gold = load_split(dataset, "test", data_dir).documents
    ref = _ref_spans(gold_raw, pred_raw, ("ner", "re", "re_strict"), "micro", symmetric)
    # no schema: SciERC's protocol knows its symmetric types itself
    result = DATASETS[dataset].protocol.score(gold, pred, None)
    _close(result, {**ref, "main": ref["re_strict"]})
    if dataset == "scierc":  # the reversed Compare / Conjunction relations are what the protocol forgives
        assert PROTOCOLS["micro"].score(gold, pred, None)["re"] < result["re"] - 0.005


@pytest.mark.parametrize(
    ("dataset", "protocol"), [("webnlg", "webnlg"), ("webnlg_star", "webnlg_star"), ("webnlg", "webnlg_star")]
)
def test_string_triples_equal_the_definition(dataset: str, protocol: str, data_dir: Path, tmp_path):
    gold_raw = json.loads((data_dir / dataset / "test.json").read_text(encoding="utf-8"))
    rel2id = json.loads((data_dir / dataset / "rel2id.json").read_text(encoding="utf-8"))[1]
    gold = load_split(dataset, "test", data_dir).documents
    assert len(gold) == len(gold_raw)
    located = [d.to_spert() for d in gold]  # predictions start from the located gold spans
    pred_raw = perturb(located, random.Random(11), ["entity"], sorted(rel2id), same_last_word=True)
    pred = read_spert_strict(_write(tmp_path / "pred.json", pred_raw))
    result = PROTOCOLS[protocol].score(gold, pred, None)
    ref = _ref_triples(gold_raw, pred_raw, last=protocol == "webnlg_star")
    _close(result, {**ref, "main": ref["triples"]})
    assert 0.4 < result["main"] < 0.95
    assert result["ner"] == pytest.approx(_ref_spans(located, pred_raw, ("ner",), "micro")["ner"], abs=1e-12)
    if dataset == "webnlg":  # the widened entities keep their last word: the partial score forgives them
        exact = PROTOCOLS["webnlg"].score(gold, pred, None)["main"]
        partial = PROTOCOLS["webnlg_star"].score(gold, pred, None)["main"]
        assert partial > exact + 0.01


def test_webnlg_gold_triples_are_the_source_strings(tmp_path):
    """A gold triple whose string the reader could not place still counts, as a miss: gold is the source."""
    path = _write(tmp_path / "g.json", [
        {"text": "Italians are from Italy .", "triple_list": [["Italy", "demonym", "Italians"],
                                                            ["Rome", "capital", "Italy"]]},
    ])  # fmt: skip
    from anchoralign.data.casrel import read_casrel

    gold = read_casrel(path).documents
    assert len(gold[0].relations) == 1  # "Rome" is not in the text
    result = PROTOCOLS["webnlg"].score(gold, gold, None)
    assert (result["triples_precision"], result["triples_recall"]) == (1.0, 0.5)


# ---------------------------------------------------------------------------------------------------------
# evaluate and train, on a tiny model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny model trained 10 epochs with ADE's protocol selecting the dev epoch (on the toy documents)."""
    import torch

    from anchoralign.config import RunConfig
    from anchoralign.model import ModelConfig
    from anchoralign.train import train

    from .tiny import tiny_model, toy_docs, toy_schema

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("protocols") / "run"
    cfg = RunConfig(dataset="ade")
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = 10, 3, "fp32", 1
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 1
    torch.manual_seed(0)
    docs = toy_docs()
    train(cfg, docs, docs, toy_schema(), out, model=tiny_model(None), progress=False)
    return out


def test_training_selects_the_epoch_by_the_protocols_main_figure(run_dir: Path):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 10
    mains = [r["dev_protocol"]["main"] for r in records]
    assert all(r["dev_protocol"]["protocol"] == "ade" for r in records)
    assert all(r["dev_protocol"]["main"] == r["dev_protocol"]["re_strict"] for r in records)
    # after every epoch, the best so far is the first epoch with the highest main figure so far (on this run
    # micro RE+ stays flat over epochs 1-4 while ADE's macro RE+ rises: a micro selection would keep epoch 1)
    for k, r in enumerate(records):
        assert r["best_epoch"] == 1 + mains.index(max(mains[: k + 1])), r["epoch"]


@pytest.mark.parametrize(
    ("dataset", "split"),
    [("conll04", "test"), ("ade", "fold3-test"), ("scierc", "test"), ("scierc_doc", "test"),
     ("webnlg", "test"), ("webnlg_star", "test"), ("chinese_literature", "test")],
)  # fmt: skip
def test_evaluate_prints_and_writes_the_datasets_protocol(
    dataset: str, split: str, run_dir: Path, data_dir: Path, tmp_path, capsys, monkeypatch
):
    from anchoralign.cli import evaluate_cmd

    real = evaluate_cmd.read_split
    # the first 4 documents of the split: seconds, not minutes
    monkeypatch.setattr(evaluate_cmd, "read_split", lambda *a: real(*a)[:4])
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--model", str(run_dir), "--dataset", dataset, "--split", split, "--data-dir",
            str(data_dir), "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    protocol = DATASETS[dataset].protocol
    assert f"Protocol {protocol.name}: {protocol.description}" in printed and f"{dataset}/{split}" in printed
    for t in protocol.tasks:
        assert f"{t.label} [{t.key}]" in printed
    saved = json.loads(out.read_text())
    assert saved["protocol"] == protocol.name and saved["main"] == saved["figures"][protocol.select_key]
    assert set(saved["figures"]) == {"protocol", "main", *protocol.figures}
    assert {"ner", "re", "re_strict", "malformed", "violations"} <= set(saved)


def test_evaluate_protocol_option_and_independent_rescoring(run_dir: Path, tmp_path, capsys):
    from .tiny import toy_docs

    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    pred = tmp_path / "pred.json"
    base = ["evaluate", "--model", str(run_dir), "--input", str(gold), "--json", "--predictions", str(pred)]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["protocol"] == "micro"  # own file: micro unless told
    assert main([*base, "--protocol", "ade"]) == 0
    scores = json.loads(capsys.readouterr().out)
    gold_raw = [d.to_spert() for d in toy_docs()]
    ref = _ref_spans(gold_raw, json.loads(pred.read_text()), ("ner", "re_strict"), "macro")
    assert scores["protocol"] == "ade"
    _close(scores["figures"], {**ref, "main": ref["re_strict"]})
