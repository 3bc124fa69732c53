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
    constrained: bool = True  # the grammar constraint (off: free generation, malformed output is counted)
    signatures: bool = True  # relation labels and tail types limited to the schema's signatures
    consistent_types: bool = True  # a span generated twice keeps its first type
    anchor_candidates: bool = True  # anchor groups open only at the anchor scorer's candidates (if trained)
    entity_coverage: bool = True  # do not end before every entity start the tagger predicts is generated
    tagger_spans: bool = False  # every mention is one of the entity tagger's typed spans, with its type
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
    anchor_spans: list[list[tuple[int, int]]] | None = None  # the scorer's predicted anchors (token spans)
    anchor_candidates: list[list[int]] | None = None  # candidate anchor start tokens given to the constraint
    tagger_spans: list[list[tuple[int, int, str]]] | None = None  # the entity tagger's typed token spans

    @property
    def malformed(self) -> int:
        return sum(self.errors.values())


def _select(batch: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, index) for k, v in batch.items()}


@torch.no_grad()
def generate_ids(
    model, batch: dict[str, torch.Tensor], processors: LogitsProcessorList, cfg: DecodeConfig,
    enc: torch.Tensor | None = None,
) -> list[list[int]]:
    """Greedy (num_beams=1) or beam search; returns each item's generated ids without the decoder start."""
    device = model.device
    batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "copyable")}
    b, k = batch["input_ids"].size(0), cfg.num_beams
    if enc is None:
        enc = model.encode(batch)  # (B, L, H)
    if k > 1:
        rows = torch.arange(b, device=device).repeat_interleave(k)
        batch = _select(batch, rows)
        enc = enc.index_select(0, rows)  # (B*k, L, H)
    prefix = torch.full((b * k, 1), model.start_id, dtype=torch.long, device=device)
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    beam_scores = torch.zeros(b, k, device=device)
    beam_scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    cache = model.new_cache()
    limit = length_limit(model, batch, cfg)
    new_pos = torch.full((b * k, 1), -1, dtype=torch.long, device=device)
    for _ in range(limit):
        logp, aux = model.next_log_probs(enc, batch, prefix[:, -1:], new_pos, cache)  # (B*k, V)
        # Renormalize over what the processors allow: otherwise mass the grammar forbids is charged to every
        # constrained step and beam search prefers short outputs.
        logp = processors(prefix, logp).log_softmax(-1)
        # a row whose every id was masked would be NaN, and topk ranks NaN first: make it -inf
        logp = logp.nan_to_num(nan=float("-inf"))
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


def length_limit(model, batch: dict[str, torch.Tensor], cfg: DecodeConfig) -> int:
    """How many ids a batch may generate: a target rarely needs more than ~3 ids per source piece, and the cap
    stops a looping beam early."""
    return min(cfg.max_new_tokens, model.config.max_target_length, 4 * batch["input_ids"].size(1) + 16)


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
    grammar = make_grammar(model, cfg)
    has_scorer = model.heads is not None and model.heads.scorer is not None
    has_tagger = (cfg.constrained and (cfg.entity_coverage or cfg.tagger_spans) and model.heads is not None
                  and model.heads.entity_tagger is not None)
    examples: list[Example] = make_examples(model, docs, with_targets=False)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].source.ids))  # less padding
    out: list[Document | None] = [None] * len(docs)
    result = DecodeResult([])
    if has_scorer:
        result.anchor_spans, result.anchor_candidates = [[] for _ in docs], [[] for _ in docs]
    for s in range(0, len(order), cfg.batch_size):
        idx = order[s : s + cfg.batch_size]
        chunk = [examples[i] for i in idx]
        batch = {k: v.to(model.device) for k, v in collate(model, chunk).items()}
        enc = model.encode(batch)  # (B, L, H)
        sources = [e.source for e in chunk]
        if has_scorer:
            sources = _with_anchor_candidates(model, enc, batch, chunk, idx, result)
        if has_tagger:
            sources = _with_entity_starts(model, enc, batch, sources)
            if result.tagger_spans is None:
                result.tagger_spans = [[] for _ in docs]
            for i, src in zip(idx, sources, strict=True):
                result.tagger_spans[i] = sorted(src.entity_spans or ())
        procs = LogitsProcessorList()
        constraint = None
        if cfg.constrained:
            constraint = GrammarConstraint(grammar, sources, cfg.num_beams, max_length=length_limit(model, batch, cfg))
            procs.append(constraint)
        ids = generate_ids(model, batch, procs, cfg, enc=enc)
        for i, ex, src, gen in zip(idx, chunk, sources, ids, strict=True):
            parsed = parse(gen, src, model.vocab, ex.doc, model.config.target_format, grammar=grammar)
            out[i] = parsed.document
            for kind, n in parsed.errors.items():
                result.errors[kind] = result.errors.get(kind, 0) + n
        if constraint is not None:
            result.rejected += constraint.rejected
        if progress:
            progress(len(chunk))
    result.documents = [d for d in out if d is not None]
    return result


def make_grammar(model, cfg: DecodeConfig) -> Grammar:
    """The plain grammar, or with the anchor-guided restrictions that ``cfg`` switches on."""
    fmt = model.config.target_format
    if not cfg.constrained:
        return Grammar(model.vocab, fmt)
    schema = model.schema
    sigs = schema.signatures if cfg.signatures and schema.signatures else None
    symmetric = {n for n, t in schema.relation_types.items() if t.symmetric}
    has_scorer = model.heads is not None and model.heads.scorer is not None
    has_tagger = model.heads is not None and model.heads.entity_tagger is not None
    if cfg.tagger_spans and not has_tagger:
        log.warning("decode.tagger_spans is on but this model has no entity tagger (anchor.entity_tagging): ignored")
    return Grammar(model.vocab, fmt, signatures=sigs, symmetric=symmetric, consistent_types=cfg.consistent_types,
                   use_anchor_starts=cfg.anchor_candidates and has_scorer and fmt == "anchor",
                   entity_coverage=cfg.entity_coverage and has_tagger, tagger_spans=cfg.tagger_spans and has_tagger)


def _with_entity_starts(model, enc, batch, sources: list) -> list:
    """Sources carrying the tokens where the entity tagger predicts an entity begins (a B tag), and its typed
    spans (``Source.entity_spans``, read by the grammar only with ``decode.tagger_spans``)."""
    from dataclasses import replace

    from .anchor_heads import typed_bio_spans

    idx = batch["word_pos"][..., None].expand(-1, -1, enc.size(-1))  # (B, W, H)
    tags = model.heads.entity_tagger(enc.gather(1, idx).float()).argmax(-1)  # (B, W)
    names = list(model.schema.entity_types)  # the tagger's type order (batching._entity_tags)
    out = []
    for row, src in enumerate(sources):
        starts = src.word_starts()
        row_tags = tags[row, : len(starts)].tolist()
        begins = {src.piece_token[starts[w]] for w, t in enumerate(row_tags) if t % 2 == 1}
        tok = [src.piece_token[p] for p in starts]
        spans = frozenset((tok[a], tok[b - 1] + 1, names[k]) for a, b, k in typed_bio_spans(row_tags) if k < len(names))
        out.append(replace(src, entity_starts=frozenset(begins), entity_spans=spans))
    return out


def _with_anchor_candidates(model, enc, batch, chunk: list[Example], idx: list[int], result: DecodeResult) -> list:
    """Sources carrying the anchor scorer's candidate starts; records predicted anchors and candidates."""
    from dataclasses import replace

    from .anchor_heads import bio_spans

    logits = model.heads.tag_logits(enc, batch["word_pos"])  # (B, W, 3), computed once for both uses
    probs = logits.softmax(-1)[..., 1]  # (B, W) P(word begins an anchor)
    tags = logits.argmax(-1)  # (B, W)
    acfg = model.anchor
    sources = []
    for row, (ex, i) in enumerate(zip(chunk, idx, strict=True)):
        starts = ex.source.word_starts()
        n = len(starts)
        p = probs[row, :n]
        chosen = set(torch.nonzero(p >= acfg.threshold).flatten().tolist())
        if acfg.top_k and n:
            chosen |= set(p.topk(min(acfg.top_k, n)).indices.tolist())
        sources.append(replace(ex.source, anchor_starts=frozenset(starts[w] for w in chosen)))
        tok = [ex.source.piece_token[starts[w]] for w in range(n)]
        spans = bio_spans(tags[row, :n].tolist())
        result.anchor_spans[i] = [(tok[a], tok[b - 1] + 1) for a, b in spans]
        result.anchor_candidates[i] = sorted(tok[w] for w in chosen)
    return sources
