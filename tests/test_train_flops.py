"""benchmarks/train_flops.py on a tiny random model: the FLOPs it counts are those of the products it replays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_counts_the_step_and_replays_its_products(tmp_path, data_dir) -> None:
    out = tmp_path / "flops.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "train_flops.py"), "--data-dir", str(data_dir), "--batches", "2",
         "--rounds", "1", "--set", "model.backbone=random-tiny", "--set", "anchor.pair_classifier=false",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["batches"] == 2 and r["documents"] == 2 * 16
    assert r["products"] > 0 and r["step_gflop_counted"] > 0
    # every counted FLOP is a product the replay recorded (forward and backward), none twice: on this model
    # attention runs as bmm, so the two totals agree
    assert abs(r["products_gflop"] - r["step_gflop_counted"]) <= 1e-6 * r["step_gflop_counted"]
    assert "of the step" in proc.stdout

