"""Cutting long documents into passages a seq2seq model can take, without cutting through entities."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

__all__ = ["pack_passages", "SENTENCE_ENDS", "CLOSERS"]

SENTENCE_ENDS = "。！？!?"
# Closing quotes and brackets right after a sentence end belong to that sentence: 他说：“走吧。”|
CLOSERS = "”’」』）)》】\"'"


def _boundaries(text: str) -> tuple[list[int], list[int]]:
    """Cut points after sentence ends (with their closers), and after line breaks; sorted."""
    strong, weak = [], []
    for i, ch in enumerate(text):
        if ch in SENTENCE_ENDS:
            j = i + 1
            while j < len(text) and (text[j] in CLOSERS or text[j] in SENTENCE_ENDS):
                j += 1
            if not strong or strong[-1] != j:
                strong.append(j)
        elif ch == "\n":
            weak.append(i + 1)
    return strong, weak


def _last_free(points: list[int], low: int, high: int, blocked: bytearray) -> int | None:
    """The last point in ``(low, high]`` not inside a protected span."""
    k = bisect_right(points, high) - 1
    while k >= 0 and points[k] > low:
        if not blocked[points[k]]:
            return points[k]
        k -= 1
    return None


def pack_passages(
    text: str, protected: Iterable[tuple[int, int]], max_chars: int = 250
) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of passages of at most ``max_chars``, trimmed of surrounding whitespace.

    From each start, the passage ends at the last cut point within ``max_chars`` that is not strictly inside a
    protected span (an entity): preferably after a sentence end (``SENTENCE_ENDS`` plus closing quotes), else
    after a line break, else after any character. Protected spans longer than ``max_chars`` cannot be kept
    whole and do not constrain the cut; when every position is blocked, the cut falls at ``max_chars``.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    n = len(text)
    # blocked[p]: cutting at p would split a protected span; built with a difference array in O(n).
    depth = [0] * (n + 2)
    for s, e in protected:
        if e - s <= max_chars and e - s > 1:
            depth[s + 1] += 1
            depth[e] -= 1
    blocked = bytearray(n + 1)
    level = 0
    for p in range(n + 1):
        level += depth[p]
        blocked[p] = level > 0
    strong, weak = _boundaries(text)
    passages: list[tuple[int, int]] = []
    start = 0
    while True:
        while start < n and text[start].isspace():
            start += 1
        if start >= n:
            return passages
        limit = start + max_chars
        if limit >= n:
            end = n
        else:
            end = _last_free(strong, start, limit, blocked) or _last_free(weak, start, limit, blocked)
            if end is None:
                end = next((p for p in range(limit, start, -1) if not blocked[p]), limit)
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        passages.append((start, stop))
        start = end
