"""Decoding batch sizes side by side: ``decode.predict`` over the same documents, the sizes interleaved in rounds
(A B A B ...) in one process, so that a machine whose speed drifts between minutes (a shared or virtual one)
slows every size alike. Reports each size's passes, median and best, and each median against the first size's.

    .venv/bin/python benchmarks/decode_batch.py --model runs/demo --dataset conll04 --data-dir ../shared/data \\
        [--sizes 32,64] [--rounds 6] [--split test] [--precision fp32] [--json OUT]

The model's saved decoding settings are used (constrained greedy for the CPU configs), with ``batch_size``
replaced; the scores of every size are checked to be equal (the batch changes padding, never the search).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", default="conll04")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--sizes", default="32,64", help="comma-separated batch sizes (default: 32,64)")
    ap.add_argument("--rounds", type=int, default=6, help="passes per size, interleaved (default: 6)")
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not sizes or min(sizes) < 1 or args.rounds < 1:
        ap.error("--sizes must be positive integers and --rounds >= 1")

    import torch

    from anchoralign.api import saved_decode_config
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import predict
    from anchoralign.metrics import score_documents
    from anchoralign.model import load_model

    model = load_model(args.model, "cpu")
    model.eval()
    docs = load_split(args.dataset, args.split, resolve_data_dir(args.data_dir)).documents
    base = replace(saved_decode_config(args.model), precision=args.precision)
    predict(model, docs[:16], base)  # warm-up
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    scores: dict[int, float] = {}
    for _ in range(args.rounds):
        for size in sizes:
            t = time.perf_counter()
            out = predict(model, docs, replace(base, batch_size=size))
            seconds[size].append(time.perf_counter() - t)
            scores[size] = score_documents(docs, out.documents)["re_strict"]["micro"]["f1"]
    first = statistics.median(seconds[sizes[0]])
    report = {
        "model": args.model, "dataset": args.dataset, "split": args.split, "documents": len(docs),
        "decode": {k: v for k, v in base.__dict__.items() if k != "batch_size"},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "date": datetime.now(UTC).isoformat(timespec="seconds"), "rounds": args.rounds,
        "sizes": {
            str(s): {"seconds_each": [round(x, 3) for x in seconds[s]],
                     "median_s": round(statistics.median(seconds[s]), 3),
                     "best_sentences_per_s": round(len(docs) / min(seconds[s]), 1),
                     "median_speedup_vs_first": round(first / statistics.median(seconds[s]), 3),
                     "re_strict_f1": round(scores[s], 4)}
            for s in sizes
        },
    }
    print(f"{len(docs)} documents, CPU capability {report['cpu_capability']}, {report['threads']} threads, "
          f"{args.rounds} interleaved rounds")
    for s, r in report["sizes"].items():
        print(f"batch {s:>4}: median {r['median_s']:.2f} s, best {r['best_sentences_per_s']:.1f} sentences/s, "
              f"median speed-up vs {sizes[0]}: {r['median_speedup_vs_first']:.3f}, RE+ {r['re_strict_f1']:.4f}")
    if len(set(scores.values())) > 1:
        print("warning: the scores differ between batch sizes")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
