"""AnchorAlign's own heads (DESIGN.md §2 and §5): the anchor scorer and the cross-task alignment space.

- Anchor scorer: BIO tagging of words on the encoder states of their first pieces (3 classes: outside,
  begins an anchor, inside one). At inference, words whose P(B) passes ``threshold``, plus the ``top_k`` most
  likely, are the anchor candidates that the generation constraint lets an anchor group open at.
- Alignment: two projection heads map an anchor's representation (the mean of the encoder states over its
  span) and a relation's representation (the decoder state after reading its relation label, i.e. at the
  position whose next target id is ``<tail>``) into one space; a symmetric InfoNCE loss with temperature
  ``temperature`` pulls every relation toward its own anchor and away from the batch's other anchors, and
  every anchor toward its relations (several positives) and away from the other relations.
- Pair classifier (``anchor.pair_classifier``; not in the paper, see docs/method.md): a relation-type
  classifier over ordered pairs of entity mentions, each pair read as [head span; tail span; the text between
  them; the two types] from the encoder states (span means), trained with binary cross-entropy on every
  ordered pair of gold entities (SpERT's relation classifier, on the shared encoder). At decoding
  (``decode.pair_relations``) it adds the relations between the decoded entities that the decoder left out.
- Span classifier (``anchor.span_classifier``; not in the paper, see docs/method.md): an entity-type classifier
  over every span of up to ``span_max_width`` tokens, each read as [first piece; last piece; span mean; a width
  embedding] (SpERT's entity classifier, on the shared encoder), trained with cross-entropy on the gold spans
  and a capped sample of the others. With ``decode.span_source: classifier`` its spans, not the BIO tagger's,
  are the mentions the grammar allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AnchorConfig", "AnchorHeads", "PairClassifier", "SpanClassifier", "VetoClassifier", "VetoEnsemble", "alignment_loss", "bio_spans", "typed_bio_spans",
           "typed_bio_viterbi"]

OUTSIDE, BEGIN, INSIDE = 0, 1, 2


@dataclass
class AnchorConfig:
    """Switches and weights of AnchorAlign's components; saved with the model."""

    scorer: bool = True  # train the anchor scorer (and let the constraint use its candidates)
    lambda_anchor: float = 0.5
    alignment: bool = True  # train the alignment space
    lambda_align: float = 0.1
    temperature: float = 0.1
    proj_dim: int = 128
    threshold: float = 0.2  # P(B) above which a word starts an anchor candidate
    top_k: int = 2  # the k most likely anchor starts are always candidates
    # An auxiliary typed-BIO entity tagger on the encoder (not in the paper; see docs/method.md): it makes
    # the encoder's states entity-aware, which the copy attention and the anchor scorer read.
    entity_tagging: bool = True
    lambda_entity: float = 0.5
    # A relation classifier over ordered pairs of entity mentions (PairClassifier); decode.pair_relations
    # decides what its scores do at inference
    pair_classifier: bool = False
    lambda_pair: float = 1.0
    pair_negatives: int = 100  # at most this many unrelated ordered pairs per training document
    # An entity-type classifier over token spans (SpanClassifier); decode.span_source: classifier reads its spans
    span_classifier: bool = False
    lambda_span: float = 1.0
    span_max_width: int = 8  # tokens; longer gold entities are not learned (counted in the training log)
    span_negatives: int = 100  # at most this many non-entity spans per training document
    # A second pair classifier that only checks relations (decode.pair_veto), fitted after training on the frozen
    # encoder with sentences that state no relation (anchoralign.veto; not trained with the rest)
    veto_classifier: bool = False
    veto_members: int = 1  # veto classifiers fitted with consecutive seeds; their probabilities are averaged

    def validate(self) -> None:
        for name in ("lambda_anchor", "lambda_align", "lambda_entity", "lambda_pair", "lambda_span"):
            if getattr(self, name) < 0:
                raise ValueError(f"anchor.{name} must be >= 0, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"anchor.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"anchor.threshold must be in [0, 1], got {self.threshold}")
        if self.pair_negatives < 0 or self.span_negatives < 0:
            raise ValueError(f"anchor.pair_negatives and anchor.span_negatives must be >= 0, got "
                             f"{self.pair_negatives}, {self.span_negatives}")
        if self.veto_members < 1:
            raise ValueError(f"anchor.veto_members must be >= 1, got {self.veto_members}")
        if self.span_max_width < 1:
            raise ValueError(f"anchor.span_max_width must be >= 1, got {self.span_max_width}")
        if self.top_k < 0 or self.proj_dim < 1:
            raise ValueError(f"anchor.top_k must be >= 0 and anchor.proj_dim >= 1, got {self.top_k}, {self.proj_dim}")


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.GELU(), nn.Linear(hidden, out))


class AnchorHeads(nn.Module):
    """The anchor scorer and the two projection heads of the alignment space."""

    def __init__(self, enc_hidden: int, dec_hidden: int, cfg: AnchorConfig, n_entity_types: int = 0,
                 n_relation_types: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.scorer = _mlp(enc_hidden, enc_hidden, 3) if cfg.scorer else None
        self.entity_tagger = (
            _mlp(enc_hidden, enc_hidden, 1 + 2 * n_entity_types) if cfg.entity_tagging and n_entity_types else None
        )
        self.anchor_proj = _mlp(enc_hidden, enc_hidden, cfg.proj_dim) if cfg.alignment else None
        self.relation_proj = _mlp(dec_hidden, dec_hidden, cfg.proj_dim) if cfg.alignment else None
        self.pair = (PairClassifier(enc_hidden, n_entity_types, n_relation_types)
                     if cfg.pair_classifier and n_entity_types and n_relation_types else None)
        self.span = (SpanClassifier(enc_hidden, n_entity_types, cfg.span_max_width)
                     if cfg.span_classifier and n_entity_types else None)
        self.veto: nn.Module | None = None
        if cfg.veto_classifier and n_entity_types and n_relation_types:
            self.veto = (VetoClassifier(enc_hidden, n_entity_types, n_relation_types) if cfg.veto_members == 1 else
                         VetoEnsemble([VetoClassifier(enc_hidden, n_entity_types, n_relation_types)
                                       for _ in range(cfg.veto_members)]))

    def span_loss(self, enc: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of each sampled span's class (0: not an entity, 1 + k: entity type k), averaged over
        spans (0 for a batch without spans, still through the head's parameters)."""
        assert self.span is not None
        logits = self.span(enc, batch["span_item"], batch["span_start"], batch["span_end"], batch["span_width"])
        if logits.size(0) == 0:
            return logits.sum()
        return F.cross_entropy(logits, batch["span_label"])

    def pair_loss(self, enc: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Binary cross-entropy of each ordered gold-entity pair's relation types (multi-hot), summed over types
        and averaged over pairs (0 for a batch without pairs, still through the head's parameters)."""
        assert self.pair is not None
        logits = self.pair(enc, batch["ent_item"], batch["ent_start"], batch["ent_end"], batch["ent_type"],
                           batch["pair_head"], batch["pair_tail"])  # (Np, R)
        loss = F.binary_cross_entropy_with_logits(logits, batch["pair_labels"].float(), reduction="sum")
        return loss / max(1, logits.size(0))

    def tag_logits(self, enc: torch.Tensor, word_pos: torch.Tensor) -> torch.Tensor:
        """BIO logits per word (B, W, 3) from the encoder states (B, L, H) at each word's first piece."""
        assert self.scorer is not None
        idx = word_pos[..., None].expand(-1, -1, enc.size(-1))  # (B, W, H)
        return self.scorer(enc.gather(1, idx).float())

    def entity_loss(self, enc: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the typed BIO entity tags (O, then B/I per type) of each word."""
        assert self.entity_tagger is not None
        idx = batch["word_pos"][..., None].expand(-1, -1, enc.size(-1))  # (B, W, H)
        logits = self.entity_tagger(enc.gather(1, idx).float())  # (B, W, 1 + 2T)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["entity_tags"].reshape(-1), ignore_index=-100)

    def scorer_loss(self, enc: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.tag_logits(enc, batch["word_pos"])  # (B, W, 3)
        return F.cross_entropy(logits.reshape(-1, 3), batch["anchor_tags"].reshape(-1), ignore_index=-100)

    def align_loss(self, enc: torch.Tensor, dec: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.anchor_proj is not None and self.relation_proj is not None
        if batch["anchor_item"].numel() < 2 or batch["rel_item"].numel() == 0:
            return enc.new_zeros(()).float()  # no negatives in this batch
        # mean of encoder states over each anchor's pieces, via prefix sums: (Na, H)
        csum = F.pad(enc.float().cumsum(1), (0, 0, 1, 0))  # (B, L+1, H)
        item, s, e = batch["anchor_item"], batch["anchor_start"], batch["anchor_end"]
        anchors = (csum[item, e] - csum[item, s]) / (e - s).clamp_min(1)[:, None].float()
        relations = dec[batch["rel_item"], batch["rel_pos"]].float()  # (Nr, H)
        return alignment_loss(self.anchor_proj(anchors), self.relation_proj(relations), batch["rel_anchor"],
                              self.cfg.temperature)


class PairClassifier(nn.Module):
    """Relation-type logits (Np, R) for ordered pairs of entity mentions given as piece spans ``[start, end)`` of
    the encoder states. A pair reads the mean of each span, the mean of the pieces between the two (zeros when
    they touch or overlap) and an embedding of each entity's type."""

    TYPE_DIM = 25

    def __init__(self, hidden: int, n_entity_types: int, n_relation_types: int) -> None:
        super().__init__()
        self.type_embedding = nn.Embedding(n_entity_types, self.TYPE_DIM)
        self.mlp = _mlp(3 * hidden + 2 * self.TYPE_DIM, hidden, n_relation_types)

    def forward(self, enc: torch.Tensor, ent_item: torch.Tensor, ent_start: torch.Tensor, ent_end: torch.Tensor,
                ent_type: torch.Tensor, head: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
        csum = F.pad(enc.float().cumsum(1), (0, 0, 1, 0))  # (B, L+1, H): span sums by two lookups

        def mean(item: torch.Tensor, s: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
            return (csum[item, e] - csum[item, s]) / (e - s).clamp_min(1)[:, None].float()

        ents = mean(ent_item, ent_start, ent_end)  # (Ne, H)
        head_first = ent_start[head] <= ent_start[tail]
        lo = torch.where(head_first, ent_end[head], ent_end[tail])  # end of the earlier mention
        hi = torch.maximum(torch.where(head_first, ent_start[tail], ent_start[head]), lo)  # start of the later one
        between = mean(ent_item[head], lo, hi)  # zeros when hi == lo
        types = self.type_embedding(ent_type)
        return self.mlp(torch.cat([ents[head], ents[tail], between, types[head], types[tail]], dim=-1))


class VetoClassifier(nn.Module):
    """The statement veto's classifier (``anchoralign.veto``): one more transformer layer over the frozen encoder's
    states, then a ``PairClassifier``. The layer is pre-norm with its two output projections zeroed at the start,
    so before fitting it passes the states through unchanged and the classifier, copied from the pair classifier,
    scores as that one does; fitting lets the layer carry what the sentence says around the pair (a denial before
    it, a negation between) to the states the classifier reads."""

    def __init__(self, hidden: int, n_entity_types: int, n_relation_types: int) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(hidden, max(1, hidden // 64), 2 * hidden, dropout=0.1,
                                                activation="gelu", batch_first=True, norm_first=True)
        nn.init.zeros_(self.layer.self_attn.out_proj.weight)
        nn.init.zeros_(self.layer.self_attn.out_proj.bias)
        nn.init.zeros_(self.layer.linear2.weight)
        nn.init.zeros_(self.layer.linear2.bias)
        self.pair = PairClassifier(hidden, n_entity_types, n_relation_types)

    def forward(self, enc: torch.Tensor, mask: torch.Tensor, ent_item: torch.Tensor, ent_start: torch.Tensor,
                ent_end: torch.Tensor, ent_type: torch.Tensor, head: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
        """``mask`` (B, L): the attention mask (1: a piece, 0: padding)."""
        states = self.layer(enc.float(), src_key_padding_mask=~mask.bool())
        return self.pair(states, ent_item, ent_start, ent_end, ent_type, head, tail)


class VetoEnsemble(nn.Module):
    """Several ``VetoClassifier`` fits (``anchor.veto_members``); the logit of their mean probability."""

    def __init__(self, members: list[VetoClassifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(*args).float().sigmoid() for m in self.members]).mean(0)
        return torch.logit(probs, eps=1e-7)


class SpanClassifier(nn.Module):
    """Entity-type logits (Ns, 1 + T; class 0: not an entity) for spans given as piece spans ``[start, end)`` of
    the encoder states with their width in tokens: [first piece; last piece; mean of the span; width embedding]."""

    WIDTH_DIM = 25

    def __init__(self, hidden: int, n_entity_types: int, max_width: int) -> None:
        super().__init__()
        self.width_embedding = nn.Embedding(max_width + 1, self.WIDTH_DIM)
        self.mlp = _mlp(3 * hidden + self.WIDTH_DIM, hidden, 1 + n_entity_types)

    def forward(self, enc: torch.Tensor, item: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                width: torch.Tensor) -> torch.Tensor:
        enc = enc.float()
        csum = F.pad(enc.cumsum(1), (0, 0, 1, 0))  # (B, L+1, H)
        mean = (csum[item, end] - csum[item, start]) / (end - start).clamp_min(1)[:, None].float()
        width = width.clamp_max(self.width_embedding.num_embeddings - 1)
        return self.mlp(torch.cat([enc[item, start], enc[item, end - 1], mean, self.width_embedding(width)], -1))


def alignment_loss(anchors: torch.Tensor, relations: torch.Tensor, owner: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between anchors (Na, D) and relations (Nr, D); ``owner[r]`` is relation r's anchor."""
    a = F.normalize(anchors, dim=-1)
    r = F.normalize(relations, dim=-1)
    logits = r @ a.T / temperature  # (Nr, Na)
    rel_to_anchor = F.cross_entropy(logits, owner)
    positive = owner[None, :] == torch.arange(a.size(0), device=a.device)[:, None]  # (Na, Nr)
    has_pos = positive.any(1)
    at = logits.T  # (Na, Nr)
    pos_lse = torch.logsumexp(at.masked_fill(~positive, float("-inf")), dim=1)
    anchor_to_rel = -(pos_lse - torch.logsumexp(at, dim=1))[has_pos].mean()
    return (rel_to_anchor + anchor_to_rel) / 2


def bio_spans(tags: list[int]) -> list[tuple[int, int]]:
    """Word spans ``[s, e)`` from a BIO tag sequence (an I without a B starts a span)."""
    return [(a, b) for a, b, _ in typed_bio_spans(tags)]  # O, B, I = 0, 1, 2 is the one-type case


def typed_bio_spans(tags: list[int]) -> list[tuple[int, int, int]]:
    """Typed word spans ``(s, e, k)`` from the entity tagger's tags (0: outside, 1 + 2k: begins type k, 2 + 2k:
    inside type k). An I that does not continue an open span of its type starts a span of its own."""
    spans, start, kind = [], None, -1
    for i, t in enumerate(tags + [OUTSIDE]):
        k = (t - 1) // 2
        if not (t > 0 and t % 2 == 0 and start is not None and k == kind):  # anything but a continuation
            if start is not None:
                spans.append((start, i, kind))
                start = None
            if t > 0:
                start, kind = i, k
    return spans


def typed_bio_viterbi(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The most probable *valid* typed BIO sequence per row (B, W) under per-word log-probabilities (B, W, 1 + 2T)
    (0: outside, 1 + 2k: begins type k, 2 + 2k: inside type k): an inside tag of type k only after a begin or
    inside tag of type k, never first. ``mask`` (B, W) marks the real words (each row's words come first);
    padding gets tag 0. Unlike a per-word argmax, a span cannot change type midway or start with an inside tag."""
    b, w, c = log_probs.shape
    lp = log_probs.float()
    if w == 0:
        return torch.zeros(b, 0, dtype=torch.long, device=lp.device)
    inside = torch.zeros(c, dtype=torch.bool, device=lp.device)
    inside[2::2] = True
    allowed = ~inside[None, :].expand(c, c).clone()  # (prev, cur): anything may follow anything but an inside tag
    for k in range(2, c, 2):
        allowed[k - 1, k] = allowed[k, k] = True  # inside k after begin k or inside k
    neg = torch.finfo(torch.float32).min / 4
    trans = torch.where(allowed, 0.0, neg)
    score = torch.where(inside, neg, lp[:, 0])  # (B, C)
    back = []
    for i in range(1, w):
        cand = score[:, :, None] + trans  # (B, prev, cur)
        best, arg = cand.max(1)
        step = mask[:, i, None]
        score = torch.where(step, best + lp[:, i], score)  # past a row's last word its score carries over
        back.append(torch.where(step, arg, torch.arange(c, device=lp.device)))  # and points to itself
    tags = torch.empty(b, w, dtype=torch.long, device=lp.device)
    last = score.argmax(-1)
    tags[:, w - 1] = last
    for i in range(w - 1, 0, -1):
        last = back[i - 1].gather(1, last[:, None]).squeeze(1)
        tags[:, i - 1] = last
    return tags.masked_fill(~mask, 0)

