"""The suite runner end to end on slices of CoNLL04 and two ADE folds with a tiny random backbone: skipping
finished runs, resuming an interrupted fold, the results JSON, partial fold means, the markdown table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from anchoralign.benchmark import (
    FLOORS,
    SUITE,
    Unit,
    dataset_entry,
    dataset_folds,
    holdout_split,
    parse_folds,
    plan,
    results_table,
    run_benchmark,
)
from anchoralign.cli import main
from anchoralign.errors import InputError

TINY = """model:
  backbone: random-tiny
  max_target_length: 32
train:
  epochs: 2
  batch_size: 8
  precision: fp32
  eval_from_epoch: 2
decode:
  max_new_tokens: 32
"""


def _slice(src: Path, dst: Path, n: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(json.loads(src.read_text())[:n]))


@pytest.fixture
def tiny_suite(tmp_path, data_dir) -> dict:
    """A data directory with a few documents per split (CoNLL04; ADE folds 0 and 1) and tiny configs."""
    data = tmp_path / "data"
    for split, n in (("train", 12), ("dev", 4), ("test", 6)):
        _slice(data_dir / "conll04" / f"{split}.json", data / "conll04" / f"{split}.json", n)
    shutil.copy(data_dir / "conll04" / "conll04_types.json", data / "conll04" / "conll04_types.json")
    for fold in (0, 1):
        for part, n in (("train", 14), ("test", 6)):
            name = f"ade_split_{fold}_{part}.json"
            _slice(data_dir / "ade" / name, data / "ade" / name, n)
    shutil.copy(data_dir / "ade" / "ade_types.json", data / "ade" / "ade_types.json")
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("conll04", "ade"):
        (configs / f"{name}-tiny.yaml").write_text(f"dataset: {name}\n{TINY}")
    return {"data_dir": data, "config_dir": configs, "suffix": "tiny", "results_path": tmp_path / "results.json"}


def test_plan_folds_and_holdout() -> None:
    assert dataset_folds("ade") == list(range(10)) and dataset_folds("conll04") == []
    assert parse_folds("0-2,7") == [0, 1, 2, 7] and parse_folds("3") == [3]
    with pytest.raises(InputError, match="--folds"):
        parse_folds("a-b")
    assert plan(["conll04", "ade"], [0, 4]) == [Unit("conll04"), Unit("ade", 0), Unit("ade", 4)]
    assert len(plan(["ade"])) == 10
    with pytest.raises(InputError, match="no fold 12"):
        plan(["ade"], [12])
    docs = list(range(40))
    train, dev = holdout_split(docs, 0.1, 13000)
    assert len(dev) == 4 and sorted(train + dev) == docs and not set(train) & set(dev)
    assert holdout_split(docs, 0.1, 13000) == (train, dev)  # seeded: the same hold-out every call
    assert holdout_split(docs, 0.1, 13001)[1] != dev


def test_runner_resumes_skips_and_reports(tiny_suite, tmp_path, monkeypatch, capsys) -> None:
    import anchoralign.train as train_module

    real_train = train_module.train

    def interrupted(cfg, *args, **kwargs):  # ADE fold 1 stops after its first epoch, as a killed run would
        if cfg.train.train_split == "fold1-train":
            real_train(cfg, *args, stop_after_epoch=1, **kwargs)
            raise KeyboardInterrupt
        return real_train(cfg, *args, **kwargs)

    out = tmp_path / "runs"
    lines: list[str] = []
    monkeypatch.setattr(train_module, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(["conll04", "ade"], out, folds=[0, 1], report=lines.append, **tiny_suite)
    monkeypatch.setattr(train_module, "train", real_train)
    assert [ln.split(":")[0] for ln in lines] == ["[1/3] conll04", "[2/3] ade/fold0"]
    assert "ETA" in lines[0] and "elapsed" in lines[0]

    saved = json.loads(tiny_suite["results_path"].read_text())
    conll = saved["datasets"]["conll04"]
    assert conll["protocol"] == "micro" and conll["main"] == conll["re_strict"]
    assert all(0.0 <= conll[k] <= 1.0 for k in ("main", "ner", "re", "re_strict", "ner_precision", "re_recall"))
    assert conll["floor"] == FLOORS["conll04"]["main"] and isinstance(conll["meets_floor"], bool)
    assert conll["config"]["path"].endswith("conll04-tiny.yaml") and len(conll["config"]["sha256"]) == 64
    assert {"commit", "machine", "date", "train_seconds", "command"} <= conll.keys()
    assert conll["machine"]["threads"] >= 1 and conll["machine"]["cpu_capability"]
    assert conll["command"].startswith("anchoralign benchmark --datasets conll04 --output ")
    ade = saved["datasets"]["ade"]
    assert ade["protocol"] == "ade" and ade["partial"] is True and ade["meets_floor"] is None
    assert ade["folds_done"] == 1 and ade["folds_planned"] == 10 and ade["folds"][0]["fold"] == 0
    assert "--folds 0-9" in ade["command"] and "--folds 0 " in ade["folds"][0]["command"]
    assert "partial: 1 of 10 folds" in (tmp_path / "results.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "data", "results.json", "results.md", "runs"]
    fold0 = json.loads((out / "ade" / "fold0" / "test_metrics.json").read_text())["summary"]
    assert fold0["dev_docs"] == 1 and fold0["train_docs"] == 13 and "hold-out" in fold0["data"]["dev"]
    assert not (out / "ade" / "fold0" / "checkpoint").exists()  # removed after the test

    plan_rows = run_benchmark(["conll04", "ade"], out, folds=[0, 1], dry_run=True, **tiny_suite)["units"]
    assert [(r["unit"], r["status"]) for r in plan_rows] == [
        ("conll04", "done"), ("ade/fold0", "done"), ("ade/fold1", "interrupted")]
    assert plan_rows[2]["epochs_done"] == 1 and "estimate_seconds" in plan_rows[2]

    stamp = (out / "conll04" / "test_metrics.json").stat().st_mtime_ns
    lines.clear()
    result = run_benchmark(["conll04", "ade"], out, folds=[0, 1], report=lines.append, **tiny_suite)
    assert "done before" in lines[0] and "done before" in lines[1] and "resumed" in lines[2]
    assert (out / "conll04" / "test_metrics.json").stat().st_mtime_ns == stamp
    epochs = [json.loads(ln)["epoch"] for ln in (out / "ade" / "fold1" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # epoch 1 was not trained again
    assert "resumed" in json.loads((out / "ade" / "fold1" / "run.json").read_text())
    ade = result["results"]["datasets"]["ade"]
    assert ade["folds_done"] == 2 and [f["fold"] for f in ade["folds"]] == [0, 1]
    assert ade["main"] == pytest.approx((ade["folds"][0]["main"] + ade["folds"][1]["main"]) / 2)
    assert set(ade["std"]) >= {"main", "ner", "re_strict"}

    with pytest.raises(InputError, match="other config settings"):
        run_benchmark(["conll04"], out, overrides=["train.lr=0.001"], **tiny_suite)
    changed = run_benchmark(["conll04"], out, overrides=["train.lr=0.001"], dry_run=True, **tiny_suite)["units"]
    assert "another config" in changed[0]["status"]
    with open(tiny_suite["config_dir"] / "conll04-tiny.yaml", "a") as f:
        f.write("# a comment added after the run: the settings are the same\n")
    assert run_benchmark(["conll04"], out, dry_run=True, **tiny_suite)["units"][0]["status"] == "done"
    capsys.readouterr()
    code = main(["benchmark", "--datasets", "conll04,ade", "--folds", "0,1", "--output", str(out), "--dry-run",
                 "--config-dir", str(tiny_suite["config_dir"]), "--suffix", "tiny",
                 "--data-dir", str(tiny_suite["data_dir"]), "--results", str(tiny_suite["results_path"])])
    assert code == 0 and "3 of 3 runs done" in capsys.readouterr().out


def _fold_summary(fold: int, main_f1: float) -> dict:
    figures = {"protocol": "ade", "main": main_f1, "ner": 0.8, "ner_precision": 0.8, "ner_recall": 0.8,
               "re_strict": main_f1, "re_strict_precision": main_f1, "re_strict_recall": main_f1}
    return {"fold": fold, "figures": figures, "best_epoch": 3, "epochs_run": 4, "schedule_cut": False,
            "train_seconds": 600.0, "test_seconds": 10.0, "train_docs": 3460, "dev_docs": 385, "test_docs": 427, "commit": "abc", "dirty": False, "date": f"2026-12-01T00:{fold:02d}",
            "run_dir": f"runs/ade/fold{fold}", "command": f"anchoralign benchmark --datasets ade --folds {fold}",
            "evaluate_command": f"anchoralign evaluate --model runs/ade/fold{fold}", "config": {"path": "c"},
            "seed": 13, "machine": {}, "precision": "fp32", "malformed": 0, "data": {},
            "dataset_command": "anchoralign benchmark --datasets ade --folds 0-9"}


def test_fold_means_floors_and_table() -> None:
    ten = dataset_entry("ade", [_fold_summary(i, 0.70 + 0.01 * (i % 3)) for i in range(10)], folds_planned=10)
    assert ten["partial"] is False and ten["folds_done"] == 10 and ten["meets_floor"] is True
    assert ten["main"] == pytest.approx(sum(0.70 + 0.01 * (i % 3) for i in range(10)) / 10)
    assert ten["train_seconds"] == 6000.0 and ten["std"]["main"] > 0
    low = dataset_entry("ade", [_fold_summary(i, 0.60) for i in range(10)], folds_planned=10)
    assert low["meets_floor"] is False
    part = dataset_entry("ade", [_fold_summary(i, 0.90) for i in range(3)], folds_planned=10)
    assert part["partial"] is True and part["meets_floor"] is None and part["folds_done"] == 3
    table = results_table({"datasets": {"ade": low}})
    row = next(ln for ln in table.splitlines() if ln.startswith("| ade |"))
    assert "60.00 ± 0.00" in row and "**no**: missed main by 10.00" in row and "main ≥ 70.00" in row
    assert all(f"| {name} |" in table for name in SUITE)  # the datasets not run yet have their row too
    assert "NER ≥ 55.00, main ≥ 20.00" in table  # Chinese Literature's two floors
    assert "anchoralign benchmark --datasets ade --folds 0-9" in table
    part_row = next(ln for ln in results_table({"datasets": {"ade": part}}).splitlines() if ln.startswith("| ade |"))
    assert "partial: 3 of 10 folds" in part_row and "n/a" in part_row


def test_cli_errors(tmp_path, data_dir, capsys) -> None:
    args = ["--output", str(tmp_path / "runs"), "--data-dir", str(data_dir), "--config-dir", str(tmp_path)]
    assert main(["benchmark", "--datasets", "conll04,bogus", *args]) == 2
    assert "unknown dataset 'bogus'" in capsys.readouterr().err
    assert main(["benchmark", "--datasets", "conll04", *args]) == 2
    assert "no config for conll04" in capsys.readouterr().err


def test_checkpoint_frequency_is_not_pinned(tmp_path) -> None:
    """A resumed unit may save more or less often (train.checkpoint_minutes), but not train otherwise."""
    from anchoralign.benchmark import _settings_sha

    base, often = tmp_path / "a.yaml", tmp_path / "b.yaml"
    base.write_text("train:\n  epochs: 3\n  lr: 1.0e-4\n", encoding="utf-8")
    often.write_text("train:\n  epochs: 3\n  lr: 1.0e-4\n  checkpoint_minutes: 15\n", encoding="utf-8")
    sha = _settings_sha(base, [], 13)
    assert _settings_sha(often, [], 13) == sha
    assert _settings_sha(base, ["train.checkpoint_minutes=5"], 13) == sha
    assert _settings_sha(base, ["train.lr=2e-4"], 13) != sha
    assert _settings_sha(base, [], 14) != sha
