"""Where a greedy constrained decoding pass goes, and the decoder's batching variants side by side in one process
(docs/benchmarks.md, "On a real AVX2-only CPU").

For a trained model and a test split: (1) decoder steps and how many rows each ran, batch by batch and streamed;
(2) the seconds of each part of ``predict`` (functions wrapped with a timer); (3) passes of ``predict`` alternated
between variants: batch by batch with a full-size cache and the garbage collector on (the decoder before
2026-12-01), streamed, streamed with the growing cache, and all three changes (the default).

    python benchmarks/decode_profile.py --model runs/demo --dataset conll04 --data-dir ../shared/data [--rounds 4]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", default="conll04")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=288)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args(argv)
    if not (Path(args.model) / "model_config.json").is_file():
        p.error(f"--model {args.model}: no model_config.json there")
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")

    import bench_engine as be
    import torch

    import anchoralign.constraints as K
    import anchoralign.copy_seq2seq as C
    import anchoralign.decode as D
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.model import load_model
    from anchoralign.search import GreedyStream

    model = load_model(args.model, torch.device("cpu"))
    docs = load_split(args.dataset, args.split, resolve_data_dir(args.data_dir)).documents[: args.n]
    cfg = be._decode_config({"model": args.model, "decode_precision": "fp32", "decode_batch_size": None}, True, 1,
                            "copy")
    variants = {"batch by batch (before)": (0.0, 10_000, False), "streamed": (0.5, 10_000, False),
                "streamed + growing cache": (0.5, C.START_SLOTS, False), "all three (default)": (0.5, C.START_SLOTS, True)}
    paused = D._cyclic_gc_paused

    def use(join: float, slots: int, gc_paused: bool) -> None:
        GreedyStream.JOIN_BELOW, C.START_SLOTS = join, slots
        D._cyclic_gc_paused = paused if gc_paused else contextlib.nullcontext

    rows: list[int] = []
    step = C.CopySeq2Seq.step_log_probs

    def counted(self, state, ids, pos, n_new=None):
        rows.append(ids.size(0))
        return step(self, state, ids, pos, n_new)

    C.CopySeq2Seq.step_log_probs = counted
    for name in ("batch by batch (before)", "all three (default)"):
        use(*variants[name])
        rows.clear()
        D.predict(model, docs, cfg)
        hist = collections.Counter(rows)
        print(f"{name}: {len(rows)} decoder steps, {hist[1]} of them with one row; row-steps {sum(rows)}")
    C.CopySeq2Seq.step_log_probs = step

    seconds: collections.Counter = collections.Counter()

    def timed(owner, name: str) -> None:
        f = getattr(owner, name)

        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                seconds[name] += time.perf_counter() - t

        setattr(owner, name, g)

    originals = [(o, n, getattr(o, n)) for o, n in ((C.CopySeq2Seq, "encode"), (C.CopySeq2Seq, "step_log_probs"),
                 (C.CopySeq2Seq, "start_decoding"), (C.DecodingState, "concat"), (C.DecodingState, "select"),
                 (K.CopyConstraint, "forced"), (K.CopyConstraint, "mask"), (K.CopyConstraint, "advance_row"),
                 (D, "parse"), (D, "_with_pair_relations"), (D, "_with_entity_starts"),
                 (D, "_with_anchor_candidates"))]  # fmt: skip
    for o, n, _ in originals:
        timed(o, n)
    use(*variants["all three (default)"])
    D.predict(model, docs[:16], cfg)
    for _ in range(3):
        seconds.clear()
        t = time.perf_counter()
        D.predict(model, docs, cfg)
        total = time.perf_counter() - t
        print(f"pass {total:.2f} s: " + ", ".join(f"{k} {v:.3f}" for k, v in seconds.most_common()))
    for o, n, f in originals:
        setattr(o, n, f)

    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, v in variants.items():
            use(*v)
            t = time.perf_counter()
            D.predict(model, docs, cfg)
            times[name].append(time.perf_counter() - t)
    use(*variants["all three (default)"])
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch threads {torch.get_num_threads()}, "
          f"{len(docs)} sentences, {args.rounds} alternated rounds:")
    for name, v in times.items():
        print(f"  {name:<28} median {statistics.median(v):.2f} s  min {min(v):.2f} s  ({', '.join(f'{x:.2f}' for x in v)})")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
