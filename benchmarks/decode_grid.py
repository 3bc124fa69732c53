"""Pick decoding settings on dev for a set of models: every point of a grid of ``decode.*`` settings, each model
decoding dev and test at each point (its saved decode settings otherwise), scored with the dataset's protocol.
The point with the best dev main figure averaged over the models is the pick; test is shown beside it, not used.

    python benchmarks/decode_grid.py --dataset conll04 --models runs/a runs/b runs/c \\
        --grid pair_threshold=0.5,0.6,0.7 --grid relation_threshold=0.3,0.4 [--set pair_veto=0.05] \\
        [--json results/decode_grid.json]

Keys are ``DecodeConfig`` fields (a leading ``decode.`` is allowed); values are YAML scalars. Each point
decodes every model afresh (no post-hoc filtering), so any setting can be gridded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime

from anchoralign.errors import InputError


def _setting(item: str, names: set[str]) -> tuple[str, str]:
    key, eq, raw = item.partition("=")
    key = key.strip().removeprefix("decode.")
    if not eq or key not in names:
        raise InputError(f"{item!r}: expected KEY=VALUE with KEY a decode setting "
                         f"({', '.join(sorted(names))})")
    return key, raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="a setting and its values")
    ap.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for every point")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    import torch
    import yaml

    from anchoralign.api import saved_decode_config
    from anchoralign.data.registry import dataset_protocol, load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig, predict
    from anchoralign.model import load_model

    names = {f.name for f in fields(DecodeConfig)}
    fixed = {k: yaml.safe_load(v) for k, v in (_setting(s, names) for s in args.fixed)}
    axes = [(k, [yaml.safe_load(v) for v in raw.split(",")]) for k, raw in (_setting(g, names) for g in args.grid)]
    both = sorted(set(fixed) & {k for k, _ in axes})
    if both:
        raise InputError(f"{', '.join(both)} both gridded (--grid) and fixed (--set)")
    points = [dict(zip([k for k, _ in axes], values, strict=True))
              for values in itertools.product(*[vs for _, vs in axes])] or [{}]
    saved = {path: saved_decode_config(path) for path in args.models}  # InputError: one line, exit 2 (run_main)
    # every point checked on every model's own saved settings (a point may need one of them, e.g. pair_veto
    # needs the pair_relations the model was saved with) before any model is loaded or decoded
    for path, base in saved.items():
        for point in points:
            try:
                replace(base, **fixed, **point).validate()
            except (TypeError, ValueError) as e:
                setting = " ".join(f"{k}={v}" for k, v in {**fixed, **point}.items())
                raise InputError(f"{setting} on {path} (its saved decode settings): {e}") from None
    data_dir = resolve_data_dir(args.data_dir)
    splits = {s: load_split(args.dataset, s, data_dir).documents for s in ("dev", "test")}
    protocol = dataset_protocol(args.dataset)
    models = {path: (load_model(path, torch.device("cpu")), saved[path]) for path in args.models}

    def label(point: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in point.items()) or "(saved settings)"

    report: dict = {"dataset": args.dataset, "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                    "fixed": fixed, "grid": dict(axes), "command": " ".join(sys.argv), "models": {}}
    for path, (model, base) in models.items():
        rows = {}
        for point in points:
            cfg = replace(base, **fixed, **point)
            row = {}
            for name, gold in splits.items():
                figures = protocol.score(gold, predict(model, gold, cfg).documents, model.schema)
                row[name] = {"main": round(100 * figures["main"], 2), "ner": round(100 * figures["ner"], 2)}
            rows[label(point)] = row
            print(f"{path} {label(point)}: dev {row['dev']['main']:.2f} (NER {row['dev']['ner']:.2f})  "
                  f"test {row['test']['main']:.2f} (NER {row['test']['ner']:.2f})", flush=True)
        report["models"][path] = rows
    exact = {label(p): {f"{s}_{m}": statistics.mean(r[label(p)][s][m] for r in report["models"].values())
                        for s in splits for m in ("main", "ner")} for p in points}
    mean = {k: {f: round(v, 2) for f, v in row.items()} for k, row in exact.items()}
    pick = max(points, key=lambda p: exact[label(p)]["dev_main"])  # ties: the first point in grid order
    report["mean"], report["pick"] = mean, label(pick)
    print("\nmean over the models (main figure, NER):")
    for p in points:
        m = mean[label(p)]
        print(f"  {label(p)}: dev {m['dev_main']:.2f} ({m['dev_ner']:.2f})  test {m['test_main']:.2f} "
              f"({m['test_ner']:.2f})" + ("   <- dev's pick" if p is pick else ""))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
