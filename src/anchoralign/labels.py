"""The target vocabulary: marker ids, each type's and relation's verbalized label ids, end of sequence, and
the label tries the grammar walks. Torch-free; computed once per model."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MARKERS", "TargetVocab"]

MARKERS = ("<anchor>", "</anchor>", "<rel>", "<rel-inv>", "<tail>", "<type>", "<ent>", "<head>")


@dataclass(frozen=True)
class TargetVocab:
    """Ids of the markers, of each type's and relation's verbalized label, and of end-of-sequence."""

    markers: dict[str, int]
    entity_labels: dict[str, tuple[int, ...]]
    relation_labels: dict[str, tuple[int, ...]]
    eos_id: int
    _tries: dict = field(default_factory=dict, compare=False, repr=False)
    _next: dict = field(default_factory=dict, compare=False, repr=False)

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

    def label_next(self, kind: str, prefix: tuple[int, ...], names: frozenset[str] | None) -> tuple[frozenset[int], bool]:
        """(next label ids, whether ``prefix`` completes a label) among the labels ``names`` (None: all)."""
        key = (kind, prefix, names)
        hit = self._next.get(key)
        if hit is not None:
            return hit
        nxt, full = self.trie(kind)
        if names is None:
            out = (frozenset(nxt.get(prefix, ())), prefix in full)
        else:
            labels = self.entity_labels if kind == "entity" else self.relation_labels
            ids, complete, n = set(), False, len(prefix)
            for name in names:
                pieces = labels[name]
                if tuple(pieces[:n]) == prefix:
                    if len(pieces) > n:
                        ids.add(pieces[n])
                    else:
                        complete = True
            out = (frozenset(ids), complete)
        self._next[key] = out
        return out

    def structural_ids(self) -> set[int]:
        return set(self.markers.values()) | {self.eos_id}
