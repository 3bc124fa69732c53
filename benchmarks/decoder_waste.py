"""What the decoders compute on padding, and what a dropout mask costs: the figures behind the packed decoders
(docs/benchmarks.md, "Packed decoder positions").

    python benchmarks/decoder_waste.py --model runs/demo --dataset conll04 --data-dir ../shared/data [--json OUT]

- training: over one epoch's batches of the training split (``train._batches``, the model's config: batch
  size, seed), the share of real positions among the padded source and target positions;
- decoding: over the test split decoded with the model's own settings, the ids fed to the decoder's steps,
  real and padded, and how many of them needed the last layer's output (each row's last id per step);
- dropout: one thread, the time of ``F.dropout`` on a hidden-state tensor and on attention probabilities of a
  typical batch, beside ``torch.rand_like(x) >= p``, the multiplication alone and the library's CPU dropout
  (``anchoralign.dropout.dropout``, which ``train()`` installs on a CPU; best of 20 calls each).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _best_ms(fn, x, calls: int = 20) -> float:
    fn(x)
    best = float("inf")
    for _ in range(calls):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return round(1e3 * best, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", default="conll04")
    ap.add_argument("--data-dir", default=os.environ.get("ANCHORALIGN_DATA", "../shared/data"))
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from anchoralign.batching import make_examples
    from anchoralign.copy_seq2seq import CopySeq2Seq
    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig, predict
    from anchoralign.dropout import dropout as cheap_dropout
    from anchoralign.model import load_model
    from anchoralign.train import _batches

    data_dir = resolve_data_dir(args.data_dir)
    model = load_model(args.model, "cpu")
    run = json.loads((Path(args.model) / "model_config.json").read_text(encoding="utf-8")).get("run", {})
    batch_size, seed = run.get("train", {}).get("batch_size", 16), run.get("train", {}).get("seed", 13)
    examples = make_examples(model, load_split(args.dataset, "train", data_dir).documents)
    batches = _batches(examples, batch_size, seed, 1)

    def share(length) -> float:
        real = sum(length(e) for b in batches for e in b)
        return round(real / sum(len(b) * max(length(e) for e in b) for b in batches), 4)

    training = {"batches": len(batches), "batch_size": batch_size,
                "source_real_share": share(lambda e: len(e.source.ids)),
                "target_real_share": share(lambda e: len(e.target))}

    fed: list[tuple[int, int, int]] = []  # (rows, padded width, real ids) per step
    step = CopySeq2Seq.step_log_probs

    def counted(self, state, ids, pos, n_new=None):
        r, c = ids.shape
        fed.append((r, c, int(n_new.sum()) if n_new is not None else r * c))
        return step(self, state, ids, pos, n_new)

    known = DecodeConfig.__dataclass_fields__
    cfg = DecodeConfig(**{k: v for k, v in run.get("decode", {}).items() if k in known})
    CopySeq2Seq.step_log_probs = counted
    try:
        predict(model, load_split(args.dataset, "test", data_dir).documents, cfg)
    finally:
        CopySeq2Seq.step_log_probs = step
    decoding = {"steps": len(fed), "fed_padded": sum(r * c for r, c, _ in fed), "fed_real": sum(n for *_, n in fed),
                "last_layer_outputs": sum(r for r, _, _ in fed)}

    torch.set_num_threads(1)
    h = model.net.encoder.config.hidden_size
    heads = model.net.encoder.config.num_attention_heads
    width = max(len(e.target) for e in batches[0])
    tensors = {"hidden": torch.randn(batch_size * width, h), "attention": torch.randn(batch_size, heads, width, width)}
    dropout = {name: {"shape": list(x.shape), "F.dropout_ms": _best_ms(lambda z: F.dropout(z, 0.1, True), x),
                      "rand_ge_p_ms": _best_ms(lambda z: z * (torch.rand_like(z) >= 0.1) / 0.9, x),
                      "multiply_only_ms": _best_ms(lambda z: z * 1.1, x),
                      "anchoralign_dropout_ms": _best_ms(lambda z: cheap_dropout(z, 0.1), x)}
               for name, x in tensors.items()}  # fmt: skip
    report = {"model": args.model, "dataset": args.dataset,
              "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
              "training": training, "decoding": decoding, "dropout_one_thread": dropout}
    print(json.dumps(report, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
