"""``anchoralign experiment``: the ablation (variants x seeds) with one results table."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..config import load_config
from ..errors import InputError
from .common import add_data_arguments, dataset_schema, read_split


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--variants", default="full,no-anchor-selection,no-alignment,no-constraint,flat",
                   help="comma-separated variants (default: all five)")
    seeds = p.add_mutually_exclusive_group()
    # default None, not 3: argparse would not see "--seeds 3 --seed 2" as a conflict if 3 were the default
    seeds.add_argument("--seeds", type=int, help="number of seeds (1, 2, ..., N); default 3")
    seeds.add_argument("--seed", dest="seed_list", type=int, action="append", metavar="S",
                       help="run only seed S (repeatable), instead of 1..N: to share one experiment's seeds "
                            "between processes or machines; a later call with --seeds N reuses every finished run")
    p.add_argument("--output", required=True, help="experiment directory")
    p.add_argument("--config", help="base YAML config (the budget every variant gets)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--test-split", default="test")
    p.add_argument("--keep-models", action="store_true", help="keep each run's best model weights")
    p.add_argument("--status", action="store_true",
                   help="train nothing: print the table of the runs finished so far in --output")


def run(args: argparse.Namespace) -> int:
    from ..experiment import run_experiment, summary_table

    cfg = load_config(args.config, args.overrides)
    dataset = args.dataset or cfg.dataset
    cfg.dataset = dataset
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    from ..experiment import VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant {unknown[0]!r}; variants: {', '.join(VARIANTS)}")
    if args.seed_list:
        seeds = sorted(set(args.seed_list))
        if seeds[0] < 1:
            raise InputError(f"--seed must be >= 1, got {seeds[0]}")
    else:
        n = 3 if args.seeds is None else args.seeds
        if n < 1:
            raise InputError(f"--seeds must be >= 1, got {n}")
        seeds = list(range(1, n + 1))
    if args.status:
        from ..experiment import finished_runs

        print(summary_table(finished_runs(args.output, variants, seeds, dataset)))
        return 0
    train_docs = read_split(dataset, cfg.train.train_split, args.data_dir)
    dev_docs = read_split(dataset, cfg.train.dev_split, args.data_dir)
    test_docs = read_split(dataset, args.test_split, args.data_dir)
    schema = dataset_schema(dataset, args.data_dir)
    command = "anchoralign experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    results = run_experiment(cfg, variants, seeds, train_docs, dev_docs, test_docs,
                             schema, args.output, command=command, keep_models=args.keep_models)
    print(summary_table(results))
    return 0
