"""``anchoralign validate``: read one data file with a named reader; print a summary, or its problems and exit 2."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ..data.base import map_labels
from ..data.registry import READERS, read_types_file

__all__ = ["add_arguments", "run"]

MAX_PROBLEMS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="data file (brat: a .ann/.txt file or a directory of them)")
    parser.add_argument("--format", required=True, choices=list(READERS), help="on-disk format")
    parser.add_argument(
        "--types", help="types file (SpERT *_types.json or CasRel rel2id.json): unknown types fail"
    )


def _top(counts: Counter, n: int = 12) -> str:
    """The ``n`` most frequent types with counts, then how many more."""
    shown = ", ".join(f"{t} {c:,}" for t, c in counts.most_common(n))
    more = f", ... ({len(counts) - n} more)" if len(counts) > n else ""
    return f"{len(counts)}: {shown}{more}" if counts else "none"


def run(args: argparse.Namespace) -> int:
    schema = read_types_file(args.types) if args.types else None
    result = READERS[args.format](args.file)  # malformed input raises InputError: one line, exit 2
    docs = result.documents
    if schema is not None:
        map_labels(docs, schema)  # types match case-insensitively, as SciERC's USED-FOR and Used-for
    entity_types = Counter(e.type for d in docs for e in d.entities)
    relation_types = Counter(r.type for d in docs for r in d.relations)
    print(f"{args.file}: {args.format}")
    print(f"  source documents: {result.source_documents:,}  (documents produced: {len(docs):,})")
    print(f"  source entities:  {result.source_entities:,}  (kept: {sum(entity_types.values()):,})")
    print(f"  source relations: {result.source_relations:,}  (kept: {sum(relation_types.values()):,})")
    print(f"  entity types:   {_top(entity_types)}")
    print(f"  relation types: {_top(relation_types)}")
    for kind, n in sorted(result.warnings.items()):
        print(f"  warning {kind}: {n:,}  e.g. {result.examples[kind][0]}")
    if schema is None:
        return 0
    problems = []
    if schema.entity_types:  # a CasRel rel2id.json lists relation types only
        problems += [
            f"entity type {t!r} ({n:,}x) is not in {args.types}"
            for t, n in entity_types.items()
            if t not in schema.entity_types
        ]
    problems += [
        f"relation type {t!r} ({n:,}x) is not in {args.types}"
        for t, n in relation_types.items()
        if t not in schema.relation_types
    ]
    for line in problems[:MAX_PROBLEMS]:
        print(f"anchoralign validate: problem: {args.file}: {line}", file=sys.stderr)
    if len(problems) > MAX_PROBLEMS:
        print(f"anchoralign validate: ... and {len(problems) - MAX_PROBLEMS} more problems", file=sys.stderr)
    return 2 if problems else 0
