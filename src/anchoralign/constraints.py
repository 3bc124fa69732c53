"""The decoding grammar as a ``LogitsProcessor`` (DESIGN.md §4), per beam and per step.

The processor follows each row's prefix through ``grammar.Grammar`` and keeps only the ids the grammar
accepts next: mentions stay contiguous word-aligned spans of the input, labels come from the schema, markers
come in a valid order and end of sequence only between groups. Its state cache lives in the instance, which
serves one batch (one ``generate`` call) and is then dropped.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from .grammar import Grammar, GrammarError, Source, State

__all__ = ["GrammarConstraint"]


class GrammarConstraint(LogitsProcessor):
    """Mask every id the target grammar does not accept after each row's prefix.

    ``sources[i]`` is the input of batch item ``i``; row ``r`` of the scores belongs to item ``r // num_beams``.
    The first ``prefix_len`` ids of each row (the decoder start) are not part of the target.
    """

    def __init__(
        self, grammar: Grammar, sources: list[Source], num_beams: int = 1, prefix_len: int = 1,
        max_length: int | None = None, reserve: int = 24,
    ) -> None:
        """``max_length``: the decoding length limit; within ``reserve`` ids of it, the sequence ends at the next
        point between pieces (end of sequence, or ``</anchor>`` inside a group), so that it is never cut."""
        self.max_length = max_length
        self.reserve = reserve
        self.grammar = grammar
        self.sources = sources
        self.num_beams = num_beams
        self.prefix_len = prefix_len
        self._states: dict[tuple[int, tuple[int, ...]], State | None] = {}
        self.rejected = 0  # ids the model ranked first that the grammar refused (how often it intervened)

    def state(self, item: int, prefix: tuple[int, ...]) -> State | None:
        """The grammar state after ``prefix`` (None once the prefix is finished or broken)."""
        key = (item, prefix)
        if key in self._states:
            return self._states[key]
        if not prefix:
            st: State | None = State()
        else:
            parent = self.state(item, prefix[:-1])
            st = None
            if parent is not None and parent.phase != "done":
                try:
                    st = self.grammar.step(parent, prefix[-1], self.sources[item])
                except GrammarError:
                    st = None
        self._states[key] = st
        return st

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows: list[int] = []
        cols: list[int] = []
        eos = self.grammar.eos
        top = scores.argmax(-1).tolist()
        closing = self.max_length is not None and input_ids.size(1) - self.prefix_len >= self.max_length - self.reserve
        for r, ids in enumerate(input_ids[:, self.prefix_len :].tolist()):
            item = r // self.num_beams
            st = self.state(item, tuple(ids))
            if st is None or st.phase == "done":
                allowed = [eos]
            elif closing:
                allowed = self.grammar.closing_allowed(st, self.sources[item])
            else:
                allowed = self.grammar.allowed(st, self.sources[item])
            if not allowed:
                # a prefix the grammar never offered (a beam search filler taken at -inf when fewer than
                # num_beams continuations were allowed): end it, so that no row is left without a finite score
                allowed = [eos]
            if top[r] not in allowed:
                self.rejected += 1
            rows.extend([r] * len(allowed))
            cols.extend(allowed)
        mask = torch.full_like(scores, float("-inf"))
        mask[torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)] = 0.0
        return scores + mask
