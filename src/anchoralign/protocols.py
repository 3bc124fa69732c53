"""Each benchmark's scoring protocol, as the literature reports it, and the figure that selects the dev epoch.

A :class:`Protocol` names its figures and computes them with ``metrics.py``; it does not define a metric. A
result is a flat dict of fractions in [0, 1]: ``{"protocol": name, "main": F1, "ner": F1, "ner_precision":
P, "ner_recall": R, ...}``, one ``key`` / ``key_precision`` / ``key_recall`` triple per task of the protocol.
``main`` is a copy of the figure named by ``select_key`` (the protocol's relation figure), the one training
maximises on the dev set and the one a results table leads with. Torch-free.

* ``micro`` -- CoNLL04, Chinese Literature, own data: NER strict, RE (boundaries), RE+ strict, micro;
  main = RE+ strict.
* ``ade`` -- ADE, one fold: NER strict and RE+ strict, macro over types; main = RE+ strict. The literature
  reports the mean over the 10 folds: :func:`average_folds`.
* ``scierc`` -- SciERC (sentence and document level): NER strict, RE (boundaries), RE+ strict, micro, with
  Compare and Conjunction compared without direction; main = RE+ strict.
* ``webnlg`` -- WebNLG: triple F1 on exact entity strings (main), and NER strict micro on the located
  mentions.
* ``webnlg_star`` -- WebNLG*: triple F1 on the last word of each entity (main), and NER strict micro.

The definitions of NER strict, RE (boundaries), RE+ strict, micro, macro and string triples are in
``metrics.py``; docs/protocols.md gives the sources.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .errors import InputError
from .metrics import document_triples, gold_triples, score_documents, score_triples
from .schema import Schema
from .types import Document

__all__ = [
    "Task",
    "Protocol",
    "PROTOCOLS",
    "SCIERC_SYMMETRIC",
    "get_protocol",
    "average_folds",
    "format_folds",
]

# SciERC's symmetric relation types (Luan et al. 2018; SpERT's scierc_types.json marks the same two): the
# protocol holds them itself, so a schema without the flags (one learned from data) scores SciERC the same way
SCIERC_SYMMETRIC = frozenset({"Compare", "Conjunction"})

PRF = dict[str, float]  # {"precision", "recall", "f1"}
# (gold, pred, schema, symmetric relation types) -> {task key: {"precision", "recall", "f1"}}
Compute = Callable[[Sequence[Document], Sequence[Document], Schema | None, frozenset[str]], dict[str, PRF]]


@dataclass(frozen=True)
class Task:
    """One scored task of a protocol: its figure key (F1; P and R are ``key_precision``, ``key_recall``)
    and its printed name, which says the matching rule and the averaging."""

    key: str
    label: str


@dataclass(frozen=True)
class Protocol:
    """A benchmark's scorer: named tasks, the figure that selects the dev epoch, and how to compute them."""

    name: str
    description: str
    tasks: tuple[Task, ...]
    select_key: str  # the F1 figure copied to "main": the protocol's relation figure
    compute: Compute
    # relation types compared without direction besides the schema's symmetric ones
    symmetric: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.select_key not in {t.key for t in self.tasks}:
            raise ValueError(
                f"protocol {self.name!r}: select_key {self.select_key!r} is not one of its tasks"
            )

    def __str__(self) -> str:
        return self.description

    @property
    def figures(self) -> list[str]:
        """Every figure key of a result but ``protocol`` and ``main``, in print order."""
        return [k for t in self.tasks for k in (t.key, f"{t.key}_precision", f"{t.key}_recall")]

    def label(self, key: str) -> str:
        """The printed name of a figure key (``main`` names the figure it copies)."""
        if key == "main":
            return f"main = {self.label(self.select_key)}"
        for t in self.tasks:
            for suffix, what in (("", "F1"), ("_precision", "P"), ("_recall", "R")):
                if key == t.key + suffix:
                    return f"{t.label} {what}"
        raise KeyError(key)

    def score(self, gold: Sequence[Document], pred: Sequence[Document], schema: Schema | None = None) -> dict:
        """``{"protocol", "main", <every figure>}`` of ``pred`` against ``gold`` (aligned by position)."""
        by_task = self.compute(gold, pred, schema, self.symmetric)
        out: dict = {"protocol": self.name, "main": by_task[self.select_key]["f1"]}
        for t in self.tasks:
            prf = by_task[t.key]
            out[t.key] = prf["f1"]
            out[f"{t.key}_precision"] = prf["precision"]
            out[f"{t.key}_recall"] = prf["recall"]
        return out

    def format(self, result: Mapping, title: str = "", std: Mapping | None = None) -> str:
        """A plain-text table of a result in percent: the protocol, one row per task (P, R, F1), the main
        figure marked; with ``std`` (a :func:`average_folds` result's), each cell is ``mean ± std``."""
        rows = [(f"{t.label} [{t.key}]", t.key) for t in self.tasks]
        width = max(len("figure"), *(len(r) for r, _ in rows))

        def cell(key: str) -> str:
            text = f"{100 * result[key]:.2f}"
            return f"{text} ± {100 * std[key]:.2f}" if std is not None else text

        cells = {key: [cell(key + s) for s in ("_precision", "_recall", "")] for _, key in rows}
        cw = max(8, *(len(c) for cs in cells.values() for c in cs))
        lines = [f"Protocol {self.name}: {self.description}"] + ([title] if title else [])
        lines.append(f"{'figure':<{width}}" + "".join(f"  {h:>{cw}}" for h in ("P %", "R %", "F1 %")))
        for label, key in rows:
            mark = "  <- main, selects the dev epoch" if key == self.select_key else ""
            lines.append(f"{label:<{width}}" + "".join(f"  {c:>{cw}}" for c in cells[key]) + mark)
        return "\n".join(lines) + "\n"


def _pick(scores: Mapping, tasks: Sequence[str], average: str) -> dict[str, PRF]:
    return {t: {k: scores[t][average][k] for k in ("precision", "recall", "f1")} for t in tasks}


def _spans(tasks: tuple[str, ...], average: str) -> Compute:
    """Token-span tasks (``ner``, ``re``, ``re_strict`` of ``metrics.score_documents``) at one averaging."""

    def compute(gold, pred, schema, symmetric) -> dict[str, PRF]:
        return _pick(score_documents(gold, pred, schema, symmetric=symmetric), tasks, average)

    return compute


def _triples(partial: bool) -> Compute:
    """String triples (exact, or the last word of each entity when ``partial``) and NER strict micro."""

    def compute(gold, pred, schema, symmetric) -> dict[str, PRF]:
        # score_documents first: it checks that the records align (same count, same tokens)
        out = _pick(score_documents(gold, pred, schema, symmetric=symmetric), ("ner",), "micro")
        micro = score_triples([gold_triples(d) for d in gold], [document_triples(d) for d in pred], partial)
        out["triples"] = {k: micro["micro"][k] for k in ("precision", "recall", "f1")}
        return out

    return compute


_NER_MICRO = Task("ner", "NER strict, micro")
_RE_MICRO = Task("re", "RE (boundaries), micro")
_RE_STRICT_MICRO = Task("re_strict", "RE+ strict, micro")

# name -> protocol; the one place a protocol is registered (DatasetSpec.protocol refers to these)
PROTOCOLS: dict[str, Protocol] = {
    "micro": Protocol(
        "micro",
        "NER strict, RE+ strict, micro",  # DESIGN.md §7's words; RE (boundaries) is reported beside them
        (_NER_MICRO, _RE_MICRO, _RE_STRICT_MICRO),
        "re_strict",
        _spans(("ner", "re", "re_strict"), "micro"),
    ),
    "ade": Protocol(
        "ade",
        "NER strict, RE+ strict, macro over types, on one fold (the literature reports the mean of 10 folds)",
        (Task("ner", "NER strict, macro over types"), Task("re_strict", "RE+ strict, macro over types")),
        "re_strict",
        _spans(("ner", "re_strict"), "macro"),
    ),
    "scierc": Protocol(
        "scierc",
        "NER strict, RE (boundaries) and RE+ strict, micro; Compare, Conjunction compared without direction",
        (_NER_MICRO, _RE_MICRO, _RE_STRICT_MICRO),
        "re_strict",
        _spans(("ner", "re", "re_strict"), "micro"),
        symmetric=SCIERC_SYMMETRIC,
    ),
    "webnlg": Protocol(
        "webnlg",
        "triple F1, exact full entity strings, micro (and NER strict, micro)",
        (_NER_MICRO, Task("triples", "triples, exact entity strings, micro")),
        "triples",
        _triples(partial=False),
    ),
    "webnlg_star": Protocol(
        "webnlg_star",
        "triple F1, partial match (last word of each entity), micro (and NER strict, micro)",
        (_NER_MICRO, Task("triples", "triples, last word of each entity, micro")),
        "triples",
        _triples(partial=True),
    ),
}


def get_protocol(name: str | Protocol) -> Protocol:
    """A protocol by name (a :class:`Protocol` is returned as is); unknown names list the known ones."""
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def average_folds(folds: Sequence[Mapping]) -> dict:
    """The mean and sample standard deviation over folds of every figure of one protocol's results (ADE's
    10-fold cross-validation): ``{"mean": result, "std": {figure: std}, "folds": [per-fold results]}``.

    Each mean is the arithmetic mean of the per-fold figures (so the mean F1 is not the F1 of the mean P and
    R, and not a score of counts pooled over folds), as the ADE literature reports it. The standard deviation
    divides by ``n - 1`` (0 for one fold).
    """
    if not folds:
        raise ValueError("average_folds needs at least one fold")
    names = {f.get("protocol") for f in folds}
    if len(names) != 1:
        raise ValueError(f"every fold must be scored by the same protocol, got {sorted(map(str, names))}")
    keys = [k for k in folds[0] if k != "protocol"]
    for i, f in enumerate(folds):
        if [k for k in f if k != "protocol"] != keys:
            raise ValueError(f"fold {i} has figures {sorted(f)}, fold 0 {sorted(folds[0])}")
    n = len(folds)
    mean = {k: sum(f[k] for f in folds) / n for k in keys}
    std = {k: math.sqrt(sum((f[k] - mean[k]) ** 2 for f in folds) / (n - 1)) if n > 1 else 0.0 for k in keys}
    return {"mean": {"protocol": names.pop(), **mean}, "std": std, "folds": [dict(f) for f in folds]}


def format_folds(averaged: Mapping, title: str = "") -> str:
    """An :func:`average_folds` result as a table of ``mean ± std`` in percent, naming the number of folds."""
    protocol = get_protocol(averaged["mean"]["protocol"])
    head = f"mean ± sample std over {len(averaged['folds'])} folds"
    return protocol.format(averaged["mean"], f"{title}: {head}" if title else head, std=averaged["std"])
