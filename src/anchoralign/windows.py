"""Long text -> overlapping windows of whole sentences. Torch-free.

A text is read in windows shaped like the passages the model was trained on (``passage_shape``, saved with
the model): at most so many tokens and sentences, and never more encoder pieces than its input holds. Windows
are made of whole sentences; when a window may hold several, each starts at the last sentence of the window
before (when that sentence and the next fit together), so that every two neighbouring sentences are read
together in some window and a relation between them can be found. A sentence longer than a window is read in
windows that overlap by half, and counted as cut: an entity or relation across such a cut can still be missed,
never silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import Document, Token

__all__ = ["SENTENCE_END_TOKENS", "Windows", "passage_shape", "sentence_ranges", "windows"]

SENTENCE_END_TOKENS = frozenset({".", "!", "?", "。", "！", "？", ";", "；", "…"})


@dataclass(frozen=True)
class Windows:
    ranges: list[tuple[int, int]]  # token ranges [start, end), in text order, possibly overlapping
    cut: int  # sentences longer than a window, read in pieces


# a "." after one of these (or after a single capital letter) ends an abbreviation, not a sentence
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr inc co corp ltd gen sen rep gov lt col sgt capt adm maj mt ft vs etc "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.n".split()
)
CLOSERS = frozenset({"'", "''", '"', "”", "’", ")", "]", "」", "』", "）", "》"})


def _ends_sentence(tokens: Sequence[Token], i: int, text: str | None) -> bool:
    t = tokens[i].text
    nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
    if t in SENTENCE_END_TOKENS:
        if t != "." or i == 0:
            return True
        prev = tokens[i - 1]
        attached = prev.end == tokens[i].start  # "Mr." read as "Mr" + "."
        word = prev.text.lower()
        return not (attached and (word in ABBREVIATIONS or (len(prev.text) == 1 and prev.text.isupper())))
    # pre-tokenized text may keep the period on the word ("said."): an end before a capital or a quote, unless
    # the word is an abbreviation ("Dec.", "U.S.", "J.")
    if len(t) > 1 and t.endswith(".") and "." not in t[:-1] and t[:-1].lower() not in ABBREVIATIONS:
        return len(t) > 2 and (nxt[:1].isupper() or nxt[:1] in "\"'`")
    return False


def sentence_ranges(tokens: Sequence[Token], text: str | None = None) -> list[tuple[int, int]]:
    """Token ranges of the sentences: each ends after a sentence-end token (and the closing quotes or brackets
    after it), before a line break of ``text`` (when given), or at the end of the text."""
    out: list[tuple[int, int]] = []
    start = 0
    i = 0
    while i < len(tokens):
        if text is not None and i > start and "\n" in text[tokens[i - 1].end : tokens[i].start]:
            out.append((start, i))
            start = i
        if _ends_sentence(tokens, i, text):
            while i + 1 < len(tokens) and tokens[i + 1].text in CLOSERS and not (
                    text is not None and "\n" in text[tokens[i].end : tokens[i + 1].start]):
                i += 1
            out.append((start, i + 1))
            start = i + 1
        i += 1
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


def _whole_lines(tokens: Sequence[Token], text: str, sents: list[tuple[int, int]], fits) -> list[tuple[int, int]]:
    """For a model trained on single sentences: a line that fits a window is one unit, whatever the
    punctuation inside it says (a line break is a surer sentence end than a period)."""
    out: list[tuple[int, int]] = []
    line: list[tuple[int, int]] = []

    def flush() -> None:
        if line and fits(line[0][0], line[-1][1]):
            out.append((line[0][0], line[-1][1]))
        else:
            out.extend(line)
        line.clear()

    for a, b in sents:
        if line and "\n" in text[tokens[a - 1].end : tokens[a].start]:
            flush()
        line.append((a, b))
    flush()
    return out


def passage_shape(docs: Sequence[Document]) -> dict[str, int]:
    """What the model read in training, saved with it so that inference reads text the same way: ``tokens``,
    the longest training passage (characters for Chinese, whose tokens are characters); ``sentences``, the
    sentences per passage at the 95th percentile (1 for sentence-level benchmarks such as CoNLL04)."""
    if not docs:
        return {"tokens": 0, "sentences": 1}
    counts = sorted(len(sentence_ranges(d.tokens)) or 1 for d in docs)
    return {"tokens": max(len(d.tokens) for d in docs), "sentences": counts[min(len(counts) - 1, int(0.95 * len(counts)))]}


def windows(
    tokens: Sequence[Token], max_tokens: int | None = None, sizes: Sequence[int] | None = None,
    max_size: int | None = None, max_sentences: int | None = None, text: str | None = None,
) -> Windows:
    """The windows that read ``tokens`` (see the module docstring): at most ``max_tokens`` tokens and
    ``max_sentences`` sentences each and, with ``sizes`` (say, each token's encoder pieces), at most
    ``max_size`` in all; one sentence longer than ``max_tokens`` that ``max_size`` holds is one window. A text within ``max_tokens`` (and ``max_size``) is one window, whatever its sentences:
    it is no longer than what the model was trained on. With one sentence per window, windows do not overlap (a
    model trained on single sentences reads single sentences), and a line of ``text`` that fits is read whole.
    ``text`` adds line breaks as sentence ends."""
    for name, v in (("max_tokens", max_tokens), ("max_size", max_size), ("max_sentences", max_sentences)):
        if v is not None and v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    cum = [0]
    for n in sizes if sizes is not None else ():
        cum.append(cum[-1] + n)

    def readable(a: int, b: int) -> bool:  # the encoder's input holds it
        return sizes is None or max_size is None or cum[b] - cum[a] <= max_size

    def fits(a: int, b: int) -> bool:  # and it is no longer than a training passage
        return (max_tokens is None or b - a <= max_tokens) and readable(a, b)

    if max_tokens is not None and tokens and fits(0, len(tokens)):
        return Windows([(0, len(tokens))], 0)
    sents = sentence_ranges(tokens, text)
    if max_sentences == 1 and text is not None:
        sents = _whole_lines(tokens, text, sents, fits)
    most = max_sentences or len(sents)
    out: list[tuple[int, int]] = []
    cut = 0
    i = 0
    while i < len(sents):
        a, b = sents[i]
        if not readable(a, b) or (sizes is None and not fits(a, b)):
            # a sentence longer than the input holds (or, counted in tokens only, than a passage): pieces
            # overlapping by half. A sentence the input holds is never cut, however long its training passages.
            cut += 1
            s = a
            while True:
                e = s + 1  # a window holds at least one token, whatever its size
                while e < b and (readable(s, e + 1) if sizes is not None else fits(s, e + 1)):
                    e += 1
                out.append((s, e))
                if e >= b:
                    break
                s = max(s + 1, s + (e - s) // 2)
            i += 1
            continue
        j = i
        while j + 1 < len(sents) and j + 1 - i < most and fits(a, sents[j + 1][1]):
            j += 1
        out.append((a, sents[j][1]))
        if j + 1 >= len(sents):
            break
        # restart at the window's last sentence when it fits with the next one, so the two are read together
        i = j if j > i and fits(sents[j][0], sents[j + 1][1]) else j + 1
    return Windows(out, cut)
