"""Training sentences that state no relation between entities they name (issue 11, item 4). Torch-free.

A training set in which every sentence states a relation (CoNLL04: all 922) teaches a generative extractor to
write one whatever the text says. ``negative_documents`` adds two kinds of counter-examples, with the entities
annotated and no relation:

- **rewrites** of real training sentences: where an auxiliary ("was", "is", "has", ...) stands between the two
  arguments of a relation (at most ``MAX_GAP`` tokens apart), "not" is inserted after it ("Betsy Ross was born
  in Philadelphia" -> "Betsy Ross was not born in Philadelphia"), and every relation with an argument after
  the insertion is removed (it may be under the negation: "Rome is not in Lazio and Naples in Campania"); the
  entities, and the relations wholly before it, stay, their offsets shifted;
- **wrapped** real training sentences: a short training sentence (at most ``MAX_WRAP_TOKENS`` tokens, ending
  in ".", no quotation marks) put inside a clause that denies or doubts it ("It was never proven that
  <sentence>.", "Whether <sentence> remains an open question."); its entities stay, every relation goes;
- **synthetic** sentences that name two entities of a training relation (its real mention strings and types)
  in a frame that states no relation: co-occurrence ("Among those named were A and B."), an action that relates
  neither ("A thanked B for the invitation.", ``VERB_FRAMES``), denial or doubt ("Officials denied any tie
  between A and B."). The frames name no relation type, so they fit any English schema.

``contrast_documents`` makes the opposite lesson: **contrasts**, short training sentences put beside a clause
whose negation reaches none of their entities ("<sentence>, but no further details were given."), every
relation kept. Fitted on negatives alone, a classifier learns that "not" or "no" anywhere in a sentence unmakes
its relations; on CoNLL04 test the statement veto (``veto.py``) removed true relations from sentences such as
"Details of the ... tender offer for Aussedat-Rey SA, Europe's leading manufacturer of photocopy paper, were not
disclosed" (OrgBased_In(Aussedat-Rey SA, Europe)).

All the wording is written apart from the probe's templates (``probe.py``), which test what this teaches:
no frame or wrapper uses a probe template's verb or frame ("met", "visited", "sued", "unclear whether",
"could confirm", ...; ``tests/test_negatives.py`` checks it).

Deterministic for a seed. English only: the words inserted and the frames are English.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .data.base import TokenIndex
from .data.tokenize import tokenize_text
from .types import Document, Entity, Relation, Token

__all__ = ["AUXILIARIES", "CONTRASTS", "FRAMES", "KINDS", "VERB_FRAMES", "WRAPPERS", "NegativeResult",
           "contrast_documents", "negated_rewrite", "negative_documents", "wrapped_sentence"]

AUXILIARIES = frozenset({"is", "was", "are", "were", "has", "had", "have", "will", "would", "can", "could"})
KINDS = ("rewrites", "wrapped", "frames")
MAX_GAP = 8  # tokens between the two arguments of a rewritten relation
MAX_WRAP_TOKENS = 40  # the longest training sentence a wrapper takes
QUOTES = frozenset({'"', "`", "``", "'", "''"})

FRAMES: tuple[str, ...] = (
    # co-occurrence: both named, nothing said about how they relate
    "{A} and {B} were mentioned in the same article.",
    "Among those named were {A} and {B}.",
    "The list included {A} as well as {B}.",
    "{A} appeared in the news on the same day as {B}.",
    "Neither {A} nor {B} commented on the report.",
    "Both {A} and {B} were named in Tuesday's briefing.",
    # denial, doubt, falsehood: a tie is raised only to be rejected
    "There is no connection between {A} and {B}.",
    "{A} has nothing to do with {B}.",
    "Officials denied any tie between {A} and {B}.",
    "Rumors connecting {A} with {B} were untrue.",
    "It has not been established that {A} had any link to {B}.",
    "{A} was wrongly linked to {B} in early reports.",
)

# an action between the two that is none of a schema's relations: the subject-verb-object shape that a model
# trained only on sentences stating relations reads as one ("A <verb> B" -> a relation of fitting types)
VERB_FRAMES: tuple[str, ...] = (
    "{A} thanked {B} for the invitation.",
    "{A} congratulated {B} on the result.",
    "{A} beat {B} in the final.",
    "{A} responded to a question about {B}.",
    "{A} issued a statement on {B} late Friday.",
    "{A} has often been compared to {B}.",
    "{A} commented on {B} during the broadcast.",
    "{A} welcomed the decision by {B}.",
    "{A} sent a letter to {B}.",
    "{A} posted a photograph of {B} online.",
    "{A} talked about {B} on the radio.",
    "{A} was seen on television with {B}.",
)

# a clause that denies or doubts the whole training sentence put in place of {S}
WRAPPERS: tuple[str, ...] = (
    "It was never proven that {S}.",
    "It is simply not true that {S}.",
    "The story that {S} was later retracted.",
    "Whether {S} remains an open question.",
    "Few historians still believe that {S}.",
    "The paper apologized for wrongly reporting that {S}.",
    "An inquiry rejected the account that {S}.",
    "An official called the suggestion that {S} a fabrication.",
    "It is doubtful that {S}.",
)

# a clause with a negation of its own beside the whole training sentence put in place of {S}; the sentence's
# relations all stay (contrast_documents)
CONTRASTS: tuple[str, ...] = (
    "{S}, but no further details were given.",
    "{S}, though no date has been set.",
    "{S}; no one was harmed.",
    "{S}, and there was no immediate reaction.",
    "{S}, although the figures were not released.",
    "Although nothing else was disclosed, {S}.",
    "There was no official comment, but {S}.",
    "No vote is expected soon, and {S}.",
)


@dataclass
class NegativeResult:
    documents: list[Document] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _count(counts: dict[str, int], kind: str, n: int = 1) -> None:
    counts[kind] = counts.get(kind, 0) + n


def negated_rewrite(doc: Document) -> Document | None:
    """``doc`` with "not" after the first auxiliary between the arguments of its first relation that has one
    (see the module doc), and the relations the negation may reach removed; None when no relation has one."""
    for rel in doc.relations:
        h, t = doc.entities[rel.head], doc.entities[rel.tail]
        a, b = min(h.end, t.end), max(h.start, t.start)
        if not 0 < b - a <= MAX_GAP:
            continue
        aux = next((i for i in range(a, b) if doc.tokens[i].text.lower() in AUXILIARIES), None)
        if aux is None:
            continue
        at = doc.tokens[aux].end  # insert " not" right after the auxiliary
        text = doc.text[:at] + " not" + doc.text[at:]

        def start(c: int, at: int = at) -> int:  # a span starting at or after the insertion moves
            return c + 4 if c >= at else c

        def end(c: int, at: int = at) -> int:  # a span ending at the auxiliary's end stays
            return c + 4 if c > at else c

        tokens = [Token(tok.text, start(tok.start), end(tok.end)) for tok in doc.tokens]
        tokens.insert(aux + 1, Token("not", at + 1, at + 4))

        def moved(e: Entity, p: int = aux + 1) -> Entity:  # token p is the new "not"
            return Entity(e.start + (e.start >= p), e.end + (e.end > p), e.type, start(e.char_start), end(e.char_end))

        entities = [moved(e) for e in doc.entities]

        def in_scope(r: Relation, aux: int = aux) -> bool:  # an argument after the negation may be under it
            return max(doc.entities[r.head].end, doc.entities[r.tail].end) > aux

        relations = [r for r in doc.relations if not in_scope(r)]
        meta = {**doc.meta, "negative": "rewrite"}
        return Document(f"{doc.id}:not", text, tokens, entities, relations, meta)
    return None


def wrapped_sentence(doc: Document, wrapper: str, keep_relations: bool = False) -> Document | None:
    """``doc`` inside ``wrapper`` (its "{S}"), without its final "." and with its first word lowercased when
    that word is a plain capitalized word outside every entity and the wrapper puts words before it; its
    entities kept, no relation (all of them with ``keep_relations``: a contrast, ``CONTRASTS``). None when the
    sentence is not one ``wrapper`` can take: no relation, over ``MAX_WRAP_TOKENS`` tokens, no final ".",
    a quotation mark in it."""
    toks = doc.tokens
    if not doc.relations or not 1 < len(toks) <= MAX_WRAP_TOKENS or toks[-1].text != ".":
        return None
    if any(t.text in QUOTES for t in toks) or any(e.end >= len(toks) for e in doc.entities):
        return None
    body = doc.text[: toks[-2].end]
    first = toks[0].text
    pre, post = wrapper.split("{S}", 1)
    if (pre and not any(e.start == 0 for e in doc.entities) and first[:1].isupper() and first[1:].islower()
            and first.isalpha() and first != "I"):
        body = first.lower() + body[len(first):]
    shift = len(pre)
    head = tokenize_text(pre)
    tail = [Token(t.text, t.start + shift + len(body), t.end + shift + len(body)) for t in tokenize_text(post)]
    moved = [Token(body[t.start : t.end], t.start + shift, t.end + shift) for t in toks[:-1]]
    n = len(head)
    entities = [Entity(e.start + n, e.end + n, e.type, e.char_start + shift, e.char_end + shift)
                for e in doc.entities]
    if keep_relations:
        return Document(f"{doc.id}:contrast", pre + body + post, head + moved + tail, entities,
                        list(doc.relations), {**doc.meta, "contrast": wrapper})
    return Document(f"{doc.id}:wrapped", pre + body + post, head + moved + tail, entities, [],
                    {**doc.meta, "negative": "wrapped"})


def _synthetic(doc: Document, rel: Relation, frame: str, k: int) -> Document | None:
    h, t = doc.entities[rel.head], doc.entities[rel.tail]
    a_text, b_text = doc.entity_text(h), doc.entity_text(t)
    if not a_text.strip() or not b_text.strip():
        return None
    pre, rest = frame.split("{A}", 1)
    mid, post = rest.split("{B}", 1)
    text = pre + a_text + mid + b_text + post
    a0 = len(pre)
    b0 = a0 + len(a_text) + len(mid)
    tokens = tokenize_text(text)
    index = TokenIndex(tokens)
    ea = index.entity(a0, a0 + len(a_text), h.type)
    eb = index.entity(b0, b0 + len(b_text), t.type)
    if ea is None or eb is None or (ea.start, ea.end) == (eb.start, eb.end):
        return None
    # the entity strings come from the text, so the tokenizer must give them back whole
    if text[ea.char_start : ea.char_end] != a_text or text[eb.char_start : eb.char_end] != b_text:
        return None
    return Document(f"negative:{k}", text, tokens, [ea, eb], [], {"negative": "frame", "from": doc.id})


def negative_documents(docs: Sequence[Document], fraction: float, seed: int = 13,
                       kinds: Sequence[str] = KINDS) -> NegativeResult:
    """Rewrites of every training sentence that has one, then wrapped sentences and synthetic frames taken in
    turn, up to ``fraction`` of ``len(docs)`` in all (rewrites first); only the ``kinds`` named (``KINDS``).
    ``counts`` says how many of each and how many candidates were skipped."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of negatives {sorted(unknown)}; known: {', '.join(KINDS)}")
    out = NegativeResult()
    if fraction <= 0 or not docs:
        return out
    budget = int(round(fraction * len(docs)))
    for doc in docs:
        if len(out.documents) >= budget or "rewrites" not in kinds:
            break
        new = negated_rewrite(doc)
        if new is not None:
            out.documents.append(new)
            _count(out.counts, "rewrites")
    rng = random.Random(seed)
    pairs = [(d, r) for d in docs for r in d.relations]
    rng.shuffle(pairs)
    sentences = list(docs)
    rng.shuffle(sentences)
    frames = FRAMES + VERB_FRAMES

    def wraps():
        k = 0
        for doc in sentences:
            new = wrapped_sentence(doc, WRAPPERS[k % len(WRAPPERS)])
            if new is None:
                continue
            k += 1
            yield "wrapped", new

    def synthetic():
        for k, (doc, rel) in enumerate(pairs, 1):
            new = _synthetic(doc, rel, frames[(k - 1) % len(frames)], k)
            if new is None:
                _count(out.counts, "frames_skipped")
                continue
            yield "frames", new

    sources = [source() for kind, source in (("wrapped", wraps), ("frames", synthetic)) if kind in kinds]
    turn = 0
    while len(out.documents) < budget and sources:
        source = sources[turn % len(sources)]
        item = next(source, None)
        if item is None:  # this kind is used up: the others fill the budget
            sources.remove(source)
            continue
        kind, new = item
        out.documents.append(new)
        _count(out.counts, kind)
        turn += 1
    return out


def contrast_documents(docs: Sequence[Document], fraction: float, seed: int = 13) -> NegativeResult:
    """Up to ``fraction`` × ``len(docs)`` contrasts (see the module doc): training sentences, in an order drawn
    from ``seed``, each put beside the next of ``CONTRASTS`` in turn, entities and relations kept; sentences a
    contrast cannot take (as for ``wrapped_sentence``) are skipped. ``counts``: {"contrasts": n}."""
    out = NegativeResult()
    budget = int(round(fraction * len(docs)))
    sentences = list(docs)
    random.Random(seed).shuffle(sentences)
    for doc in sentences:
        if len(out.documents) >= budget:
            break
        new = wrapped_sentence(doc, CONTRASTS[len(out.documents) % len(CONTRASTS)], keep_relations=True)
        if new is not None:
            out.documents.append(new)
    if out.documents:
        out.counts["contrasts"] = len(out.documents)
    return out
