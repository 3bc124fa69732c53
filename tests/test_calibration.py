"""Calibration figures: ECE and reliability bins against a direct computation, temperature fitting on data
drawn with a known temperature, the threshold table's rule, and ``anchoralign calibrate`` end to end."""

from __future__ import annotations

import json
import math
import random

import pytest

from anchoralign.calibration import Scored, ece, fit_temperature, reliability, temper, threshold_table
from anchoralign.types import Document, Relation, tokens_from_words


def test_ece_by_hand() -> None:
    items = [Scored(0.95, True), Scored(0.92, False), Scored(0.15, False), Scored(0.12, True), Scored(0.55, True)]
    # bins (10): [0.1, 0.2): scores .15, .12 -> accuracy .5, mean .135; [0.5, 0.6): .55 -> 1.0;
    # [0.9, 1.0]: .95, .92 -> accuracy .5, mean .935
    want = (2 * abs(0.5 - 0.135) + 1 * abs(1.0 - 0.55) + 2 * abs(0.5 - 0.935)) / 5
    assert ece(items) == pytest.approx(want)
    rows = reliability(items)
    assert [r["count"] for r in rows] == [2, 1, 2]
    assert ece([Scored(1.0, True)]) == 0.0 and ece([]) == 0.0


def test_fit_temperature_recovers_the_temperature_the_data_was_drawn_with() -> None:
    rng = random.Random(0)
    for true_t in (0.5, 2.0):
        items = []
        for _ in range(6000):
            p = rng.uniform(0.02, 1.0)
            items.append(Scored(p, rng.random() < p ** (1 / true_t)))
        t = fit_temperature(items)
        assert t == pytest.approx(true_t, rel=0.12)
        assert ece(temper(items, t)) < ece(items)
    assert fit_temperature([Scored(0.3, True)]) == 1.0  # nothing to fit


def _doc(words: str, ents: list, rels: list) -> Document:
    text, tokens = tokens_from_words(words.split())
    d = Document("d", text, tokens)
    return d.with_annotations([d.make_entity(s, e, t, sc) for s, e, t, sc in ents],
                              [Relation(h, t, r, sc) for h, t, r, sc in rels])


def test_threshold_table_keeps_the_arguments_of_kept_relations() -> None:
    gold = _doc("John works for Acme", [(0, 1, "Peop", None), (3, 4, "Org", None)], [(0, 1, "Work_For", None)])
    pred = _doc("John works for Acme", [(0, 1, "Peop", 0.2), (3, 4, "Org", 0.9), (1, 2, "Org", 0.4)],
                [(0, 1, "Work_For", 0.7)])
    rows = threshold_table([gold], [pred], [0.0, 0.5, 0.8])
    assert [r["ner"]["predicted"] for r in rows] == [3, 2, 1]  # at 0.5 John stays: Work_For needs him
    assert [r["re_strict"]["predicted"] for r in rows] == [1, 1, 0]
    assert rows[1]["ner"]["precision"] == 1.0 and rows[1]["re_strict"]["f1"] == 1.0
    # a relation temperature below 1 lowers relation scores: 0.7 ** 2 < 0.5
    assert threshold_table([gold], [pred], [0.5], {"entity": 1.0, "relation": 0.5})[0]["re_strict"]["predicted"] == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from .test_api import _train_tiny

    return _train_tiny(tmp_path_factory.mktemp("cal") / "run")


def test_calibrate_end_to_end(trained, tmp_path, capsys) -> None:
    import shutil

    from anchoralign.api import load
    from anchoralign.cli import main

    from .tiny import toy_docs

    model = tmp_path / "run"
    shutil.copytree(trained, model)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    report = tmp_path / "cal.json"
    code = main(["calibrate", "--model", str(model), "--input", str(gold), "--save", "--output", str(report),
                 "--plot", str(tmp_path / "cal.png")])
    assert code == 0
    out = json.loads(report.read_text())
    assert out["fit"]["entity"]["predictions"] > 0 and 0.0 <= out["fit"]["entity"]["ece"] <= 1.0
    assert [r["threshold"] for r in out["fit"]["thresholds"]][:2] == [0.0, 0.1]
    saved = json.loads((model / "calibration.json").read_text())
    assert set(saved["temperature"]) == {"entity", "relation"}
    temps = load(model, device="cpu").temperature
    assert temps == saved["temperature"] and all(math.isfinite(t) and t > 0 for t in temps.values())
    assert (tmp_path / "cal.png").stat().st_size > 1000
    assert "ECE" in capsys.readouterr().out
    assert main(["calibrate", "--model", str(model), "--input", str(gold), "--bins", "0"]) == 2
