"""Where a CPU training step's time goes: torch.profiler over a few steps of the library's own training loop.

    .venv/bin/python benchmarks/profile_train_step.py --config configs/conll04-cpu.yaml --data-dir ../shared/data \\
        [--set train.embedding_rows=all] [--set train.attention_dropout=0] [--docs 160]

Trains ``train()`` for one epoch on the first ``--docs`` training documents (no dev evaluation), profiles the
whole epoch, and prints the CPU capability and the operators by self time, with their share of the total and
the share of the groups this project acted on: the dense word-embedding gradient (zero-filled and summed
30k-row tensors and the embedding backward), AdamW, and dropout masks (torch's ``bernoulli_``, and the CPU
masks of ``anchoralign.dropout``, which ``train()`` installs on a CPU: the total of their labelled range).
"""

from __future__ import annotations

import argparse
import tempfile


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/conll04-cpu.yaml")
    p.add_argument("--dataset", default="conll04")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--docs", type=int, default=160, help="training documents (default 160: 10 steps of 16)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--rows", type=int, default=15, help="operators to list")
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from anchoralign.config import load_config
    from anchoralign.data.registry import load_schema, load_split, resolve_data_dir
    from anchoralign.dropout import MASK_EVENT
    from anchoralign.train import train

    data_dir = resolve_data_dir(args.data_dir)
    docs = load_split(args.dataset, "train", data_dir).documents[: args.docs]
    schema = load_schema(args.dataset, data_dir)
    cfg = load_config(args.config, [*args.overrides, "train.eval_from_epoch=1000000", "train.max_minutes=0"])
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, "
          f"{args.docs} documents, overrides {args.overrides}")
    with tempfile.TemporaryDirectory() as out, profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        train(cfg, docs, docs[:2], schema, out, progress=False, stop_after_epoch=1)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    groups = {"dense embedding gradient": 0.0, "AdamW": 0.0, "dropout masks (bernoulli_)": 0.0,
              "dropout masks (anchoralign.dropout)": 0.0}
    for e in events:
        big = any(isinstance(s, list) and len(s) == 2 and s[0] > 20000 for s in (e.input_shapes or []))
        if "EmbeddingBackward" in e.key or (big and e.key in ("aten::fill_", "aten::add_", "aten::zero_")):
            groups["dense embedding gradient"] += e.self_cpu_time_total
        elif "adamw" in e.key.lower():
            groups["AdamW"] += e.self_cpu_time_total
        elif e.key == "aten::bernoulli_":
            groups["dropout masks (bernoulli_)"] += e.self_cpu_time_total
    for e in events:  # the cheap masks: the CPU time of their ops, under one labelled range
        if e.key == MASK_EVENT:
            groups["dropout masks (anchoralign.dropout)"] += e.cpu_time_total
    for name, t in groups.items():
        print(f"{name:<30} {100 * t / total:5.1f} % of self CPU time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
