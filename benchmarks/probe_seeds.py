"""The probe over several models of one recipe (seeds): reads the JSON reports that ``anchoralign probe --output``
wrote, one per model, and prints each rate the target speaks of (negated, hedged and co-occurrence sentences
with a relation output, real unrelated pairs related, controls found) per model and as mean +- std, at every
threshold the reports share; and at which threshold the mean meets the target.

    for s in 1 2 3; do anchoralign probe --model runs/x/s$s --threshold 0 0.5 0.9 --output runs/x/probe_s$s.json; done
    python benchmarks/probe_seeds.py runs/x/probe_s*.json [--json results/probe_conll04_x.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from anchoralign.errors import InputError

RATES = (("negated", "fp_rate"), ("hedged", "fp_rate"), ("cooccurrence", "fp_rate"), ("real_pairs", "fp_rate"),
         ("control", "recall"))


def _load(path: str) -> dict:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        {row["threshold"]: row["categories"] for row in report["thresholds"]}  # noqa: B018 (shape check)
        report["target"]["max_fp_rate"]
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"not a report of `anchoralign probe --output` ({type(e).__name__}: {e})", path=path) from None
    return report


def summarize(reports: list[dict]) -> dict:
    """Per shared threshold and rate: the value of each report and their mean and std (in %)."""
    shared = set.intersection(*({row["threshold"] for row in r["thresholds"]} for r in reports))
    target = reports[0]["target"]
    rows = []
    for t in sorted(shared):
        cats = [next(row["categories"] for row in r["thresholds"] if row["threshold"] == t) for r in reports]
        row: dict = {"threshold": t}
        for cat, key in RATES:
            values = [c[cat][key] for c in cats]
            if any(v is None for v in values):
                continue
            pct = [round(100 * v, 2) for v in values]
            row[f"{cat} {key}"] = {"per_model": pct, "mean": round(statistics.fmean(pct), 2),
                                   "std": round(statistics.stdev(pct), 2) if len(pct) > 1 else 0.0}
        fp_ok = all(row[f"{c} fp_rate"]["mean"] <= 100 * target["max_fp_rate"] for c in ("negated", "cooccurrence"))
        row["fp_target_met"] = fp_ok
        row["target_met"] = fp_ok and row["control recall"]["mean"] >= 100 * target["min_control_recall"]
        rows.append(row)
    return {"models": [r["model"] for r in reports], "seed": sorted({r["seed"] for r in reports}),
            "precision": sorted({r["precision"] for r in reports}), "cpu_capability": sorted({r["cpu_capability"]
                                                                                          for r in reports}),
            "target": target, "thresholds": rows,
            "met_at": next((row["threshold"] for row in rows if row["target_met"]), None)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", help="JSON reports of `anchoralign probe --output`, one per model")
    ap.add_argument("--json", dest="json_out", help="write the summary (with each report's path) here")
    args = ap.parse_args()
    reports = [_load(p) for p in args.reports]
    summary = summarize(reports)
    summary["reports"] = list(args.reports)
    for row in summary["thresholds"]:
        print(f"threshold {row['threshold']:g}:")
        for cat, key in RATES:
            cell = row.get(f"{cat} {key}")
            if cell:
                per = ", ".join(f"{v:.1f}" for v in cell["per_model"])
                print(f"  {cat:<13} {key:<8} {cell['mean']:6.2f} +- {cell['std']:5.2f} %   ({per})")
    t = summary["target"]
    print(f"target (negated and co-occurrence <= {100 * t['max_fp_rate']:.0f} %, controls >= "
          f"{100 * t['min_control_recall']:.0f} %, on the mean over {len(reports)} models): "
          + (f"met at threshold {summary['met_at']:g}" if summary["met_at"] is not None else "not met"),
          file=sys.stdout)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
