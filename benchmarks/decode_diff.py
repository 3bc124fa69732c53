"""What one decoding setting changes against another, relation by relation: each model decodes a split twice
(its saved ``decode.*`` settings, plus ``--base`` for the first and ``--base`` and ``--change`` for the second),
and every relation that one decoding outputs and the other does not is listed with its sentence and whether the
gold has it (the strict RE+ match: both mentions' character spans and types, and the relation type).

    python benchmarks/decode_diff.py --dataset conll04 --split test --models runs/a runs/b \\
        --base relation_threshold=0.3 --base pair_threshold=0.6 --change pair_veto=0.05 [--json out.json]

It says where a setting's cost in F1 comes from (e.g. which true relations a veto removes), beside the scores
that ``decode_grid.py`` gives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime


def _settings(items: list[str], names: set[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().removeprefix("decode.")
        if not eq or key not in names:
            raise SystemExit(f"decode_diff.py: {item!r}: expected KEY=VALUE with KEY a decode setting "
                             f"({', '.join(sorted(names))})")
        out[key] = yaml.safe_load(raw)
    return out


def _triples(doc) -> dict[tuple, tuple[str, str, str]]:
    """The document's relations as strict-match keys, each with (head text, type, tail text) to show."""
    out = {}
    for r in doc.relations:
        h, t = doc.entities[r.head], doc.entities[r.tail]
        key = ((h.char_start, h.char_end, h.type), (t.char_start, t.char_end, t.type), r.type)
        out[key] = (doc.entity_text(h), r.type, doc.entity_text(t))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--base", action="append", default=[], metavar="KEY=VALUE", help="a setting for both decodings")
    ap.add_argument("--change", action="append", default=[], metavar="KEY=VALUE", required=True,
                    help="a setting for the second decoding only")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    import torch

    from anchoralign.api import saved_decode_config
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig, predict
    from anchoralign.errors import InputError
    from anchoralign.model import load_model

    names = {f.name for f in fields(DecodeConfig)}
    base, change = _settings(args.base, names), _settings(args.change, names)
    try:
        gold = load_split(args.dataset, args.split, resolve_data_dir(args.data_dir)).documents
        saved = {path: saved_decode_config(path) for path in args.models}
    except InputError as e:
        raise SystemExit(f"decode_diff.py: {e}") from None
    configs = {}
    for path, cfg in saved.items():  # every setting checked on every model before any model is loaded
        try:
            configs[path] = (replace(cfg, **base), replace(cfg, **base, **change))
            for c in configs[path]:
                c.validate()
        except (TypeError, ValueError) as e:
            raise SystemExit(f"decode_diff.py: {path} (its saved decode settings): {e}") from None

    report: dict = {"dataset": args.dataset, "split": args.split, "base": base, "change": change,
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(), "command": " ".join(sys.argv),
                    "models": {}}
    for path, (before_cfg, after_cfg) in configs.items():
        try:
            model = load_model(path, torch.device("cpu"))
        except InputError as e:
            raise SystemExit(f"decode_diff.py: {e}") from None
        before = predict(model, gold, before_cfg).documents
        after = predict(model, gold, after_cfg).documents
        rows = []
        for g, a, b in zip(gold, before, after, strict=True):
            truth, was, now = _triples(g), _triples(a), _triples(b)
            for key in was.keys() - now.keys():
                rows.append({"doc": g.id, "change": "removed", "correct": key in truth, "relation": was[key],
                             "text": g.text})
            for key in now.keys() - was.keys():
                rows.append({"doc": g.id, "change": "added", "correct": key in truth, "relation": now[key],
                             "text": g.text})
        counts = {f"{c} {'correct' if ok else 'wrong'}": sum(r["change"] == c and r["correct"] is ok for r in rows)
                  for c in ("removed", "added") for ok in (True, False)}
        report["models"][path] = {"counts": counts, "relations": rows}
        print(f"{path}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
