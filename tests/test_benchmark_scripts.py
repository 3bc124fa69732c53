"""Every script under benchmarks/ refuses a missing model, config or report as the CLI does: one line naming it,
exit status 2, no traceback, before it loads or runs anything heavy."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
MISSING = "no/such/place"

# script -> its arguments with one missing path (MISSING) and otherwise valid ({data}: the shared benchmarks)
CASES = {
    "bench_engine.py": ["--model", MISSING, "--dataset", "conll04", "--data-dir", "{data}",
                        "--phases", "extract_greedy_constrained"],
    "decode_batch.py": ["--model", MISSING, "--data-dir", "{data}"],
    "decode_grid.py": ["--dataset", "conll04", "--models", MISSING, "--data-dir", "{data}"],
    "decode_profile.py": ["--model", MISSING, "--data-dir", "{data}"],
    "decoder_waste.py": ["--model", MISSING, "--data-dir", "{data}"],
    "entity_threshold.py": ["--dataset", "conll04", "--models", MISSING, "--data-dir", "{data}"],
    "fuzz_serve.py": ["--model", MISSING, "--n", "1", "--output", "{tmp}/fuzz.json"],
    "kill_resume.py": ["--config", f"{MISSING}.yaml", "--data-dir", "{data}", "--workdir", "{tmp}/work",
                       "--output", "{tmp}/kill.json"],
    "load_serve.py": ["--model", MISSING, "--output", "{tmp}/load.json"],
    "long_documents.py": ["--model", MISSING, "--data-dir", "{data}", "--output", "{tmp}/long.json"],
    "long_documents_zh.py": ["--model", MISSING, "--data-dir", "{data}", "--output", "{tmp}/long_zh.json"],
    "pair_relations.py": ["--dataset", "conll04", "--models", MISSING, "--data-dir", "{data}"],
    "pair_veto.py": ["--model", MISSING, "--data-dir", "{data}"],
    "probe_seeds.py": [f"{MISSING}.json"],
    "profile_train_step.py": ["--config", f"{MISSING}.yaml", "--data-dir", "{data}"],
    "relation_errors.py": ["--model", MISSING, "--dataset", "conll04", "--data-dir", "{data}"],
    "relation_threshold.py": ["--dataset", "conll04", "--models", MISSING, "--data-dir", "{data}"],
    "split_overlap.py": ["--dataset", "conll04", "--data-dir", MISSING],
    "tagger_decoding.py": ["--dataset", "conll04", "--models", MISSING, "--data-dir", "{data}"],
    "train_flops.py": ["--config", f"{MISSING}.yaml", "--data-dir", "{data}"],
    "veto_removals.py": ["--model", MISSING, "--veto", "0.1", "--data-dir", "{data}"],
}


# more missing inputs, where a script checks more than one
MORE = [
    ("bench_engine.py", ["--dataset", "conll04", "--data-dir", MISSING, "--phases", "train_fp32"]),
    ("bench_engine.py", ["--config", f"{MISSING}.yaml", "--data-dir", "{data}", "--phases", "train_fp32"]),
    ("kill_resume.py", ["--src", MISSING, "--data-dir", "{data}", "--workdir", "{tmp}/work", "--output", "{tmp}/k.json"]),
    ("kill_resume.py", ["--data-dir", "{tmp}", "--workdir", "{tmp}/work", "--output", "{tmp}/k.json"]),
]


def test_every_script_is_covered() -> None:
    assert sorted(CASES) == sorted(p.name for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize(("script", "args"), [*sorted(CASES.items()), *MORE])
def test_a_missing_path_is_one_line_and_exit_2(script, args, data_dir, tmp_path, monkeypatch, capsys) -> None:
    argv = [a.format(data=data_dir, tmp=tmp_path) for a in args]
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *argv])
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])  # as `python benchmarks/X.py` has it
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # argparse's own errors print the usage above their line
    assert last.startswith(f"{script}: error: ") and (MISSING in last or str(tmp_path) in last), err
    assert not list(tmp_path.iterdir())  # nothing written
