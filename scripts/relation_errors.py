"""Where RE+ and NER errors come from: each missed gold relation or entity and each false one, by cause.

    python scripts/relation_errors.py --gold ../shared/data/conll04/test.json --pred runs/demo/test_predictions.json

Both files are SpERT JSON lists in the same order (what ``anchoralign evaluate --predictions`` writes). Strict
matching, as RE+: an argument is right when its token boundaries and its type are. Torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter


def _relations(doc: dict) -> set[tuple]:
    ents = doc["entities"]

    def key(i: int) -> tuple:
        return ents[i]["start"], ents[i]["end"], ents[i]["type"]

    return {(key(r["head"]), r["type"], key(r["tail"])) for r in doc["relations"]}


def relation_errors(gold: list[dict], pred: list[dict]) -> Counter:
    """Counts: ``tp``; ``fn_*`` (missed gold relations) and ``fp_*`` (false predictions) by cause."""
    c: Counter = Counter()
    for g, p in zip(gold, pred, strict=True):
        g_ents = {(e["start"], e["end"], e["type"]) for e in g["entities"]}
        p_ents = {(e["start"], e["end"], e["type"]) for e in p["entities"]}
        p_spans = {x[:2] for x in p_ents}
        g_rels, p_rels = _relations(g), _relations(p)
        c["gold"] += len(g_rels)
        c["predicted"] += len(p_rels)
        c["tp"] += len(g_rels & p_rels)
        for h, r, t in g_rels - p_rels:
            if h in p_ents and t in p_ents:
                if (t, r, h) in p_rels:
                    c["fn_reversed"] += 1
                elif any(x[0] == h and x[2] == t for x in p_rels):
                    c["fn_other_relation_type"] += 1
                else:
                    c["fn_arguments_found_relation_not_written"] += 1
            elif h[:2] in p_spans and t[:2] in p_spans:
                c["fn_argument_with_other_type"] += 1
            else:
                c["fn_argument_missing_or_other_boundaries"] += 1
        for h, _, t in p_rels - g_rels:
            c["fp_arguments_correct" if h in g_ents and t in g_ents else "fp_argument_wrong"] += 1
    return c


def entity_errors(gold: list[dict], pred: list[dict]) -> Counter:
    """NER strict counts: ``ent_tp``; false entities (``ent_fp_*``) and missed ones (``ent_fn_*``) by cause: the
    right span with another type, a span that overlaps one of the other side's with other boundaries, or none."""
    c: Counter = Counter()
    for g, p in zip(gold, pred, strict=True):
        g_ents = {(e["start"], e["end"], e["type"]) for e in g["entities"]}
        p_ents = {(e["start"], e["end"], e["type"]) for e in p["entities"]}
        for mine, other, side in ((p_ents - g_ents, g_ents, "fp"), (g_ents - p_ents, p_ents, "fn")):
            spans = {x[:2] for x in other}
            for a, b, _ in mine:
                if (a, b) in spans:
                    c[f"ent_{side}_other_type"] += 1
                elif any(s < b and a < e for s, e in spans):
                    c[f"ent_{side}_other_boundaries"] += 1
                else:
                    c[f"ent_{side}_no_overlap"] += 1
        c["ent_tp"] += len(g_ents & p_ents)
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", required=True)
    ap.add_argument("--pred", required=True)
    args = ap.parse_args(argv)
    try:
        gold = json.load(open(args.gold, encoding="utf-8"))
        pred = json.load(open(args.pred, encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"relation_errors: error: {e}", file=sys.stderr)
        return 2
    if len(gold) != len(pred):
        print(f"relation_errors: error: {args.pred} has {len(pred)} documents, {args.gold} has {len(gold)}",
              file=sys.stderr)
        return 2
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        for name, doc in ((args.gold, g), (args.pred, p)):
            try:
                _relations(doc)
                [(e["start"], e["end"], e["type"]) for e in doc["entities"]]
            except (KeyError, TypeError, IndexError) as e:
                print(f"relation_errors: error: {name}: record {i}: not a SpERT document ({e!r})", file=sys.stderr)
                return 2
    for k, v in sorted((relation_errors(gold, pred) + entity_errors(gold, pred)).items()):
        print(f"{k}\t{v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
