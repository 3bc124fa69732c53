"""Parsing one brat ``.ann`` file against its ``.txt``: T (entity) and R (relation) lines, strictly checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import ReadResult, read_text

__all__ = ["parse_ann", "BratEntity", "BratRelation"]

_T = re.compile(r"(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)(?:\t(.*))?")
_R = re.compile(r"(R\d+)\t(\S+) Arg1:(T\d+) Arg2:(T\d+)\s*")
_START = re.compile(r"(?:[TRAEMN]\d+|\*|#\d*)\t")
_OTHER = re.compile(r"(?:\*|#\d*|[AEMN]\d+)\t.*")
_IGNORED = {
    "*": "ignored_coreference",
    "#": "ignored_note",
    "A": "ignored_attribute",
    "M": "ignored_attribute",
    "E": "ignored_event",
    "N": "ignored_normalization",
}

Fragments = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class BratEntity:
    """A T line: ``[start, end)`` runs from the first fragment's begin to the last fragment's end."""

    id: str
    type: str
    start: int
    end: int
    fragments: Fragments
    line: int


@dataclass(frozen=True)
class BratRelation:
    """An R line: ``Arg1`` is the head, ``Arg2`` the tail."""

    id: str
    type: str
    arg1: str
    arg2: str
    line: int


def _surface(text: str, frags: Fragments) -> str:
    """The surface brat writes for fragments: their texts joined by single spaces."""
    return " ".join(text[b:e] for b, e in frags)


def _shift(text: str, frags: Fragments, surface: str) -> int | None:
    """The small offset shift (-1, +1, -2, +2) at which the fragments read ``surface`` exactly, if any."""
    for d in (-1, 1, -2, 2):
        moved = tuple((b + d, e + d) for b, e in frags)
        if moved[0][0] >= 0 and moved[-1][1] <= len(text) and _surface(text, moved) == surface:
            return d
    return None


def _entity(
    m: re.Match, surface: str, text: str, ann: Path, line: int, result: ReadResult, repair_shifts: bool
) -> BratEntity:
    """Check a T line's offsets against the text; apply the discontinuity and shift rules of ``parse_ann``."""
    tid, type_, offsets = m.group(1), m.group(2), m.group(3)
    frags: Fragments = tuple((int(b), int(e)) for b, e in (f.split() for f in offsets.split(";")))
    for b, e in frags:
        if b >= e:
            raise InputError(f"line {line}: {tid}: empty fragment {b} {e}", path=ann)
        if e > len(text):
            raise InputError(
                f"line {line}: {tid}: offsets {b} {e} are past the {len(text)} characters of the .txt",
                path=ann,
            )
    where = f"{ann.name}:{line}"  # warnings name the file, not its folder
    if surface != _surface(text, frags):
        shift = _shift(text, frags, surface) if repair_shifts else None
        if shift is None:
            result.warn("surface_mismatch", f"{where} {tid}: {surface!r} vs text {_surface(text, frags)!r}")
        else:
            result.warn("offset_shift_repaired", f"{where} {tid}: {offsets} moved by {shift:+d}")
            frags = tuple((b + shift, e + shift) for b, e in frags)
    if len(frags) > 1:
        result.warn("discontinuous_entity", f"{where} {tid}: {offsets}")
        gaps = "".join(text[e:b] for (_, e), (b, _) in zip(frags, frags[1:], strict=False))
        if gaps.strip():
            result.warn("discontinuous_gap_not_space", f"{where} {tid}: gap {gaps!r}")
    return BratEntity(tid, type_, min(b for b, _ in frags), max(e for _, e in frags), frags, line)


def parse_ann(
    ann: str | Path, text: str, result: ReadResult, repair_shifts: bool = True
) -> tuple[list[BratEntity], list[BratRelation]]:
    """T and R lines of one ``.ann`` (checked against ``text``); other kinds are counted and skipped.

    A surface that crosses a line break continues on the next ``.ann`` line(s): lines are joined until the
    surface reaches the length its offsets give; further lines that start no annotation are counted
    ``extra_surface_line`` and joined too. Discontinuous ``b1 e1;b2 e2`` entities span from the first begin to
    the last end (the fragments are almost always separated by whitespace only), counted
    ``discontinuous_entity``, and ``discontinuous_gap_not_space`` when the gap holds other characters.
    A surface that differs from the text at its offsets is counted ``surface_mismatch``; with
    ``repair_shifts``, when the text reads the surface exactly one or two characters away, the offsets
    move there (counted ``offset_shift_repaired``): eight SanWen train files drift by a character or two
    after some point (e.g. train/898.ann ``T160 1057 1058 路``, where the .txt has 路 at 1056).
    """
    ann = Path(ann)
    name = ann.name
    lines = read_text(ann).split("\n")
    entities: dict[str, BratEntity] = {}
    relations: list[BratRelation] = []
    k = 0
    while k < len(lines):
        line = lines[k].rstrip("\r")
        k += 1  # k is now this line's 1-based number
        if not line.strip():
            continue
        if m := _T.fullmatch(line):
            line_no = k
            surface = m.group(4) or ""
            expected = sum(int(e) - int(b) + 1 for b, e in (f.split() for f in m.group(3).split(";"))) - 1
            while len(surface) < expected and k < len(lines):  # the surface wraps onto the next line
                surface += "\n" + lines[k]
                k += 1
            # SanWen has a few stray surface lines after a complete T line (train/980.ann line 144: "人"):
            # a line that starts no annotation is taken as more surface, counted, not an error.
            while k < len(lines) and lines[k].strip() and not _START.match(lines[k]):
                result.warn("extra_surface_line", f"{name}:{k + 1} after {m.group(1)}: {lines[k][:40]!r}")
                surface += "\n" + lines[k]
                k += 1
            if m.group(1) in entities:
                raise InputError(f"line {line_no}: {m.group(1)} is defined twice", path=ann)
            entities[m.group(1)] = _entity(m, surface, text, Path(ann), line_no, result, repair_shifts)
        elif m := _R.fullmatch(line):
            relations.append(BratRelation(m.group(1), m.group(2), m.group(3), m.group(4), k))
        elif _OTHER.fullmatch(line):
            result.warn(_IGNORED[line[0]], f"{name}:{k}: {line[:60]}")
        else:
            raise InputError(
                f"line {k}: cannot parse {line[:60]!r} as a brat T, R, *, #, A, E, M or N line", path=ann
            )
    for r in relations:
        for arg in (r.arg1, r.arg2):
            if arg not in entities:
                raise InputError(
                    f"line {r.line}: {r.id}: argument {arg} is not a T id of this file", path=ann
                )
    return list(entities.values()), relations
