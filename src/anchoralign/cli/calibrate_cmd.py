"""``anchoralign calibrate``: how well a model's scores are calibrated on a dev split, precision and recall by
threshold, and (``--save``) the temperatures that improve calibration, written beside the model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from .common import add_data_arguments, decode_config, is_tty, read_file, read_split

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    add_data_arguments(p)
    p.add_argument("--split", default="dev", help="split the temperatures are fitted on (default: dev)")
    p.add_argument("--check-split", default="test",
                   help="held-out split the fitted temperatures are checked on ('' for none; default: test)")
    p.add_argument("--input", help="own gold file to fit on instead of --dataset/--split")
    p.add_argument("--format", default="jsonl", help="format of --input")
    p.add_argument("--bins", type=int, default=10, help="reliability bins (default 10)")
    p.add_argument("--save", action="store_true",
                   help="write the temperatures that lower the fit split's ECE to MODEL/calibration.json")
    p.add_argument("--output", help="write the report as JSON here")
    p.add_argument("--plot", help="write a reliability plot (PNG) here (needs matplotlib)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="decode.KEY=VALUE",
                   help="override a decode setting of the model's config (repeatable)")
    p.set_defaults(no_constraint=False, beams=None)


def _decode(model, docs, decode, label: str):
    from tqdm.auto import tqdm

    from ..decode import predict

    with tqdm(total=len(docs), desc=f"decode {label}", disable=not is_tty()) as bar:
        return predict(model, docs, decode, progress=bar.update).documents


def _section(gold, pred, temps: dict[str, float], bins: int) -> dict:
    from ..calibration import ece, reliability, scored_predictions, temper, threshold_table

    items = scored_predictions(gold, pred)
    out: dict = {"documents": len(gold)}
    for kind in ("entity", "relation"):
        raw, tempered = items[kind], temper(items[kind], temps[kind])
        out[kind] = {"predictions": len(raw), "accuracy": sum(x.correct for x in raw) / len(raw) if raw else 0.0,
                     "ece": ece(raw, bins), "ece_tempered": ece(tempered, bins),
                     "reliability": reliability(raw, bins), "reliability_tempered": reliability(tempered, bins)}
    out["thresholds"] = threshold_table(gold, pred, THRESHOLDS, temps)
    return out


def run(args: argparse.Namespace) -> int:
    from ..api import CALIBRATION_FILE
    from ..calibration import ece, fit_temperature, scored_predictions, temper
    from ..model import load_model

    if args.bins < 1:
        raise InputError(f"--bins must be >= 1, got {args.bins}")
    model = load_model(args.model)
    run_cfg = json.loads((Path(args.model) / "model_config.json").read_text()).get("run", {})
    decode = decode_config(args)
    if args.input:
        fit_gold, fit_name, check = read_file(args.input, args.format), args.input, None
    else:
        dataset = args.dataset or run_cfg.get("dataset")
        if not dataset:
            raise InputError("give --dataset NAME or --input FILE")
        fit_gold, fit_name = read_split(dataset, args.split, args.data_dir), f"{dataset}/{args.split}"
        check = (read_split(dataset, args.check_split, args.data_dir), f"{dataset}/{args.check_split}") \
            if args.check_split else None
    fit_pred = _decode(model, fit_gold, decode, fit_name)
    items = scored_predictions(fit_gold, fit_pred)
    temps, kept = {}, {}
    for kind in ("entity", "relation"):
        t = fit_temperature(items[kind])
        better = ece(temper(items[kind], t), args.bins) < ece(items[kind], args.bins)
        temps[kind], kept[kind] = t, (t if better else 1.0)
    report = {"model": args.model, "fit_on": fit_name, "bins": args.bins,
              "score": "product of the decoder's step probabilities over the ids that wrote the prediction",
              "temperature_fitted": temps, "temperature_saved": kept if args.save else None,
              "fit": _section(fit_gold, fit_pred, kept, args.bins)}
    if check is not None:
        report["check_on"] = check[1]
        report["check"] = _section(check[0], _decode(model, check[0], decode, check[1]), kept, args.bins)
    if args.save:
        payload = {"temperature": kept, "fitted_on": fit_name, "fitted": temps,
                   "ece": {k: {"before": report["fit"][k]["ece"], "after": report["fit"][k]["ece_tempered"]}
                           for k in ("entity", "relation")}}
        (Path(args.model) / CALIBRATION_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    if args.plot:
        _plot(report, args.plot)
    _print(report, sys.stdout)
    return 0


def _print(report: dict, out) -> None:
    for part, name in (("fit", report["fit_on"]), ("check", report.get("check_on"))):
        if part not in report:
            continue
        sec = report[part]
        print(f"{name}: {sec['documents']} documents", file=out)
        for kind in ("entity", "relation"):
            k = sec[kind]
            print(f"  {kind:<8} {k['predictions']:>5} predicted, {100 * k['accuracy']:5.1f} % correct; "
                  f"ECE {k['ece']:.4f} -> {k['ece_tempered']:.4f} tempered", file=out)
        print("  threshold   NER P/R/F1             RE+ P/R/F1", file=out)
        for row in sec["thresholds"]:
            n, r = row["ner"], row["re_strict"]
            print(f"  {row['threshold']:>9.1f}   {100 * n['precision']:5.1f} {100 * n['recall']:5.1f} {100 * n['f1']:5.1f}"
                  f"      {100 * r['precision']:5.1f} {100 * r['recall']:5.1f} {100 * r['f1']:5.1f}", file=out)
    t = report["temperature_fitted"]
    print(f"temperatures fitted on {report['fit_on']}: entity {t['entity']:.3f}, relation {t['relation']:.3f}"
          + (f"; saved {report['temperature_saved']}" if report["temperature_saved"] else " (not saved: --save)"),
          file=out)


def _plot(report: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'anchoralign[plot]'") from None
    parts = [p for p in ("fit", "check") if p in report]
    fig, axes = plt.subplots(len(parts), 2, figsize=(9, 4.2 * len(parts)), squeeze=False)
    for row, part in enumerate(parts):
        for col, kind in enumerate(("entity", "relation")):
            ax = axes[row][col]
            sec = report[part][kind]
            for key, style, label in (("reliability", "o-", "raw"), ("reliability_tempered", "s--", "tempered")):
                pts = sec[key]
                ax.plot([p["mean_score"] for p in pts], [p["accuracy"] for p in pts], style,
                        label=f"{label} (ECE {sec['ece' if key == 'reliability' else 'ece_tempered']:.3f})")
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            name = report["fit_on"] if part == "fit" else report["check_on"]
            ax.set_title(f"{'entities' if kind == 'entity' else 'relations'}, {name} ({sec['predictions']})")
            ax.set_xlabel("mean score in bin")
            ax.set_ylabel("fraction correct")
            ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
