"""``anchoralign veto``: fit a trained model's statement veto (``anchoralign.veto``) on its training set plus
sentences that state no relation, and save the model with it; the rest of the model is not changed. The veto
acts at decoding under ``decode.pair_veto`` (``--pair-veto`` saves a value as the model's default)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import InputError
from .common import add_data_arguments, read_file, read_split

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train` (with the pair "
                                                   "classifier, anchor.pair_classifier: true)")
    p.add_argument("--output", required=True, help="directory to write the model with its veto (may be --model)")
    add_data_arguments(p)
    p.add_argument("--split", default="train", help="split the veto is fitted on (default: train)")
    p.add_argument("--input", help="own gold file to fit on instead of --dataset/--split (English)")
    p.add_argument("--format", default="jsonl", help="format of --input")
    p.add_argument("--negatives", type=float, default=0.5,
                   help="sentences that state no relation to add, as a fraction of the fit documents (default 0.5)")
    p.add_argument("--kinds", default="rewrites,wrapped,frames",
                   help="kinds of those sentences, comma-separated (default: rewrites,wrapped,frames)")
    p.add_argument("--contrasts", type=float, default=0.0,
                   help="training sentences put beside a negated clause that reaches none of their entities, "
                        "relations kept, as a fraction of the fit documents (default 0: none)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the fit documents (default 10)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    p.add_argument("--seed", type=int, default=13, help="seed of the negatives and the fit (default 13)")
    p.add_argument("--members", type=int, default=1,
                   help="fits with seeds SEED, SEED+1, ...; their probabilities are averaged (default 1)")
    p.add_argument("--pair-veto", type=float, default=None, metavar="P",
                   help="save decode.pair_veto P as the model's default (else it stays as saved: choose it on dev, "
                        "or pass --set decode.pair_veto=P to evaluate, extract, probe)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data.registry import DATASETS, get_spec
    from ..model import load_model, save_model
    from ..negatives import KINDS
    from ..train import _atomic_dir
    from ..veto import fit_veto

    model_dir, out = Path(args.model), Path(args.output)
    if not 0 < args.negatives <= 5:
        raise InputError(f"--negatives must be in (0, 5], got {args.negatives}")
    if not 0 <= args.contrasts <= 5:
        raise InputError(f"--contrasts must be in [0, 5], got {args.contrasts}")
    if args.epochs < 1 or args.members < 1 or not args.lr > 0:
        raise InputError(f"--epochs and --members must be >= 1 and --lr > 0, got {args.epochs}, {args.members}, "
                         f"{args.lr}")
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - set(KINDS):
        raise InputError(f"--kinds must name some of {', '.join(KINDS)}, got {args.kinds!r}")
    if args.pair_veto is not None and not 0 < args.pair_veto < 1:
        raise InputError(f"--pair-veto must be in (0, 1), got {args.pair_veto}")
    in_place = out.resolve() == model_dir.resolve()
    if not in_place and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("output exists and is not an empty directory", path=out)
    if not in_place and out.parent.exists() and not out.parent.is_dir():
        raise InputError("the output's parent is not a directory", path=out.parent)
    model = load_model(model_dir)
    if model.heads is None or model.heads.pair is None:
        raise InputError("the model has no pair classifier (anchor.pair_classifier: true at training): the veto "
                         "starts from it", path=model_dir)
    saved = json.loads((model_dir / "model_config.json").read_text(encoding="utf-8"))
    run_cfg = saved.get("run", {})
    if args.pair_veto is not None and run_cfg.get("decode", {}).get("pair_relations") != "union":
        raise InputError("--pair-veto needs the model's decode.pair_relations to be union, got "
                         f"{run_cfg.get('decode', {}).get('pair_relations', 'off')!r}", path=model_dir)
    if args.input:
        docs, name = read_file(args.input, args.format), args.input
    else:
        dataset = args.dataset or run_cfg.get("dataset")
        if not dataset:
            raise InputError("give --dataset NAME or --input FILE")
        if dataset in DATASETS and get_spec(dataset).language != "en":
            raise InputError(f"the veto's negatives are English sentences; dataset {dataset} is "
                             f"{get_spec(dataset).language!r}")
        docs, name = read_split(dataset, args.split, args.data_dir), f"{dataset}/{args.split}"
    if not any(d.relations for d in docs):
        raise InputError(f"{name}: no relations to fit the veto on")
    saved_veto = run_cfg.get("decode", {}).get("pair_veto", 0.0)
    if args.pair_veto is None and saved_veto:
        log.warning("the model's saved decode.pair_veto %s now applies to the fitted veto, not the pair classifier; "
                    "choose it again on dev (--pair-veto P saves another)", saved_veto)

    def show(member: int, epoch: int, loss: float) -> None:
        who = f"member {member}/{args.members}, " if args.members > 1 else ""
        print(f"{who}epoch {epoch}/{args.epochs}: loss {loss:.4f}", file=sys.stderr)

    start = time.monotonic()
    try:
        report = fit_veto(model, docs, args.negatives, seed=args.seed, epochs=args.epochs, lr=args.lr, kinds=kinds,
                          members=args.members, contrasts=args.contrasts, progress=show)
    except ValueError as e:
        raise InputError(f"{name}: {e}") from None
    seconds = round(time.monotonic() - start, 1)
    if args.pair_veto is not None:
        run_cfg = {**run_cfg, "decode": {**run_cfg.get("decode", {}), "pair_veto": args.pair_veto}}
    veto = {**asdict(report), "fitted_on": name, "negatives": args.negatives, "kinds": kinds, "lr": args.lr,
            "contrasts_fraction": args.contrasts,
            "members": args.members, "seed": args.seed, "seconds": seconds, "torch_threads": torch.get_num_threads()}
    extra = {k: v for k, v in saved.items()
             if k not in ("format", "net", "kind", "model", "anchor", "architecture", "run", "veto")}

    def write(tmp: Path) -> None:  # in place, the training checkpoint stays (``--resume`` still works)
        skip = ("*.tmp", "*.old") if in_place else ("checkpoint", "*.tmp", "*.old")
        shutil.copytree(model_dir, tmp, ignore=shutil.ignore_patterns(*skip))
        save_model(model, tmp, extra_config={"run": run_cfg, "veto": veto, **extra})

    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_dir(out, write)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.negative_counts.items()))
    default = run_cfg.get("decode", {}).get("pair_veto", 0.0)
    added = f" + {report.contrasts} contrasts" if report.contrasts else ""
    print(f"veto fitted on {name} ({report.documents} documents) + {sum(report.negative_counts.values())} that state no "
          f"relation ({counts}){added}: {report.pairs} entity pairs, {report.related} related; {args.epochs} epochs, "
          f"loss {report.losses[0]:.4f} -> {report.losses[-1]:.4f}, {seconds} s")
    print(f"saved to {out}; decode.pair_veto there: {default}"
          + ("" if default else " (off: pass --set decode.pair_veto=P, chosen on dev)"))
    return 0
