"""Decode a set of gold documents and score the predictions (the shape of ``score --json`` plus counts)."""

from __future__ import annotations

from collections.abc import Callable

from .decode import DecodeConfig, predict
from .linearize import groups_of
from .metrics import score_documents
from .protocols import Protocol, get_protocol
from .schema import Schema
from .types import Document

__all__ = ["evaluate_documents"]


def evaluate_documents(
    model,
    gold: list[Document],
    schema: Schema | None,
    cfg: DecodeConfig,
    progress: Callable[[int], None] | None = None,
    protocol: Protocol | str = "micro",
) -> tuple[dict, list[Document]]:
    """Predict on ``gold`` and return ``({"protocol", "main", "figures", "ner", "re", "re_strict",
    "malformed", "malformed_by_kind", "constraint_rejections", ...}, predictions)``.

    ``figures`` is the ``protocol``'s result (``Protocol.score``: every figure it names, fractions),
    ``protocol`` its name and ``main`` its dev-selection figure; ``ner``, ``re`` and ``re_strict`` are the
    full token-span scores of ``metrics.score_documents`` (micro, macro and per type) whatever the protocol.
    """
    protocol = get_protocol(protocol)
    result = predict(model, gold, cfg, progress=progress)
    figures = protocol.score(gold, result.documents, schema)
    scores: dict = {"protocol": protocol.name, "main": figures["main"], "figures": figures}
    scores.update(score_documents(gold, result.documents, schema, symmetric=protocol.symmetric))
    scores["malformed"] = result.malformed
    scores["malformed_by_kind"] = dict(sorted(result.errors.items()))
    scores["constraint_rejections"] = result.rejected
    scores["relations_below_threshold"] = result.below_threshold  # left out by decode.relation_threshold
    scores["entities_below_threshold"] = result.entities_below_threshold  # left out by decode.entity_threshold
    if result.pair_added or result.pair_replaced or result.pair_vetoed:  # decode.pair_relations, pair_veto
        scores["pair_relations"] = {"added": result.pair_added, "replaced": result.pair_replaced,
                                    "vetoed": result.pair_vetoed}
    scores["violations"] = violations(result.documents, schema)
    if result.anchor_spans is not None:
        grouping = getattr(getattr(model, "config", None), "grouping", "anchor")
        scores["anchor_scorer"] = anchor_scores(gold, result.anchor_spans, result.anchor_candidates or [], grouping)
    if result.tagger_spans is not None:
        scores["entity_tagger"] = tagger_scores(gold, result.tagger_spans)
    return scores, result.documents


def tagger_scores(gold: list[Document], spans: list[list[tuple[int, int, str]]]) -> dict:
    """The entity tagger's typed spans on their own, as NER strict micro P/R/F1 (what ``decode.tagger_spans``
    hands the decoder)."""
    tp = fp = fn = 0
    for doc, pred in zip(gold, spans, strict=True):
        g = {(e.start, e.end, e.type) for e in doc.entities}
        p = set(pred)
        tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "tp": tp, "fp": fp, "fn": fn}


def violations(docs: list[Document], schema: Schema | None) -> dict:
    """What the anchor-guided constraint rules out, counted in predictions: relations whose (head type,
    relation, tail type) is not among the schema's signatures (both directions for symmetric relations), and
    spans predicted with more than one type."""
    outside = two_types = 0
    for doc in docs:
        if schema is not None and schema.signatures:
            for r in doc.relations:
                h, t = doc.entities[r.head], doc.entities[r.tail]
                outside += not schema.allows(h.type, r.type, t.type)
        spans: dict[tuple[int, int], set[str]] = {}
        for e in doc.entities:
            spans.setdefault(e.span, set()).add(e.type)
        two_types += sum(1 for types in spans.values() if len(types) > 1)
    return {"relations_outside_signatures": outside, "spans_with_two_types": two_types}


def anchor_scores(
    gold: list[Document], predicted: list[list[tuple[int, int]]], candidates: list[list[int]], grouping: str = "anchor"
) -> dict:
    """The anchor scorer against gold anchors (DESIGN.md §2): span P/R/F1 of its BIO output, and the recall
    of the candidate starts handed to the constraint (a gold anchor missed there cannot open a group)."""
    tp = fp = fn = hit = total = 0
    for doc, pred, cand in zip(gold, predicted, candidates or [[]] * len(gold), strict=True):
        spans = {doc.entities[g.anchor].span for g in groups_of(doc, grouping)}
        p = set(pred)
        tp += len(spans & p)
        fp += len(p - spans)
        fn += len(spans - p)
        total += len(spans)
        starts = set(cand)
        hit += sum(1 for s, _ in spans if s in starts)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "gold_anchors": total,
            "candidate_recall": hit / total if total else 0.0}
