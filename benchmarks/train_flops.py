"""How close a CPU training step is to the machine's matrix-product speed: FLOPs counted, time measured.

    .venv/bin/python benchmarks/train_flops.py --data-dir ../shared/data [--config configs/conll04-cpu.yaml]
        [--batches 12] [--rounds 3] [--set KEY=VALUE ...] [--json OUT]

Builds the config's model (its precision forced to fp32), takes ``--batches`` training batches the way
``train()`` draws them (length windows, epoch 1), and for each batch counts the floating-point operations of
the forward and backward pass (``torch.utils.flop_counter``: matrix products and attention; elementwise work
is not counted) and times forward + backward + the fused AdamW step. Beside it, in the same rounds, it times
every matrix product of those forward and backward passes (``mm``, ``addmm``, ``bmm``, recorded by shape)
replayed as bare ``torch.mm`` / ``torch.bmm`` on random operands: what the step's products cost on their own,
on this machine and thread count. Attention that runs in a fused kernel (SDPA) makes no ``bmm`` and is left
out of the replay (its FLOPs are counted in the step's total), so the share is a lower bound. The ratio says how much of the step is
arithmetic the model asks for: a step near the products' own rate cannot be made much faster without asking
for less arithmetic (a smaller model, fewer positions), whatever else is removed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/conll04-cpu.yaml")
    p.add_argument("--dataset", default="conll04")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batches", type=int, default=12, help="training batches per round (default 12)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds; the fastest counts (default 3)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args()
    if args.batches < 1 or args.rounds < 1:
        p.error(f"--batches and --rounds must be >= 1, got {args.batches} and {args.rounds}")

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from anchoralign import dropout as fast_dropout
    from anchoralign.batching import collate, make_examples
    from anchoralign.config import load_config
    from anchoralign.data.registry import load_schema, load_split, resolve_data_dir
    from anchoralign.errors import InputError
    from anchoralign.model import build_model
    from anchoralign.train import _adamw, _batches, _param_groups, set_seed, trainable_parts

    try:
        data_dir = resolve_data_dir(args.data_dir)
        cfg = load_config(args.config, [*args.overrides, "train.precision=fp32"])
        docs = load_split(args.dataset, "train", data_dir).documents
        schema = load_schema(args.dataset, data_dir)
    except (InputError, ValueError) as e:
        p.error(str(e))
    set_seed(cfg.train.seed)
    model = build_model(cfg.model, schema, train_docs=docs, anchor=cfg.anchor)
    model.label_smoothing = cfg.train.label_smoothing
    fast_dropout.install(model)
    examples = make_examples(model, docs)
    trainable_parts(model, examples, cfg.train)  # as train() does
    optimizer = _adamw(model, _param_groups(model, cfg.train.lr, cfg.train.lr_new, cfg.train.weight_decay))
    batches = [collate(model, b) for b in _batches(examples, cfg.train.batch_size, cfg.train.seed, 1)[: args.batches]]
    model.train()

    def step(batch) -> None:
        loss = model(batch)["loss"]
        loss.backward()
        if cfg.train.grad_clip > 0:  # as train() does
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    flops = 0
    for batch in batches:
        with FlopCounterMode(display=False) as counter:
            model(batch)["loss"].backward()
        flops += counter.get_total_flops()
        optimizer.zero_grad(set_to_none=True)
    step(batches[0])  # warm-up

    # the step's own matrix products (every mm, addmm and bmm of forward and backward, recorded by shape),
    # replayed as bare torch.mm / torch.bmm on random operands: the time those products take on their own
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    shapes: list[tuple[int, ...]] = []

    class Products(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, fargs=(), kwargs=None):
            if func is aten.mm.default:
                shapes.append((*fargs[0].shape, fargs[1].shape[-1]))
            elif func is aten.addmm.default:
                shapes.append((*fargs[1].shape, fargs[2].shape[-1]))
            elif func is aten.bmm.default:
                shapes.append((*fargs[0].shape, fargs[1].shape[-1]))
            return func(*fargs, **(kwargs or {}))

    for batch in batches:
        with Products():
            model(batch)["loss"].backward()
        optimizer.zero_grad(set_to_none=True)
    # (n, k, m): an (n, k) @ (k, m) product; (b, n, k, m): a batch of b of them
    mats = {s: (torch.randn(*s[:-1]), torch.randn(*s[:-3], s[-2], s[-1])) for s in set(shapes)}
    mm_flops = sum(2 * (s[0] * s[1] * s[2] if len(s) == 3 else s[0] * s[1] * s[2] * s[3]) for s in shapes)

    step_s, mm_s = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        for batch in batches:
            step(batch)
        step_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in shapes:
            a, b = mats[s]
            torch.mm(a, b) if len(s) == 3 else torch.bmm(a, b)
        mm_s.append(time.perf_counter() - t)
    best_step, best_mm = min(step_s), min(mm_s)
    docs_n = sum(int(b["input_ids"].size(0)) for b in batches)
    result = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "config": args.config, "overrides": args.overrides, "batches": len(batches), "documents": docs_n,
        "step_gflop_counted": flops / 1e9,
        "step_seconds_fastest": best_step, "step_seconds_rounds": step_s,
        "examples_per_second": docs_n / best_step,
        "step_gflops_per_second": flops / 1e9 / best_step,
        "products": len(shapes),
        "products_gflop": mm_flops / 1e9,
        "products_seconds_fastest": best_mm, "products_seconds_rounds": mm_s,
        "products_gflops_per_second": mm_flops / 1e9 / best_mm,
        "products_share_of_step": best_mm / best_step,
    }
    print(f"CPU capability {result['cpu_capability']}, {result['threads']} threads, {len(batches)} batches "
          f"({docs_n} documents), fp32")
    print(f"training step (forward, backward, AdamW): {best_step:.2f} s fastest of {args.rounds} "
          f"({statistics.median(step_s):.2f} median), {result['examples_per_second']:.1f} examples/s; "
          f"{flops / 1e9:.1f} GFLOP counted -> {result['step_gflops_per_second']:.1f} GFLOP/s")
    print(f"its {len(shapes)} matrix products alone, replayed as bare mm/bmm: {mm_flops / 1e9:.1f} GFLOP in "
          f"{best_mm:.2f} s ({result['products_gflops_per_second']:.1f} GFLOP/s) = {100 * best_mm / best_step:.0f} % "
          "of the step")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
