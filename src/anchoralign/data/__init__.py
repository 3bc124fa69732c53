"""Readers (one per on-disk format) and the dataset registry. Torch-free; nothing here downloads or tokenizes."""

from .base import ReadResult
from .brat import read_brat
from .casrel import read_casrel
from .duie import read_duie
from .dygie import read_dygie
from .jsonl import read_jsonl
from .registry import (
    DATASETS,
    READERS,
    DatasetSpec,
    load_schema,
    load_split,
    read_types_file,
    resolve_data_dir,
    splits,
)
from .spert import read_spert
from .tokenize import tokenize_text

__all__ = [
    "ReadResult",
    "READERS",
    "DATASETS",
    "DatasetSpec",
    "load_split",
    "load_schema",
    "read_types_file",
    "resolve_data_dir",
    "splits",
    "read_spert",
    "read_dygie",
    "read_casrel",
    "read_brat",
    "read_jsonl",
    "read_duie",
    "tokenize_text",
]
