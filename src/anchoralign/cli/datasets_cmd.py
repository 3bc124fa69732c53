"""``anchoralign datasets``: every benchmark split with its source counts, produced documents and warnings."""

from __future__ import annotations

import argparse
import json

from ..data.base import ReadResult
from ..data.registry import DATASETS, get_spec, load_split, resolve_data_dir, splits

__all__ = ["add_arguments", "run", "split_stats"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="benchmark directory (default: $ANCHORALIGN_DATA, else ./data)")
    parser.add_argument("--dataset", nargs="+", choices=list(DATASETS), help="only these datasets")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def split_stats(result: ReadResult) -> dict:
    """Counts of one split: ``documents``/``entities``/``relations`` as the source holds them, ``passages``
    as produced (sentences, or brat passages), distinct types produced, and the reader's warnings."""
    docs = result.documents
    return {
        "documents": result.source_documents,
        "entities": result.source_entities,
        "relations": result.source_relations,
        "passages": len(docs),
        "entity_types": len({e.type for d in docs for e in d.entities}),
        "relation_types": len({r.type for d in docs for r in d.relations}),
        "warnings": dict(sorted(result.warnings.items())),
    }


_COLUMNS = ("documents", "passages", "entities", "relations", "entity_types", "relation_types")
_HEADER = ("split", "documents", "passages", "entities", "relations", "ent. types", "rel. types")


def _table(name: str, stats: dict[str, dict]) -> str:
    spec = get_spec(name)
    rows = [_HEADER] + [(split, *(f"{s[c]:,}" for c in _COLUMNS)) for split, s in stats.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = [f"{name} ({spec.language}, {spec.format}; {spec.protocol})"]
    for first, *rest in rows:
        cells = "".join(f"  {c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))
        lines.append(f"  {first:<{widths[0]}}{cells}")
    for split, s in stats.items():
        if s["warnings"]:
            lines.append(f"  warnings {split}: " + ", ".join(f"{k} {v:,}" for k, v in s["warnings"].items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(args.data_dir)
    report = {
        name: {split: split_stats(load_split(name, split, data_dir)) for split in splits(name)}
        for name in (args.dataset or DATASETS)
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(
        f"data: {data_dir}\n(documents = source sentences, records or files; passages = documents produced; "
        "entities, relations = as the source holds them; casrel entities = distinct located strings)\n"
    )
    print("\n\n".join(_table(name, stats) for name, stats in report.items()))
    return 0
