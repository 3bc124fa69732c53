"""``anchoralign probe``: how often a model outputs relations in sentences that state none (negated, hedged,
mere co-occurrence, and real sentences' unrelated pairs), and how many plainly stated ones it still finds, by
relation-score threshold (``probe.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InputError
from .common import decode_config, is_tty, read_split

log = logging.getLogger("anchoralign")

THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.9)
DATASET = "conll04"  # the probe's templates are written for its schema


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    p.add_argument("--split", default="test",
                   help="CoNLL04 split whose sentences give the real items ('' for none; default: test)")
    p.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    p.add_argument("--threshold", dest="thresholds", type=float, action="extend", nargs="+", default=None,
                   metavar="T", help="relation-score thresholds to report, under the library's threshold rule "
                                     f"(default: {' '.join(map(str, THRESHOLDS))})")
    p.add_argument("--seed", type=int, default=0, help="seed that draws the names into the templates (default 0)")
    p.add_argument("--repeats", type=int, default=4,
                   help="fillings of each template (default 4: 120 negated, 80 hedged, 60 co-occurrence, "
                        "100 control items)")
    p.add_argument("--batch-size", type=int, default=None, help="decode batch size (default: the model's config)")
    p.add_argument("--device", default="auto", help="cpu, cuda, ... (default: auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="decode.KEY=VALUE",
                   help="override a decode setting of the model's config (repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    p.add_argument("--output", help="write the report as JSON here")
    p.set_defaults(no_constraint=False, beams=None)


def run(args: argparse.Namespace) -> int:
    from ..probe import build_probe, score_probe

    thresholds = sorted(set(args.thresholds)) if args.thresholds else list(THRESHOLDS)
    for t in thresholds:
        if not 0.0 <= t <= 1.0:
            raise InputError(f"--threshold must be in [0, 1], got {t}")
    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    if args.batch_size is not None and args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not (Path(args.model) / "model_config.json").is_file():
        raise InputError("not a model directory (no model_config.json)", path=args.model)
    decode = decode_config(args)  # as the model was evaluated, with the command line's changes
    docs = read_split(DATASET, args.split, args.data_dir) if args.split else []  # bad input fails before loading
    probe = build_probe(args.seed, args.repeats, docs)

    from tqdm.auto import tqdm

    from ..api import Extractor, saved_metadata
    from ..precision import cpu_capability, resolve_precision
    from ..probe import SIGNATURES

    extractor = Extractor.load(args.model, device=args.device, decode=decode)
    missing = sorted(set(SIGNATURES) - set(extractor.model.schema.relation_types))
    if missing:
        log.warning("the model's schema lacks the probe's relation types %s", ", ".join(missing))
    inputs = probe.inputs()
    with tqdm(desc="probe", unit="passage", disable=not is_tty()) as bar:
        preds = extractor.extract(inputs, progress=bar.update, any_script=True)  # fixed English probe sentences
    report = {"model": str(args.model), "model_commit": saved_metadata(args.model).get("commit"),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_capability": cpu_capability(),
              "device": str(extractor.model.device),
              "precision": resolve_precision(extractor.decode.precision, extractor.model.device, "decode.precision"),
              "decode_overrides": list(args.overrides), "seed": args.seed, "repeats": args.repeats,
              "real_split": f"{DATASET}/{args.split}" if args.split else None, "inputs": len(inputs),
              "malformed": _malformed(preds),
              **score_probe(probe, preds, thresholds)}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        _print(report, sys.stdout)
    return 0


def _malformed(preds) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in preds:
        for kind, n in p.errors.items():
            out[kind] = out.get(kind, 0) + n
    return out


def _pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def _print(report: dict, out) -> None:
    rows = report["thresholds"]
    head = "".join(f"{r['threshold']:>7g}" for r in rows)
    print(f"{report['model']}: {report['inputs']} inputs, seed {report['seed']}, real items from "
          f"{report['real_split'] or '(none)'}", file=out)
    print(f"{'category':<28}{'items':>6}  {'% of items':<17}{head}", file=out)
    lines = [("negated", "fp_rate", "relation output"), ("negated", "target_rate", " denied relation"),
             ("hedged", "fp_rate", "relation output"), ("hedged", "target_rate", " denied relation"),
             ("cooccurrence", "fp_rate", "relation output"), ("real_cooccurrence", "fp_rate", "relation output"),
             ("real_pairs", "fp_rate", "pair related"), ("control", "recall", "stated found")]
    for cat, key, what in lines:
        n = rows[0]["categories"][cat]["items"]
        cells = "".join(f"  {_pct(r['categories'][cat].get(key))}" for r in rows)
        print(f"{cat:<28}{n:>6}  {what:<17}{cells}", file=out)
    for cat, key, what in (("negated", "fp_rate_when_entities_found", "relation output"),
                           ("hedged", "fp_rate_when_entities_found", "relation output"),
                           ("cooccurrence", "fp_rate_when_entities_found", "relation output"),
                           ("control", "recall_when_entities_found", "stated found")):
        cells = "".join(f"  {_pct(r['categories'][cat][key])}" for r in rows)
        print(f"{cat + ', entities found':<28}{'':>6}  {what:<17}{cells}", file=out)
    for cat in ("negated", "hedged", "cooccurrence", "control"):
        cells = "".join(f"  {_pct(r['categories'][cat]['entity_recall'])}" for r in rows)
        print(f"{cat + ' entity recall':<28}{'':>6}  {'% of mentions':<17}{cells}", file=out)
    t = report["target"]
    if t["fp_met_at"] is None:
        print(f"negated and co-occurrence FP rates stay above {100 * t['max_fp_rate']:.0f} % at every threshold",
              file=out)
    else:
        print(f"negated and co-occurrence FP rates <= {100 * t['max_fp_rate']:.0f} % from threshold "
              f"{t['fp_met_at']}, control recall there {_pct(t['control_recall_there']).strip()} %; whole target "
              f"(recall >= {100 * t['min_control_recall']:.0f} %) " +
              ("met at " + str(t["met_at"]) if t["met_at"] is not None else "not met"), file=out)
