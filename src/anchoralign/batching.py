"""Documents -> padded tensors (sources, decoder inputs, labels) for one backbone."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .encoding import encode_source
from .grammar import Source
from .linearize import linearize
from .types import Document

__all__ = ["Example", "make_examples", "collate"]


@dataclass
class Example:
    doc: Document
    source: Source
    target: list[int] | None = None
    positions: list[int] | None = None  # source position of each target id (-1: not a copy)
    skipped: dict[str, int] = field(default_factory=dict)


def make_examples(model, docs: list[Document], with_targets: bool = True) -> list[Example]:
    """Encode each document's source (and its linearized target) with ``model``'s tokenizer and vocabulary."""
    cfg = model.config
    out = []
    for doc in docs:
        src = encode_source(model.tokenizer, doc, cfg.max_source_length)
        ex = Example(doc, src)
        if with_targets:
            lin = linearize(doc, src, model.vocab, cfg.target_format, cfg.grouping)
            ids = lin.ids[: cfg.max_target_length]
            if len(ids) < len(lin.ids):
                lin.skipped["truncated_target"] = lin.skipped.get("truncated_target", 0) + 1
            ex.target, ex.skipped = ids, lin.skipped
            ex.positions = lin.positions[: len(ids)]
        out.append(ex)
    return out


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def collate(model, examples: list[Example]) -> dict[str, torch.Tensor]:
    """Pad a list of examples into a batch: input_ids, attention_mask, copyable and, with targets, labels."""
    pad = model.pad_id
    batch = {
        "input_ids": _pad([list(e.source.ids) for e in examples], pad),  # (B, L)
        "attention_mask": _pad([[1] * len(e.source.ids) for e in examples], 0),
        "copyable": _pad([[int(t >= 0) for t in e.source.piece_token] for e in examples], 0).bool(),
    }
    if examples and examples[0].target is not None:
        targets = [e.target or [] for e in examples]
        batch["labels"] = _pad(targets, -100)  # (B, T)
        batch["decoder_input_ids"] = _pad([[model.start_id] + t[:-1] for t in targets], pad)
        positions = [e.positions or [-1] * len(e.target or []) for e in examples]
        batch["label_positions"] = _pad(positions, -1)
        batch["decoder_positions"] = _pad([[-1] + p[:-1] for p in positions], -1)
    return batch
