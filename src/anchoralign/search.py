"""Greedy and beam search: in the copy model's own output space, or over a full vocabulary.

``search_copy`` (the copy backbone) scores [generation vocabulary ; source positions] at each step, so that a
mention piece is chosen as the position it copies, the constraint masks a few dozen columns instead of a 30k
vocabulary, and each item comes back with the positions its mentions were copied from. ``search_vocab`` is the
same loop over the full vocabulary with standard ``LogitsProcessor``s, for any ``AutoModelForSeq2SeqLM`` (and
for the copy model with ``decode.space: vocab``, which scatters its distribution onto the vocabulary).

Both return, per item, a ``Generated``: the ids without the decoder start (up to and including end of sequence),
the source position of each (-1 where generated) and the log-probability of each step under the distribution
the search ranked (the model's, renormalised over what the constraint allowed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessorList

from .constraints import CopyConstraint, GrammarConstraint
from .copy_seq2seq import DecodingState

__all__ = ["Generated", "GreedyStream", "Part", "length_limit", "search_copy", "search_vocab"]


@dataclass
class Generated:
    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # source position each id was copied from (-1: generated)
    log_probs: list[float] = field(default_factory=list)  # per step


def length_limit(model, batch: dict[str, torch.Tensor], max_new_tokens: int) -> list[int]:
    """How many ids each item of a batch may generate: a target rarely needs more than ~3 ids per source piece,
    and the cap stops a looping beam early. Each item's own source length counts, not the batch's padded one,
    so that an output does not depend on what it was batched with."""
    cap = min(max_new_tokens, model.config.max_target_length)
    return [min(cap, 4 * n + 16) for n in batch["attention_mask"].sum(1).tolist()]


def _cut(out: list[Generated], limits: list[int]) -> list[Generated]:
    """Each item's output cut to its own length limit (a batch runs to its largest; an item past its own limit
    was only repeating the end of sequence at no cost)."""
    for gen, n in zip(out, limits, strict=True):
        gen.ids, gen.positions, gen.log_probs = gen.ids[:n], gen.positions[:n], gen.log_probs[:n]
    return out


def _select(batch: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, index) for k, v in batch.items()}


def _collect(ids: torch.Tensor, pos: torch.Tensor, logp: torch.Tensor, eos: int, k: int) -> list[Generated]:
    """Rows (R, T) -> one Generated per item (the first row of each item's k beams: the best), cut after EOS."""
    out = []
    for row_ids, row_pos, row_lp in zip(ids[::k].tolist(), pos[::k].tolist(), logp[::k].tolist(), strict=True):
        n = row_ids.index(eos) + 1 if eos in row_ids else len(row_ids)
        out.append(Generated(row_ids[:n], row_pos[:n], row_lp[:n]))
    return out


@torch.no_grad()
def search_copy(
    model, batch: dict[str, torch.Tensor], enc: torch.Tensor, constraint: CopyConstraint | None, num_beams: int,
    max_new_tokens: int, bias: dict[int, float] | None = None,
) -> list[Generated]:
    """Greedy (``num_beams`` 1) or beam search of the copy backbone in its own output space.

    Greedy search drops each row from the batch once it has ended, so a batch costs what its rows need rather
    than its longest row times its size. ``bias`` ({column: value}) is added to those columns' log-probabilities
    for the choice only: the log-probabilities returned are the model's own."""
    net = model.net
    device = enc.device
    src_ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device)
    copyable = batch["copyable"].to(device)
    b, k = src_ids.size(0), num_beams
    gen_ids = net.gen_ids  # (G,)
    eos = model.eos_id
    eos_col = int((gen_ids == eos).nonzero()[0, 0])
    if k > 1:
        rows = torch.arange(b, device=device).repeat_interleave(k)
        src_ids, mask, copyable, enc = (x.index_select(0, rows) for x in (src_ids, mask, copyable, enc))
    limits = length_limit(model, batch, max_new_tokens)
    if k == 1:
        stream = GreedyStream(model, bias)
        return next(iter(stream.run([Part(enc, src_ids, mask, copyable, constraint, limits)])))[1]
    limit = max(limits)
    state = net.start_decoding(enc, mask, src_ids, copyable, limit)
    r = b * k
    row_limit = torch.tensor(limits, device=device).repeat_interleave(k)  # (R,)
    last_ids = torch.full((r, 1), model.start_id, dtype=torch.long, device=device)
    last_pos = torch.full((r, 1), -1, dtype=torch.long, device=device)
    done = torch.zeros(r, dtype=torch.bool, device=device)
    beam_scores = torch.zeros(b, k, device=device)
    beam_scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    out_ids: list[torch.Tensor] = []
    out_pos: list[torch.Tensor] = []
    out_lp: list[torch.Tensor] = []
    for t in range(limit):
        scores = net.step_log_probs(state, last_ids, last_pos)  # (R, G + L)
        if constraint is not None:
            # renormalise over what the grammar allows: otherwise mass it forbids is charged to every
            # constrained step and beam search prefers short outputs
            scores = (scores + constraint.mask(scores, t)).log_softmax(-1).nan_to_num(nan=float("-inf"))
        # finished rows only repeat end of sequence, at no cost
        scores[done] = float("-inf")
        scores[done, eos_col] = 0.0
        w = scores.size(-1)
        chosen = _biased(scores, bias)
        cand = (beam_scores.view(-1, 1) + chosen).view(b, k * w)  # (B, k*W)
        top, idx = cand.topk(k, dim=-1)  # (B, k)
        src_beam = (idx // w + torch.arange(b, device=device)[:, None] * k).view(-1)  # (R,)
        action = (idx % w).view(-1)
        lp = scores[src_beam, action]
        beam_scores = top
        state = state.select(src_beam)
        done = done.index_select(0, src_beam)
        out_ids = [x.index_select(0, src_beam) for x in out_ids]
        out_pos = [x.index_select(0, src_beam) for x in out_pos]
        out_lp = [x.index_select(0, src_beam) for x in out_lp]
        if constraint is not None:
            constraint.reorder(src_beam.tolist())
        tok, pos = _action_ids(action, src_ids, gen_ids)
        out_ids.append(tok)
        out_pos.append(pos)
        out_lp.append(lp)
        if constraint is not None:
            constraint.advance(tok.tolist(), pos.tolist())
        done = done | (tok == eos) | (t + 1 >= row_limit)  # a row at its own limit has ended too
        # scores only fall as a beam grows, so once each item's best beam has ended nothing can overtake it
        if bool(done.view(b, k)[:, 0].all()):
            break
        last_ids, last_pos = tok[:, None], pos[:, None]
    return _cut(_collect(torch.stack(out_ids, 1), torch.stack(out_pos, 1), torch.stack(out_lp, 1), eos, k), limits)


def _biased(scores: torch.Tensor, bias: dict[int, float] | None) -> torch.Tensor:
    """``scores`` with ``bias`` added to its columns (a copy; ``scores`` itself is left as it is)."""
    if not bias:
        return scores
    out = scores.clone()
    cols = torch.tensor(list(bias), dtype=torch.long, device=scores.device)
    out[:, cols] += torch.tensor(list(bias.values()), dtype=scores.dtype, device=scores.device)
    return out


def _action_ids(action: torch.Tensor, src_ids: torch.Tensor, gen_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions (R,) over [generation vocabulary ; source positions] -> (token ids, source positions or -1)."""
    g = gen_ids.numel()
    copied = action >= g
    pos = torch.where(copied, action - g, torch.full_like(action, -1))
    tok = torch.where(copied, src_ids.gather(1, pos.clamp_min(0)[:, None])[:, 0], gen_ids[action.clamp(max=g - 1)])
    return tok, pos


def _chunk_width(lengths: list[int]) -> int:
    """How many pending ids to feed per row this step: every row pays for the widest, so take the widest width
    at which at least half the fed slots are real ids (a row with more feeds the rest in the next steps)."""
    for w in sorted({n for n in lengths if n > 0}, reverse=True):  # ended rows (0) are fed nothing
        if 2 * sum(min(n, w) for n in lengths) >= len(lengths) * w:
            return w
    return 1


@dataclass
class Part:
    """One encoded batch for ``GreedyStream``: the encoder output and inputs, the batch's constraint (None:
    free generation) and length limits; ``tag`` is the caller's own, handed back with the part's results."""

    enc: torch.Tensor  # (B, L, H)
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    copyable: torch.Tensor  # (B, L) bool
    constraint: CopyConstraint | GrammarConstraint | None  # GreedyStream takes a CopyConstraint
    limits: list[int]  # each row's length limit (``length_limit``)
    tag: Any = None


class GreedyStream:
    """Greedy copy-space search over a stream of batches that keeps the decoder's batch full.

    The ids the grammar forces after each chosen one (a label's remaining pieces, ``<tail>`` after a relation
    label, the rest of a tagged mention …) are taken at once, with log-probability 0 (the only allowed id), and
    fed to the decoder together in the next step, so the model is asked only where the grammar leaves a
    choice; rows at different lengths step together. A row that has ended is fed nothing and left out of the
    batch once a quarter of it has ended (dropping costs a copy of every cache). Once no more than
    ``JOIN_BELOW`` of the first batch's size is still running, the next batch joins (its encoder output read
    only then), so the few long outputs of a batch are decoded beside the next batch's rows instead of alone:
    on the 288 CoNLL04 test sentences a third of the steps of batch-by-batch search ran one row.
    ``run`` yields each part with its results (one ``Generated`` per row) as soon as all its rows have ended,
    which need not be in the order the parts came."""

    JOIN_BELOW = 0.5  # 0: batch by batch

    def __init__(self, model, bias: dict[int, float] | None = None) -> None:
        self.model = model
        self.bias = bias
        self.rejected = 0  # steps where the constraint overrode the model's first choice, over all parts
        self.steps = 0  # decoder steps taken

    @torch.no_grad()
    def run(self, parts: Iterable[Part]) -> Iterator[tuple[Part, list[Generated]]]:
        net, bias = self.model.net, self.bias
        eos, start_id = self.model.eos_id, self.model.start_id
        gen_ids = net.gen_ids
        g = gen_ids.numel()
        gen_list = gen_ids.tolist()
        source = iter(parts)
        state: DecodingState | None = None
        constraint: CopyConstraint | None = None
        alive: list[tuple[int, int]] = []  # (part number, row in the part) of each decoding row
        src_list: list[list[int]] = []  # each row's source ids
        limits: list[int] = []  # each row's length limit
        pending: list[list[tuple[int, int]]] = []  # (id, source position) fed at the next step
        ended: list[bool] = []
        made: list[Generated] = []  # each row's output so far
        held: dict[int, tuple[Part, list[Generated]]] = {}
        left: dict[int, int] = {}  # rows still running per part
        size = 0
        number = 0

        def join() -> bool:
            nonlocal state, constraint, size, number
            part = next(source, None)
            if part is None:
                return False
            new = net.start_decoding(part.enc, part.attention_mask, part.input_ids, part.copyable, max(part.limits))
            state = new if state is None else state.concat(new)
            if part.constraint is not None:
                if constraint is None:
                    constraint = part.constraint
                else:
                    constraint.join(part.constraint)
            b = part.input_ids.size(0)
            size = max(size, b)
            alive.extend((number, r) for r in range(b))
            src_list.extend(part.input_ids.tolist())
            limits.extend(part.limits)
            pending.extend([(start_id, -1)] for _ in range(b))
            ended.extend([False] * b)
            held[number] = (part, [Generated() for _ in range(b)])
            made.extend(held[number][1])
            left[number] = b
            number += 1
            return True

        def drop() -> None:
            nonlocal state, alive, src_list, limits, pending, ended, made
            keep = [a for a in range(len(alive)) if not ended[a]]
            if len(keep) == len(alive):
                return
            if keep:
                assert state is not None
                state = state.select(torch.tensor(keep, dtype=torch.long, device=state.enc.device))
            else:
                state = None
            alive, src_list, limits, pending, made = ([x[a] for a in keep]
                                                      for x in (alive, src_list, limits, pending, made))
            ended = [False] * len(alive)
            if constraint is not None:
                constraint.reorder(keep)

        more = join()
        while alive:
            assert state is not None
            device = state.enc.device
            width = _chunk_width([len(p) for p in pending])
            feed = [p[:width] for p in pending]
            n_new = torch.tensor([len(p) for p in feed], dtype=torch.long, device=device)
            ids = torch.tensor([[t for t, _ in p] + [eos] * (width - len(p)) for p in feed], dtype=torch.long,
                               device=device)
            pos = torch.tensor([[q for _, q in p] + [-1] * (width - len(p)) for p in feed], dtype=torch.long,
                               device=device)
            scores = net.step_log_probs(state, ids, pos, n_new)  # (A, G + L)
            self.steps += 1
            if constraint is not None:
                # rows that choose now: not ended, and not still being fed the forced ids of their last choice
                choosing = [not e and len(q) <= width for e, q in zip(ended, pending, strict=True)]
                mask = constraint.mask(scores, [len(row.ids) for row in made], choosing)
                scores = (scores + mask).log_softmax(-1).nan_to_num(nan=float("-inf"))
            if bias:
                action = _biased(scores, bias).argmax(-1)  # (A,)
                lp = scores.gather(1, action[:, None])[:, 0]
            else:
                lp, action = scores.max(-1)  # (A,)
            for a, (col, lp_a) in enumerate(zip(action.tolist(), lp.tolist(), strict=True)):
                if ended[a]:
                    continue
                if len(pending[a]) > width:  # fed only part of its forced ids: no choice to make yet
                    pending[a] = pending[a][width:]
                    continue
                row = made[a]
                run: list[tuple[int, int]] = []
                while True:
                    tok, p = (src_list[a][col - g], col - g) if col >= g else (gen_list[col], -1)
                    row.ids.append(tok)
                    row.positions.append(p)
                    row.log_probs.append(lp_a)
                    run.append((tok, p))
                    if constraint is not None:
                        constraint.advance_row(a, tok, p)
                    if tok == eos or len(row.ids) >= limits[a]:
                        ended[a] = True
                        break
                    forced = constraint.forced(a, len(row.ids)) if constraint is not None else None
                    if forced is None:
                        break
                    col, lp_a = forced, 0.0
                pending[a] = run if not ended[a] else []
                if ended[a]:
                    left[alive[a][0]] -= 1
                    if not left[alive[a][0]]:
                        yield held.pop(alive[a][0])
            running = len(alive) - sum(ended)
            if more and running <= self.JOIN_BELOW * size:
                drop()
                while more and len(alive) <= self.JOIN_BELOW * size:
                    more = join()
            elif sum(ended) * 4 >= len(alive):
                drop()
        self.rejected = constraint.rejected if constraint is not None else 0


@torch.no_grad()
def search_vocab(
    model, batch: dict[str, torch.Tensor], processors: LogitsProcessorList, num_beams: int, max_new_tokens: int,
    enc: torch.Tensor | None = None,
) -> list[Generated]:
    """Greedy or beam search over the full vocabulary with ``LogitsProcessor``s applied to each step's scores."""
    device = model.device
    batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "copyable")}
    b, k = batch["input_ids"].size(0), num_beams
    if enc is None:
        enc = model.encode(batch)  # (B, L, H)
    if k > 1:
        rows = torch.arange(b, device=device).repeat_interleave(k)
        batch = _select(batch, rows)
        enc = enc.index_select(0, rows)  # (B*k, L, H)
    prefix = torch.full((b * k, 1), model.start_id, dtype=torch.long, device=device)
    positions = torch.full((b * k, 0), -1, dtype=torch.long, device=device)
    step_lp = torch.zeros((b * k, 0), device=device)
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    beam_scores = torch.zeros(b, k, device=device)
    beam_scores[:, 1:] = float("-inf")
    cache = model.new_cache()
    limits = length_limit(model, batch, max_new_tokens)
    row_limit = torch.tensor(limits, device=device)  # (B*k,): the batch's rows are repeated per beam already
    new_pos = torch.full((b * k, 1), -1, dtype=torch.long, device=device)
    for t in range(max(limits)):
        logp, aux = model.next_log_probs(enc, batch, prefix[:, -1:], new_pos, cache)  # (B*k, V)
        logp = processors(prefix, logp).log_softmax(-1)
        # a row whose every id was masked would be NaN, and topk ranks NaN first: make it -inf
        logp = logp.nan_to_num(nan=float("-inf"))
        logp[done] = float("-inf")
        logp[done, model.pad_id] = 0.0
        if k == 1:
            lp, nxt = logp.max(-1)
            prefix = torch.cat([prefix, nxt[:, None]], 1)
            new_pos = model.copy_positions(aux, batch, nxt)[:, None]
        else:
            v = logp.size(-1)
            cand = (beam_scores.view(-1, 1) + logp).view(b, k * v)  # (B, k*V)
            top, idx = cand.topk(k, dim=-1)  # (B, k)
            rows = (idx // v + torch.arange(b, device=device)[:, None] * k).view(-1)
            nxt = (idx % v).view(-1)
            lp = logp[rows, nxt]
            prefix = torch.cat([prefix.index_select(0, rows), nxt[:, None]], 1)
            positions, step_lp = positions.index_select(0, rows), step_lp.index_select(0, rows)
            enc = enc.index_select(0, rows)
            cache.reorder_cache(rows)
            new_pos = model.copy_positions(None if aux is None else aux.index_select(0, rows), batch, nxt)[:, None]
            done = done.index_select(0, rows)
            beam_scores = top
        positions = torch.cat([positions, new_pos], 1)
        step_lp = torch.cat([step_lp, lp[:, None]], 1)
        done = done | (nxt == model.eos_id) | (t + 1 >= row_limit)  # a row at its own limit has ended too
        if bool(done.view(b, k)[:, 0].all()):
            break
    out = _cut(_collect(prefix[:, 1:], positions, step_lp, model.eos_id, k), limits[::k])
    for gen in out:  # padding after the end is not part of the output
        keep = [i for i, t in enumerate(gen.ids) if t != model.pad_id]
        gen.ids, gen.positions, gen.log_probs = ([x[i] for i in keep] for x in (gen.ids, gen.positions, gen.log_probs))
    return out
