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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = ["MARKERS", "Source", "TargetVocab", "Grammar", "State", "GrammarError", "Span"]

MARKERS = ("<anchor>", "</anchor>", "<rel>", "<rel-inv>", "<tail>", "<type>", "<ent>", "<head>")
FORMATS = ("anchor", "flat")

Span = tuple[int, int, str]  # token start, token end (exclusive), entity type


@dataclass(frozen=True)
class Source:
    """The encoder input: piece ids and, per piece, its document token index (-1 for special pieces)."""

    ids: tuple[int, ...]
    piece_token: tuple[int, ...]

    def is_word_start(self, p: int) -> bool:
        t = self.piece_token[p]
        return t >= 0 and (p == 0 or self.piece_token[p - 1] != t)

    def is_boundary(self, p: int) -> bool:
        """Whether a mention may end just before piece ``p``."""
        return p >= len(self.ids) or self.piece_token[p] < 0 or self.is_word_start(p)

    def word_starts(self) -> list[int]:
        return [p for p in range(len(self.ids)) if self.is_word_start(p)]

    def token_pieces(self, token: int) -> tuple[int, int] | None:
        """Piece span ``[s, e)`` of a document token, or None when it was truncated away."""
        ps = [p for p, t in enumerate(self.piece_token) if t == token]
        return (ps[0], ps[-1] + 1) if ps else None

    def span_pieces(self, start: int, end: int) -> tuple[int, int] | None:
        a, b = self.token_pieces(start), self.token_pieces(end - 1)
        return (a[0], b[1]) if a and b else None

    def occurrences(self, mention: Sequence[int]) -> list[int]:
        """Start pieces of every word-aligned occurrence of ``mention`` (earliest first)."""
        n = len(mention)
        if n == 0:
            return []
        return [
            s
            for s in self.word_starts()
            if tuple(self.ids[s : s + n]) == tuple(mention)
            and all(t >= 0 for t in self.piece_token[s : s + n])
            and self.is_boundary(s + n)
        ]

    def token_span(self, s: int, n: int) -> tuple[int, int]:
        return self.piece_token[s], self.piece_token[s + n - 1] + 1


@dataclass(frozen=True)
class TargetVocab:
    """Ids of the markers, of each type's and relation's verbalized label, and of end-of-sequence."""

    markers: dict[str, int]
    entity_labels: dict[str, tuple[int, ...]]
    relation_labels: dict[str, tuple[int, ...]]
    eos_id: int
    _tries: dict = field(default_factory=dict, compare=False, repr=False)

    def marker(self, name: str) -> int:
        return self.markers[name]

    def trie(self, kind: str) -> tuple[dict[tuple[int, ...], set[int]], dict[tuple[int, ...], str]]:
        """(prefix -> next ids, full label ids -> name) for ``kind`` in {"entity", "relation"}."""
        if kind not in self._tries:
            labels = self.entity_labels if kind == "entity" else self.relation_labels
            nxt: dict[tuple[int, ...], set[int]] = {}
            full: dict[tuple[int, ...], str] = {}
            for name, ids in labels.items():
                full[tuple(ids)] = name
                for i in range(len(ids)):
                    nxt.setdefault(tuple(ids[:i]), set()).add(ids[i])
            self._tries[kind] = (nxt, full)
        return self._tries[kind]

    def structural_ids(self) -> set[int]:
        return set(self.markers.values()) | {self.eos_id}


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


@dataclass
class Events:
    """What a run of the machine produced: entities, relations (as spans) and counted errors."""

    entities: list[Span] = field(default_factory=list)
    relations: list[tuple[Span, Span, str]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Grammar:
    """The state machine of one target format over one vocabulary."""

    def __init__(self, vocab: TargetVocab, fmt: str = "anchor") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.vocab = vocab
        self.fmt = fmt
        m = vocab.markers
        self.m = m
        self.eos = vocab.eos_id
        self.group_open = m["<anchor>"] if fmt == "anchor" else m["<head>"]
        self._marker_names = {v: k for k, v in m.items()}

    # -- allowed continuations (used by the constraint) ----------------------------------------------

    def allowed(self, state: State, source: Source) -> list[int]:
        """Every id the grammar accepts next in ``state``."""
        m, ph = self.m, state.phase
        if ph == "top":
            return [self.group_open, m["<ent>"], self.eos]
        if ph == "ents":
            return [m["<ent>"], self.eos]
        if ph == "mention":
            n = len(state.mention)
            if n == 0:
                return sorted({source.ids[p] for p in source.word_starts()})
            out = {source.ids[s + n] for s in state.cands if s + n < len(source.ids) and source.piece_token[s + n] >= 0}
            if any(source.is_boundary(s + n) for s in state.cands):
                out.add(m["<type>"])
            return sorted(out)
        if ph in ("etype", "rlabel"):
            nxt, full = self.vocab.trie("entity" if ph == "etype" else "relation")
            out = set(nxt.get(state.label, ()))
            if state.label in full:
                out.update(self._after_label(state))
            return sorted(out)
        if ph == "after_head_type":
            return [m["<rel>"], m["<rel-inv>"]] if self.fmt == "anchor" else [m["<rel>"]]
        if ph == "after_rel":
            return [m["<tail>"]]
        if ph == "group_more":
            return [m["<rel>"], m["<rel-inv>"], m["</anchor>"]]
        return [self.eos]

    def _after_label(self, state: State) -> list[int]:
        m = self.m
        if state.phase == "rlabel":
            return [m["<tail>"]]
        if state.role == "anchor":
            return [m["<rel>"], m["<rel-inv>"]]
        if state.role == "head":
            return [m["<rel>"]]
        if state.role == "tail":
            if self.fmt == "anchor":
                return [m["<rel>"], m["<rel-inv>"], m["</anchor>"]]
            return [self.group_open, m["<ent>"], self.eos]
        return [m["<ent>"], self.eos]  # role == "ent"

    # -- stepping (used by parse, and by the constraint to follow each beam) ------------------------

    def step(self, state: State, tok: int, source: Source, events: Events | None = None) -> State:
        """Advance over one id; raises GrammarError when it is not accepted (state unchanged)."""
        m, ph = self.m, state.phase
        if ph == "skip":
            return self._resync(state, tok)
        if ph in ("top", "ents", "done"):
            if tok == self.eos and ph != "done":
                return State(phase="done")
            if tok == self.group_open and ph == "top":
                return State(phase="mention", role="anchor" if self.fmt == "anchor" else "head")
            if tok == m["<ent>"] and ph != "done":
                return State(phase="mention", role="ent")
            raise GrammarError("unexpected_token")
        if ph == "mention":
            if tok == m["<type>"]:
                n = len(state.mention)
                ends = [s for s in state.cands if source.is_boundary(s + n)]
                if n == 0:
                    raise GrammarError("empty_mention")
                if not ends:
                    raise GrammarError("unplaceable_mention")
                return replace(state, phase="etype", label=(), span=source.token_span(ends[0], n))
            if tok in self._marker_names or tok == self.eos:
                raise GrammarError("unexpected_marker")
            mention = state.mention + (tok,)
            if not state.mention:
                cands = tuple(s for s in source.word_starts() if source.ids[s] == tok)
            else:
                n = len(state.mention)
                cands = tuple(
                    s for s in state.cands if s + n < len(source.ids) and source.ids[s + n] == tok and source.piece_token[s + n] >= 0
                )
            # An unplaceable mention is reported when it closes, so that the count is per mention.
            return replace(state, mention=mention, cands=cands)
        if ph in ("etype", "rlabel"):
            nxt, full = self.vocab.trie("entity" if ph == "etype" else "relation")
            if tok in nxt.get(state.label, ()):
                return replace(state, label=state.label + (tok,))
            if state.label in full and tok in self._after_label(state):
                name = full[state.label]
                done = replace(state, label=())
                return self._close_label(done, name, tok, source, events)
            raise GrammarError("bad_entity_type" if ph == "etype" else "bad_relation_label")
        if ph == "after_head_type":
            if tok in self.allowed(state, source):
                return replace(state, phase="rlabel", label=(), rel=("", tok == m["<rel-inv>"]))
            raise GrammarError("unexpected_token")
        if ph == "after_rel":
            if tok == m["<tail>"]:
                return replace(state, phase="mention", role="tail", mention=(), cands=())
            raise GrammarError("unexpected_token")
        if ph == "group_more":
            if tok == m["</anchor>"]:
                return State(phase="top")
            if tok in (m["<rel>"], m["<rel-inv>"]):
                return replace(state, phase="rlabel", label=(), rel=("", tok == m["<rel-inv>"]))
            raise GrammarError("unexpected_token")
        raise GrammarError("unexpected_token")

    def _close_label(self, state: State, name: str, tok: int, source: Source, events: Events | None) -> State:
        """A label was completed by ``tok`` (the next marker): record what it finished, then take ``tok``."""
        if state.phase == "rlabel":  # tok is <tail>, the only id that may close a relation label
            inv = bool(state.rel and state.rel[1])
            return replace(state, phase="mention", role="tail", mention=(), cands=(), rel=(name, inv))
        assert state.span is not None
        ent: Span = (state.span[0], state.span[1], name)
        if events is not None:
            events.entities.append(ent)
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
                nxt = State(phase="top")
            return self.step(nxt, tok, source, events)
        return self.step(State(phase="ents"), tok, source, events)  # role == "ent"

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

    def run(self, ids: Iterable[int], source: Source) -> Events:
        """Step over a whole generated sequence, collecting entities, relations and counted errors."""
        events = Events()
        state = State()
        for tok in ids:
            if state.phase == "done":
                break
            try:
                state = self.step(state, tok, source, events)
            except GrammarError as e:
                events.error(e.kind)
                state = self.error_state(state)
        if state.phase not in ("done", "top", "ents"):
            if state.phase != "skip":
                events.error("truncated")
        return events
