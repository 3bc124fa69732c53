"""Dev and test scores of a model at each ``decode.pair_veto`` (its own decode config otherwise), to pick the veto
on dev (docs/probe.md, "Negatives for the heads only").

    python benchmarks/pair_veto.py --model runs/x --dataset conll04 --data-dir ../shared/data --json out.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

VETOES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a model directory written by `anchoralign train`")
    p.add_argument("--dataset", default="conll04")
    p.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    p.add_argument("--vetoes", type=float, nargs="+", default=list(VETOES))
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)

    import torch

    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.decode import DecodeConfig, predict
    from anchoralign.metrics import score_documents
    from anchoralign.model import load_model

    config = Path(args.model) / "model_config.json"
    if not config.is_file():
        p.error(f"--model {args.model}: no model_config.json there")
    model = load_model(args.model, torch.device("cpu"))
    saved = json.loads(config.read_text(encoding="utf-8"))["run"]["decode"]
    cfg = DecodeConfig(**{k: v for k, v in saved.items() if k in {f.name for f in fields(DecodeConfig)}})
    if cfg.pair_relations != "union":
        p.error(f"--model {args.model}: decode.pair_relations is {cfg.pair_relations!r}; the veto needs 'union'")
    out: dict[str, dict] = {}
    for split in ("dev", "test"):
        docs = load_split(args.dataset, split, resolve_data_dir(args.data_dir)).documents
        for v in args.vetoes:
            r = predict(model, docs, replace(cfg, pair_veto=v))
            sc = score_documents(docs, r.documents, model.schema)
            out[f"{split}@{v}"] = {"re": sc["re"]["micro"]["f1"], "ner": sc["ner"]["micro"]["f1"], "vetoed": r.pair_vetoed}
            print(f"{split} veto {v}: RE+ {100 * out[f'{split}@{v}']['re']:.2f}  NER "
                  f"{100 * out[f'{split}@{v}']['ner']:.2f}  vetoed {r.pair_vetoed}", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
