"""How the entity tagger's tags are read (``decode.tagger_decoding``: argmax or viterbi), per model, on dev and
test: each model decodes both splits once per setting (its other saved decode settings unchanged) and is scored
with the dataset's protocol; the mean change over the models is printed. Pick by dev; test is shown beside it.

    python benchmarks/tagger_decoding.py --dataset conll04 --models runs/demo runs/pair/s13 [...] \\
        [--json results/tagger_decoding_conll04.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

SETTINGS = ("argmax", "viterbi")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", required=True, help="model directories with an entity tagger")
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
              "models": {}}  # fmt: skip
    deltas: dict[str, list[float]] = {}
    for path in args.models:
        model = load_model(path, torch.device("cpu"))
        base = saved_decode_config(path)
        if not base.tagger_spans or model.heads is None or model.heads.entity_tagger is None:
            print(f"{path}: its decoding does not read the tagger's spans (decode.tagger_spans, an entity tagger); "
                  "skipped")
            continue
        row: dict = {}
        for setting in SETTINGS:
            cfg = replace(base, tagger_decoding=setting, span_source="tagger")
            row[setting] = {}
            for name, docs in splits.items():
                scores, _ = evaluate_documents(model, docs, model.schema, cfg)
                row[setting][name] = {k: round(100 * scores[k]["micro"]["f1"], 2) for k in ("ner", "re_strict")}
        for name in splits:
            for k in ("ner", "re_strict"):
                deltas.setdefault(f"{name} {k}", []).append(row["viterbi"][name][k] - row["argmax"][name][k])
        print(f"{path}: " + "  ".join(
            f"{s}: dev NER {row[s]['dev']['ner']:.2f} RE+ {row[s]['dev']['re_strict']:.2f}, "
            f"test NER {row[s]['test']['ner']:.2f} RE+ {row[s]['test']['re_strict']:.2f}" for s in SETTINGS), flush=True)
        meta = json.loads((Path(path) / "metadata.json").read_text(encoding="utf-8"))
        report["models"][path] = {"commit": meta.get("commit"), "precision": base.precision, **row}
    report["mean_change_viterbi_minus_argmax"] = {k: round(statistics.mean(v), 2) for k, v in deltas.items()}
    for k, v in report["mean_change_viterbi_minus_argmax"].items():
        print(f"mean change, viterbi - argmax, {k}: {v:+.2f} (over {len(deltas[k])} models)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
