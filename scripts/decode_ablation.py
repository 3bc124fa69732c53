"""Decode-time ablation of one trained model: the same weights decoded with each constraint switch off.

    .venv/bin/python scripts/decode_ablation.py --model runs/demo --dataset conll04 --split test \
        [--data-dir ../shared/data] [--json OUT]

Prints test micro F1 (NER strict, RE+ strict), malformed pieces and constraint violations per setting.
"""

from __future__ import annotations

import argparse
import json
import os

SETTINGS = {
    "all switches on (default)": {},
    "no entity coverage": {"entity_coverage": False},
    "no anchor candidates": {"anchor_candidates": False},
    "no signatures": {"signatures": False},
    "no type consistency": {"consistent_types": False},
    "span grammar only": {"entity_coverage": False, "anchor_candidates": False, "signatures": False,
                          "consistent_types": False},
    "no constraint at all": {"constrained": False},
    "beam 3 (all on)": {"num_beams": 3},
}


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default="conll04")
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()

    from dataclasses import replace

    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig
    from anchoralign.evaluation import evaluate_documents
    from anchoralign.model import load_model

    model = load_model(args.model)
    saved = json.loads(open(os.path.join(args.model, "model_config.json")).read()).get("run", {}).get("decode", {})
    base = DecodeConfig(**saved)
    gold = load_split(args.dataset, args.split, resolve_data_dir(args.data_dir)).documents
    rows = {}
    print(f"{args.model} on {args.dataset}/{args.split}: micro F1 (NER strict, RE+ strict)")
    print(f"{'setting':28} {'NER':>7} {'RE+':>7} {'malformed':>9} {'outside sig.':>12} {'two types':>9}")
    for name, change in SETTINGS.items():
        scores, _ = evaluate_documents(model, gold, model.schema, replace(base, **change))
        v = scores["violations"]
        rows[name] = {"ner": scores["ner"]["micro"]["f1"], "re_strict": scores["re_strict"]["micro"]["f1"],
                      "malformed": scores["malformed"], **v}
        print(f"{name:28} {100 * rows[name]['ner']:7.2f} {100 * rows[name]['re_strict']:7.2f} "
              f"{scores['malformed']:9d} {v['relations_outside_signatures']:12d} {v['spans_with_two_types']:9d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "dataset": args.dataset, "split": args.split, "settings": rows}, f, indent=2)


if __name__ == "__main__":
    main()
