"""Documents -> padded tensors (sources, decoder inputs, labels) for one backbone."""

from __future__ import annotations

import random
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


def make_examples(model, docs: list[Document], with_targets: bool = True, rng: random.Random | None = None,
                  sources: list[Source] | None = None) -> list[Example]:
    """Encode each document's source (and its linearized target) with ``model``'s tokenizer and vocabulary;
    ``rng``: targets in a random valid order (``linearize``); ``sources``: the documents' sources, already
    encoded (a new draw of target orders need not tokenize again)."""
    cfg = model.config
    out = []
    for k, doc in enumerate(docs):
        src = sources[k] if sources is not None else encode_source(model.tokenizer, doc, cfg.max_source_length)
        ex = Example(doc, src)
        if with_targets:
            lin = linearize(doc, src, model.vocab, cfg.target_format, cfg.grouping, rng)
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
        if getattr(model, "heads", None) is not None:
            batch.update(_anchor_tensors(model, examples))
    if getattr(model, "heads", None) is not None:
        batch.update(word_tensors(examples))
    return batch


def word_tensors(examples: list[Example]) -> dict[str, torch.Tensor]:
    """Each word's first piece (B, W), padded with 0, and the word mask."""
    starts = [e.source.word_starts() or [0] for e in examples]
    return {"word_pos": _pad(starts, 0), "word_mask": _pad([[1] * len(s) for s in starts], 0).bool()}


def _anchor_tensors(model, examples: list[Example]) -> dict[str, torch.Tensor]:
    """Gold anchor BIO tags per word, anchor piece spans and relation positions, read off the targets.

    A group opens with ``<anchor>`` (``<head>`` in the flat format) followed by its mention; each ``<tail>``
    in the group marks one relation, whose decoder state is taken at that position.
    """
    m = model.vocab.markers
    opens = {m["<anchor>"], m["<head>"]}
    tags, a_item, a_start, a_end, r_item, r_pos, r_anchor = [], [], [], [], [], [], []
    for b, ex in enumerate(examples):
        starts = ex.source.word_starts() or [0]
        word_of = {p: w for w, p in enumerate(starts)}
        row = [0] * len(starts)
        target, positions = ex.target or [], ex.positions or []
        group = -1
        for t, tok in enumerate(target):
            if tok in opens:
                span = [p for p in _mention_positions(positions, t + 1)]
                if not span:
                    continue
                group = len(a_item)
                a_item.append(b)
                a_start.append(span[0])
                a_end.append(span[-1] + 1)
                words = sorted({ex.source.piece_token[p] for p in span})
                first = {ex.source.piece_token[p]: p for p in reversed(span)}
                for k, w in enumerate(words):
                    wi = word_of.get(first[w])
                    if wi is not None:
                        row[wi] = 1 if k == 0 else max(row[wi], 2) if row[wi] != 1 else 1
            elif tok == m["<tail>"] and group >= 0:
                r_item.append(b)
                r_pos.append(t)
                r_anchor.append(group)
        tags.append(row)
    long = torch.long
    types = {t: k for k, t in enumerate(model.schema.entity_types)}
    return {
        "entity_tags": _pad([_entity_tags(ex, types) for ex in examples], -100),
        "anchor_tags": _pad(tags, -100),
        "anchor_item": torch.tensor(a_item, dtype=long), "anchor_start": torch.tensor(a_start, dtype=long),
        "anchor_end": torch.tensor(a_end, dtype=long), "rel_item": torch.tensor(r_item, dtype=long),
        "rel_pos": torch.tensor(r_pos, dtype=long), "rel_anchor": torch.tensor(r_anchor, dtype=long),
    }


def _entity_tags(ex: Example, types: dict[str, int]) -> list[int]:
    """Typed BIO tags per word (0: outside, 1 + 2k: begins type k, 2 + 2k: inside it); longer spans first, so
    a nested entity's tags win inside its parent."""
    starts = ex.source.word_starts() or [0]
    word_of_token = {ex.source.piece_token[p]: w for w, p in enumerate(starts)}
    row = [0] * len(starts)
    for e in sorted(ex.doc.entities, key=lambda e: e.start - e.end):
        k = types.get(e.type)
        if k is None:
            continue
        for t in range(e.start, e.end):
            w = word_of_token.get(t)
            if w is not None:
                row[w] = 1 + 2 * k if t == e.start else 2 + 2 * k
    return row


def _mention_positions(positions: list[int], start: int) -> list[int]:
    out = []
    for p in positions[start:]:
        if p < 0:
            break
        out.append(p)
    return out
