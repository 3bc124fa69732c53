"""The target grammar (DESIGN.md §3–4) as a small state machine over token ids. Torch-free.

One machine serves both directions of decoding: ``parse`` steps it over generated ids and collects entities
and relations, counting every piece it cannot read; ``constraints`` asks it which ids may come next, so that
no sequence the constraint allows is unparseable.

Anchor-grouped format::

    seq     := group* ent* EOS
    group   := <anchor> MENTION <type> ETYPE rel+ </anchor>
    rel     := (<rel> | <rel-inv>) RLABEL <tail> MENTION <type> ETYPE
    ent     := <ent> MENTION <type> ETYPE

Flat format (the REBEL/TANL-style baseline)::

    seq     := triple* ent* EOS
    triple  := <head> MENTION <type> ETYPE <rel> RLABEL <tail> MENTION <type> ETYPE

MENTION is a contiguous slice of the source ids that starts and ends on word boundaries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from .labels import MARKERS, TargetVocab
from .source import Source, Span

__all__ = ["MARKERS", "Source", "TargetVocab", "Grammar", "State", "GrammarError", "Span", "Events"]

FORMATS = ("anchor", "flat")
_serial = itertools.count()


class GrammarError(Exception):
    """A generated id that the grammar does not accept here; ``kind`` names the problem for counting."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class State:
    """Where the machine is. ``phase`` names what is expected next; the rest is the piece being built."""

    phase: str = "top"  # top | ents | mention | etype | rlabel | after_head_type | after_rel | done | skip
    role: str = ""  # anchor | tail | ent | head (the mention or type being read)
    mention: tuple[int, ...] = ()
    cands: tuple[int, ...] = ()
    label: tuple[int, ...] = ()
    head: Span | None = None  # the anchor (or flat head) of the current group
    rel: tuple[str, bool] | None = None  # (relation name, inverted) awaiting its tail
    span: tuple[int, int] | None = None  # the mention just closed by <type>, awaiting its type
    skip_to: str = ""  # in phase "skip": "group" or "rel"
    typed: tuple[tuple[tuple[int, int], str], ...] = ()  # spans generated so far with their types
    placed: tuple[tuple[tuple[int, int], str], ...] = ()  # (span, role) of every anchor and entity so far


def replace(state: State, **changes) -> State:
    """``dataclasses.replace`` for ``State``, without its per-call field checks (the grammar's hottest call)."""
    new = object.__new__(State)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass
class Events:
    """What a run of the machine produced: entities, relations (as spans) and counted errors."""

    entities: list[Span] = field(default_factory=list)
    relations: list[tuple[Span, Span, str]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    # which generated ids wrote each event (``run`` only), as [first, last + 1) step ranges: an entity's from its
    # opening marker (<ent>, <anchor>, <head>; <tail> for a tail) to the last piece of its type label; a
    # relation's as (the group's anchor or head, from its marker to its type) and (the relation marker to the
    # tail's type)
    entity_steps: list[tuple[int, int]] = field(default_factory=list)
    relation_steps: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Grammar:
    """The state machine of one target format over one vocabulary."""

    def __init__(
        self,
        vocab: TargetVocab,
        fmt: str = "anchor",
        *,
        signatures: set[tuple[str, str, str]] | None = None,
        symmetric: set[str] | frozenset[str] = frozenset(),
        consistent_types: bool = False,
        use_anchor_starts: bool = False,
        entity_coverage: bool = False,
        tagger_spans: bool = False,
    ) -> None:
        """The plain grammar, or with the anchor-guided restrictions of DESIGN.md §4:

        ``signatures``: relation labels and tail types limited to the allowed (head type, relation, tail type)
        triples given the anchor's type (both directions for ``symmetric`` relations); ``consistent_types``: a
        span generated twice keeps its first type; ``use_anchor_starts``: an anchor mention starts only at
        ``Source.anchor_starts``; ``entity_coverage``: the sequence may not end while a token of
        ``Source.entity_starts`` lies in no generated entity, and a standalone entity generated then must start
        at such a token; ``tagger_spans``: every mention is one of ``Source.entity_spans`` (when the source
        carries them), typed as there.
        """
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.vocab = vocab
        self.fmt = fmt
        m = vocab.markers
        self.m = m
        self.eos = vocab.eos_id
        self.group_open = m["<anchor>"] if fmt == "anchor" else m["<head>"]
        self._marker_names = {v: k for k, v in m.items()}
        self.consistent_types = consistent_types
        self.entity_coverage = entity_coverage
        self.use_anchor_starts = use_anchor_starts
        self.tagger_spans = tagger_spans
        self.sigs: set[tuple[str, str, str]] | None = None
        self._base_cache: dict = {}
        self.serial = next(_serial)  # memo keys in Source.memo: this grammar's, never another's
        if signatures is not None:
            sigs = {tuple(x) for x in signatures}
            sigs |= {(t, r, h) for h, r, t in sigs if r in symmetric}
            self.sigs = {
                x
                for x in sigs
                if x[0] in vocab.entity_labels
                and x[2] in vocab.entity_labels
                and x[1] in vocab.relation_labels
            }  # type: ignore[misc]
            self._relational = {h for h, _, _ in self.sigs} | {t for _, _, t in self.sigs}
            # schema tables, computed once: (anchor type, inverted) -> [(relation, other argument's type)]
            self._rel_table: dict[tuple[str, bool], list[tuple[str, str]]] = {}
            for h, r, t in self.sigs:
                self._rel_table.setdefault((h, False), []).append((r, t))
                self._rel_table.setdefault((t, True), []).append((r, h))

    # -- anchor-guided restrictions -------------------------------------------------------------------

    def _fixed(self, state: State, span: tuple[int, int]) -> str | None:
        if not self.consistent_types:
            return None
        for sp, t in state.typed:
            if sp == span:
                return t
        return None

    def _rels_for(
        self, head_type: str, inv: bool, source: Source | None = None, head_span: tuple[int, int] | None = None
    ) -> set[str]:
        """Relations the signatures allow from an anchor of ``head_type`` (``inv``: as the tail); with tagger
        spans, only those whose other argument type some tagged span other than the anchor's (``head_span``)
        has — a relation joins two entities, and the tail would otherwise dead-end."""
        assert self.sigs is not None
        pairs = self._rel_table.get((head_type, inv), ())
        if source is None or self._spans_of(source) is None:
            return {r for r, _ in pairs}
        key = (self.serial, "rels", head_type, inv, head_span)
        hit = source.memo.get(key)
        if hit is None:
            own = source.tagged.get(head_span, frozenset()) if head_span is not None else frozenset()
            have = {t for t, c in source.tagged_type_counts.items() if c - (t in own) > 0}
            hit = source.memo[key] = frozenset(r for r, other in pairs if other in have)
        return set(hit)

    def _types_for(self, state: State, span: tuple[int, int]) -> set[str] | None:
        """Types the current mention may take at ``span`` (None: any)."""
        key = (state.role, state.head[2] if state.head else None, state.rel)
        if key not in self._base_cache:
            self._base_cache[key] = self._base_types(state)
        allowed = self._base_cache[key]
        fixed = self._fixed(state, span)
        if fixed is not None:
            allowed = {fixed} if allowed is None else allowed & {fixed}
        return allowed

    def _span_types(self, state: State, source: Source, span: tuple[int, int]) -> set[str] | None:
        """Types the current mention may take at ``span`` (None: any): ``_types_for``, and with tagger spans
        the tagger's type, never the anchor's own span as a tail, and an anchor that leaves a relation open."""
        types = self._types_for(state, span)
        if self._spans_of(source) is None:
            return types
        if state.role == "tail" and state.head is not None and span == state.head[:2]:
            return set()  # a relation joins two entities, not an entity and itself
        tagged = self._tagged_types(source, span)
        return self._anchor_types(state, source, tagged if types is None else types & tagged, span)

    def _other_span(self, source: Source, span: tuple[int, int]) -> bool:
        """Some tagged span other than ``span`` exists (one that a relation's other argument could be)."""
        if self._spans_of(source) is None:
            return False
        return len(source.tagged) - (span in source.tagged) > 0

    def _anchor_types(self, state: State, source: Source, types: set[str], span: tuple[int, int]) -> set[str]:
        """With tagger spans and signatures, an anchor (flat: head) at ``span`` must leave some relation open."""
        spans = self._spans_of(source)
        if state.role not in ("anchor", "head") or spans is None:
            return types
        if self.sigs is None:  # any relation: it needs some other span for its tail
            return types if self._other_span(source, span) else set()
        both = self.fmt == "anchor"
        return {t for t in types
                if self._rels_for(t, False, source, span) or (both and self._rels_for(t, True, source, span))}

    def _spans_of(self, source: Source) -> frozenset[Span] | None:
        return source.entity_spans if self.tagger_spans else None

    def _tagged_types(self, source: Source, span: tuple[int, int]) -> set[str]:
        if self._spans_of(source) is None:
            return set()
        return set(source.tagged.get(span, ()))

    def _base_types(self, state: State) -> set[str] | None:
        """Types the schema signatures allow for the current mention's role (None: any)."""
        allowed: set[str] | None = None
        if self.sigs is not None:
            if state.role in ("anchor", "head"):
                allowed = set(self._relational)
                if state.role == "head":  # flat: the head must allow a forward relation
                    allowed = {h for h, _, _ in self.sigs}
            elif state.role == "tail" and state.head is not None and state.rel is not None:
                name, inv = state.rel
                a = state.head[2]
                allowed = (
                    {h for h, r, t in self.sigs if r == name and t == a}
                    if inv
                    else {t for h, r, t in self.sigs if r == name and h == a}
                )
        return allowed

    def _end_ok(self, state: State, source: Source, s: int, n: int) -> bool:
        """A mention of ``n`` pieces from piece ``s`` may end here: a boundary, and some type remains for it."""
        if not source.is_boundary(s + n):
            return False
        if self.sigs is None and not self.consistent_types and self._spans_of(source) is None:
            return True
        types = self._span_types(state, source, source.token_span(s, n))
        return types is None or bool(types)

    def _can_finish(self, state: State, source: Source, s: int, n: int) -> bool:
        """Some end at or beyond ``n`` pieces from ``s`` is allowed (so the walk never reaches a dead end)."""
        if self.sigs is None and not self.consistent_types and self._spans_of(source) is None:
            return True
        # what the answer depends on: the mention's role and group (types allowed), the types fixed so far
        key = (self.serial, "finish", state.role, state.head, state.rel,
               state.typed if self.consistent_types else None, s, n)
        hit = source.memo.get(key)
        if hit is None:
            hit = source.memo[key] = self._scan_ends(state, source, s, n)
        return hit

    def _scan_ends(self, state: State, source: Source, s: int, n: int) -> bool:
        if self._spans_of(source) is not None:
            # with tagger spans a mention ends only where a tagged span starting at its first token ends: check
            # those ends, not every piece up to the end of the input
            first = source.piece_token[s]
            for a, b in source.tagged:
                if a == first and (end := source.span_pieces(a, b)) is not None:
                    k = end[1] - s
                    if k >= max(n, 1) and all(t >= 0 for t in source.piece_token[s : s + k]) and self._end_ok(
                            state, source, s, k):
                        return True
            return False
        k = n
        while s + k <= len(source.ids) and (k == 0 or source.piece_token[s + k - 1] >= 0):
            if k > 0 and self._end_ok(state, source, s, k):
                return True
            k += 1
        return False

    def _label_next(
        self, kind: str, prefix: tuple[int, ...], names: set[str] | None
    ) -> tuple[set[int], bool]:
        """(next label ids, whether ``prefix`` completes a label) among ``names`` (None: all)."""
        ids, complete = self.vocab.label_next(kind, prefix, None if names is None else frozenset(names))
        return set(ids), complete

    def _rel_markers(self, state: State, source: Source | None = None) -> list[int]:
        """``<rel>``/``<rel-inv>`` that still have a relation label for the anchor's type."""
        m = self.m
        out = [m["<rel>"], m["<rel-inv>"]] if self.fmt == "anchor" else [m["<rel>"]]
        if state.head is None:
            return out
        if self.sigs is None:
            tagged = source is not None and self._spans_of(source) is not None
            return [] if tagged and not self._other_span(source, state.head[:2]) else out  # no possible tail
        span = (state.head[0], state.head[1])
        return [x for x in out if self._rels_for(state.head[2], x == m["<rel-inv>"], source, span)]

    # -- allowed continuations (used by the constraint) ----------------------------------------------

    @contextmanager
    def _no_coverage(self) -> Iterator[None]:
        """Entity coverage off for a moment: it decides what the constraint offers, never what parses."""
        coverage, self.entity_coverage = self.entity_coverage, False
        try:
            yield
        finally:
            self.entity_coverage = coverage

    def closing_allowed(self, state: State, source: Source) -> list[int]:
        """What ``allowed`` gives when the output must end soon (see ``closing_options``)."""
        return self._as_ids(self.closing_options(state, source), source)

    def closing_options(self, state: State, source: Source) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """What ``options`` gives when the output must end soon: no entity coverage, and no id that opens a new
        piece (group, relation, standalone entity) where another continuation exists."""
        key = (self.serial, "closing", state)
        hit = source.memo.get(key)
        if hit is not None:
            return hit
        with self._no_coverage():
            ids, positions = self.options(state, source)
        if state.phase != "after_head_type":  # an anchor needs one relation: let it open
            openers = {self.group_open, self.m["<ent>"], self.m["<rel>"], self.m["<rel-inv>"]}
            kept = tuple(t for t in ids if t not in openers)
            if kept or positions:
                ids = kept
        source.memo[key] = (ids, positions)
        return ids, positions

    def allowed(self, state: State, source: Source) -> list[int]:
        """Every id the grammar accepts next in ``state`` (a mention piece as the source id it copies)."""
        return self._as_ids(self.options(state, source), source)

    @staticmethod
    def _as_ids(options: tuple[tuple[int, ...], tuple[int, ...]], source: Source) -> list[int]:
        ids, positions = options
        return sorted(set(ids) | {source.ids[p] for p in positions})

    def options(self, state: State, source: Source) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """What may come next in ``state``: (ids to generate, source positions to copy), each sorted.

        Positions are offered only inside a mention: its first piece at an allowed start, then the piece right
        after the last one copied. Memoised per source (a state's options never change within a document).
        """
        key = (self.serial, self.entity_coverage, state)
        hit = source.memo.get(key)
        if hit is None:
            hit = source.memo[key] = self._options(state, source)
        return hit

    def _options(self, state: State, source: Source) -> tuple[tuple[int, ...], tuple[int, ...]]:
        m, ph = self.m, state.phase
        if ph in ("top", "ents"):
            # offer a piece only if its mention can start somewhere (no dead end on an empty input)
            # entity coverage: the sequence cannot end while a tagger-predicted entity start is not generated
            can_ent = self._can_open(state, source, "ent")
            must_cover = bool(self._uncovered(state, source)) and can_ent
            out = [] if must_cover else [self.eos]
            if can_ent:
                out.insert(0, m["<ent>"])
            if ph == "top":
                role = "anchor" if self.fmt == "anchor" else "head"
                if self._can_open(state, source, role):
                    out.insert(0, self.group_open)
            return tuple(sorted(out)), ()
        if ph == "mention":
            n = len(state.mention)
            if n == 0:
                starts = self._starts(state, source)
                return (), tuple(p for p in starts if self._can_finish(state, source, p, 0))
            nxt = sorted({
                s + n
                for s in state.cands
                if s + n < len(source.ids)
                and source.piece_token[s + n] >= 0
                and self._can_finish(state, source, s, n + 1)
            })
            close = any(self._end_ok(state, source, s, n) for s in state.cands)
            return ((m["<type>"],) if close else ()), tuple(nxt)
        if ph in ("etype", "rlabel"):
            if ph == "etype":
                assert state.span is not None
                nxt_ids, complete = self._label_next("entity", state.label, self._span_types(state, source, state.span))
            else:
                names = None
                if self.sigs is not None and state.head is not None:
                    names = self._rels_for(state.head[2], bool(state.rel and state.rel[1]), source,
                                           (state.head[0], state.head[1]))
                nxt_ids, complete = self._label_next("relation", state.label, names)
            out = set(nxt_ids)
            if complete:
                out.update(self._after_label(state, source))
            return tuple(sorted(out)), ()
        if ph == "after_head_type":
            return tuple(sorted(self._rel_markers(state, source))), ()
        if ph == "after_rel":
            return (m["<tail>"],), ()
        if ph == "group_more":
            return tuple(sorted(self._rel_markers(state, source) + [m["</anchor>"]])), ()
        return (self.eos,), ()

    def _can_open(self, state: State, source: Source, role: str) -> bool:
        opened = replace(state, phase="mention", role=role, mention=(), cands=(), span=None, head=None, rel=None)
        return bool(self.options(opened, source)[1])

    def _uncovered(self, state: State, source: Source) -> set[int]:
        """Tagger-predicted entity start tokens that no generated entity starts at yet."""
        if not self.entity_coverage or not source.entity_starts:
            return set()
        inside = {t for (a, b), _ in state.placed for t in range(a, b)}
        return set(source.entity_starts) - inside

    def _starts(self, state: State, source: Source) -> list[int]:
        starts: Sequence[int] = source.word_start_list
        spans = self._spans_of(source)
        if spans is not None:
            begins = {a for a, _ in source.tagged}
            starts = [p for p in starts if source.piece_token[p] in begins]
        if state.role == "ent":
            uncovered = self._uncovered(state, source)
            if uncovered:
                return [p for p in starts if source.piece_token[p] in uncovered]
        if state.role == "anchor" and self.use_anchor_starts and source.anchor_starts is not None:
            starts = [p for p in starts if p in source.anchor_starts]
        return starts

    def _after_label_any(self, state: State, source: Source) -> list[int]:
        with self._no_coverage():
            return self._after_label(state, source)

    def _after_label(self, state: State, source: Source) -> list[int]:
        """The markers that may close the label being read (they start whatever comes next)."""
        m = self.m
        if state.phase == "rlabel":
            return [m["<tail>"]]
        if state.role in ("anchor", "head"):
            if self.sigs is None or state.span is None:
                return [m["<rel>"], m["<rel-inv>"]] if state.role == "anchor" else [m["<rel>"]]
            # the label being completed is the anchor's type: only markers with a relation for that type
            label_name = self.vocab.trie("entity")[1].get(state.label)
            head = (state.span[0], state.span[1], label_name) if label_name else None
            return self._rel_markers(replace(state, head=head), source)
        if state.role == "tail" and self.fmt == "anchor":
            return self._rel_markers(state, source) + [m["</anchor>"]]
        # a flat triple or a standalone entity ends here: what may follow is what the next phase allows, with
        # this mention already placed (entity coverage may forbid the end of the sequence)
        assert state.span is not None
        group = sum(1 for _, r in state.placed if r in ("anchor", "head"))
        role = f"tail{group}" if state.role == "tail" else state.role
        after = State(phase="top" if state.role == "tail" else "ents", typed=state.typed,
                      placed=state.placed + ((state.span, role),))
        return list(self.options(after, source)[0])

    # -- stepping (used by parse, and by the constraint to follow each beam) ------------------------

    def step(self, state: State, tok: int, source: Source, events: Events | None = None, pos: int = -1) -> State:
        """Advance over one id; raises GrammarError when it is not accepted (state unchanged).

        ``pos`` is the source position a mention piece was copied from (-1: unknown, as for a model without a
        copy layer): a copied mention is placed where it was copied, not by ``_place``'s rule."""
        m, ph = self.m, state.phase
        if ph == "skip":
            return self._resync(state, tok)
        if ph in ("top", "ents", "done"):
            if tok == self.eos and ph != "done":
                return State(phase="done")
            if tok == self.group_open and ph == "top":
                return State(
                    phase="mention",
                    role="anchor" if self.fmt == "anchor" else "head",
                    typed=state.typed,
                    placed=state.placed,
                )
            if tok == m["<ent>"] and ph != "done":
                return State(phase="mention", role="ent", typed=state.typed, placed=state.placed)
            raise GrammarError("unexpected_token")
        if ph == "mention":
            if tok == m["<type>"]:
                n = len(state.mention)
                ends = [s for s in state.cands if self._end_ok(state, source, s, n)]
                if n == 0:
                    raise GrammarError("empty_mention")
                if not ends:
                    raise GrammarError("unplaceable_mention")
                return replace(state, phase="etype", label=(), span=self._place(state, source, ends, n))
            if tok in self._marker_names or tok == self.eos:
                raise GrammarError("unexpected_marker")
            mention = state.mention + (tok,)
            n = len(state.mention)
            if not state.mention:
                cands = tuple(s for s in self._starts(state, source) if source.ids[s] == tok and (pos < 0 or s == pos))
                if not cands and self.entity_coverage:
                    # coverage decides what is offered, not what parses: near the length limit the constraint
                    # offers starts without it (closing_options), and a piece taken there must stay placeable
                    with self._no_coverage():
                        starts = self._starts(state, source)
                    cands = tuple(s for s in starts if source.ids[s] == tok and (pos < 0 or s == pos))
            else:
                cands = tuple(
                    s
                    for s in state.cands
                    if s + n < len(source.ids) and source.ids[s + n] == tok and source.piece_token[s + n] >= 0
                    and (pos < 0 or s + n == pos)
                )
            # An unplaceable mention is reported when it closes, so that the count is per mention.
            return replace(state, mention=mention, cands=cands)
        if ph in ("etype", "rlabel"):
            nxt, full = self.vocab.trie("entity" if ph == "etype" else "relation")
            if tok in nxt.get(state.label, ()):
                return replace(state, label=state.label + (tok,))
            if state.label in full and tok in self._after_label_any(state, source):
                name = full[state.label]
                done = replace(state, label=())
                return self._close_label(done, name, tok, source, events)
            raise GrammarError("bad_entity_type" if ph == "etype" else "bad_relation_label")
        if ph == "after_head_type":
            if tok in self.options(state, source)[0]:
                return replace(state, phase="rlabel", label=(), rel=("", tok == m["<rel-inv>"]))
            raise GrammarError("unexpected_token")
        if ph == "after_rel":
            if tok == m["<tail>"]:
                return replace(state, phase="mention", role="tail", mention=(), cands=())
            raise GrammarError("unexpected_token")
        if ph == "group_more":
            if tok == m["</anchor>"]:
                return State(phase="top", typed=state.typed, placed=state.placed)
            if tok in (m["<rel>"], m["<rel-inv>"]):
                return replace(state, phase="rlabel", label=(), rel=("", tok == m["<rel-inv>"]))
            raise GrammarError("unexpected_token")
        raise GrammarError("unexpected_token")

    def _place(self, state: State, source: Source, ends: list[int], n: int) -> tuple[int, int]:
        """Where a repeated mention string goes (the earliest occurrence that fits):

        a standalone entity is in no relation, so it takes an occurrence not generated before in any role; an
        anchor one not generated as an anchor before; a tail one that is neither the group's anchor nor a tail
        already in this group. When no occurrence fits, the earliest.
        """
        spans = [source.token_span(s, n) for s in ends]
        group = sum(1 for _, role in state.placed if role in ("anchor", "head"))
        if state.role == "ent":
            used = {sp for sp, _ in state.placed}
        elif state.role == "anchor":
            used = {sp for sp, role in state.placed if role == "anchor"}
        elif state.role == "head":  # flat: the same head opens every triple it is in
            used = set()
        else:
            used = {sp for sp, role in state.placed if role == f"tail{group}"}
            if state.head is not None:
                used.add((state.head[0], state.head[1]))
        free = [sp for sp in spans if sp not in used]
        return free[0] if free else spans[0]

    def _close_label(self, state: State, name: str, tok: int, source: Source, events: Events | None) -> State:
        """A label was completed by ``tok`` (the next marker): record what it finished, then take ``tok``."""
        if state.phase == "rlabel":  # tok is <tail>, the only id that may close a relation label
            inv = bool(state.rel and state.rel[1])
            return replace(state, phase="mention", role="tail", mention=(), cands=(), rel=(name, inv))
        assert state.span is not None
        ent: Span = (state.span[0], state.span[1], name)
        if events is not None:
            events.entities.append(ent)
        if self.consistent_types and self._fixed(state, state.span) is None:
            state = replace(state, typed=state.typed + ((state.span, name),))
        role = state.role
        if role == "tail":
            role = f"tail{sum(1 for _, r in state.placed if r in ('anchor', 'head'))}"
        state = replace(state, placed=state.placed + ((state.span, role),))
        if state.role in ("anchor", "head"):
            nxt = replace(state, phase="after_head_type", head=ent, mention=(), cands=(), span=None)
            return self.step(nxt, tok, source, events)
        if state.role == "tail":
            assert state.head is not None and state.rel is not None
            rel_name, inv = state.rel
            if events is not None:
                pair = (ent, state.head) if inv else (state.head, ent)
                events.relations.append((pair[0], pair[1], rel_name))
            if self.fmt == "anchor":
                nxt = replace(state, phase="group_more", rel=None, mention=(), cands=(), span=None)
            else:
                nxt = State(phase="top", typed=state.typed, placed=state.placed)
            return self.step(nxt, tok, source, events)
        return self.step(
            State(phase="ents", typed=state.typed, placed=state.placed), tok, source, events
        )  # role == "ent"

    def _resync(self, state: State, tok: int) -> State:
        """After an error: drop ids until a marker where reading can start again."""
        m = self.m
        if tok == self.eos:
            return State(phase="done")
        if tok == self.group_open:
            return State(phase="mention", role="anchor" if self.fmt == "anchor" else "head")
        if tok == m["<ent>"]:
            return State(phase="mention", role="ent")
        if state.skip_to == "rel" and state.head is not None:
            if tok in (m["<rel>"], m["<rel-inv>"]):
                return replace(state, phase="rlabel", label=(), rel=("", tok == m["<rel-inv>"]), skip_to="")
            if tok == m["</anchor>"]:
                return State(phase="top")
        return state

    def error_state(self, state: State) -> State:
        """Where to resume after an error in ``state``: the next relation of the same group when possible."""
        in_relation = state.role == "tail" or state.phase in ("rlabel", "after_rel", "group_more")
        if self.fmt == "anchor" and state.head is not None and in_relation:
            return State(phase="skip", skip_to="rel", head=state.head)
        return State(phase="skip", skip_to="group")

    def run(self, ids: Iterable[int], source: Source, positions: Sequence[int] | None = None) -> Events:
        """Step over a whole generated sequence, collecting entities, relations and counted errors.

        ``positions`` (one per id, -1 where not copied) places copied mentions where they were copied from."""
        events = Events()
        state = State()
        opened = rel_opened = 0  # the step that opened the current mention, and the current relation
        head = (0, 0)  # the steps of the current group's anchor (flat: the triple's head)
        for i, tok in enumerate(ids):
            if state.phase == "done":
                break
            prev, n_ents, n_rels = state, len(events.entities), len(events.relations)
            try:
                state = self.step(state, tok, source, events, positions[i] if positions is not None else -1)
            except GrammarError as e:
                events.error(e.kind)
                state = self.error_state(state)
            # an event closes on the id after its last label piece, and that id may open the next mention
            if len(events.entities) > n_ents:
                events.entity_steps.append((opened, i))
                if prev.role in ("anchor", "head"):
                    head = (opened, i)
            if len(events.relations) > n_rels:
                events.relation_steps.append((head, (rel_opened, i)))
            if state.phase == "mention" and prev.phase != "mention":
                opened = i
            elif state.phase == "rlabel" and prev.phase != "rlabel":
                rel_opened = i
        if state.phase not in ("done", "top", "ents"):
            if state.phase != "skip":
                events.error("truncated")
        return events
