"""Where a model's relation errors come from, on the first N documents of a split: of the predicted relations,
how many join a gold pair (and with the right type), how many join two gold entities that are not related, how
many join two mentions of the same string; of the gold relations, how many have both arguments predicted.
Also, over the training split, how many gold relations join two mentions of the same string.

    python benchmarks/relation_errors.py --model runs/benchmarks/chinese_literature --dataset chinese_literature \\
        --split dev --limit 120
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter


def _span(doc, e) -> tuple[int, int]:
    return e.char_start, e.char_end


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--config", help="decode settings from this config (default: the model's own)")
    args = ap.parse_args()

    from anchoralign.config import load_config
    from anchoralign.data.registry import load_split
    from anchoralign.decode import DecodeConfig, predict
    from anchoralign.model import load_model

    model = load_model(args.model, "cpu")
    docs = load_split(args.dataset, args.split, args.data_dir).documents[: args.limit]
    decode = load_config(args.config).decode if args.config else DecodeConfig()
    pred = predict(model, docs, decode).documents
    c: Counter = Counter()
    for gold, p in zip(docs, pred, strict=True):
        gold_ents = {_span(gold, e) for e in gold.entities}
        gold_rels = {(_span(gold, gold.entities[r.head]), _span(gold, gold.entities[r.tail])): r.type
                     for r in gold.relations}
        pred_ents = {_span(p, e) for e in p.entities}
        c["gold_relations"] += len(gold_rels)
        c["gold_with_both_arguments_predicted"] += sum(h in pred_ents and t in pred_ents for h, t in gold_rels)
        for r in p.relations:
            h, t = _span(p, p.entities[r.head]), _span(p, p.entities[r.tail])
            c["predicted_relations"] += 1
            c["same_string_arguments"] += p.text[h[0]:h[1]] == p.text[t[0]:t[1]]
            if (h, t) in gold_rels:
                c["gold_pair"] += 1
                c["gold_pair_right_type"] += gold_rels[(h, t)] == r.type
            elif h in gold_ents and t in gold_ents:
                c["two_gold_entities_not_related"] += 1
    train = load_split(args.dataset, "train", args.data_dir).documents
    c["train_relations"] = sum(len(d.relations) for d in train)
    c["train_same_string_relations"] = sum(
        d.text[slice(*_span(d, d.entities[r.head]))] == d.text[slice(*_span(d, d.entities[r.tail]))]
        for d in train for r in d.relations)
    c["train_entities"] = sum(len(d.entities) for d in train)
    c["train_documents"] = len(train)
    print(json.dumps({"model": args.model, "dataset": args.dataset, "split": args.split, "documents": len(docs),
                      **c}, indent=2))
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
