"""Documents -> padded tensors (sources, decoder inputs, labels) for one backbone."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from .encoding import encode_source
from .grammar import Source
from .linearize import linearize
from .types import Document

__all__ = ["Example", "make_examples", "collate", "length_batches", "entity_piece_spans", "pair_tensors"]


@dataclass
class Example:
    doc: Document
    source: Source
    target: list[int] | None = None
    positions: list[int] | None = None  # source position of each target id (-1: not a copy)
    skipped: dict[str, int] = field(default_factory=dict)
    generate: bool = True  # False: the target trains no generation loss (its labels are ignored), only the heads


def make_examples(model, docs: list[Document], with_targets: bool = True, rng: random.Random | None = None,
                  sources: list[Source | None] | None = None) -> list[Example]:
    """Encode each document's source (and its linearized target) with ``model``'s tokenizer and vocabulary;
    ``rng``: targets in a random valid order (``linearize``); ``sources``: the documents' sources, already
    encoded (a new draw of target orders need not tokenize again; None where a document is new)."""
    cfg = model.config
    out = []
    for k, doc in enumerate(docs):
        src = sources[k] if sources is not None else None
        if src is None:
            src = encode_source(model.tokenizer, doc, cfg.max_source_length)
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


def length_batches(lengths: list[int], batch_size: int, slack: float = 0.5) -> list[list[int]]:
    """Indices of ``lengths`` in batches for inference: ascending length, at most ``batch_size`` each, and a
    batch ends early where taking the next (longer) item would make its padded size (rows x longest) exceed
    ``1 + slack`` times its real length. Sorting alone leaves the long tail in one batch padded to its longest
    item (CoNLL04 test, batches of 32: 13,472 encoder positions for 10,452 real pieces, most of the waste in the
    last batch, 57 to 141 pieces); per position the encoder costs no more in small batches than in full ones."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches: list[list[int]] = []
    cur: list[int] = []
    real = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        n = lengths[i]
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * n > (1 + slack) * (real + n)):
            batches.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += n
    if cur:
        batches.append(cur)
    return batches


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
        batch["labels"] = _pad([t if e.generate else [-100] * len(t) for e, t in zip(examples, targets, strict=True)],
                               -100)  # (B, T)
        batch["decoder_input_ids"] = _pad([[model.start_id] + t[:-1] for t in targets], pad)
        positions = [e.positions or [-1] * len(e.target or []) for e in examples]
        batch["label_positions"] = _pad(positions, -1)
        batch["decoder_positions"] = _pad([[-1] + p[:-1] for p in positions], -1)
        if getattr(model, "heads", None) is not None:
            batch.update(_anchor_tensors(model, examples))
            if model.heads.pair is not None:
                batch.update(pair_tensors(model, examples, model.anchor.pair_negatives))
            if model.heads.span is not None:
                batch.update(span_tensors(model, examples, model.anchor.span_max_width, model.anchor.span_negatives))
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


def entity_piece_spans(source: Source, entities) -> list[tuple[int, int] | None]:
    """Each entity's piece span ``[first, last + 1)`` in ``source`` (None when none of its tokens was encoded:
    cut by the source length)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for p, tok in enumerate(source.piece_token):
        if tok >= 0:
            first.setdefault(tok, p)
            last[tok] = p
    out: list[tuple[int, int] | None] = []
    for e in entities:
        ps = [first[t] for t in range(e.start, e.end) if t in first]
        out.append((min(ps), max(last[t] for t in range(e.start, e.end) if t in last) + 1) if ps else None)
    return out


def candidate_spans(source: Source, max_width: int) -> list[tuple[int, int, int, int]]:
    """Every span of 1 to ``max_width`` tokens whose first and last tokens were encoded, as ``(token start,
    token end, first piece, end piece)``, in order of start and width (a token inside that encodes to no piece,
    such as a zero-width character, does not break a span)."""
    tokens = sorted(t for t in set(source.piece_token) if t >= 0)
    out = []
    for i, a in enumerate(tokens):
        for b in tokens[i:]:
            if b - a >= max_width:
                break
            pa, pb = source.token_pieces(a), source.token_pieces(b)
            out.append((a, b + 1, pa[0], pb[1]))  # type: ignore[index]
    return out


def span_tensors(model, examples: list[Example], max_width: int, max_negatives: int) -> dict[str, torch.Tensor]:
    """The span classifier's training tensors: every gold entity of at most ``max_width`` tokens whose tokens were
    all encoded (label 1 + its type's index), and of the other candidate spans at most ``max_negatives`` per
    document (label 0), drawn with a generator seeded by the document's id; as piece spans ``span_start`` /
    ``span_end`` of row ``span_item`` with the width in tokens."""
    types = {t: k for k, t in enumerate(model.schema.entity_types)}
    item, start, end, width, label = [], [], [], [], []
    for b, ex in enumerate(examples):
        gold: dict[tuple[int, int], int] = {}
        for e in ex.doc.entities:
            if e.type in types:
                gold.setdefault((e.start, e.end), 1 + types[e.type])
        spans = candidate_spans(ex.source, max_width)
        negatives = [sp for sp in spans if (sp[0], sp[1]) not in gold]
        if len(negatives) > max_negatives:
            random.Random(ex.doc.id).shuffle(negatives)
            negatives = negatives[:max_negatives]
        for a, z, ps, pe in [sp for sp in spans if (sp[0], sp[1]) in gold] + negatives:
            item.append(b)
            start.append(ps)
            end.append(pe)
            width.append(z - a)
            label.append(gold.get((a, z), 0))
    long = torch.long
    return {"span_item": torch.tensor(item, dtype=long), "span_start": torch.tensor(start, dtype=long),
            "span_end": torch.tensor(end, dtype=long), "span_width": torch.tensor(width, dtype=long),
            "span_label": torch.tensor(label, dtype=long)}


def pair_tensors(model, examples: list[Example], max_negatives: int) -> dict[str, torch.Tensor]:
    """The pair classifier's training tensors: every gold entity's piece span and type index (``ent_*``), and
    every ordered pair of two of a document's entities (``pair_head``/``pair_tail`` index the entities) with
    its multi-hot relation types (``pair_labels``, schema order). Pairs with a relation are all kept; of the
    others at most ``max_negatives`` per document, drawn with a generator seeded by the document's id.
    Entities the source length cut are left out, with their pairs."""
    types = {t: k for k, t in enumerate(model.schema.entity_types)}
    rel_types = {t: k for k, t in enumerate(model.schema.relation_types)}
    ent_item, ent_start, ent_end, ent_type, heads, tails, labels = [], [], [], [], [], [], []
    for b, ex in enumerate(examples):
        spans = entity_piece_spans(ex.source, ex.doc.entities)
        index: dict[int, int] = {}
        for i, (e, span) in enumerate(zip(ex.doc.entities, spans, strict=True)):
            if span is None or e.type not in types:
                continue
            index[i] = len(ent_item)
            ent_item.append(b)
            ent_start.append(span[0])
            ent_end.append(span[1])
            ent_type.append(types[e.type])
        gold: dict[tuple[int, int], set[int]] = {}
        for r in ex.doc.relations:
            if r.head in index and r.tail in index and r.type in rel_types:
                gold.setdefault((r.head, r.tail), set()).add(rel_types[r.type])
        pairs = [(h, t) for h in index for t in index if h != t]
        negatives = [q for q in pairs if q not in gold]
        if len(negatives) > max_negatives:
            random.Random(ex.doc.id).shuffle(negatives)
            negatives = negatives[:max_negatives]
        for h, t in [q for q in pairs if q in gold] + negatives:
            heads.append(index[h])
            tails.append(index[t])
            labels.append([int(k in gold.get((h, t), ())) for k in range(len(rel_types))])
    long = torch.long
    return {
        "ent_item": torch.tensor(ent_item, dtype=long), "ent_start": torch.tensor(ent_start, dtype=long),
        "ent_end": torch.tensor(ent_end, dtype=long), "ent_type": torch.tensor(ent_type, dtype=long),
        "pair_head": torch.tensor(heads, dtype=long), "pair_tail": torch.tensor(tails, dtype=long),
        "pair_labels": torch.tensor(labels, dtype=long).reshape(len(labels), len(rel_types)),
    }
