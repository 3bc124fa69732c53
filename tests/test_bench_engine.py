"""benchmarks/bench_engine.py end to end on tiny random models: phases in their own processes, interleaved rounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_rounds_interleave_and_keep_each_rounds_figures_and_ratios(tmp_path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_engine.py"), "--tiny", "--n", "6", "--repeats", "1",
         "--rounds", "2", "--threads", "1", "--phases", "encoder_forward,extract_greedy_constrained",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["meta"]["rounds"] == 2
    for name in ("encoder_forward", "extract_greedy_constrained"):
        phase = report["phases"][name]
        each = phase["sentences_per_s_each"]
        assert len(each) == 2 and phase["sentences_per_s"] == max(each)
    ratio = report["ratios"]["extract_constrained_over_encoder_forward"]
    enc, ext = (report["phases"][n]["sentences_per_s"] for n in ("encoder_forward", "extract_greedy_constrained"))
    assert ratio == ext / enc
    by_round = report["meta"]["ratios_by_round"]["extract_constrained_over_encoder_forward"]
    assert len(by_round) == 2 and all(r > 0 for r in by_round)
    assert "rounds: " in proc.stdout
    assert proc.stderr.count("[encoder_forward] ...") == 2  # a fresh process per round


def test_rounds_must_be_positive(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_engine.py"), "--tiny", "--rounds", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2 and "--rounds must be >= 1" in proc.stderr
