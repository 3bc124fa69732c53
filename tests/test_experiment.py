"""The ablation runner end to end on a slice of CoNLL04 with a tiny random backbone (minutes -> seconds)."""

from __future__ import annotations

import json

import pytest

from anchoralign.cli import main
from anchoralign.config import load_config
from anchoralign.data.registry import load_schema, load_split
from anchoralign.errors import InputError
from anchoralign.experiment import VARIANTS, finished_runs, run_experiment, summary_table, variant_config


def test_variants_differ_only_where_they_should() -> None:
    base = load_config(None, ["model.backbone=random-tiny"])
    full = variant_config(base, "full", 1)
    assert full.anchor.scorer and full.anchor.alignment and full.decode.constrained
    assert variant_config(base, "no-alignment", 1).anchor.alignment is False
    assert variant_config(base, "no-constraint", 2).decode.constrained is False
    assert variant_config(base, "no-constraint", 2).train.seed == 2
    nas = variant_config(base, "no-anchor-selection", 1)
    assert nas.model.grouping == "head" and not nas.anchor.scorer and not nas.decode.anchor_candidates
    assert variant_config(base, "flat", 1).model.target_format == "flat"
    assert set(VARIANTS) == {"full", "no-anchor-selection", "no-alignment", "no-constraint", "flat", "full-head-ties"}
    ties = variant_config(base, "full-head-ties", 1)
    assert ties.model.grouping == "anchor-head" and ties.anchor.scorer and ties.decode.constrained


def test_runner_writes_results_for_every_variant_and_seed(tmp_path, data_dir) -> None:
    train = load_split("conll04", "train", data_dir).documents[:24]
    dev = load_split("conll04", "dev", data_dir).documents[:8]
    test = load_split("conll04", "test", data_dir).documents[:8]
    schema = load_schema("conll04", data_dir)
    base = load_config(None, ["model.backbone=random-tiny", "train.epochs=1", "train.batch_size=8", "train.precision=fp32",
                              "model.max_target_length=48"])
    variants = ["full", "flat", "no-constraint"]
    results = run_experiment(base, variants, [1, 2], train, dev, test, schema, tmp_path, command="test")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["variants"].keys() == set(variants)
    for v in variants:
        assert [r["seed"] for r in saved["variants"][v]] == [1, 2]
        for r in saved["variants"][v]:
            assert all(0.0 <= r[t] <= 1.0 for t in ("ner", "re", "re_strict"))
            assert r["code"].keys() == {"commit", "dirty"} and r["resumed"] is False
            assert r["schedule_cut"] is False and r["epochs_run"] == 1
            assert r["train_seconds_total"] > 0  # not resumed: the one process's training
            parts = r["by_sharing"]
            assert parts["sharing"]["sentences"] + parts["rest"]["sentences"] == len(test)
            preds = json.loads((tmp_path / "runs" / f"{v}-s{r['seed']}" / "test_predictions.json").read_text())
            assert [p["tokens"] for p in preds] == [d.words for d in test]
    table = (tmp_path / "results.md").read_text()
    assert "| full |" in table and "| variant | sharing | rest | seeds |" in table
    # a run that train.max_minutes cut is named in the table
    cut = json.loads(json.dumps(saved))
    cut["variants"]["flat"][1]["schedule_cut"] = True
    assert "| flat (seed 2 cut by train.max_minutes) |" in summary_table(cut)
    # the status of a directory: every run finished; with a run's evaluation gone, the table says what is done
    full = summary_table(finished_runs(tmp_path, variants, [1, 2]))
    assert "seeds done" not in full and "| flat |" in full
    (tmp_path / "runs" / "flat-s2" / "test_metrics.json").rename(tmp_path / "flat-s2.json")
    partial = summary_table(finished_runs(tmp_path, variants, [1, 2]))
    main_table, sharing_table = partial.split("Main figure (%) on the test sentences")
    assert "seeds done" in main_table and main_table.count("| 1, 2 |") == 2 and "| 1 |" in main_table
    assert "| flat | " in sharing_table and sharing_table.rstrip().endswith("| 1, 2 |")  # the seeds it has
    flat_row = next(line for line in main_table.splitlines() if line.startswith("| flat |"))
    assert "±" not in flat_row  # one finished seed: its value, no spread of zero
    assert "±" in next(line for line in main_table.splitlines() if line.startswith("| full |"))
    (tmp_path / "flat-s2.json").rename(tmp_path / "runs" / "flat-s2" / "test_metrics.json")
    with pytest.raises(InputError, match="no such experiment directory"):
        finished_runs(tmp_path / "missing", variants, [1, 2])
    broken = tmp_path / "runs" / "flat-s1" / "test_metrics.json"
    good = broken.read_text()
    broken.write_text("{not json")
    with pytest.raises(InputError, match="flat-s1/test_metrics.json: not a finished run"):
        finished_runs(tmp_path, variants, [1, 2])
    broken.write_text(good)
    # a second call reuses every finished run instead of training again
    again = run_experiment(base, variants, [1, 2], train, dev, test, schema, tmp_path, command="test")
    assert again["variants"] == results["variants"]


def test_experiment_cli_rejects_unknown_variant(tmp_path, data_dir, capsys) -> None:
    code = main(["experiment", "--dataset", "conll04", "--data-dir", str(data_dir), "--variants", "full,bogus",
                 "--seeds", "1", "--output", str(tmp_path), "--set", "model.backbone=random-tiny"])
    assert code == 2
    assert "unknown variant 'bogus'" in capsys.readouterr().err


def test_experiment_cli_runs_only_the_seeds_named(tmp_path, data_dir, capsys) -> None:
    """--seed S (repeatable) takes the place of --seeds N: the table holds those seeds alone."""
    for seed, re_strict in ((1, 0.20), (2, 0.30), (3, 0.40)):
        run = tmp_path / "runs" / f"flat-s{seed}"
        run.mkdir(parents=True)
        summary = {"seed": seed, "ner": 0.5, "re": re_strict, "re_strict": re_strict, "malformed": 0,
                   "train_seconds": 10.0, "schedule_cut": False}
        (run / "test_metrics.json").write_text(json.dumps({"summary": summary}))
    base = ["experiment", "--dataset", "conll04", "--data-dir", str(data_dir), "--variants", "flat",
            "--output", str(tmp_path), "--status"]
    assert main([*base, "--seed", "3", "--seed", "2"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| flat |"))
    assert "35.00 ± 7.07" in row  # seeds 2 and 3: mean 35, sample std 7.07 (seed 1's 20 left out)
    assert main([*base, "--seeds", "3"]) == 0
    assert "30.00 ± 10.00" in capsys.readouterr().out
    assert main([*base, "--seed", "0"]) == 2
    assert "--seed must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # both: refused, even with --seeds at its default value
        main([*base, "--seeds", "3", "--seed", "2"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main([*base]) == 0 and "30.00 ± 10.00" in capsys.readouterr().out  # neither: seeds 1..3
