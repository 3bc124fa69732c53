"""Generate -> parse -> Documents with offsets, counting every malformed piece.

The search is a plain greedy / beam loop over ``Seq2SeqIE.next_log_probs`` with standard Hugging Face
``LogitsProcessor``s applied to every step's scores; it works the same for the copy backbone and any
``AutoModelForSeq2SeqLM``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessorList

from .batching import Example, collate, make_examples
from .constraints import GrammarConstraint
from .grammar import Grammar
from .linearize import parse
from .types import Document

__all__ = ["DecodeConfig", "DecodeResult", "generate_ids", "predict"]

log = logging.getLogger(__name__)


@dataclass
class DecodeConfig:
    constrained: bool = True
    num_beams: int = 1
    batch_size: int = 32
    max_new_tokens: int = 192

    def validate(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"decode.num_beams must be >= 1, got {self.num_beams}")
        if self.batch_size < 1:
            raise ValueError(f"decode.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class DecodeResult:
    documents: list[Document]
    errors: dict[str, int] = field(default_factory=dict)  # malformed pieces by kind, summed over documents
    rejected: int = 0  # steps where the constraint overrode the model's first choice

    @property
    def malformed(self) -> int:
        return sum(self.errors.values())


def _select(batch: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, index) for k, v in batch.items()}


@torch.no_grad()
def generate_ids(model, batch: dict[str, torch.Tensor], processors: LogitsProcessorList, cfg: DecodeConfig) -> list[list[int]]:
    """Greedy (num_beams=1) or beam search; returns each item's generated ids without the decoder start."""
    device = model.device
    batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "copyable")}
    b, k = batch["input_ids"].size(0), cfg.num_beams
    if k > 1:
        batch = _select(batch, torch.arange(b, device=device).repeat_interleave(k))
    enc = model.encode(batch)  # (B*k, L, H)
    prefix = torch.full((b * k, 1), model.start_id, dtype=torch.long, device=device)
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    beam_scores = torch.zeros(b, k, device=device)
    beam_scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    cache = model.new_cache()
    # A target rarely needs more than ~3 ids per source piece; the cap stops a looping beam early.
    limit = min(cfg.max_new_tokens, model.config.max_target_length, 4 * batch["input_ids"].size(1) + 16)
    new_pos = torch.full((b * k, 1), -1, dtype=torch.long, device=device)
    for _ in range(limit):
        logp, aux = model.next_log_probs(enc, batch, prefix[:, -1:], new_pos, cache)  # (B*k, V)
        logp = processors(prefix, logp)
        # finished rows only extend with padding, at no cost
        logp[done] = float("-inf")
        logp[done, model.pad_id] = 0.0
        if k == 1:
            nxt = logp.argmax(-1)
            prefix = torch.cat([prefix, nxt[:, None]], 1)
            new_pos = model.copy_positions(aux, batch, nxt)[:, None]
        else:
            v = logp.size(-1)
            cand = (beam_scores.view(-1, 1) + logp).view(b, k * v)  # (B, k*V)
            top, idx = cand.topk(k, dim=-1)  # (B, k)
            src_beam = idx // v + torch.arange(b, device=device)[:, None] * k
            nxt = (idx % v).view(-1)
            prefix = torch.cat([prefix.index_select(0, src_beam.view(-1)), nxt[:, None]], 1)
            rows = src_beam.view(-1)
            enc = enc.index_select(0, rows)
            cache.reorder_cache(rows)
            new_pos = model.copy_positions(None if aux is None else aux.index_select(0, rows), batch, nxt)[:, None]
            done = done.index_select(0, src_beam.view(-1))
            beam_scores = top
        done = done | (nxt == model.eos_id)
        # Scores only fall as a beam grows, so once each item's best beam has ended nothing can overtake it.
        if bool(done.view(b, k)[:, 0].all()):
            break
    rows = prefix[:, 1:].tolist()
    if k > 1:
        rows = rows[::k]  # beams are kept sorted by score: the first of each item is the best
    return [[t for t in r if t != model.pad_id] for r in rows]


def predict(
    model,
    docs: list[Document],
    cfg: DecodeConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> DecodeResult:
    """Extract entities and relations from ``docs`` (their text and tokens; annotations are ignored)."""
    cfg = cfg or DecodeConfig()
    cfg.validate()
    model.eval()
    grammar = Grammar(model.vocab, model.config.target_format)
    examples: list[Example] = make_examples(model, docs, with_targets=False)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].source.ids))  # less padding
    out: list[Document | None] = [None] * len(docs)
    result = DecodeResult([])
    for s in range(0, len(order), cfg.batch_size):
        chunk = [examples[i] for i in order[s : s + cfg.batch_size]]
        procs = LogitsProcessorList()
        constraint = None
        if cfg.constrained:
            constraint = GrammarConstraint(grammar, [e.source for e in chunk], cfg.num_beams)
            procs.append(constraint)
        ids = generate_ids(model, collate(model, chunk), procs, cfg)
        for i, ex, gen in zip(order[s : s + cfg.batch_size], chunk, ids, strict=True):
            parsed = parse(gen, ex.source, model.vocab, ex.doc, model.config.target_format)
            out[i] = parsed.document
            for kind, n in parsed.errors.items():
                result.errors[kind] = result.errors.get(kind, 0) + n
        if constraint is not None:
            result.rejected += constraint.rejected
        if progress:
            progress(len(chunk))
    result.documents = [d for d in out if d is not None]
    return result
