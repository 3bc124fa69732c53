"""``anchoralign benchmark``: train and test the benchmark suite, one config per dataset; resumable; writes
the results JSON and its markdown table (docs/benchmarks-suite.md)."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..benchmark import SUITE

    p.add_argument("--datasets", default=",".join(SUITE),
                   help=f"comma-separated registered datasets (default: the suite, {','.join(SUITE)})")
    p.add_argument("--output", required=True,
                   help="runs directory: DIR/<dataset>/, for ADE DIR/ade/fold<i>/ (finished ones are skipped)")
    p.add_argument("--config-dir", default="configs", help="where <dataset>-<suffix>.yaml are (default: configs)")
    p.add_argument("--suffix", default="cpu", help="config suffix: cpu or gpu (default: cpu)")
    p.add_argument("--folds", help="folds of a cross-validated dataset (ADE), e.g. 0-9 or 0,3 (default: all)")
    p.add_argument("--seed", type=int, default=None, help="train.seed for every run (default: each config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of every config, e.g. train.threads=2 (recorded with the results)")
    p.add_argument("--results", default="results/benchmarks.json",
                   help="results JSON to merge into; the markdown table is written beside it (.md)")
    p.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    p.add_argument("--dry-run", action="store_true", help="list what would run and what is done; train nothing")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each run's last-epoch checkpoint (optimizer state) after its test")


def run(args: argparse.Namespace) -> int:
    from ..benchmark import parse_folds, run_benchmark

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not datasets:
        raise InputError("--datasets names no dataset")
    folds = parse_folds(args.folds) if args.folds else None
    out = run_benchmark(
        datasets, args.output, config_dir=args.config_dir, suffix=args.suffix, folds=folds, seed=args.seed,
        overrides=args.overrides, results_path=args.results, data_dir=args.data_dir, dry_run=args.dry_run,
        keep_checkpoints=args.keep_checkpoints, report=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if args.dry_run:
        print(_plan_table(out["units"]))
        return 0
    from ..benchmark import results_table

    print(results_table(out["results"]))
    return 0


def _plan_table(rows: list[dict]) -> str:
    """One line per unit: its status, then documents x epochs left and an estimate from finished runs."""
    lines = []
    for r in rows:
        text = f"{r['unit']:<24} {r['status']}"
        if r["status"] == "interrupted":
            text += f" after epoch {r['epochs_done']} of {r['epochs']} (resumes)"
        if r["status"] != "done" and "train_docs" in r:
            text += f"; {r['train_docs']} training documents x {r['epochs'] - r['epochs_done']} epochs"
            if "estimate_seconds" in r:
                s = r["estimate_seconds"]
                text += f", about {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d} at the finished runs' pace"
        if "config" in r:
            text += f"  [{r['config']}]"
        lines.append(text)
    done = sum(r["status"] == "done" for r in rows)
    lines.append(f"{done} of {len(rows)} runs done")
    return "\n".join(lines)
