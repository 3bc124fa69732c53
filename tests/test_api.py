"""The Python API: ``anchoralign.load(...).extract(...)`` returns typed results with offsets and scores, applies
a threshold, reads long texts in windows, accepts Documents, and shares no state between calls."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import anchoralign
from anchoralign.anchor_heads import AnchorConfig
from anchoralign.config import RunConfig
from anchoralign.model import ModelConfig
from anchoralign.train import train

from .tiny import tiny_model, toy_docs, toy_schema


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _train_tiny(tmp_path_factory.mktemp("api_model") / "run")


def _train_tiny(out: Path) -> Path:
    """A tiny full-AnchorAlign model (scorer, alignment and entity tagger) that has learnt the toy documents."""
    torch.set_num_threads(1)
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = 60, 3, "fp32", 1
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 60
    torch.manual_seed(0)
    docs = toy_docs()
    train(cfg, docs, docs, toy_schema(), out, model=tiny_model(None, anchor=AnchorConfig()), progress=False)
    return out


TEXTS = [d.text for d in toy_docs()]


def test_load_and_extract_typed_results(model_dir) -> None:
    ex = anchoralign.load(model_dir, device="cpu")
    assert isinstance(ex, anchoralign.Extractor)
    assert ex.passage_tokens == max(len(d.tokens) for d in toy_docs())  # saved by train, read back
    results = ex.extract(TEXTS)
    assert [type(r) for r in results] == [anchoralign.Extraction] * len(TEXTS)
    first = results[0]
    assert {(e.text, e.type) for e in first.entities} == {("John Smith", "Peop"), ("Acme Corp", "Org"), ("Boston", "Loc")}
    assert {(first.entities[r.head].text, r.type, first.entities[r.tail].text) for r in first.relations} == {
        ("John Smith", "Work_For", "Acme Corp"), ("Acme Corp", "OrgBased_In", "Boston")}
    for r in results:
        for e in r.entities:
            assert r.text[e.start : e.end] == e.text and 0.0 < e.score <= 1.0
        for rel in r.relations:
            assert 0.0 < rel.score <= 1.0
        assert r.errors == {} and r.windows == 1 and r.cut == 0 and r.truncated == 0
        d = r.to_dict()
        assert json.loads(json.dumps(d)) == d


def test_threshold_and_documents(model_dir) -> None:
    ex = anchoralign.load(model_dir, device="cpu")
    full = ex.extract(toy_docs())  # Documents: their own tokens
    assert [r.text for r in full] == TEXTS
    scores = sorted({rel.score for r in full for rel in r.relations})
    mid = (scores[0] + scores[-1]) / 2 if scores[0] < scores[-1] else scores[0]
    cut = ex.extract(toy_docs(), threshold=mid)
    for a, b in zip(full, cut, strict=True):
        assert [r.type for r in b.relations] == [r.type for r in a.relations if r.score >= mid]
        needed = {b.entities[i].text for r in b.relations for i in (r.head, r.tail)}
        assert {e.text for e in b.entities} == {e.text for e in a.entities if e.score >= mid} | needed
    with pytest.raises(anchoralign.InputError, match="threshold"):
        ex.extract(TEXTS, threshold=1.5)
    with pytest.raises(anchoralign.InputError, match="record 1"):
        ex.extract(["fine", 3])  # type: ignore[list-item]


def test_long_text_is_read_in_windows_with_nothing_lost(model_dir) -> None:
    ex = anchoralign.load(model_dir, device="cpu")
    single = ex.extract(TEXTS)
    joined = " ".join(TEXTS * 4)
    [long] = ex.extract([joined])
    assert long.windows == 12 and long.cut == 0 and long.truncated == 0
    want = set()
    base = 0
    for _ in range(4):
        for t, r in zip(TEXTS, single, strict=True):
            want |= {(e.start + base, e.end + base, e.type) for e in r.entities}
            base += len(t) + 1
    assert {(e.start, e.end, e.type) for e in long.entities} == want
    assert len(long.relations) == 4 * sum(len(r.relations) for r in single)


def test_threads_get_their_own_results(model_dir) -> None:
    ex = anchoralign.load(model_dir, device="cpu")
    inputs = [[TEXTS[i % 3]] * (1 + i % 4) for i in range(12)]
    serial = [[r.to_dict() for r in ex.extract(x)] for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda x: [r.to_dict() for r in ex.extract(x)], inputs))
    assert parallel == serial


def test_load_of_a_missing_model_is_an_input_error(tmp_path) -> None:
    with pytest.raises(anchoralign.InputError, match="not a model directory"):
        anchoralign.load(tmp_path)
    with pytest.raises(anchoralign.InputError):
        anchoralign.load("no-such-org/no-such-model")  # offline: the hub cannot provide it


@pytest.mark.parametrize(("content", "says"), [("{not json", "cannot read model_config.json"),
                                              ("[1, 2]", 'no "kind"'), ('{"format": 2}', 'no "kind"')])
def test_load_of_a_broken_model_config_is_an_input_error(tmp_path, content, says) -> None:
    from anchoralign.api import saved_decode_config

    (tmp_path / "model_config.json").write_text(content, encoding="utf-8")
    with pytest.raises(anchoralign.InputError, match=says) as e:
        anchoralign.load(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(anchoralign.InputError, match=says):  # the saved settings' reader too (CLI commands)
        saved_decode_config(tmp_path)


def test_calibration_temperature_is_applied(model_dir, tmp_path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(model_dir, copy)
    plain = anchoralign.load(copy, device="cpu").extract(TEXTS[:1])[0]
    (copy / "calibration.json").write_text(json.dumps({"temperature": 2.0}))
    warm = anchoralign.load(copy, device="cpu").extract(TEXTS[:1])[0]
    for a, b in zip(plain.entities, warm.entities, strict=True):
        assert b.score == pytest.approx(a.score ** 0.5)
    (copy / "calibration.json").write_text(json.dumps({"temperature": {"entity": 1.0, "relation": -1}}))
    with pytest.raises(anchoralign.InputError, match="relation temperature"):
        anchoralign.load(copy, device="cpu")
