"""Mention replacement: training sentences with their entity mentions swapped for others of the same type
(issue 11). Torch-free.

A small training set teaches its names as much as its contexts: a CoNLL04 model finds "Oswald" because it saw
him, and misses half of "Zofia Nowicka" or "Corvane Systems", names it never saw (docs/probe.md: the probe's
controls are capped by the models' entity recall, not by their relations). ``swapped_mentions`` rewrites a
document with every entity mention replaced by another mention of the same type drawn from a pool of the
training set's mentions (the same string gets the same replacement within a document), its relations kept:
the context that states them is unchanged, so they still hold. This is the "mention replacement" of Dai and
Adel (2020, "An Analysis of Simple Data Augmentation for Named Entity Recognition").

``mention_swap_epoch`` draws, for one epoch, which documents are swapped (a fraction of the set, replacing
them, so an epoch costs what it did) and their replacements, from ``(seed, epoch)``: deterministic, the same
in every process of a distributed run and after a resume.

Only mentions of the types that are some relation's argument in the training set are replaced (CoNLL04:
Peop, Org, Loc; not Other, a mixed bag of dates, amounts and titles whose replacement breaks the sentence:
"we will have no water to submerge Wednesday ( 100 mph )"); a training set with no relation swaps every type.
Documents whose entities overlap (nested mentions) are left as they are and counted. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .types import Document, Entity, Token

__all__ = ["Mention", "MentionPool", "SwapResult", "mention_pool", "mention_swap_epoch", "relation_argument_types",
           "swapped_mentions"]

MAX_DRAWS = 8  # tries for a replacement whose string differs from the mention it replaces


@dataclass(frozen=True)
class Mention:
    """A mention's surface string and its tokens, offsets relative to the mention's first character."""

    text: str
    tokens: tuple[tuple[str, int, int], ...]


MentionPool = dict[str, list[Mention]]


@dataclass
class SwapResult:
    documents: list[Document]
    counts: dict[str, int] = field(default_factory=dict)


def relation_argument_types(docs: Sequence[Document]) -> set[str]:
    """The entity types that are the head or tail of some relation in ``docs``; every type when none is."""
    types = {d.entities[x].type for d in docs for r in d.relations for x in (r.head, r.tail)}
    return types or {e.type for d in docs for e in d.entities}


def mention_pool(docs: Sequence[Document], types: set[str] | None = None) -> MentionPool:
    """Each entity type's distinct mentions in ``docs``, in first-seen order (a deterministic pool); only the
    ``types`` given (default: ``relation_argument_types``). A type outside the pool is never replaced."""
    types = relation_argument_types(docs) if types is None else types
    pool: MentionPool = {}
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        for e in doc.entities:
            text = doc.text[e.char_start : e.char_end]
            if e.type not in types or not text.strip() or (e.type, text) in seen:
                continue
            seen.add((e.type, text))
            pool.setdefault(e.type, []).append(_mention(doc, e))
    return pool


def _mention(doc: Document, e: Entity) -> Mention:
    """``e``'s surface string in ``doc`` and its tokens, offsets relative to its first character."""
    toks = tuple((t.text, t.start - e.char_start, t.end - e.char_start) for t in doc.tokens[e.start : e.end])
    return Mention(doc.text[e.char_start : e.char_end], toks)


def _overlapping(entities: Sequence[Entity]) -> bool:
    spans = sorted((e.start, e.end) for e in entities)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def swapped_mentions(doc: Document, pool: MentionPool, rng: random.Random) -> Document | None:
    """``doc`` with every entity mention of a type in ``pool`` replaced by another mention of that type (another
    string where the pool has one; one replacement per distinct string), tokens and offsets rebuilt, other
    mentions and the relations kept. None when ``doc`` has no mention to replace or its entities overlap."""
    if not any(e.type in pool for e in doc.entities) or _overlapping(doc.entities):
        return None
    chosen: dict[tuple[str, str], Mention] = {}
    order = sorted(range(len(doc.entities)), key=lambda k: doc.entities[k].start)
    text_parts: list[str] = []
    tokens: list[Token] = []
    new_entities: list[Entity] = list(doc.entities)  # each is replaced below, in text order
    pos_char, pos_tok, out_len = 0, 0, 0

    def copy_plain(until_char: int, until_tok: int) -> None:
        nonlocal out_len
        shift = out_len - pos_char
        tokens.extend(Token(t.text, t.start + shift, t.end + shift) for t in doc.tokens[pos_tok:until_tok])
        text_parts.append(doc.text[pos_char:until_char])
        out_len += until_char - pos_char

    for k in order:
        e = doc.entities[k]
        copy_plain(e.char_start, e.start)
        surface = doc.text[e.char_start : e.char_end]
        key = (e.type, surface)
        if key not in chosen:
            options = pool.get(e.type)
            if options:
                pick = options[rng.randrange(len(options))]
                for _ in range(MAX_DRAWS):
                    if pick.text != surface or len(options) == 1:
                        break
                    pick = options[rng.randrange(len(options))]
            else:  # a type outside the pool: the mention stays
                pick = _mention(doc, e)
            chosen[key] = pick
        pick = chosen[key]
        first = len(tokens)
        tokens.extend(Token(txt, out_len + s, out_len + t) for txt, s, t in pick.tokens)
        new_entities[k] = Entity(first, len(tokens), e.type, out_len, out_len + len(pick.text))
        text_parts.append(pick.text)
        out_len += len(pick.text)
        pos_char, pos_tok = e.char_end, e.end
    copy_plain(len(doc.text), len(doc.tokens))
    meta = {**doc.meta, "augment": "mention_swap"}
    return Document(f"{doc.id}:swap", "".join(text_parts), tokens, new_entities, list(doc.relations), meta)


def mention_swap_epoch(docs: Sequence[Document], fraction: float, seed: int, epoch: int,
                       pool: MentionPool | None = None) -> SwapResult:
    """``docs`` with ``round(fraction * len(docs))`` of them, drawn from ``(seed, epoch)``, replaced in place by
    their mention-swapped versions (``swapped_mentions``); ``counts``: swapped, and left as they were (no
    mention to replace, overlapping entities). ``pool``: default ``mention_pool(docs)``."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"mention swap fraction must be in [0, 1], got {fraction}")
    pool = mention_pool(docs) if pool is None else pool
    rng = random.Random(seed * 1_000_003 + epoch)
    n = round(fraction * len(docs))
    picked = sorted(rng.sample(range(len(docs)), n)) if n else []
    out = list(docs)
    counts = {"swapped": 0, "unchanged": 0}
    for i in picked:
        new = swapped_mentions(docs[i], pool, rng)
        if new is None:
            counts["unchanged"] += 1
        else:
            out[i] = new
            counts["swapped"] += 1
    return SwapResult(out, counts)
