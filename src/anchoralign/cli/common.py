"""Pieces shared by the model commands: loading a dataset split or a user's file, and the schema."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..data.registry import READERS, get_spec, load_schema, load_split, resolve_data_dir
from ..errors import InputError
from ..schema import Schema
from ..types import Document

log = logging.getLogger("anchoralign")


def add_data_arguments(parser: argparse.ArgumentParser, split: bool = False) -> None:
    parser.add_argument("--dataset", help="a registered dataset name (see `anchoralign datasets`)")
    parser.add_argument("--data-dir", help="benchmark root (default: $ANCHORALIGN_DATA, else ./data)")
    if split:
        parser.add_argument("--split", default="test", help="split to use (default: test)")


def read_file(path: str, fmt: str) -> list[Document]:
    """A user's own file in one of the reader formats; reader warnings are logged."""
    if fmt not in READERS:
        raise InputError(f"unknown format {fmt!r}; formats: {', '.join(READERS)}")
    result = READERS[fmt](Path(path))
    for kind, n in result.warnings.items():
        log.warning("%s: %d x %s (e.g. %s)", path, n, kind, (result.examples.get(kind) or [""])[0])
    return result.documents


def read_split(dataset: str, split: str, data_dir: str | None) -> list[Document]:
    """The documents of ``split`` (``a+b`` joins splits: ``load_split``)."""
    result = load_split(dataset, split, resolve_data_dir(data_dir))
    for kind, n in result.warnings.items():
        log.warning("%s/%s: %d x %s", dataset, split, n, kind)
    return result.documents


def dataset_schema(dataset: str, data_dir: str | None) -> Schema:
    get_spec(dataset)
    return load_schema(dataset, resolve_data_dir(data_dir))


def is_tty() -> bool:
    return sys.stderr.isatty()


def decode_config(args: argparse.Namespace):
    """The decode settings saved with ``args.model`` (how it was evaluated), then the command line's changes:
    ``--set decode.KEY=VALUE``, ``--no-constraint``, ``--beams``, ``--batch-size``. Any other key, or an
    unknown one, is a user error."""
    from ..api import saved_decode_config
    from ..config import RunConfig, apply_overrides

    for item in args.overrides:
        if not item.startswith("decode."):
            raise InputError(f"--set here takes decode.KEY=VALUE (the model is already trained), got {item!r}")
    cfg = RunConfig()
    cfg.decode = saved_decode_config(args.model)
    apply_overrides(cfg, args.overrides)
    if args.no_constraint:
        cfg.decode.constrained = False
    if args.beams:
        cfg.decode.num_beams = args.beams
    if args.batch_size:
        cfg.decode.batch_size = args.batch_size
    try:
        cfg.decode.validate()
    except ValueError as e:
        raise InputError(str(e)) from None
    return cfg.decode
