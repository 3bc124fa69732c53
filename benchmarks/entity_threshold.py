"""Pick ``decode.entity_threshold`` on dev: each model decodes dev and test once (its saved decode settings,
entity threshold off), then the entities in no relation scoring under each threshold of a grid are left out
(``decode.standalone_entities_scoring_at_least``; relations are untouched) and NER is scored with the
dataset's protocol. The threshold with the best dev NER averaged over the models is the pick; test is shown
beside it, not used.

    python benchmarks/entity_threshold.py --dataset conll04 --models runs/a runs/b runs/c \\
        [--json results/entity_threshold_conll04.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

GRID = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    import torch

    from anchoralign.api import saved_decode_config
    from anchoralign.data.registry import dataset_protocol, load_split, resolve_data_dir
    from anchoralign.decode import predict, standalone_entities_scoring_at_least
    from anchoralign.model import load_model

    data_dir = resolve_data_dir(args.data_dir)
    splits = {s: load_split(args.dataset, s, data_dir).documents for s in ("dev", "test")}
    protocol = dataset_protocol(args.dataset)
    report: dict = {"dataset": args.dataset, "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(), "grid": list(GRID), "models": {}}
    for path in args.models:
        model = load_model(path, torch.device("cpu"))
        cfg = replace(saved_decode_config(path), entity_threshold=0.0)
        rows: dict = {}
        for name, gold in splits.items():
            pred = predict(model, gold, cfg).documents
            for t in GRID:
                docs = [standalone_entities_scoring_at_least(d, t) for d in pred] if t > 0 else pred
                figures = protocol.score(gold, docs, model.schema)
                rows.setdefault(str(t), {})[name] = {"ner": round(100 * figures["ner"], 2),
                                                     "main": round(100 * figures["main"], 2)}
        report["models"][path] = rows
        print(path + ": " + "  ".join(f"{t}: dev NER {r['dev']['ner']:.2f} test {r['test']['ner']:.2f}"
                                      for t, r in rows.items()), flush=True)
    mean = {str(t): {s: round(statistics.mean(m[str(t)][s]["ner"] for m in report["models"].values()), 2)
                     for s in splits} for t in GRID}
    pick = max(GRID, key=lambda t: (mean[str(t)]["dev"], -t))
    report["mean_ner"], report["pick_by_dev"] = mean, pick
    for t in GRID:
        print(f"threshold {t}: mean dev NER {mean[str(t)]['dev']:.2f}, test {mean[str(t)]['test']:.2f}"
              + ("   <- best on dev" if t == pick else ""))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
