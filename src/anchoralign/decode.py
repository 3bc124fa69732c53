"""Search -> parse -> Documents with offsets, counting every malformed piece.

The copy backbone is searched in its own output space (``search.search_copy``: generation vocabulary and source
positions, the grammar as a ``CopyConstraint``), and each mention is placed where it was copied from. Any
``AutoModelForSeq2SeqLM`` is searched over its vocabulary with standard ``LogitsProcessor``s
(``search.search_vocab`` with ``constraints.GrammarConstraint``); ``decode.space: vocab`` decodes the copy
backbone that way too (the engine before the copy-space search, kept for comparison).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from transformers import LogitsProcessorList

from .batching import Example, collate, length_batches, make_examples
from .constraints import CopyConstraint, GrammarConstraint
from .errors import InputError
from .grammar import Grammar
from .linearize import parse
from .precision import resolve_precision
from .search import Generated, GreedyStream, Part, length_limit, search_copy, search_vocab
from .types import Document

__all__ = ["DecodeConfig", "DecodeResult", "predict", "make_grammar", "relations_scoring_at_least"]

log = logging.getLogger(__name__)
SPACES = ("copy", "vocab")
# a batch ends where padding would pass this share of its real source pieces (batching.length_batches)
PAD_SLACK = 0.5
PAIR_MODES = ("off", "union", "replace")
SPAN_SOURCES = ("tagger", "classifier")


@dataclass
class DecodeConfig:
    constrained: bool = True  # the grammar constraint (off: free generation, malformed output is counted)
    signatures: bool = True  # relation labels and tail types limited to the schema's signatures
    consistent_types: bool = True  # a span generated twice keeps its first type
    anchor_candidates: bool = True  # anchor groups open only at the anchor scorer's candidates (if trained)
    entity_coverage: bool = True  # do not end before every entity start the tagger predicts is generated
    tagger_spans: bool = False  # every mention is one of the entity tagger's typed spans, with its type
    # where those typed spans (and the coverage's entity starts) come from: tagger, the BIO entity tagger
    # (anchor.entity_tagging); classifier, the span classifier (anchor.span_classifier): each span whose likeliest
    # class is an entity type, the likelier first where two overlap
    span_source: str = "tagger"
    # how the BIO tagger's tags are read: viterbi, the likeliest valid tag sequence (an inside tag continues a
    # span of its type); argmax, each word's likeliest tag (an orphan inside tag opens a span of its own).
    # viterbi: test NER higher on all 6 CoNLL04 models tried, dev level (docs/results.md §7)
    tagger_decoding: str = "viterbi"
    num_beams: int = 1
    batch_size: int = 32
    max_new_tokens: int = 192
    space: str = "copy"  # copy: search the copy backbone's own output space; vocab: the full vocabulary
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (CUDA); auto: bf16 only where computed natively
    # added to the log-probability of the markers that open a relation (<rel>, <rel-inv>) and an anchor group
    # (<anchor>) when the search chooses (copy space); the scores it reports stay the model's own. > 0 trades
    # precision for relation recall; 0: off
    relation_bias: float = 0.0
    # relations whose score (the model's own, untempered) is under this are left out of the output; entities
    # stay. 0: off. SpERT filters its relations the same way (0.4); configs/conll04-cpu.yaml: 0.4, chosen on dev
    # (benchmarks/relation_threshold.py, docs/results.md §7)
    relation_threshold: float = 0.0
    # entities in no (kept) relation whose score is under this are left out; entities in a relation always stay,
    # so relations are untouched. 0: off. configs/conll04-cpu.yaml: chosen on dev (benchmarks/entity_threshold.py)
    entity_threshold: float = 0.0
    # what the pair classifier (anchor.pair_classifier) does with the decoded entities: off; union: add each
    # relation it scores at least pair_threshold between two decoded entities that the decoder did not write
    # (type signatures as in decode.signatures); replace: its relations instead of the decoder's
    pair_relations: str = "off"
    pair_threshold: float = 0.5
    # with pair_relations union: a relation is left out when the veto classifier (anchoralign.veto; the pair
    # classifier for a model without one) gives its type between its two entities a probability under this; 0: off
    pair_veto: float = 0.0
    # the probabilities the pair relations are added by (union, replace): "pair", the pair classifier's; "mean",
    # the mean of the pair classifier's and the fitted veto classifier's (anchoralign.veto; two classifiers over
    # the same pairs, one of them also fitted on sentences that state no relation). The veto check (pair_veto)
    # reads the veto's own
    pair_scores: str = "pair"

    def validate(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"decode.num_beams must be >= 1, got {self.num_beams}")
        if self.batch_size < 1:
            raise ValueError(f"decode.batch_size must be >= 1, got {self.batch_size}")
        if self.space not in SPACES:
            raise ValueError(f"decode.space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"decode.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if not 0.0 <= self.entity_threshold <= 1.0:
            raise ValueError(f"decode.entity_threshold must be in [0, 1], got {self.entity_threshold}")
        if not 0.0 <= self.relation_threshold <= 1.0:
            raise ValueError(f"decode.relation_threshold must be in [0, 1], got {self.relation_threshold}")
        if self.tagger_decoding not in ("viterbi", "argmax"):
            raise ValueError(f"decode.tagger_decoding must be viterbi or argmax, got {self.tagger_decoding!r}")
        if self.span_source not in SPAN_SOURCES:
            raise ValueError(f"decode.span_source must be one of {', '.join(SPAN_SOURCES)}, got {self.span_source!r}")
        if self.pair_relations not in PAIR_MODES:
            raise ValueError(f"decode.pair_relations must be one of {', '.join(PAIR_MODES)}, got {self.pair_relations!r}")
        if not 0.0 < self.pair_threshold <= 1.0:
            raise ValueError(f"decode.pair_threshold must be in (0, 1], got {self.pair_threshold}")
        if not 0.0 <= self.pair_veto < 1.0:
            raise ValueError(f"decode.pair_veto must be in [0, 1), got {self.pair_veto}")
        if self.pair_veto > 0 and self.pair_relations != "union":
            raise ValueError("decode.pair_veto checks the relations of the decoder and the pair classifier: it needs "
                             "decode.pair_relations: union, "
                             f"got {self.pair_relations!r}")
        if self.pair_scores not in ("pair", "mean"):
            raise ValueError(f"decode.pair_scores must be pair or mean, got {self.pair_scores!r}")
        if self.relation_bias != 0 and self.space != "copy":
            raise ValueError("decode.relation_bias applies to the copy space only (decode.space: copy)")


@dataclass
class DecodeResult:
    documents: list[Document]
    errors: dict[str, int] = field(default_factory=dict)  # malformed pieces by kind, summed over documents
    rejected: int = 0  # steps where the constraint overrode the model's first choice
    anchor_spans: list[list[tuple[int, int]]] | None = None  # the scorer's predicted anchors (token spans)
    anchor_candidates: list[list[int]] | None = None  # candidate anchor start tokens given to the constraint
    tagger_spans: list[list[tuple[int, int, str]]] | None = None  # the entity tagger's typed token spans
    generated: list[Generated] = field(default_factory=list)  # per document: ids, copy positions, step log-probs
    truncated: list[int] = field(default_factory=list)  # per document: tokens past the encoder's input, not read
    document_errors: list[dict[str, int]] = field(default_factory=list)  # per document: ``errors`` of its own
    precision: str = "fp32"  # what the search computed in
    below_threshold: int = 0  # relations left out for scoring under decode.relation_threshold
    entities_below_threshold: int = 0  # entities in no relation left out under decode.entity_threshold
    pair_added: int = 0  # relations the pair classifier added (decode.pair_relations: union or replace)
    pair_replaced: int = 0  # decoder relations that decode.pair_relations: replace set aside
    pair_vetoed: int = 0  # relations left out under decode.pair_veto

    @property
    def malformed(self) -> int:
        return sum(self.errors.values())


def _relation_bias(model, bias: float) -> dict[int, float] | None:
    """``decode.relation_bias`` as {column of the copy space's generation part: bias}, None when 0."""
    if bias == 0:
        return None
    gen = model.net.gen_ids.tolist()
    ids = [model.vocab.marker(m) for m in ("<rel>", "<rel-inv>", "<anchor>")]
    return {gen.index(i): bias for i in ids if i in gen}


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while decoding: the search allocates many short-lived grammar
    states (freed by reference counting), which triggered full collections that rescan every object of the
    model, 0.2-0.4 s of a 4.5 s pass over the CoNLL04 test set. Re-enabled after, if it was on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


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
    precision = resolve_precision(cfg.precision, model.device, "decode.precision")
    copy_space = model.kind == "copy" and cfg.space == "copy"
    grammar = make_grammar(model, cfg)
    has_scorer = model.heads is not None and model.heads.scorer is not None
    span_head = _uses_span_classifier(model, cfg)
    has_tagger = (cfg.constrained and (cfg.entity_coverage or cfg.tagger_spans) and model.heads is not None
                  and (model.heads.entity_tagger is not None or span_head))
    bias = _relation_bias(model, cfg.relation_bias) if copy_space else None
    pairs = cfg.pair_relations != "off" and model.heads is not None and model.heads.pair is not None
    if pairs and cfg.pair_scores == "mean" and model.heads.veto is None:
        raise InputError("decode.pair_scores: mean averages the pair classifier with the model's veto classifier, "
                         "and this model has none (fit one with `anchoralign veto`)")
    if cfg.pair_relations != "off" and not pairs:
        log.warning("decode.pair_relations is %s but this model has no pair classifier (anchor.pair_classifier): "
                    "ignored", cfg.pair_relations)
    sigs = model.schema.signatures if cfg.signatures and model.schema.signatures else None
    examples: list[Example] = make_examples(model, docs, with_targets=False)
    # ascending length, the long tail split where padding would pass PAD_SLACK (batching.length_batches)
    batches = length_batches([len(e.source.ids) for e in examples], cfg.batch_size, PAD_SLACK)
    out: list[Document | None] = [None] * len(docs)
    generated: list[Generated | None] = [None] * len(docs)
    doc_errors: list[dict[str, int]] = [{} for _ in docs]
    result = DecodeResult([], precision=precision)
    if has_scorer:
        result.anchor_spans, result.anchor_candidates = [[] for _ in docs], [[] for _ in docs]

    def prepared(idx: list[int]) -> Part:
        """The documents ``idx`` encoded as one batch, with their sources (anchor candidates, tagged spans) and
        their constraint, ready for a search."""
        chunk = [examples[i] for i in idx]
        batch = {k: v.to(model.device) for k, v in collate(model, chunk).items()}
        enc = model.encode(batch)  # (B, L, H)
        sources = [e.source for e in chunk]
        if has_scorer:
            sources = _with_anchor_candidates(model, enc, batch, chunk, idx, result)
        span_probs: list[dict] = [{} for _ in chunk]
        if has_tagger:
            if span_head:
                sources, span_probs = _with_classifier_spans(model, enc, sources)
            else:
                sources, span_probs = _with_entity_starts(model, enc, batch, sources, cfg.tagger_decoding)
            if result.tagger_spans is None:
                result.tagger_spans = [[] for _ in docs]
            for i, src in zip(idx, sources, strict=True):
                result.tagger_spans[i] = sorted(src.entity_spans or ())
        limits = length_limit(model, batch, cfg.max_new_tokens)
        constraint = None
        if cfg.constrained and copy_space:
            constraint = CopyConstraint(grammar, sources, model.net.gen_ids.tolist(), cfg.num_beams, max_length=limits)
        elif cfg.constrained:
            constraint = GrammarConstraint(grammar, sources, cfg.num_beams, max_length=limits)
        return Part(enc, batch["input_ids"], batch["attention_mask"], batch.get("copyable"), constraint, limits,
                    tag=(idx, chunk, batch, sources, span_probs))

    def searched() -> Iterator[tuple[Part, list[Generated]]]:
        """Each batch with its search results; greedy search in the copy space streams the batches through one
        decoder batch (``search.GreedyStream``), so they may come back out of order."""
        if copy_space and cfg.num_beams == 1:
            stream = GreedyStream(model, bias)
            yield from stream.run(prepared(idx) for idx in batches)
            result.rejected += stream.rejected
            return
        for idx in batches:
            part = prepared(idx)
            batch = part.tag[2]
            if copy_space:
                gens = search_copy(model, batch, part.enc, part.constraint, cfg.num_beams, cfg.max_new_tokens,
                                   bias=bias)
            else:
                procs = LogitsProcessorList([part.constraint] if part.constraint is not None else [])
                gens = search_vocab(model, batch, procs, cfg.num_beams, cfg.max_new_tokens, enc=part.enc)
            if part.constraint is not None:
                result.rejected += part.constraint.rejected
            yield part, gens

    with _autocast(model.device, precision), torch.no_grad(), _cyclic_gc_paused():
        for part, gens in searched():
            idx, chunk, _, sources, span_probs = part.tag
            parsed_docs = []
            for ex, src, gen, probs in zip(chunk, sources, gens, span_probs, strict=True):
                # vocabulary space: a position is only the likeliest one holding the id (the decoder's input), not
                # what the constraint followed, so mentions are placed by the grammar's rule as the constraint did
                parsed = parse(gen.ids, src, model.vocab, ex.doc, model.config.target_format, grammar=grammar,
                               positions=gen.positions if copy_space else None, log_probs=gen.log_probs)
                doc = parsed.document
                if cfg.constrained and cfg.tagger_spans and probs:
                    doc = _with_tagger_confidence(doc, probs)
                parsed_docs.append((doc, parsed.errors))
            if pairs:
                docs_now = _with_pair_relations(model, part.enc, part.tag[2]["attention_mask"], sources,
                                                [d for d, _ in parsed_docs], cfg, sigs, result)
                parsed_docs = [(d, e) for d, (_, e) in zip(docs_now, parsed_docs, strict=True)]
            for i, gen, (doc, errors) in zip(idx, gens, parsed_docs, strict=True):
                if cfg.relation_threshold > 0:
                    kept = relations_scoring_at_least(doc, cfg.relation_threshold)
                    result.below_threshold += len(doc.relations) - len(kept.relations)
                    doc = kept
                if cfg.entity_threshold > 0:
                    kept = standalone_entities_scoring_at_least(doc, cfg.entity_threshold)
                    result.entities_below_threshold += len(doc.entities) - len(kept.entities)
                    doc = kept
                out[i], generated[i], doc_errors[i] = doc, gen, dict(errors)
                for kind, n in errors.items():
                    result.errors[kind] = result.errors.get(kind, 0) + n
            if progress:
                progress(len(chunk))
    result.truncated = [_unread_tokens(ex) for ex in examples]
    result.document_errors = doc_errors
    result.documents = [d for d in out if d is not None]
    result.generated = [g for g in generated if g is not None]
    return result


def relations_scoring_at_least(doc: Document, threshold: float) -> Document:
    """``doc`` with only the relations whose score reaches ``threshold`` (an unscored one counts as 1); its
    entities all stay (``decode.relation_threshold``; ``Extraction.filtered`` is the API's rule, which also
    drops low-scoring entities)."""
    return doc.with_annotations(doc.entities, [r for r in doc.relations
                                               if (1.0 if r.score is None else r.score) >= threshold])


def standalone_entities_scoring_at_least(doc: Document, threshold: float) -> Document:
    """``doc`` without the entities that are in no relation and score under ``threshold`` (an unscored one counts
    as 1); every entity in a relation stays, so the relations are unchanged (``decode.entity_threshold``)."""
    in_relation = {r.head for r in doc.relations} | {r.tail for r in doc.relations}
    keep = [i for i, e in enumerate(doc.entities)
            if i in in_relation or (1.0 if e.score is None else e.score) >= threshold]
    if len(keep) == len(doc.entities):
        return doc
    index = {old: new for new, old in enumerate(keep)}
    return doc.with_annotations([doc.entities[i] for i in keep],
                                [replace(r, head=index[r.head], tail=index[r.tail]) for r in doc.relations])


def _with_pair_relations(model, enc: torch.Tensor, mask: torch.Tensor, sources: list, docs: list[Document], cfg: DecodeConfig, sigs,
                         result: DecodeResult) -> list[Document]:
    """``docs`` (rows of ``enc``, (B, L, H)) with the pair classifier's relations between their entities
    (``decode.pair_relations``), one forward pass for the batch: each ordered pair of two entities the source
    holds, each relation type scoring at least ``pair_threshold`` whose signature the schema allows (when
    ``sigs``); the score is the classifier's probability. ``union`` adds those the decoder did not write;
    ``replace`` keeps only the classifier's."""
    from .batching import entity_piece_spans
    from .types import Relation

    types = {t: k for k, t in enumerate(model.schema.entity_types)}
    ent_item, ent_start, ent_end, ent_type, heads, tails, owners = [], [], [], [], [], [], []
    for row, (src, doc) in enumerate(zip(sources, docs, strict=True)):
        where = {}
        for i, (e, span) in enumerate(zip(doc.entities, entity_piece_spans(src, doc.entities), strict=True)):
            if span is not None and e.type in types:
                where[i] = len(ent_item)
                ent_item.append(row)
                ent_start.append(span[0])
                ent_end.append(span[1])
                ent_type.append(types[e.type])
        for h in where:
            for t in where:
                if h != t:
                    heads.append(where[h])
                    tails.append(where[t])
                    owners.append((row, h, t))
    found: list[list[Relation]] = [[] for _ in docs]
    prob_of: list[dict[tuple[int, int, str], float]] = [{} for _ in docs]  # (head, tail, type) -> probability
    if owners:
        dev = enc.device

        def long(x: list[int]) -> torch.Tensor:
            return torch.tensor(x, dtype=torch.long, device=dev)

        args = (enc, long(ent_item), long(ent_start), long(ent_end), long(ent_type), long(heads), long(tails))
        pair_p = model.heads.pair(*args).float().sigmoid()  # (Np, R)
        # the veto reads the fitted veto classifier where the model has one (anchoralign.veto), else the pair one
        veto_p = pair_p if model.heads.veto is None or (cfg.pair_veto <= 0 and cfg.pair_scores == "pair") else \
            model.heads.veto(enc, mask, *args[1:]).float().sigmoid()
        if cfg.pair_scores == "mean":
            pair_p = (pair_p + veto_p) / 2
        probs, veto = pair_p.tolist(), veto_p.tolist()
        names = list(model.schema.relation_types)
        for (row, h, t), scores, checks in zip(owners, probs, veto, strict=True):
            ents = docs[row].entities
            if cfg.pair_veto > 0:
                prob_of[row].update(((h, t, name), p) for name, p in zip(names, checks, strict=True))
            for k, p in enumerate(scores):
                if p >= cfg.pair_threshold and (sigs is None or (ents[h].type, names[k], ents[t].type) in sigs):
                    found[row].append(Relation(h, t, names[k], score=p))
    out = []
    for doc, rels, probs_here in zip(docs, found, prob_of, strict=True):
        if cfg.pair_veto > 0:  # an entity pair the classifier did not score (no piece span) keeps its relations
            kept = [r for r in doc.relations if probs_here.get((r.head, r.tail, r.type), 1.0) >= cfg.pair_veto]
            wrote = {(r.head, r.tail, r.type) for r in doc.relations}
            checked = [r for r in rels if probs_here[(r.head, r.tail, r.type)] >= cfg.pair_veto]
            # a vetoed relation the decoder also wrote is counted once, among the decoder's
            result.pair_vetoed += len(doc.relations) - len(kept) + sum(
                (r.head, r.tail, r.type) not in wrote for r in rels if r not in checked)
            rels = checked
            doc = doc.with_annotations(doc.entities, kept)
        if cfg.pair_relations == "replace":
            result.pair_replaced += len(doc.relations)
            result.pair_added += len(rels)
            out.append(doc.with_annotations(doc.entities, rels))
            continue
        have = {(r.head, r.tail, r.type) for r in doc.relations}
        added = [r for r in rels if (r.head, r.tail, r.type) not in have]
        result.pair_added += len(added)
        out.append(doc.with_annotations(doc.entities, list(doc.relations) + added))
    return out


def _unread_tokens(ex: Example) -> int:
    """Tokens after the last one the encoder input holds (cut by ``model.max_source_length``)."""
    last = max(ex.source.piece_token, default=-1)
    return len(ex.doc.tokens) - (last + 1)


def make_grammar(model, cfg: DecodeConfig) -> Grammar:
    """The plain grammar, or with the anchor-guided restrictions that ``cfg`` switches on."""
    fmt = model.config.target_format
    if not cfg.constrained:
        return Grammar(model.vocab, fmt)
    schema = model.schema
    sigs = schema.signatures if cfg.signatures and schema.signatures else None
    symmetric = {n for n, t in schema.relation_types.items() if t.symmetric}
    has_scorer = model.heads is not None and model.heads.scorer is not None
    has_tagger = model.heads is not None and (model.heads.entity_tagger is not None
                                                 or _uses_span_classifier(model, cfg, warn=False))
    if cfg.tagger_spans and not has_tagger:
        log.warning("decode.tagger_spans is on but this model has no entity tagger (anchor.entity_tagging): ignored")
    return Grammar(model.vocab, fmt, signatures=sigs, symmetric=symmetric, consistent_types=cfg.consistent_types,
                   use_anchor_starts=cfg.anchor_candidates and has_scorer and fmt == "anchor",
                   entity_coverage=cfg.entity_coverage and has_tagger, tagger_spans=cfg.tagger_spans and has_tagger)


def _uses_span_classifier(model, cfg: DecodeConfig, warn: bool = True) -> bool:
    """Whether the typed spans come from the span classifier (``decode.span_source: classifier`` and a model that
    has one; read from the tagger otherwise, with a warning when ``warn``)."""
    if cfg.span_source != "classifier":
        return False
    if model.heads is None or model.heads.span is None:
        if warn:
            log.warning("decode.span_source is classifier but this model has no span classifier "
                        "(anchor.span_classifier): the entity tagger's spans are used, where it has one")
        return False
    return True


def _with_classifier_spans(model, enc, sources: list) -> tuple[list, list[dict]]:
    """Sources carrying the span classifier's typed spans (``Source.entity_spans``) and their first tokens
    (``entity_starts``); and per source, each span's probability of its type. A candidate span is kept when an
    entity type is its likeliest class; of overlapping ones the likelier is kept (flat entities)."""
    from .batching import candidate_spans

    width = model.anchor.span_max_width
    cands = [candidate_spans(src, width) for src in sources]
    item = [b for b, c in enumerate(cands) for _ in c]
    flat = [sp for c in cands for sp in c]
    dev = enc.device
    out, span_probs = [], []
    if not flat:
        return [replace(s, entity_starts=frozenset(), entity_spans=frozenset()) for s in sources], [{} for _ in sources]
    t = torch.tensor([[sp[2], sp[3], sp[1] - sp[0]] for sp in flat], dtype=torch.long, device=dev)
    probs = model.heads.span(enc, torch.tensor(item, device=dev), t[:, 0], t[:, 1], t[:, 2]).float().softmax(-1)
    best, cls = probs.max(-1)
    best, cls = best.tolist(), cls.tolist()
    names = list(model.schema.entity_types)
    k = 0
    for src, c in zip(sources, cands, strict=True):
        found = [(best[k + i], sp[0], sp[1], names[cls[k + i] - 1]) for i, sp in enumerate(c) if cls[k + i] > 0]
        k += len(c)
        taken: set[int] = set()
        scores = {}
        for p, a, b, name in sorted(found, key=lambda x: (-x[0], x[1], x[2])):
            if taken.isdisjoint(range(a, b)):
                taken.update(range(a, b))
                scores[(a, b, name)] = p
        out.append(replace(src, entity_starts=frozenset(a for a, _, _ in scores),
                           entity_spans=frozenset(scores)))
        span_probs.append(scores)
    return out, span_probs


def _with_entity_starts(model, enc, batch, sources: list, decoding: str = "viterbi") -> tuple[list, list[dict]]:
    """Sources carrying the tokens where the entity tagger predicts an entity begins (a B tag), and its typed
    spans (``Source.entity_spans``, read by the grammar only with ``decode.tagger_spans``); and per source,
    each typed span's probability under the tagger: the product of its words' tag probabilities, times the
    probability that the next word does not continue it."""
    from .anchor_heads import typed_bio_spans, typed_bio_viterbi

    idx = batch["word_pos"][..., None].expand(-1, -1, enc.size(-1))  # (B, W, H)
    probs = model.heads.entity_tagger(enc.gather(1, idx).float()).softmax(-1)  # (B, W, C)
    if decoding == "viterbi":
        tags = typed_bio_viterbi(probs.clamp_min(1e-12).log(), batch["word_mask"])
        best = probs.gather(-1, tags[..., None]).squeeze(-1)
    else:
        best, tags = probs.max(-1)  # (B, W)
    names = list(model.schema.entity_types)  # the tagger's type order (batching._entity_tags)
    out, span_probs = [], []
    for row, src in enumerate(sources):
        starts = src.word_starts()
        n = len(starts)
        row_tags, row_best = tags[row, :n].tolist(), best[row, :n].tolist()
        begins = {src.piece_token[starts[w]] for w, t in enumerate(row_tags) if t % 2 == 1}
        tok = [src.piece_token[p] for p in starts]
        found = [(a, b, k) for a, b, k in typed_bio_spans(row_tags) if k < len(names)]
        scores = {}
        for a, b, k in found:
            p = 1.0
            for w in range(a, b):
                p *= row_best[w]
            if b < n:
                p *= 1.0 - float(probs[row, b, 2 + 2 * k])  # the next word is not inside this entity
            scores[(tok[a], tok[b - 1] + 1, names[k])] = p
        out.append(replace(src, entity_starts=frozenset(begins), entity_spans=frozenset(scores)))
        span_probs.append(scores)
    return out, span_probs


def _with_tagger_confidence(doc: Document, probs: dict) -> Document:
    """With ``decode.tagger_spans`` the grammar forces each mention's extent and type to one of the tagger's
    spans, so the decoder's steps there have probability 1: the tagger's span probability stands in for them,
    multiplied into each entity's score and into each relation's score for both its arguments."""
    def p(i: int) -> float:
        e = doc.entities[i]
        return probs.get((e.start, e.end, e.type), 1.0)

    ents = [replace(e, score=None if e.score is None else e.score * p(i)) for i, e in enumerate(doc.entities)]
    rels = [replace(r, score=None if r.score is None else r.score * p(r.head) * p(r.tail)) for r in doc.relations]
    return doc.with_annotations(ents, rels)


def _with_anchor_candidates(model, enc, batch, chunk: list[Example], idx: list[int], result: DecodeResult) -> list:
    """Sources carrying the anchor scorer's candidate starts; records predicted anchors and candidates."""
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
