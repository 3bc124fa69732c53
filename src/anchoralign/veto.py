"""The statement veto: a relation classifier fitted after training, on the trained model's frozen encoder, with
sentences that state no relation (``negatives.py``) beside the training sentences.

Training with those sentences (``train.negatives``) teaches the model that negated, denied or merely co-occurring
entities hold no relation, but it also moves the encoder the decoder reads, and CoNLL04 pays for that in RE+
(docs/probe.md). Here nothing the decoder, the tagger or the pair classifier reads changes: a second
``PairClassifier`` (``AnchorHeads.veto``), started from the pair classifier's weights, learns on the frozen
encoder's states which entity pairs the sentence relates, and at decoding (``decode.pair_veto``) a relation whose
type it scores under the veto between the two entities is left out. A model's extractions without the veto are
exactly what they were; with it, relations go (and, under ``decode.entity_threshold``, entities they leave alone).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .anchor_heads import VetoClassifier, VetoEnsemble
from .batching import collate, length_batches, make_examples, pair_tensors
from .negatives import KINDS, contrast_documents, negative_documents
from .types import Document

__all__ = ["VetoReport", "fit_veto"]

log = logging.getLogger(__name__)


@dataclass
class VetoReport:
    documents: int  # training documents read
    negative_counts: dict[str, int]  # sentences that state no relation added, by kind
    pairs: int  # ordered entity pairs per epoch (related and not)
    related: int  # of which the gold relates
    epochs: int
    losses: list[float] = field(default_factory=list)  # mean loss per epoch (averaged over the members)
    member_losses: list[list[float]] = field(default_factory=list)  # each member's, per epoch
    contrasts: int = 0  # training sentences beside a negated clause that reaches none of them, relations kept


def _features(model, docs: Sequence[Document], batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
    """Per batch of ``docs`` (length-bucketed): the frozen encoder's states (float32) and the pair tensors of the
    documents' gold entities; batches without an entity pair are left out."""
    examples = make_examples(model, list(docs), with_targets=False)
    out = []
    for idx in length_batches([len(ex.source.ids) for ex in examples], batch_size):
        chunk = [examples[i] for i in idx]
        pairs = pair_tensors(model, chunk, model.anchor.pair_negatives)
        if pairs["pair_head"].numel() == 0:
            continue
        batch = {k: v.to(model.device) for k, v in collate(model, chunk).items()}
        with torch.no_grad():
            enc = model.encode(batch).float()
        out.append((enc, batch["attention_mask"], {k: v.to(model.device) for k, v in pairs.items()}))
    return out


def fit_veto(model, train_docs: Sequence[Document], negatives: float = 0.5, *, seed: int = 13, epochs: int = 10,
             lr: float = 5e-4, batch_size: int = 32, kinds: Sequence[str] = KINDS, members: int = 1,
             contrasts: float = 0.0,
             progress: Callable[[int, int, float], None] | None = None) -> VetoReport:
    """Fit ``model.heads.veto`` (made here, from the pair classifier's weights) on ``train_docs`` plus
    ``negatives`` × their number of sentences that state no relation, and ``contrasts`` × their number of
    contrasts (``negatives.contrast_documents``: relations kept beside a negation that does not reach them); the
    rest of the model is not touched.
    ``members`` > 1: that many fits with seeds ``seed``, ``seed + 1``, … on the same sentences, their
    probabilities averaged at decoding. ``progress(member, epoch, mean loss)`` (both from 1) is called after each
    epoch of each fit."""
    if model.heads is None or model.heads.pair is None:
        raise ValueError("the veto starts from the pair classifier: train the model with anchor.pair_classifier: true")
    if epochs < 1 or lr <= 0 or batch_size < 1 or members < 1 or contrasts < 0:
        raise ValueError(f"epochs, batch_size and members must be >= 1, lr > 0 and contrasts >= 0, got {epochs}, "
                         f"{batch_size}, {members}, {lr}, {contrasts}")
    neg = negative_documents(train_docs, negatives, seed, kinds)
    log.info("veto: %d sentences that state no relation added to %d training documents (%s)", len(neg.documents),
             len(train_docs), ", ".join(f"{k} {v}" for k, v in sorted(neg.counts.items())))
    contrast_docs = contrast_documents(train_docs, contrasts, seed).documents if contrasts > 0 else []
    if contrasts > 0:
        log.info("veto: %d contrasts added (training sentences beside a negation that reaches none of them)",
                 len(contrast_docs))
    model.eval()
    feats = _features(model, list(train_docs) + neg.documents + contrast_docs, batch_size)
    n_pairs = sum(int(p["pair_head"].numel()) for _, _, p in feats)
    report = VetoReport(len(train_docs), dict(neg.counts), n_pairs,
                        sum(int(p["pair_labels"].any(-1).sum()) for _, _, p in feats), epochs, contrasts=len(contrast_docs))
    if report.related == 0:
        raise ValueError("no gold relation between two entities of the model's schema in the fit documents: "
                         "nothing to fit the veto on")
    heads = []
    for k in range(members):
        report_epoch = None if progress is None else (lambda e, loss, k=k: progress(k + 1, e, loss))
        head, losses = _fit_one(model, feats, n_pairs, seed + k, epochs, lr, report_epoch)
        heads.append(head)
        report.member_losses.append(losses)
    report.losses = [sum(col) / members for col in zip(*report.member_losses, strict=True)]
    model.heads.veto = heads[0] if members == 1 else VetoEnsemble(heads)
    model.anchor.veto_classifier, model.anchor.veto_members = True, members  # the heads share this config
    return report


@torch.random.fork_rng(devices=[])  # the caller's generator is left as it was
def _fit_one(model, feats: list, n_pairs: int, seed: int, epochs: int, lr: float,
             progress: Callable[[int, float], None] | None) -> tuple[VetoClassifier, list[float]]:
    torch.manual_seed(seed)  # the layer's initial weights and its dropout
    head = VetoClassifier(model.hidden_sizes()[0], len(model.schema.entity_types), len(model.schema.relation_types))
    head.pair.load_state_dict(model.heads.pair.state_dict())
    head = head.to(model.device).train()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * len(feats)
    # linear warm-up over a tenth of the steps, then linear decay to 0; not transformers'
    # get_linear_schedule_with_warmup (which starts at 0 and ends one step later): the measured fits used this one
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min((k + 1) / warm, max(0.0, (steps - k) / (steps - warm + 1))))
    order = list(range(len(feats)))
    rng = random.Random(seed)
    losses = []
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        total = 0.0
        for i in order:
            enc, mask, p = feats[i]
            logits = head(enc, mask, p["ent_item"], p["ent_start"], p["ent_end"], p["ent_type"], p["pair_head"],
                          p["pair_tail"])
            loss = F.binary_cross_entropy_with_logits(logits, p["pair_labels"].float(), reduction="sum")
            opt.zero_grad(set_to_none=True)
            (loss / logits.size(0)).backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        losses.append(total / max(1, n_pairs))
        if progress is not None:
            progress(epoch, losses[-1])
    return head.eval(), losses
