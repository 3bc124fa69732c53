"""benchmarks/decode_grid.py on a tiny random model: every point decoded for every model, dev picks, test shown."""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from anchoralign.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "decode_grid.py"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir) -> tuple[list[Path], Path]:
    """Two tiny random model directories, and a data root whose conll04 dev and test are three sentences each."""
    import torch

    from anchoralign.model import save_model

    from .tiny import tiny_model

    root = tmp_path_factory.mktemp("grid")
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_model(tiny_model(None), root / f"m{seed}", metadata={"commit": "abc123"})
        models.append(root / f"m{seed}")
    data = root / "data" / "conll04"
    data.mkdir(parents=True)
    src = data_dir / "conll04"
    (data / "conll04_types.json").write_text((src / "conll04_types.json").read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("dev.json", "test.json"):
        docs = json.loads((src / name).read_text(encoding="utf-8"))[:3]
        (data / name).write_text(json.dumps(docs), encoding="utf-8")
    return models, root / "data"


def _main():
    spec = importlib.util.spec_from_file_location("decode_grid", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def test_grid_decodes_every_point_and_dev_picks(setup, tmp_path, monkeypatch) -> None:
    import anchoralign.decode

    models, data = setup
    out = tmp_path / "grid.json"
    seen = []
    real = anchoralign.decode.predict

    def spy(model, docs, cfg, **kw):
        seen.append((cfg.relation_threshold, cfg.entity_threshold, cfg.num_beams))
        return real(model, docs, cfg, **kw)

    monkeypatch.setattr(anchoralign.decode, "predict", spy)
    code = _main()(["--dataset", "conll04", "--data-dir", str(data), "--models", *map(str, models),
                    "--grid", "decode.relation_threshold=0.0,0.5", "--grid", "entity_threshold=0,0.9",
                    "--set", "num_beams=1", "--json", str(out)])
    assert code == 0
    # each point reaches the decoder: per model, dev and test at every point, in grid order, the fixed setting too
    assert seen == [(a, b, 1) for _ in models for a in (0.0, 0.5) for b in (0, 0.9) for _split in ("dev", "test")]
    r = json.loads(out.read_text())
    labels = [f"relation_threshold={a} entity_threshold={b}" for a in (0.0, 0.5) for b in (0, 0.9)]
    assert r["fixed"] == {"num_beams": 1} and r["grid"] == {"relation_threshold": [0.0, 0.5], "entity_threshold": [0, 0.9]}
    for m in map(str, models):
        assert list(r["models"][m]) == labels
    for label in labels:  # the means, recomputed here
        for key, (split, fig) in {"dev_main": ("dev", "main"), "test_ner": ("test", "ner")}.items():
            assert r["mean"][label][key] == round(statistics.mean(r["models"][str(m)][label][split][fig] for m in models), 2)
    assert r["mean"][r["pick"]]["dev_main"] == max(v["dev_main"] for v in r["mean"].values())


@pytest.mark.parametrize(("extra", "message"), [
    (["--grid", "decode.bogus=1,2"], "'decode.bogus=1,2': expected KEY=VALUE with KEY a decode setting"),
    (["--grid", "pair_threshold=0,0.5"], "decode.pair_threshold must be in (0, 1]"),
    (["--grid", "relation_threshold=0.3", "--set", "relation_threshold=0.4"], "both gridded"),
    (["--models", "no/such/model"], "no/such/model"),
])
def test_bad_settings_and_models_are_refused_in_one_line_before_decoding(setup, extra, message) -> None:
    models, data = setup
    with pytest.raises(InputError) as e:
        _main()(["--dataset", "conll04", "--data-dir", str(data), "--models", str(models[0]), *extra])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_points_are_checked_on_each_models_saved_settings(setup, tmp_path) -> None:
    """pair_veto needs pair_relations: union. A model saved with union accepts it (its own settings, not the
    defaults, are what the point changes); one saved without it is refused, by name, before anything decodes."""
    import shutil

    models, data = setup
    union = tmp_path / "union"
    shutil.copytree(models[0], union)
    cfg_path = union / "model_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("run", {}).setdefault("decode", {})["pair_relations"] = "union"
    cfg_path.write_text(json.dumps(cfg))
    args = ["--dataset", "conll04", "--data-dir", str(data), "--set", "pair_veto=0.05", "--grid", "relation_threshold=0.5"]
    assert _main()([*args, "--models", str(union), "--json", str(tmp_path / "g.json")]) == 0
    assert list(json.loads((tmp_path / "g.json").read_text())["models"]) == [str(union)]
    with pytest.raises(InputError) as e:
        _main()([*args, "--models", str(union), str(models[1])])
    assert f"on {models[1]} (its saved decode settings)" in str(e.value) and "pair_relations: union" in str(e.value)


def test_the_script_runs_as_a_command(setup) -> None:
    models, data = setup
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "conll04", "--data-dir", str(data), "--models", str(models[0]),
         "--grid", "decode.bogus=1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("decode_grid.py: error: ") and "expected KEY=VALUE" in proc.stderr

