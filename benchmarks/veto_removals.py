"""What a veto takes out of a dataset split: the relations a model outputs with ``decode.pair_veto`` 0 and not with
the veto given, each marked as in the gold annotation (a true relation lost) or not (a false one removed), with
its sentence, and how many of the lost true ones stand in a sentence holding a negation or hedge word (``CUES``),
beside how many of all the gold relations do.

    python benchmarks/veto_removals.py --model runs/veto/s1 --veto 0.02 [--set relation_threshold=0.3] \\
        [--dataset conll04 --split test] [--json results/veto_removals.json]

Other decode settings are the model's saved ones (``--set KEY=VALUE`` overrides, repeatable).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from datetime import UTC, datetime

from anchoralign.errors import InputError

# words that negate or doubt a statement somewhere in the sentence (not necessarily the relation's)
CUES = ("not", "no", "nor", "never", "neither", "unclear", "denied", "denies", "deny", "without", "n't")


def _cue(tokens: list[str]) -> str | None:
    for t in tokens:
        w = t.lower()
        if w in CUES or w.endswith("n't"):
            return w
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--veto", type=float, required=True, help="the decode.pair_veto to compare with 0")
    ap.add_argument("--dataset", default="conll04")
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)
    if not 0 < args.veto < 1:
        raise InputError(f"--veto must be in (0, 1), got {args.veto}")

    import torch

    from anchoralign.api import saved_decode_config
    from anchoralign.config import RunConfig, apply_overrides
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import predict
    from anchoralign.model import load_model

    try:  # the model's saved decode settings, then --set as the CLI reads it (typed, unknown keys refused)
        cfg = RunConfig()
        cfg.decode = saved_decode_config(args.model)
        apply_overrides(cfg, [f"decode.{item.removeprefix('decode.')}" for item in args.fixed])
        base = replace(cfg.decode, pair_veto=0.0)
        replace(base, pair_veto=args.veto).validate()
        gold = load_split(args.dataset, args.split, resolve_data_dir(args.data_dir)).documents
        model = load_model(args.model, torch.device("cpu"))
    except InputError:
        raise
    except ValueError as e:  # a decode setting the model's saved config refuses
        raise InputError(str(e), path=args.model) from None
    without = predict(model, gold, base).documents
    with_veto = predict(model, gold, replace(base, pair_veto=args.veto)).documents

    def key(doc, r) -> tuple:
        h, t = doc.entities[r.head], doc.entities[r.tail]
        return (h.start, h.end, h.type, r.type, t.start, t.end, t.type)

    removed = []
    for g, a, b in zip(gold, without, with_veto, strict=True):
        truth = {key(g, r) for r in g.relations}
        kept = {key(b, r) for r in b.relations}
        words = [t.text for t in g.tokens]
        for r in a.relations:
            k = key(a, r)
            if k in kept:
                continue
            removed.append({"id": g.id, "true": k in truth, "type": r.type,
                            "head": " ".join(words[k[0]:k[1]]), "tail": " ".join(words[k[4]:k[5]]),
                            "cue": _cue(words), "text": g.text})
    lost = [x for x in removed if x["true"]]
    report = {
        "model": args.model, "dataset": args.dataset, "split": args.split, "veto": args.veto,
        "decode": {k: v for k, v in vars(base).items() if k != "pair_veto"}, "cues": list(CUES),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "true_lost": len(lost), "false_removed": len(removed) - len(lost),
        "true_lost_with_cue": sum(x["cue"] is not None for x in lost),
        "false_removed_with_cue": sum(x["cue"] is not None for x in removed if not x["true"]),
        "gold_relations": sum(len(g.relations) for g in gold),
        "gold_relations_with_cue": sum(len(g.relations) for g in gold if _cue([t.text for t in g.tokens])),
        "removed": removed,
    }
    for x in lost:
        cue = f" [{x['cue']}]" if x["cue"] else ""
        text = " ".join(x["text"].split())[:160]
        print(f"lost {x['type']}: {x['head']} -> {x['tail']}{cue}: {text}")
    print(f"{args.model} at pair_veto {args.veto} on {args.dataset}/{args.split}: {report['true_lost']} true relations "
          f"lost ({report['true_lost_with_cue']} in a sentence with a negation or hedge word), "
          f"{report['false_removed']} false ones removed ({report['false_removed_with_cue']} with such a word); "
          f"{report['gold_relations_with_cue']} of the {report['gold_relations']} gold relations stand in such a sentence")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
