"""How much each evaluation split shares with the training split: the share of its entity mentions (lowercased
text and type), of its relations whose two argument strings both occur in train, and of its relation triples
(head text, type, tail text) that occur in train. Torch-free.

    python benchmarks/split_overlap.py --dataset conll04 --data-dir ../shared/data [--splits dev test] [--json out.json]

Two splits that share about as much with train should reward memorising it about equally; a setting that
scores otherwise on them is not explained by overlap.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence


def overlap(train: Sequence, docs: Sequence) -> dict[str, float | int]:
    """The three shares (in [0, 1]) of ``docs`` against ``train`` (``Document`` lists), with the counts; a
    document's repeated mention or triple counts once (``metrics.document_triples``)."""
    from anchoralign.metrics import document_triples

    def mentions(ds):
        return [m for d in ds for m in {(d.entity_text(e).lower(), e.type) for e in d.entities}]

    def triples(ds):
        return [(h.lower(), r, t.lower()) for d in ds for h, r, t in document_triples(d)]

    seen, strings = set(mentions(train)), {m for m, _ in mentions(train)}
    known = set(triples(train))
    ents, rels = mentions(docs), triples(docs)
    return {
        "mentions": len(ents),
        "relations": len(rels),
        "mentions_in_train": sum(m in seen for m in ents) / max(1, len(ents)),
        "argument_pairs_in_train": sum(h in strings and t in strings for h, _, t in rels) / max(1, len(rels)),
        "triples_in_train": sum(r in known for r in rels) / max(1, len(rels)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--splits", nargs="+", default=["dev", "test"])
    ap.add_argument("--data-dir", default=None, help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    from anchoralign.data.registry import load_split, resolve_data_dir
    from anchoralign.errors import InputError

    try:
        root = resolve_data_dir(args.data_dir)
        train = load_split(args.dataset, "train", root).documents
        report = {s: overlap(train, load_split(args.dataset, s, root).documents) for s in args.splits}
    except InputError as e:
        ap.error(str(e))  # one line, exit 2
    for split, r in report.items():
        print(f"{split}: {r['mentions']} mentions, {100 * r['mentions_in_train']:.1f} % in train; "
              f"{r['relations']} relations, both arguments in train {100 * r['argument_pairs_in_train']:.1f} %, "
              f"the triple in train {100 * r['triples_in_train']:.1f} %")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"dataset": args.dataset, "splits": report}, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    from anchoralign.errors import run_main

    raise SystemExit(run_main(main))
