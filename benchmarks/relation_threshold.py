"""A relation-score threshold chosen on dev, over several models of one recipe: each model decodes dev and
test once (its own decode settings, the threshold off), and its relations are then filtered by score at each
threshold of a grid (entities untouched), scored by the dataset's main metric. The pick is the threshold with
the best dev score averaged over the models (test is never looked at for it); the test scores at 0, at the
pick and at each model's own dev-best threshold are reported beside it.

    python benchmarks/relation_threshold.py --dataset conll04 --models runs/demo runs/seed2 ... \\
        [--grid 0.05] [--max 0.6] [--json results/relation_threshold_conll04.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", required=True, help="model directories (one recipe, several runs)")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--grid", type=float, default=0.05, help="grid step (default 0.05)")
    ap.add_argument("--max", type=float, default=0.6, help="largest threshold tried (default 0.6)")
    ap.add_argument("--precision", default="auto", help="decode.precision (default auto)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    import torch

    from anchoralign.data.registry import dataset_protocol, load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig, predict, relations_scoring_at_least
    from anchoralign.model import load_model

    data_dir = resolve_data_dir(args.data_dir)
    protocol = dataset_protocol(args.dataset)
    grid = [round(args.grid * i, 4) for i in range(int(round(args.max / args.grid)) + 1)]
    gold = {s: load_split(args.dataset, s, data_dir).documents for s in ("dev", "test")}
    rows = []
    for path in args.models:
        model = load_model(path, "cpu")
        saved = json.loads((Path(path) / "model_config.json").read_text(encoding="utf-8")).get("run", {})
        known = {f.name for f in fields(DecodeConfig)}
        cfg = DecodeConfig(**{k: v for k, v in saved.get("decode", {}).items() if k in known})
        cfg = replace(cfg, relation_threshold=0.0, precision=args.precision)
        row: dict = {"model": path, "seed": saved.get("train", {}).get("seed"), "decode": {**cfg.__dict__}}
        for split, docs in gold.items():
            pred = predict(model, docs, cfg).documents
            row[split] = [round(100 * protocol.score(docs, [relations_scoring_at_least(d, t) for d in pred], model.schema)["main"], 2) for t in grid]
        own = max(range(len(grid)), key=lambda i: (row["dev"][i], -i))
        row["own_dev_best"] = {"threshold": grid[own], "dev": row["dev"][own], "test": row["test"][own]}
        rows.append(row)
        print(f"{path}: dev at 0 {row['dev'][0]:.2f}, best {row['dev'][own]:.2f} at {grid[own]}; "
              f"test at 0 {row['test'][0]:.2f}, at that threshold {row['test'][own]:.2f}", file=sys.stderr)
    mean_dev = [sum(r["dev"][i] for r in rows) / len(rows) for i in range(len(grid))]
    pick = max(range(len(grid)), key=lambda i: (mean_dev[i], -i))

    def mean(key: str, i: int) -> float:
        return round(sum(r[key][i] for r in rows) / len(rows), 2)

    report = {
        "what": f"a relation-score threshold chosen on {args.dataset} dev (mean over the models), main metric "
                f"{protocol.name}; relations filtered after decoding, entities untouched",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "command": "python benchmarks/relation_threshold.py " + " ".join(sys.argv[1:]),
        "grid": grid, "mean_dev": [round(x, 2) for x in mean_dev],
        "pick": grid[pick],
        "at_pick": {"dev": mean("dev", pick), "test": mean("test", pick),
                    "test_change_per_model": [round(r["test"][pick] - r["test"][0], 2) for r in rows]},
        "at_0": {"dev": mean("dev", 0), "test": mean("test", 0)},
        "own_dev_best_test_change_per_model": [round(r["own_dev_best"]["test"] - r["test"][0], 2) for r in rows],
        "models": rows,
    }  # fmt: skip
    print(f"pick {grid[pick]} (best mean dev): dev {mean('dev', 0)} -> {mean('dev', pick)}, "
          f"test {mean('test', 0)} -> {mean('test', pick)}; per model {report['at_pick']['test_change_per_model']}; "
          f"each model's own dev-best threshold instead: {report['own_dev_best_test_change_per_model']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
