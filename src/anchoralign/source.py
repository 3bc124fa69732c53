"""The encoder input as the decoding grammar sees it: piece ids, each piece's document token, and the indexes
over them that the grammar asks for at every step, computed once per source. Torch-free."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

__all__ = ["Source", "Span"]

Span = tuple[int, int, str]  # token start, token end (exclusive), entity type

_serial = itertools.count()


@dataclass(frozen=True)
class Source:
    """The encoder input: piece ids and, per piece, its document token index (-1 for special pieces).

    The indexes (``word_start_list``, ``boundary``, ``tagged`` …) are cached on first use: a source is
    immutable, and ``dataclasses.replace`` gives a new one with fresh caches. ``memo`` is a scratch dict for
    the grammar's memoised answers, which therefore live exactly as long as the source (one batch).
    """

    ids: tuple[int, ...]
    piece_token: tuple[int, ...]
    # Pieces where an anchor mention may start (the anchor scorer's candidates); None: anywhere.
    anchor_starts: frozenset[int] | None = None
    # Tokens where the entity tagger predicts an entity starts (entity coverage); None: no coverage.
    entity_starts: frozenset[int] | None = None
    # The entity tagger's typed spans (token start, token end, type); when set, every mention must be one of
    # them, with its type (``Grammar(tagger_spans=True)``). None: mentions may be any span.
    entity_spans: frozenset[Span] | None = None

    # -- indexes, computed once ----------------------------------------------------------------------

    @cached_property
    def word_start_list(self) -> tuple[int, ...]:
        """Pieces that start a document token, in order."""
        pt = self.piece_token
        return tuple(p for p, t in enumerate(pt) if t >= 0 and (p == 0 or pt[p - 1] != t))

    @cached_property
    def _word_start_set(self) -> frozenset[int]:
        return frozenset(self.word_start_list)

    @cached_property
    def boundary(self) -> tuple[bool, ...]:
        """``boundary[p]``: a mention may end just before piece ``p`` (``p`` in ``0 … len(ids)``)."""
        ws = self._word_start_set
        return tuple(p >= len(self.ids) or self.piece_token[p] < 0 or p in ws for p in range(len(self.ids) + 1))

    @cached_property
    def _token_pieces(self) -> dict[int, tuple[int, int]]:
        out: dict[int, tuple[int, int]] = {}
        for p, t in enumerate(self.piece_token):
            if t >= 0:
                s, _ = out.get(t, (p, p))
                out[t] = (s, p + 1)
        return out

    @cached_property
    def tagged(self) -> dict[tuple[int, int], frozenset[str]]:
        """The tagger's spans: (token start, token end) -> its types (empty without tagger spans)."""
        out: dict[tuple[int, int], set[str]] = {}
        for a, b, t in self.entity_spans or ():
            out.setdefault((a, b), set()).add(t)
        return {k: frozenset(v) for k, v in out.items()}

    @cached_property
    def tagged_type_counts(self) -> dict[str, int]:
        """How many tagged spans carry each type."""
        out: dict[str, int] = {}
        for _, _, t in self.entity_spans or ():
            out[t] = out.get(t, 0) + 1
        return out

    @cached_property
    def memo(self) -> dict:
        return {}

    @cached_property
    def serial(self) -> int:
        """A number no other source of this process has (a key that an id() could not be: never reused)."""
        return next(_serial)

    # -- queries ---------------------------------------------------------------------------------------

    def is_word_start(self, p: int) -> bool:
        return p in self._word_start_set

    def is_boundary(self, p: int) -> bool:
        """Whether a mention may end just before piece ``p``."""
        return p >= len(self.ids) or self.boundary[p]

    def word_starts(self) -> list[int]:
        return list(self.word_start_list)

    def token_pieces(self, token: int) -> tuple[int, int] | None:
        """Piece span ``[s, e)`` of a document token, or None when it was truncated away."""
        return self._token_pieces.get(token)

    def span_pieces(self, start: int, end: int) -> tuple[int, int] | None:
        a, b = self.token_pieces(start), self.token_pieces(end - 1)
        return (a[0], b[1]) if a and b else None

    def occurrences(self, mention: Sequence[int]) -> list[int]:
        """Start pieces of every word-aligned occurrence of ``mention`` (earliest first)."""
        n = len(mention)
        if n == 0:
            return []
        m = tuple(mention)
        return [
            s
            for s in self.word_start_list
            if self.ids[s : s + n] == m
            and all(t >= 0 for t in self.piece_token[s : s + n])
            and self.is_boundary(s + n)
        ]

    def token_span(self, s: int, n: int) -> tuple[int, int]:
        return self.piece_token[s], self.piece_token[s + n - 1] + 1
