"""The benchmarks: where their files are, how to read them, how they are scored; and the readers by format name."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..protocols import PROTOCOLS, Protocol, get_protocol
from ..schema import Schema
from .base import Reader, ReadResult, map_labels, read_text
from .brat import read_brat
from .casrel import read_casrel
from .duie import read_duie
from .dygie import read_dygie
from .jsonl import read_jsonl
from .spert import read_spert

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "READERS",
    "resolve_data_dir",
    "get_spec",
    "dataset_protocol",
    "splits",
    "load_split",
    "load_schema",
    "read_types_file",
]

# Format name -> reader; the one place a new format is registered.
READERS: dict[str, Reader] = {
    "spert": read_spert,
    "dygie": read_dygie,
    "casrel": read_casrel,
    "brat": read_brat,
    "jsonl": read_jsonl,
    "duie": read_duie,
}


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark: language, on-disk format, a file (or brat directory) per split, types file, and its
    scoring protocol (what ``evaluate`` reports and what selects the dev epoch in training)."""

    name: str
    language: str  # "en" or "zh"
    format: str  # a key of READERS
    files: dict[str, str]  # split -> path relative to the data directory
    types_file: str | None  # SpERT *_types.json or CasRel rel2id.json, relative to the data directory
    # how the literature scores it: a Protocol, or the name (or, as older specs wrote it, the exact
    # description) of one in protocols.PROTOCOLS, resolved on construction
    protocol: Protocol
    train_split: str = "train"  # where schema signatures are learned
    options: dict[str, Any] = field(default_factory=dict)  # extra reader keyword arguments

    def __post_init__(self) -> None:
        given = self.protocol
        by_description = {p.description: p for p in PROTOCOLS.values()}
        if isinstance(given, str) and given in by_description:
            object.__setattr__(self, "protocol", by_description[given])
            return
        try:
            object.__setattr__(self, "protocol", get_protocol(given))
        except InputError as e:
            raise ValueError(f"dataset {self.name!r}: {e}") from None


def _std(folder: str, ext: str = ".json") -> dict[str, str]:
    return {s: f"{folder}/{s}{ext}" for s in ("train", "dev", "test")}


_ADE_FILES = {
    f"fold{i}-{part}": f"ade/ade_split_{i}_{part}.json" for i in range(10) for part in ("train", "test")
}

DATASETS: dict[str, DatasetSpec] = {
    "conll04": DatasetSpec("conll04", "en", "spert", _std("conll04"), "conll04/conll04_types.json", "micro"),
    "ade": DatasetSpec(
        "ade", "en", "spert", {**_ADE_FILES, "full": "ade/ade_full.json"}, "ade/ade_types.json", "ade",
        train_split="fold0-train",
    ),
    "scierc": DatasetSpec("scierc", "en", "spert", _std("scierc"), "scierc/scierc_types.json", "scierc"),
    "scierc_doc": DatasetSpec(
        "scierc_doc", "en", "dygie", _std("scierc/doc_level"), "scierc/scierc_types.json", "scierc"
    ),
    "webnlg": DatasetSpec("webnlg", "en", "casrel", _std("webnlg"), "webnlg/rel2id.json", "webnlg"),
    # the CasRel release, whose entities are the last word only: its own files, scored on last words
    "webnlg_star": DatasetSpec(
        "webnlg_star", "en", "casrel", _std("webnlg_star"), "webnlg_star/rel2id.json", "webnlg_star"
    ),
    "chinese_literature": DatasetSpec(
        "chinese_literature", "zh", "brat", {s: f"chinese_literature/{s}" for s in ("train", "dev", "test")},
        None, "micro", options={"max_chars": 250},
    ),
}  # fmt: skip


def resolve_data_dir(arg: str | Path | None = None) -> Path:
    """The benchmark directory: ``arg``, else $ANCHORALIGN_DATA, else ./data; an InputError names all three."""
    env = os.environ.get("ANCHORALIGN_DATA")
    if arg is not None:
        path, source = Path(arg), "--data-dir"
    elif env:
        path, source = Path(env), "$ANCHORALIGN_DATA"
    else:
        path, source = Path("data"), "the default ./data"
    if not path.is_dir():
        raise InputError(
            f"benchmark data directory {str(path)!r} ({source}) does not exist; "
            "pass --data-dir DIR, set ANCHORALIGN_DATA=DIR, or put the data in ./data"
        )
    return path


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named dataset; unknown names list the known ones."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_protocol(name: str | None) -> Protocol:
    """The protocol that scores a named dataset; ``micro`` for none (``""``: training on one's own files)."""
    return get_spec(name).protocol if name else get_protocol("micro")


def splits(name: str) -> list[str]:
    """The split names of a dataset, in order."""
    return list(get_spec(name).files)


def read_types_file(path: str | Path) -> Schema:
    """Types from a SpERT ``*_types.json`` (entities, relations, symmetric flags) or a CasRel ``rel2id.json``."""
    try:
        raw = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", path=path) from None
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, dict) for x in raw):
        schema = Schema()  # CasRel: [id2rel, rel2id]; no entity types
        for key in sorted(raw[0], key=lambda k: int(k) if str(k).isdigit() else 0):
            schema.add_relation_type(str(raw[0][key]))
        return schema
    return Schema.from_spert_types(path)


def load_split(name: str, split: str, data_dir: str | Path) -> ReadResult:
    """Read one split of a named dataset; labels take the types file's spelling (case-insensitive). ``a+b``
    joins splits in that order (``train+dev``: the literature's convention for final CoNLL04 models)."""
    if "+" in split:
        joined = ReadResult()
        for part in split.split("+"):
            r = load_split(name, part, data_dir)
            joined.documents += r.documents
            joined.source_documents += r.source_documents
            joined.source_relations += r.source_relations
            joined.source_entities += r.source_entities
            for kind, n in r.warnings.items():
                joined.warnings[kind] = joined.warnings.get(kind, 0) + n
                joined.examples.setdefault(kind, []).extend(r.examples.get(kind, []))
        return joined
    spec = get_spec(name)
    if split not in spec.files:
        raise InputError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(spec.files)}")
    result = READERS[spec.format](Path(data_dir) / spec.files[split], **spec.options)
    if spec.types_file is not None:
        map_labels(result.documents, read_types_file(Path(data_dir) / spec.types_file))
    return result


def load_schema(name: str, data_dir: str | Path, train_split: str | None = None) -> Schema:
    """The dataset's schema: types from its types file (else from the train split), signatures from train."""
    spec = get_spec(name)
    schema = read_types_file(Path(data_dir) / spec.types_file) if spec.types_file else Schema()
    return schema.update_from(load_split(name, train_split or spec.train_split, data_dir).documents)
