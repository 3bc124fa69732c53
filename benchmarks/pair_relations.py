"""What the pair classifier (``anchor.pair_classifier``) adds, per decoding setting, on dev and test: each model
decodes both splits once per setting of ``decode.pair_relations`` (off, union, replace), ``decode.pair_threshold``
and ``decode.relation_threshold`` (the model's other saved decode settings unchanged) and is scored with the
dataset's protocol. Pick settings by dev; test is printed beside it.

    python benchmarks/pair_relations.py --dataset conll04 --models runs/pair/s13 [...] \\
        [--json results/pair_classifier_conll04_s13.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

# (pair_relations, pair_threshold, relation_threshold)
SETTINGS = ([("off", 0.5, 0.4), ("off", 0.5, 0.0)] + [("union", t, 0.4) for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
            + [("replace", t, 0.0) for t in (0.3, 0.4, 0.5, 0.6)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", required=True, help="model directories trained with anchor.pair_classifier")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    import torch

    from anchoralign.api import saved_decode_config
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.evaluation import evaluate_documents
    from anchoralign.model import load_model

    data_dir = resolve_data_dir(args.data_dir)
    splits = {s: load_split(args.dataset, s, data_dir).documents for s in ("dev", "test")}
    report = {"dataset": args.dataset, "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
              "settings": ["pair_relations, pair_threshold, relation_threshold"], "models": {}}  # fmt: skip
    for path in args.models:
        model = load_model(path, torch.device("cpu"))
        if model.heads is None or model.heads.pair is None:
            print(f"error: {path} has no pair classifier (train with anchor.pair_classifier: true)", file=sys.stderr)
            return 2
        base = saved_decode_config(path)
        rows = []
        for mode, pair_t, rel_t in SETTINGS:
            cfg = replace(base, pair_relations=mode, pair_threshold=pair_t, relation_threshold=rel_t)
            row: dict = {"pair_relations": mode, "pair_threshold": pair_t, "relation_threshold": rel_t}
            for name, docs in splits.items():
                scores, _ = evaluate_documents(model, docs, model.schema, cfg)
                micro = {k: scores[k]["micro"] for k in ("ner", "re_strict")}
                row[name] = {"ner": round(100 * micro["ner"]["f1"], 2), "re_strict": round(100 * micro["re_strict"]["f1"], 2),
                             "re_strict_precision": round(100 * micro["re_strict"]["precision"], 2),
                             "re_strict_recall": round(100 * micro["re_strict"]["recall"], 2)}  # fmt: skip
            rows.append(row)
            print(f"{path}  {mode:7s} pair {pair_t:.1f} rel {rel_t:.1f}  dev RE+ {row['dev']['re_strict']:6.2f}  "
                  f"test RE+ {row['test']['re_strict']:6.2f} (NER {row['test']['ner']:.2f})", flush=True)
        meta = json.loads((Path(path) / "metadata.json").read_text(encoding="utf-8"))
        report["models"][path] = {"commit": meta.get("commit"), "precision": base.precision, "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
