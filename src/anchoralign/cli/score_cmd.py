"""``anchoralign score``: NER strict, RE (boundaries) and RE+ strict scores of SpERT-JSON predictions.

Gold and prediction files are SpERT JSON lists aligned by position; both are validated the same strict way
(every problem names the file and the record). ``--protocol NAME`` also reports a benchmark protocol's figures
(e.g. ``ade``: macro over types, on one fold). Torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..metrics import format_table, score_documents
from ..protocols import PROTOCOLS, get_protocol
from ..schema import Schema
from ..types import Document, Relation, tokens_from_words

__all__ = ["add_arguments", "run", "read_spert_strict"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gold", required=True, type=Path, help="gold SpERT JSON file")
    parser.add_argument(
        "--pred", required=True, type=Path, help="predicted SpERT JSON file, aligned with --gold"
    )
    parser.add_argument(
        "--types",
        type=Path,
        help="SpERT *_types.json; its symmetric relation types are scored without direction",
    )
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        help='also score by this benchmark protocol (adds "protocol", "main" and "figures" to --json)',
    )
    parser.add_argument("--json", action="store_true", help='print {"ner", "re", "re_strict"} scores as JSON')


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fields(obj: object, where: str, required: dict[str, type | tuple[type, ...]]) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be an object, got {type(obj).__name__}")
    for name, kind in required.items():
        if name not in obj:
            raise ValueError(f'{where} has no "{name}" field')
        value = obj[name]
        ok = _int(value) if kind is int else isinstance(value, kind)
        if not ok:
            kind_name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise ValueError(f'{where} field "{name}" must be {kind_name}, got {type(value).__name__}')
    return obj


def _record(raw: object, index: int) -> Document:
    rec = _fields(raw, "the record", {"tokens": list, "entities": list, "relations": list})
    words = rec["tokens"]
    for j, w in enumerate(words):
        if not isinstance(w, str):
            raise ValueError(f"token {j} must be a string, got {type(w).__name__}")
    text, tokens = tokens_from_words(words)
    doc = Document(id=str(rec.get("orig_id", index)), text=text, tokens=tokens)
    for j, e in enumerate(rec["entities"]):
        e = _fields(e, f"entity {j}", {"type": str, "start": int, "end": int})
        if not e["type"]:
            raise ValueError(f"entity {j} has an empty type")
        if not 0 <= e["start"] < e["end"] <= len(words):
            raise ValueError(
                f"entity {j} span [{e['start']}, {e['end']}) is empty or outside the {len(words)} tokens"
            )
        doc.entities.append(doc.make_entity(e["start"], e["end"], e["type"]))
    for j, r in enumerate(rec["relations"]):
        r = _fields(r, f"relation {j}", {"type": str, "head": int, "tail": int})
        if not r["type"]:
            raise ValueError(f"relation {j} has an empty type")
        for arg in ("head", "tail"):
            if not 0 <= r[arg] < len(doc.entities):
                raise ValueError(
                    f"relation {j} {arg} {r[arg]} is not an index into the {len(doc.entities)} entities"
                )
        doc.relations.append(Relation(r["head"], r["tail"], r["type"]))
    return doc


def read_spert_strict(path: Path) -> list[Document]:
    """Read a SpERT JSON list (tokens, entities with exclusive token ends, relations by entity index)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}", path=path) from None
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (invalid byte at offset {e.start})", path=path) from None
    if not content.strip():
        raise InputError("file is empty; expected a JSON list of SpERT records", path=path)
    try:
        raw = json.loads(content)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", path=path) from None
    if not isinstance(raw, list):
        raise InputError(f"expected a JSON list of SpERT records, got {type(raw).__name__}", path=path)
    docs = []
    for i, rec in enumerate(raw):
        try:
            docs.append(_record(rec, i))
        except ValueError as e:
            raise InputError(str(e), path=path, record=i) from None
    return docs


def _check_aligned(gold: list[Document], pred: list[Document], gold_path: Path, pred_path: Path) -> None:
    first = next((i for i, (g, p) in enumerate(zip(gold, pred, strict=False)) if g.words != p.words), None)
    if len(gold) != len(pred):
        where = (
            f"first record whose tokens differ: {first}"
            if first is not None
            else f"the first {min(len(gold), len(pred))} records agree"
        )
        raise InputError(
            f"prediction has {len(pred)} records but gold {gold_path} has {len(gold)}; {where}",
            path=pred_path,
        )
    if first is not None:
        gw, pw = gold[first].words, pred[first].words
        at = next((j for j, (a, b) in enumerate(zip(gw, pw, strict=False)) if a != b), min(len(gw), len(pw)))
        g_tok = repr(gw[at]) if at < len(gw) else "end of record"
        p_tok = repr(pw[at]) if at < len(pw) else "end of record"
        raise InputError(
            f"tokens differ from gold {gold_path} at token {at} (gold {g_tok}, prediction {p_tok})",
            path=pred_path,
            record=first,
        )


def _unknown_types(docs: list[Document], schema: Schema) -> list[str]:
    ents = {e.type for d in docs for e in d.entities} - set(schema.entity_types)
    rels = {r.type for d in docs for r in d.relations} - set(schema.relation_types)
    return [f"entity type {t!r}" for t in sorted(ents)] + [f"relation type {t!r}" for t in sorted(rels)]


def run(args: argparse.Namespace) -> int:
    schema = Schema.from_spert_types(args.types) if args.types else None
    gold = read_spert_strict(args.gold)
    pred = read_spert_strict(args.pred)
    _check_aligned(gold, pred, args.gold, args.pred)
    if schema is not None:
        for path, docs in ((args.gold, gold), (args.pred, pred)):
            unknown = _unknown_types(docs, schema)
            if unknown:
                print(
                    f"anchoralign score: warning: {path} uses types not in {args.types}: "
                    + ", ".join(unknown),
                    file=sys.stderr,
                )
    protocol = get_protocol(args.protocol) if args.protocol else None
    symmetric = protocol.symmetric if protocol else frozenset()
    scores: dict = {}
    if protocol is not None:
        figures = protocol.score(gold, pred, schema)
        scores.update(protocol=protocol.name, main=figures["main"], figures=figures)
    scores.update(score_documents(gold, pred, schema, symmetric=symmetric))
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    names = {n for n, t in schema.relation_types.items() if t.symmetric} if schema else set()
    print(f"gold: {args.gold} ({len(gold)} records)\nprediction: {args.pred}")
    print(
        "symmetric relation types (compared without direction): "
        + (", ".join(sorted(names | symmetric)) or "none")
        + ("" if schema else " (no --types given)")
    )
    if protocol is not None:
        print(protocol.format(scores["figures"]))
    tasks = {t: scores[t] for t in ("ner", "re", "re_strict")}
    print(format_table(tasks, "exact match on token spans, SpERT JSON"), end="")
    return 0
