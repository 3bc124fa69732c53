"""``anchoralign train``: train on a registered dataset or on one's own files, in one process or several
(``--processes N``, or under ``torchrun``/``accelerate launch``; see docs/distributed.md)."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from datetime import UTC, datetime

from ..config import load_config
from ..distributed import accelerate_cpu_processes, launch_local, launched_rank, launched_world_size
from ..errors import InputError
from ..schema import Schema
from .common import add_data_arguments, dataset_schema, is_tty, read_file, read_split

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument("--train", help="own training file (instead of --dataset)")
    p.add_argument("--dev", help="own dev file (with --train)")
    p.add_argument("--format", default="jsonl", help="format of --train/--dev (spert, dygie, casrel, brat, jsonl, duie)")
    p.add_argument("--types", help="types file for --train data (SpERT *_types.json); default: collected from --train")
    p.add_argument("--output", required=True, help="run directory (the best model is saved here)")
    p.add_argument("--config", help="YAML config file (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="train in N local processes (data parallel; on CPU each gets cores/N threads). The "
                        "global batch is N x train.batch_size x train.grad_accum")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    if args.processes < 1:
        raise InputError(f"--processes must be >= 1, got {args.processes}")
    if args.processes == 1 and (n := accelerate_cpu_processes()) > 1:
        # `accelerate launch --cpu --num_processes N` started this command once (it needs mpirun for more)
        log.info("accelerate launch --cpu --num_processes %d started one process: starting %d here", n, n)
        args.processes = n
    if args.processes > 1 and launched_world_size() > 1:
        raise InputError("--processes starts the processes itself; leave it out under torchrun or accelerate launch")
    if args.train:
        if not args.dev:
            raise InputError("--train needs --dev (the best epoch is chosen on it)")
        train_docs, dev_docs = read_file(args.train, args.format), read_file(args.dev, args.format)
        schema = Schema.from_spert_types(args.types) if args.types else Schema()
        schema.update_from(train_docs)
        source = {"train": args.train, "dev": args.dev, "format": args.format}
        cfg.dataset = ""  # no registered dataset: `evaluate` must not default to the config's (conll04)
    else:
        dataset = args.dataset or cfg.dataset
        cfg.dataset = dataset
        train_docs = read_split(dataset, cfg.train.train_split, args.data_dir)
        dev_docs = read_split(dataset, cfg.train.dev_split, args.data_dir)
        schema = dataset_schema(dataset, args.data_dir)
        source = {"dataset": dataset, "train_split": cfg.train.train_split, "dev_split": cfg.train.dev_split}
    if not train_docs:
        raise InputError("the training data holds no documents")
    if args.processes > 1:
        return _launch(args, cfg.train)
    from ..train import train

    metadata = {"data": source, "machine": platform.platform(), "processor": platform.processor(),
                "started": datetime.now(UTC).isoformat(timespec="seconds")}
    result = train(cfg, train_docs, dev_docs, schema, args.output, resume=args.resume, metadata=metadata,
                   progress=is_tty())
    if launched_rank() == 0:
        print(json.dumps({"output": str(result.output), "best_epoch": result.best_epoch, "dev": result.best_dev,
                          "epochs_run": result.epochs_run, "epochs_planned": result.epochs_planned,
                          "schedule_cut": result.schedule_cut, "precision": result.precision,
                          "processes": result.processes, "seconds": round(result.seconds, 1)}, indent=2))
    return 0


def _launch(args: argparse.Namespace, tc) -> int:
    """Run this same command in ``--processes`` local processes (the data and config were checked here first)."""
    from ..precision import choose_precision
    from ..train import training_device

    choose_precision(tc.precision, training_device(tc.device), "train.precision")  # e.g. fp16 on a CPU: fail here
    print(f"anchoralign train: starting {args.processes} processes", file=sys.stderr)
    status = launch_local([*args.argv, "--processes", "1"], args.processes)  # the last --processes wins
    if status != 0:
        print(f"anchoralign train: error: training in {args.processes} processes failed (exit status {status})",
              file=sys.stderr)
        return 1
    return 0
