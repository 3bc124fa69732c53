"""The decoding grammar on top of a search (DESIGN.md §4): one grammar state per row, advanced by the last
id only, and a mask of what each state allows next.

Two faces over the same ``grammar.Grammar``:

- ``CopyConstraint`` works in the copy model's own output space, [generation vocabulary ; source positions]:
  a mention piece is a source position, so the mask is a few dozen columns wide and the parser knows where
  every mention was copied from. ``search.search_copy`` drives it and reorders its rows with the beams.
- ``GrammarConstraint`` is a plain Hugging Face ``LogitsProcessor`` over the full vocabulary, for any
  ``AutoModelForSeq2SeqLM`` (and for the copy model decoded in vocabulary space, ``decode.space: vocab``).

What a state allows is memoised on its ``Source`` (``Grammar.options``), so a state reached by several beams or
steps is worked out once per document. Neither keeps anything across batches: an instance serves one batch.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from .grammar import Grammar, GrammarError, Source, State

__all__ = ["CopyConstraint", "GrammarConstraint", "RowStates"]


def _mask(scores: torch.Tensor, allowed: list[list[int]], counted: list[bool] | None = None) -> tuple[torch.Tensor, int]:
    """An additive mask like ``scores`` (0 at each row's allowed columns, -inf elsewhere), and how many rows'
    best-scored column it refuses (of the ``counted`` rows; default all)."""
    top = scores.argmax(-1).tolist()
    refused = sum(1 for r, cols in enumerate(allowed) if top[r] not in cols and (counted is None or counted[r]))
    rows = [r for r, cols in enumerate(allowed) for _ in cols]
    flat = [c for cols in allowed for c in cols]
    mask = torch.full_like(scores, float("-inf"))
    mask[torch.tensor(rows, dtype=torch.long), torch.tensor(flat, dtype=torch.long)] = 0.0
    return mask, refused


def _per_item(max_length: int | list[int] | None, n: int) -> list[int | None]:
    """A length limit per batch item, from one for all or one each."""
    if isinstance(max_length, list):
        if len(max_length) != n:
            raise ValueError(f"max_length: {len(max_length)} limits for {n} sources")
        return list(max_length)
    return [max_length] * n


class RowStates:
    """One grammar state per decoding row (None once the row's prefix is finished or broken)."""

    def __init__(self, grammar: Grammar, sources: list[Source], num_beams: int) -> None:
        self.grammar = grammar
        self.sources = sources
        self.num_beams = num_beams
        self.states: list[State | None] = [State() for _ in range(len(sources) * num_beams)]
        self.items = [r // num_beams for r in range(len(self.states))]  # the batch item of each row

    def source(self, row: int) -> Source:
        return self.sources[self.items[row]]

    def reorder(self, rows: list[int]) -> None:
        """Row ``r`` continues what row ``rows[r]`` was, like the key/value cache (beam search reorders rows,
        greedy search drops the ended ones)."""
        self.states = [self.states[r] for r in rows]
        self.items = [self.items[r] for r in rows]

    def advance(self, tokens: list[int], positions: list[int] | None = None) -> None:
        """Step every row over its new id (``positions``: where each was copied from, -1 if generated)."""
        for r, tok in enumerate(tokens):
            self.states[r] = self.step(self.states[r], tok, self.source(r), -1 if positions is None else positions[r])

    def step(self, st: State | None, tok: int, source: Source, pos: int = -1) -> State | None:
        if st is None or st.phase == "done":
            return None
        try:
            return self.grammar.step(st, tok, source, pos=pos)
        except GrammarError:
            return None

    def options(self, row: int, closing: bool) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(ids, positions) allowed next in ``row``; None when the row is finished or broken."""
        st = self.states[row]
        if st is None or st.phase == "done":
            return None
        src = self.source(row)
        return self.grammar.closing_options(st, src) if closing else self.grammar.options(st, src)


class CopyConstraint:
    """Mask over [generation vocabulary ; source positions] for each row of a copy-space search.

    ``gen_ids[g]`` is the token id of generation slot ``g``; a source position ``p`` is column ``G + p``.
    ``max_length``: the decoding length limit (one for all items, or one per item); within ``reserve`` ids of
    it, the sequence ends at the next point between pieces, so that it is never cut.
    """

    def __init__(self, grammar: Grammar, sources: list[Source], gen_ids: list[int], num_beams: int = 1,
                 max_length: int | list[int] | None = None, reserve: int = 24) -> None:
        self.rows = RowStates(grammar, sources, num_beams)
        self.slot = {t: g for g, t in enumerate(gen_ids)}
        self.width_gen = len(gen_ids)
        self.eos_col = self.slot[grammar.eos]
        self.max_lengths = _per_item(max_length, len(sources))
        self.reserve = reserve
        self.rejected = 0  # steps where the model's first choice was refused (how often the constraint intervened)
        self._cols: dict[tuple[int, tuple, tuple], list[int]] = {}

    def _columns(self, row: int, closing: bool) -> list[int]:
        opts = self.rows.options(row, closing)
        if opts is None:
            return [self.eos_col]
        ids, positions = opts
        key = (self.rows.items[row], ids, positions)
        cols = self._cols.get(key)
        if cols is None:
            g = self.width_gen
            cols = [self.slot[t] for t in ids if t in self.slot] + [g + p for p in positions]
            # a prefix the grammar never offered (a beam filler taken at -inf): end it, so no row is all -inf
            cols = self._cols[key] = cols or [self.eos_col]
        return cols

    def _closing(self, row: int, generated: int) -> bool:
        limit = self.max_lengths[self.rows.items[row]]
        return limit is not None and generated >= limit - self.reserve

    def mask(self, scores: torch.Tensor, generated: int | list[int], choosing: list[bool] | None = None) -> torch.Tensor:
        """An additive mask (R, G + L): 0 where allowed, -inf elsewhere; ``generated``: ids so far (per row, or
        one number for all). ``rejected`` counts the rows whose best-scored column is refused, among the rows
        ``choosing`` (default: those not finished; a finished row's choice is not the model's)."""
        per_row = generated if isinstance(generated, list) else [generated] * scores.size(0)
        if choosing is None:
            choosing = [st is not None and st.phase != "done" for st in self.rows.states]
        mask, refused = _mask(scores, [self._columns(r, self._closing(r, per_row[r])) for r in range(scores.size(0))],
                              choosing)
        self.rejected += refused
        return mask

    def forced(self, row: int, generated: int) -> int | None:
        """The one column the grammar allows next in ``row`` (the model need not be asked), else None."""
        cols = self._columns(row, self._closing(row, generated))
        return cols[0] if len(cols) == 1 else None

    def reorder(self, rows: list[int]) -> None:
        self.rows.reorder(rows)

    def join(self, other: CopyConstraint) -> None:
        """Append ``other``'s rows (another batch joining the search, over the same grammar and generation
        vocabulary) after this one's; its rejections count here from now on."""
        rs = self.rows
        live = sorted(set(rs.items))  # items with a row left: the others' sources and memos can go
        if len(live) < len(rs.sources):
            remap = {old: new for new, old in enumerate(live)}
            rs.sources = [rs.sources[i] for i in live]
            self.max_lengths = [self.max_lengths[i] for i in live]
            rs.items = [remap[i] for i in rs.items]
            self._cols = {(remap[i], ids, pos): c for (i, ids, pos), c in self._cols.items() if i in remap}
        n = len(rs.sources)
        rs.sources = rs.sources + other.rows.sources
        rs.states = rs.states + other.rows.states
        rs.items = rs.items + [i + n for i in other.rows.items]
        self.max_lengths = self.max_lengths + other.max_lengths
        self._cols.update({(item + n, ids, pos): cols for (item, ids, pos), cols in other._cols.items()})
        self.rejected += other.rejected

    def advance(self, tokens: list[int], positions: list[int]) -> None:
        self.rows.advance(tokens, positions)

    def advance_row(self, row: int, token: int, position: int) -> None:
        rs = self.rows
        rs.states[row] = rs.step(rs.states[row], token, rs.source(row), position)


class GrammarConstraint(LogitsProcessor):
    """Mask every id the target grammar does not accept after each row's prefix (full vocabulary).

    ``sources[i]`` is the input of batch item ``i``; row ``r`` of the scores belongs to item ``r // num_beams``.
    The first ``prefix_len`` ids of each row (the decoder start) are not part of the target. Each call finds
    every row's parent among the previous call's rows of its item (one comparison of prefixes in torch) and
    steps the parent's state over the new id, so a sequence of length T costs O(T) grammar steps; a call that
    does not continue the previous one starts its rows from scratch.
    """

    def __init__(
        self, grammar: Grammar, sources: list[Source], num_beams: int = 1, prefix_len: int = 1,
        max_length: int | list[int] | None = None, reserve: int = 24,
    ) -> None:
        self.max_lengths = _per_item(max_length, len(sources))
        self.reserve = reserve
        self.grammar = grammar
        self.rows = RowStates(grammar, sources, num_beams)
        self.num_beams = num_beams
        self.prefix_len = prefix_len
        self._prev: torch.Tensor | None = None  # the previous call's prefixes (R, t)
        self.rejected = 0  # ids the model ranked first that the grammar refused (how often it intervened)

    def _from_scratch(self, ids: list[int], source: Source) -> State | None:
        st: State | None = State()
        for tok in ids:
            st = self.rows.step(st, tok, source)
        return st

    def _sync(self, ids: torch.Tensor) -> None:
        """Bring ``self.rows.states`` to the prefixes ``ids`` (R, t)."""
        k = self.num_beams
        prev = self._prev
        if prev is not None and prev.size(0) == ids.size(0) and prev.size(1) + 1 == ids.size(1):
            r = ids.size(0)
            grouped = prev.reshape(r // k, k, prev.size(1))  # (B, k, t-1)
            same = (ids[:, None, :-1] == grouped.repeat_interleave(k, 0)).all(-1)  # (R, k)
            found = same.any(-1).tolist()
            parent = (same.int().argmax(-1) + torch.arange(r) // k * k).tolist()
            old = self.rows.states
            last = ids[:, -1].tolist()
            new: list[State | None] = []
            for row in range(r):
                src = self.rows.source(row)
                if found[row]:
                    new.append(self.rows.step(old[parent[row]], last[row], src))
                else:
                    new.append(self._from_scratch(ids[row].tolist(), src))
            self.rows.states = new
        else:
            self.rows.states = [self._from_scratch(row, self.rows.source(i)) for i, row in enumerate(ids.tolist())]
        self._prev = ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        eos = self.grammar.eos
        self._sync(input_ids[:, self.prefix_len :].cpu())
        generated = input_ids.size(1) - self.prefix_len
        per_row = []
        for r in range(input_ids.size(0)):
            limit = self.max_lengths[self.rows.items[r]]
            opts = self.rows.options(r, limit is not None and generated >= limit - self.reserve)
            allowed = [eos] if opts is None else Grammar._as_ids(opts, self.rows.source(r))
            # a prefix the grammar never offered (a beam search filler taken at -inf when fewer than num_beams
            # continuations were allowed): end it, so that no row is left without a finite score
            per_row.append(allowed or [eos])
        mask, refused = _mask(scores, per_row)
        self.rejected += refused
        return scores + mask
