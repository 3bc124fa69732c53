"""How far the scores can be trusted: expected calibration error, reliability bins, precision and recall by
threshold, and a temperature fitted on a dev split. Torch-free.

A prediction's score (``linearize.events_to_document``) is the probability the decoder gave to the ids that
wrote it. Here each predicted entity and relation is paired with whether it is correct (NER strict: span and
type; RE+ strict: both arguments' spans and types and the relation type). A temperature ``T`` rescales a score
``p`` to ``p ** (1 / T)``: the log-probability divided by ``T``, as temperature scaling divides logits, and
monotone, so it changes calibration but never the ranking or precision/recall at a matched threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .types import Document

__all__ = ["Scored", "scored_predictions", "ece", "reliability", "fit_temperature", "temper", "threshold_table"]


@dataclass(frozen=True)
class Scored:
    score: float
    correct: bool


def _entity_key(doc: Document, i: int) -> tuple[int, int, str]:
    e = doc.entities[i]
    return (e.start, e.end, e.type)


def scored_predictions(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, list[Scored]]:
    """``{"entity": [...], "relation": [...]}``: every scored prediction with its correctness."""
    out: dict[str, list[Scored]] = {"entity": [], "relation": []}
    for g, p in zip(gold, pred, strict=True):
        g_ents = {(e.start, e.end, e.type) for e in g.entities}
        g_rels = {(_entity_key(g, r.head), _entity_key(g, r.tail), r.type) for r in g.relations}
        for e in p.entities:
            if e.score is not None:
                out["entity"].append(Scored(e.score, (e.start, e.end, e.type) in g_ents))
        for r in p.relations:
            if r.score is not None:
                key = (_entity_key(p, r.head), _entity_key(p, r.tail), r.type)
                out["relation"].append(Scored(r.score, key in g_rels))
    return out


def reliability(items: Sequence[Scored], bins: int = 10) -> list[dict]:
    """Equal-width bins over [0, 1]: count, mean score and accuracy of each non-empty bin."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [x for x in items if lo <= x.score < hi or (b == bins - 1 and x.score == 1.0)]
        if inside:
            rows.append({"low": lo, "high": hi, "count": len(inside),
                         "mean_score": sum(x.score for x in inside) / len(inside),
                         "accuracy": sum(x.correct for x in inside) / len(inside)})
    return rows


def ece(items: Sequence[Scored], bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - mean score| over the bins."""
    if not items:
        return 0.0
    return sum(r["count"] * abs(r["accuracy"] - r["mean_score"]) for r in reliability(items, bins)) / len(items)


def temper(items: Iterable[Scored], t: float) -> list[Scored]:
    return [Scored(x.score ** (1 / t) if x.score > 0 else 0.0, x.correct) for x in items]


def _nll(items: Sequence[Scored], t: float) -> float:
    eps = 1e-9
    total = 0.0
    for x in temper(items, t):
        p = min(max(x.score, eps), 1 - eps)
        total -= math.log(p) if x.correct else math.log(1 - p)
    return total / max(1, len(items))


def fit_temperature(items: Sequence[Scored], low: float = 0.05, high: float = 20.0, steps: int = 400) -> float:
    """The temperature minimising the negative log-likelihood of correctness (a grid over log T, then a
    finer grid around the best point); 1.0 when there is nothing to fit."""
    if not items or all(x.correct for x in items) or not any(x.correct for x in items):
        return 1.0
    grid = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / steps) for i in range(steps + 1)]
    best = min(grid, key=lambda t: _nll(items, t))
    fine = [best * math.exp(0.02 * (i - 50) / 50) for i in range(101)]
    return min(fine, key=lambda t: _nll(items, t))


def threshold_table(gold: Sequence[Document], pred: Sequence[Document], thresholds: Sequence[float],
                    temperatures: dict[str, float] | None = None) -> list[dict]:
    """NER strict and RE+ strict micro precision/recall/F1 when predictions under each threshold are left out
    by the library's rule (``Extraction.filtered``: relations by their score; entities by theirs unless a kept
    relation needs them), scores first tempered by ``temperatures`` ({"entity": T, "relation": T})."""
    te = (temperatures or {}).get("entity", 1.0)
    tr = (temperatures or {}).get("relation", 1.0)
    g_ents = [{(e.start, e.end, e.type) for e in g.entities} for g in gold]
    g_rels = [{(_entity_key(g, r.head), _entity_key(g, r.tail), r.type) for r in g.relations} for g in gold]
    rows = []
    for th in thresholds:
        counts = {"ner": [0, 0, 0], "re_strict": [0, 0, 0]}  # tp, predicted, gold
        for k, p in enumerate(pred):
            rels = [r for r in p.relations if (r.score or 0.0) ** (1 / tr) >= th]
            needed = {i for r in rels for i in (r.head, r.tail)}
            ents = {(e.start, e.end, e.type) for i, e in enumerate(p.entities)
                    if (e.score or 0.0) ** (1 / te) >= th or i in needed}
            rk = {(_entity_key(p, r.head), _entity_key(p, r.tail), r.type) for r in rels}
            for name, got, want in (("ner", ents, g_ents[k]), ("re_strict", rk, g_rels[k])):
                c = counts[name]
                c[0] += len(got & want)
                c[1] += len(got)
                c[2] += len(want)
        row: dict = {"threshold": th}
        for name, (tp, npred, ngold) in counts.items():
            prec = tp / npred if npred else 0.0
            rec = tp / ngold if ngold else 0.0
            row[name] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                         "predicted": npred}
        rows.append(row)
    return rows
