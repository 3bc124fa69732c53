"""Exact NER / RE / RE+ scores over token spans: micro, macro over types, and per type. Torch-free.

Definitions (``gold`` and ``pred`` are lists of :class:`Document` aligned by position, same tokens):

* **NER strict** -- a predicted entity is correct when its token boundaries ``[start, end)`` and its type
  equal those of a gold entity in the same document.
* **RE (boundaries)** -- a predicted relation is correct when its relation type and the token boundaries of
  both its arguments equal those of a gold relation in the same document; argument *types* are ignored.
* **RE+ strict** -- RE, and both arguments' entity types match as well.
* **Symmetric relation types** (``Schema.is_symmetric``, e.g. SciERC's Compare and Conjunction) are compared
  without direction: the two arguments are put in a canonical order (the smaller ``(start, end)`` -- for RE+
  ``(start, end, type)`` -- first) on both sides before matching. SpERT orders by start token only; ordering by
  the whole argument also settles two arguments that start on the same token.
* **Sets** -- within one document, gold and predictions are sets of the keys above: a duplicate prediction
  (same key twice) counts once, never as a second false positive.

Counting, per document and per type (an entity's type for NER; the *relation* type for RE and RE+):
``tp`` = keys in gold and prediction, ``fp`` = keys only predicted, ``fn`` = keys only in gold,
``support`` = gold keys = ``tp + fn``. A wrong-type entity is one ``fn`` for the gold type and one ``fp`` for
the predicted type.

From counts: ``P = tp / (tp + fp)``, ``R = tp / (tp + fn)``, ``F1 = 2PR / (P + R)``; each is 0 when its
denominator is 0.

* **micro** -- P, R and F1 from ``tp``, ``fp`` and ``fn`` summed over all types.
* **macro** -- the unweighted mean over types of the per-type P, of the per-type R and of the per-type F1
  (each per-type F1 is computed from that type's own P and R; macro F1 is *not* the F1 of macro P and R).
  The types averaged are those present in gold or in prediction: a type with neither is left out, a type
  only predicted has P = R = F1 = 0 and pulls the mean down. With no type at all every figure is 0. This is
  what SpERT's evaluator computes (sklearn ``precision_recall_fscore_support(average='macro',
  zero_division=0)`` with ``labels`` = the types seen in gold or prediction).

Fold averages (ADE 10-fold cross-validation) are the mean of the per-fold figures, not scores of the pooled
counts; see :func:`average_scores`.

String-level triple scores, for datasets annotated with strings only (WebNLG, WebNLG*, NYT, NYT*), see
:func:`score_triples`: a triple is ``(head string, relation, tail string)``; gold and prediction are sets per
record. *Exact*: a predicted triple is correct when its relation and both entity strings equal a gold
triple's, character for character. *Partial* (the WebNLG*/NYT* convention, whose gold entities are the last
word of the entity only): each entity string is first reduced to its last whitespace-separated word, then
triples are compared exactly (two triples reduced to the same key count once). Gold triples are the source
file's strings (:func:`gold_triples`); predicted triples are sliced from the predicted spans
(:func:`document_triples`), never read from ``meta``, which a prediction may have copied from its gold.

Which of these figures a benchmark reports, and which one selects the dev epoch, is ``protocols.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence

from .errors import InputError
from .schema import Schema
from .types import Document

__all__ = [
    "TASKS",
    "prf",
    "entity_keys",
    "relation_keys",
    "count_by_type",
    "scores_from_counts",
    "score_documents",
    "average_scores",
    "score_triples",
    "document_triples",
    "gold_triples",
    "last_word",
    "format_table",
]

# score-dict key -> the protocol's printed name
TASKS: dict[str, str] = {"ner": "NER strict", "re": "RE (boundaries)", "re_strict": "RE+ strict"}

Counts = dict[str, list[int]]  # type -> [tp, fp, fn]


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; each is 0 when its denominator is 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def entity_keys(doc: Document) -> set[tuple[int, int, str]]:
    """The document's entities as a set of ``(start, end, type)``."""
    return {(e.start, e.end, e.type) for e in doc.entities}


def relation_keys(
    doc: Document, schema: Schema | None = None, *, strict: bool = False, symmetric: Collection[str] = ()
) -> set[tuple]:
    """The document's relations as a set of ``(relation type, head argument, tail argument)``.

    An argument is ``(start, end)``, or ``(start, end, entity type)`` when ``strict`` (RE+). For a symmetric
    relation type (symmetric in ``schema``, or named in ``symmetric``) the two arguments are sorted so that
    direction does not matter.
    """
    keys: set[tuple] = set()
    for r in doc.relations:
        head, tail = doc.entities[r.head], doc.entities[r.tail]
        h: tuple = (head.start, head.end, head.type) if strict else (head.start, head.end)
        t: tuple = (tail.start, tail.end, tail.type) if strict else (tail.start, tail.end)
        sym = r.type in symmetric or (schema is not None and schema.is_symmetric(r.type))
        if sym and t < h:
            h, t = t, h
        keys.add((r.type, h, t))
    return keys


def count_by_type(counts: Counts, gold: set[Hashable], pred: set[Hashable], type_index: int) -> Counts:
    """Add one document's tp/fp/fn per type to ``counts``; a key's type is ``key[type_index]``."""
    for key in gold | pred:
        c = counts.setdefault(key[type_index], [0, 0, 0])  # type: ignore[index]
        if key not in pred:
            c[2] += 1
        elif key in gold:
            c[0] += 1
        else:
            c[1] += 1
    return counts


def scores_from_counts(counts: Mapping[str, Sequence[int]]) -> dict:
    """Micro, macro and per-type scores from per-type ``[tp, fp, fn]`` (types with all zeros are left out)."""
    per_type: dict[str, dict] = {}
    for name in sorted(counts):
        tp, fp, fn = counts[name]
        if tp + fp + fn == 0:
            continue
        p, r, f = prf(tp, fp, fn)
        per_type[name] = {
            "precision": p,
            "recall": r,
            "f1": f,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "support": tp + fn,
        }
    tp, fp, fn = (sum(s[k] for s in per_type.values()) for k in ("tp", "fp", "fn"))
    p, r, f = prf(tp, fp, fn)
    n = len(per_type)
    macro = {
        k: (sum(s[k] for s in per_type.values()) / n if n else 0.0) for k in ("precision", "recall", "f1")
    }
    return {
        "micro": {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn},
        "macro": macro,
        "per_type": per_type,
    }


def _check_aligned(gold: Sequence[Document], pred: Sequence[Document]) -> None:
    if len(gold) != len(pred):
        raise InputError(f"gold has {len(gold)} records but prediction has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gw, pw = g.words, p.words
        if gw != pw:
            at = next(
                (j for j, (a, b) in enumerate(zip(gw, pw, strict=False)) if a != b), min(len(gw), len(pw))
            )
            raise InputError(
                f"gold and prediction tokens differ at token {at} "
                f"(gold {len(gw)} tokens, prediction {len(pw)} tokens)",
                record=i,
            )
        for side, doc in (("gold", g), ("prediction", p)):
            for r in doc.relations:
                if not (0 <= r.head < len(doc.entities) and 0 <= r.tail < len(doc.entities)):
                    raise InputError(
                        f"{side} relation {r} points outside its {len(doc.entities)} entities", record=i
                    )


def score_documents(
    gold: Sequence[Document],
    pred: Sequence[Document],
    schema: Schema | None = None,
    *,
    symmetric: Collection[str] = (),
) -> dict:
    """NER strict, RE (boundaries) and RE+ strict scores of ``pred`` against ``gold`` (aligned by position).

    Returns ``{"ner": S, "re": S, "re_strict": S}`` with ``S = {"micro": {precision, recall, f1, tp, fp, fn},
    "macro": {precision, recall, f1}, "per_type": {type: {precision, recall, f1, tp, fp, fn, support}}}``,
    fractions in [0, 1]. ``schema`` supplies the symmetric relation types (none when omitted), ``symmetric``
    names more (a benchmark protocol's own, e.g. SciERC's Compare and Conjunction). Raises
    :class:`InputError` when the lists differ in length or a record's tokens differ.
    """
    _check_aligned(gold, pred)
    ner: Counts = {}
    re_: Counts = {}
    re_strict: Counts = {}
    for g, p in zip(gold, pred, strict=True):
        count_by_type(ner, entity_keys(g), entity_keys(p), type_index=2)
        count_by_type(
            re_,
            relation_keys(g, schema, symmetric=symmetric),
            relation_keys(p, schema, symmetric=symmetric),
            0,
        )
        count_by_type(
            re_strict,
            relation_keys(g, schema, strict=True, symmetric=symmetric),
            relation_keys(p, schema, strict=True, symmetric=symmetric),
            type_index=0,
        )
    return {
        "ner": scores_from_counts(ner),
        "re": scores_from_counts(re_),
        "re_strict": scores_from_counts(re_strict),
    }


def _is_single(scores: Mapping) -> bool:
    return "micro" in scores


def average_scores(folds: Sequence[Mapping]) -> dict:
    """The mean over folds of each micro and macro precision, recall and F1 (ADE's 10-fold convention).

    Each figure is the arithmetic mean of the per-fold figures (so the mean F1 is not the F1 of the mean P
    and R), not a score of counts pooled over folds; this is how the ADE literature reports cross-validation.
    Accepts a list of :func:`score_documents` results (returns ``{task: {"micro", "macro", "folds"}}``) or a
    list of single score dicts such as :func:`score_triples` results (returns ``{"micro", "folds"}``).
    """
    if not folds:
        raise ValueError("average_scores needs at least one fold")

    def mean_one(items: list[Mapping]) -> dict:
        out: dict = {}
        for avg in ("micro", "macro"):
            if all(avg in s for s in items):
                out[avg] = {
                    k: sum(s[avg][k] for s in items) / len(items) for k in ("precision", "recall", "f1")
                }
        out["folds"] = len(items)
        return out

    if all(_is_single(f) for f in folds):
        return mean_one(list(folds))
    tasks = list(folds[0])
    if any(list(f) != tasks for f in folds):
        raise ValueError(f"every fold must have the same tasks {tasks}")
    return {task: mean_one([f[task] for f in folds]) for task in tasks}


def last_word(entity: str) -> str:
    """The last whitespace-separated word of an entity string ("" for a blank string)."""
    words = entity.split()
    return words[-1] if words else ""


def document_triples(doc: Document) -> set[tuple[str, str, str]]:
    """The document's relations as ``(head text, relation type, tail text)``, texts sliced from ``doc.text``."""
    return {
        (doc.entity_text(doc.entities[r.head]), r.type, doc.entity_text(doc.entities[r.tail]))
        for r in doc.relations
    }


def gold_triples(doc: Document) -> set[tuple[str, str, str]]:
    """A gold document's triples as the source file gave them (``doc.meta["triples"]``, which the CasRel
    reader keeps, including the triples whose strings it could not locate), else :func:`document_triples`.

    Scoring against the source strings keeps the protocol's gold: a triple dropped or an entity widened to
    token boundaries while reading still counts as the annotators wrote it.
    """
    source = doc.meta.get("triples")
    if source is None:
        return document_triples(doc)
    return {(str(h), str(r), str(t)) for h, r, t in source}


def score_triples(
    gold: Sequence[set[tuple[str, str, str]]],
    pred: Sequence[set[tuple[str, str, str]]],
    partial: bool = False,
) -> dict:
    """Micro P/R/F1 of string triples, exact or partial (last word of each entity); see the module docstring.

    ``gold[i]`` and ``pred[i]`` are the triples of record ``i``. Returns ``{"micro": {precision, recall, f1,
    tp, fp, fn}}``.
    """
    if len(gold) != len(pred):
        raise InputError(f"gold has {len(gold)} records but prediction has {len(pred)}")
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        if partial:
            g = {(last_word(h), r, last_word(t)) for h, r, t in g}
            p = {(last_word(h), r, last_word(t)) for h, r, t in p}
        else:
            g, p = set(g), set(p)
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    precision, recall, f1 = prf(tp, fp, fn)
    return {"micro": {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}}


def _rows(name: str, s: Mapping) -> Iterable[tuple[str, Mapping]]:
    folds = s.get("folds")
    suffix = f", mean over {folds} folds" if folds else ""
    if "micro" in s:
        micro = dict(s["micro"])
        if "tp" in micro and "fn" in micro:
            micro["support"] = micro["tp"] + micro["fn"]
        yield f"{name} (micro{suffix})", micro
    if "macro" in s:
        yield f"{name} (macro over types{suffix})", s["macro"]
    for t, v in s.get("per_type", {}).items():
        yield f"{name} [type {t}]", v


def format_table(scores: Mapping, protocol_name: str) -> str:
    """A plain-text table of scores in percent; every row names its protocol (e.g. "RE+ strict (micro)").

    ``scores`` is a :func:`score_documents` or :func:`average_scores` result, or a single score dict (such as
    a :func:`score_triples` result), whose rows are then named ``protocol_name``.
    """
    if _is_single(scores):
        blocks = [list(_rows(protocol_name, scores))]
    else:
        blocks = [list(_rows(TASKS.get(task, task), s)) for task, s in scores.items()]
    width = max([len("protocol")] + [len(label) for rows in blocks for label, _ in rows])
    cols = ("P %", "R %", "F1 %", "tp", "fp", "fn", "support")
    lines = [f"Scores: {protocol_name}", f"{'protocol':<{width}}" + "".join(f"{c:>9}" for c in cols)]
    for rows in blocks:
        lines.append("")
        for label, v in rows:
            cells = [f"{100 * v[k]:9.2f}" for k in ("precision", "recall", "f1")]
            cells += [f"{v[k]:9d}" if k in v else "" for k in ("tp", "fp", "fn", "support")]
            lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines) + "\n"
