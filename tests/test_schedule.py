"""Schedule cuts are never silent: ``train.max_minutes`` firing is warned about and recorded in metadata.json,
metrics.jsonl and ``train``'s final JSON; each epoch ends with one progress line."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from anchoralign.cli import main
from anchoralign.config import RunConfig
from anchoralign.model import ModelConfig
from anchoralign.train import epoch_line, train

from .tiny import tiny_model, toy_docs, toy_schema


def _cfg(epochs: int, max_minutes: float) -> RunConfig:
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision, cfg.train.threads = epochs, 3, "fp32", 1
    cfg.train.max_minutes, cfg.train.eval_from_epoch = max_minutes, epochs
    cfg.decode.max_new_tokens = 16
    return cfg


def _records(run) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def test_max_minutes_cut_is_warned_and_recorded(tmp_path, caplog) -> None:
    torch.manual_seed(0)
    caplog.set_level(logging.INFO, logger="anchoralign.train")
    run = tmp_path / "run"
    result = train(_cfg(3, 1e-9), toy_docs(), toy_docs(), toy_schema(), run, model=tiny_model(tmp_path),
                   progress=False)
    assert result.schedule_cut and result.epochs_run == 1 and result.epochs_planned == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("schedule cut" in w and "after epoch 1 of 3" in w for w in warnings), warnings
    meta = json.loads((run / "metadata.json").read_text(encoding="utf-8"))
    assert meta["schedule_cut"] is True and meta["epochs_completed"] == 1 and meta["epochs_planned"] == 3
    [record] = _records(run)
    assert record["schedule_cut"] is True and record["epochs_planned"] == 3 and "dev" in record  # cut epoch: evaluated


def test_full_schedule_is_not_cut_and_prints_one_line_per_epoch(tmp_path, caplog) -> None:
    torch.manual_seed(0)
    caplog.set_level(logging.INFO, logger="anchoralign.train")
    run = tmp_path / "run"
    result = train(_cfg(2, 0.0), toy_docs(), toy_docs(), toy_schema(), run, model=tiny_model(tmp_path),
                   progress=False)
    assert not result.schedule_cut and result.epochs_run == 2
    assert json.loads((run / "metadata.json").read_text(encoding="utf-8"))["schedule_cut"] is False
    assert [r["schedule_cut"] for r in _records(run)] == [False, False]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("epoch 1/2: loss ") and "dev" not in lines[0] and "ETA" in lines[0]
    assert lines[1].startswith("epoch 2/2: loss ") and "dev NER " in lines[1] and " RE+ " in lines[1]
    assert "elapsed, ETA 0:00:00" in lines[1]
    assert not any(r.levelno == logging.WARNING and "schedule cut" in r.getMessage() for r in caplog.records)


def test_epoch_line_format() -> None:
    record = {"epoch": 3, "loss": 1.23456, "dev": {"ner": {"f1": 0.612}, "re_strict": {"f1": 0.301}}}
    assert epoch_line(record, 20, 250, 4 * 3600 + 61) == (
        "epoch 3/20: loss 1.2346, dev NER 61.20 RE+ 30.10, 0:04:10 elapsed, ETA 4:01:01")
    cut = epoch_line({"epoch": 1, "loss": 2.0, "schedule_cut": True}, 5, 59.6, 0)
    assert cut == "epoch 1/5: loss 2.0000, 0:01:00 elapsed, ETA 0:00:00, schedule cut (train.max_minutes)"


def test_train_command_reports_the_cut(tmp_path, capsys, caplog) -> None:
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    argv = ["train", "--train", str(data), "--dev", str(data), "--format", "jsonl", "--output", str(tmp_path / "run"),
            "--set", "model.backbone=random-tiny", "--set", "train.epochs=3", "--set", "train.max_minutes=1e-9",
            "--set", "train.precision=fp32", "--set", "train.threads=1", "--set", "decode.max_new_tokens=8"]
    caplog.set_level(logging.INFO, logger="anchoralign.train")
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schedule_cut"] is True and out["epochs_run"] == 1 and out["epochs_planned"] == 3
    assert out["precision"] == "fp32" and out["processes"] == 1
    assert "precision: fp32 (requested: " in caplog.text and "schedule cut" in caplog.text


def test_select_last_keeps_the_final_epoch_and_scores_dev_once(tmp_path) -> None:
    cfg = _cfg(3, 0.0)
    cfg.train.select, cfg.train.eval_from_epoch = "last", 1  # "best" would score dev at every epoch
    result = train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=tiny_model(tmp_path),
                   progress=False)
    assert result.best_epoch == 3 and result.epochs_run == 3
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "dev" in r] == [3]  # no per-epoch selection on dev
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["best_epoch"] == 3


def test_joined_splits(data_dir) -> None:
    from anchoralign.cli.common import read_split

    train_docs, dev_docs = read_split("conll04", "train", data_dir), read_split("conll04", "dev", data_dir)
    both = read_split("conll04", "train+dev", data_dir)
    assert [d.text for d in both] == [d.text for d in train_docs + dev_docs]


def _weights(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_average_last_keeps_the_mean_of_the_last_epochs_and_resumes(tmp_path) -> None:
    def run(name: str, stop: int | None = None, resume: bool = False):
        cfg = _cfg(3, 0.0)
        cfg.train.select, cfg.train.average_last, cfg.train.eval_from_epoch = "last", 2, 1
        torch.manual_seed(0)
        return train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / name, model=tiny_model(tmp_path / name),
                     progress=False, stop_after_epoch=stop, resume=resume)

    run("full")
    meta = json.loads((tmp_path / "full" / "metadata.json").read_text())
    assert meta["averaged_epochs"] == [2, 3] and meta["best_epoch"] == 3
    last = _records(tmp_path / "full")[-1]
    assert last["kept"] == "average" and last["dev_average"]["epochs"] == [2, 3]
    # the kept weights are the mean of epoch 2's (a run stopped there) and epoch 3's (the final checkpoint)
    run("to2", stop=2)
    w2, w3, kept = _weights(tmp_path / "to2" / "checkpoint"), _weights(tmp_path / "full" / "checkpoint"), \
        _weights(tmp_path / "full")
    moved = [k for k in kept if not torch.equal(w2[k], w3[k])]
    assert moved  # training changed something between the epochs
    for k in moved:
        torch.testing.assert_close(kept[k], (w2[k] + w3[k]) / 2)
    # interrupted after epoch 2 and resumed: the same mean
    run("to2", resume=True)
    resumed = _weights(tmp_path / "to2")
    for k in kept:
        torch.testing.assert_close(resumed[k], kept[k])


def assert_resumes_exactly_and_changes_training(tmp_path, setting, on, off) -> None:
    """Three epochs (seed 3) with ``setting(cfg.train, on)`` equal, bit for bit, the same run stopped after epoch 1
    and resumed; with ``off`` instead the weights differ (the setting took effect)."""
    def run(name: str, value, stop: int | None = None, resume: bool = False) -> None:
        cfg = _cfg(3, 0.0)
        cfg.train.seed = 3
        setting(cfg.train, value)
        torch.manual_seed(0)
        train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / name, model=tiny_model(tmp_path / name),
              progress=False, stop_after_epoch=stop, resume=resume)

    run("full", on)
    run("cut", on, stop=1)
    run("cut", on, resume=True)
    a, b = _weights(tmp_path / "full" / "checkpoint"), _weights(tmp_path / "cut" / "checkpoint")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    run("off", off)
    c = _weights(tmp_path / "off" / "checkpoint")
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_shuffled_target_orders_train_and_resume_exactly(tmp_path) -> None:
    # seed 3 draws other orders at epochs 1 and 3; text order trains other weights
    assert_resumes_exactly_and_changes_training(tmp_path, lambda tc, v: setattr(tc, "target_order", v),
                                                "shuffled", "text")
    with pytest.raises(ValueError, match="target_order"):
        bad = _cfg(1, 0.0)
        bad.train.target_order = "random"
        bad.train.validate()
