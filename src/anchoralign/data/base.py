"""What every reader shares: the result type, strict file loading and validation, de-duplication, offsets."""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..schema import Schema
from ..types import Document, Entity, Relation, Token

__all__ = [
    "ReadResult",
    "Reader",
    "Where",
    "read_text",
    "load_json_array",
    "load_jsonl",
    "AnnotationBuilder",
    "TokenIndex",
    "map_labels",
]

MAX_EXAMPLES = 5


@dataclass
class ReadResult:
    """Documents read from one file or directory, the source's own counts, and counted problems."""

    documents: list[Document] = field(default_factory=list)
    source_documents: int = 0  # sentences / records / lines; .txt files for brat
    source_relations: int = 0  # relations or triples as the source holds them (duplicates included)
    source_entities: int = 0  # mentions as the source holds them; CasRel/DuIE: distinct located strings
    warnings: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def warn(self, kind: str, example: str) -> None:
        """Count one problem of ``kind``, keeping the first few messages as examples."""
        self.warnings[kind] = self.warnings.get(kind, 0) + 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example)


class Reader(Protocol):
    """A reader: a path (file or directory) and format options in, a ``ReadResult`` out."""

    def __call__(self, path: str | Path, /, **options: Any) -> ReadResult: ...


_KIND_NAMES = {int: "an integer", str: "a string", list: "an array", dict: "an object", float: "a number"}


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


@dataclass(frozen=True)
class Where:
    """A position in an input file (path and record) that turns problems into one-line ``InputError``s."""

    path: str | Path
    record: object | None = None

    def error(self, message: str) -> InputError:
        return InputError(message, path=self.path, record=self.record)

    def obj(self, value: object, what: str) -> dict:
        """``value`` must be a JSON object."""
        if not isinstance(value, dict):
            raise self.error(f"{what}: expected an object, found {_type_name(value)}")
        return value

    def field(
        self, obj: dict, key: str, kind: type | tuple[type, ...], what: str = "", default: Any = ...
    ) -> Any:
        """``obj[key]``, which must exist (unless a default is given) and have type ``kind`` (bool is no int)."""
        prefix = f"{what}: " if what else ""
        if key not in obj:
            if default is not ...:
                return default
            raise self.error(f'{prefix}missing field "{key}"')
        value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise self.error(
                f'{prefix}field "{key}" must be {wanted}, found {_type_name(value)} {_short(value)}'
            )
        return value

    def str_list(self, value: object, what: str) -> list[str]:
        """A list of non-empty strings."""
        if not isinstance(value, list):
            raise self.error(f"{what}: expected an array of strings, found {_type_name(value)}")
        for i, s in enumerate(value):
            if not isinstance(s, str) or not s:
                raise self.error(f"{what}: item {i} must be a non-empty string, found {_short(s)}")
        return value


def _short(value: object, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(path: str | Path) -> str:
    """The file's text, strictly UTF-8; unreadable files and bad bytes become ``InputError``s."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}", path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8: byte 0x{data[e.start]:02x} at byte offset {e.start} (line {line})", path=path
        ) from None


def _json_text(path: str | Path) -> str:
    text = read_text(path).removeprefix("\ufeff")  # a BOM is harmless in JSON; offsets are inside strings
    if not text.strip():
        raise InputError("file is empty", path=path)
    return text


def load_json_array(path: str | Path) -> list:
    """A file holding one JSON array (SpERT, CasRel)."""
    text = _json_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (one JSON value per line? use the JSON Lines format)" if e.msg == "Extra data" else ""
        raise InputError(
            f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}{hint}", path=path
        ) from None
    if not isinstance(value, list):
        raise InputError(
            f"expected a JSON array of records at the top level, found {_type_name(value)}", path=path
        )
    return value


def load_jsonl(path: str | Path) -> list[tuple[Where, dict]]:
    """A JSON Lines file: one object per non-blank line, each with its ``Where`` (record index and line)."""
    text = _json_text(path)
    records: list[tuple[Where, dict]] = []
    # Not str.splitlines(): U+2028, U+0085 etc. may stand unescaped inside JSON strings; raw CR/LF may not.
    for line_no, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        where = Where(path, f"{len(records)} (line {line_no})")
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise where.error(f"invalid JSON at column {e.colno}: {e.msg}") from None
        records.append((where, where.obj(value, "line")))
    return records


class AnnotationBuilder:
    """Unique entities and relations of one document; merged duplicates are counted, never silent."""

    def __init__(self, result: ReadResult, doc_id: str) -> None:
        self.result = result
        self.doc_id = doc_id
        self.entities: list[Entity] = []
        self.relations: list[Relation] = []
        self._entity_index: dict[tuple[int, int, str], int] = {}
        self._relations: set[tuple[int, int, str]] = set()

    def entity(self, entity: Entity) -> int:
        """Add an entity, or find the identical one (same token span and type); its index."""
        key = (entity.start, entity.end, entity.type)
        if key in self._entity_index:
            self.result.warn("duplicate_entity_merged", f"{self.doc_id}: {entity.type} {entity.span}")
            return self._entity_index[key]
        self._entity_index[key] = len(self.entities)
        self.entities.append(entity)
        return len(self.entities) - 1

    def relation(self, head: int, tail: int, type: str) -> None:
        """Add a relation unless the same (head, tail, type) is already there."""
        key = (head, tail, type)
        if key in self._relations:
            self.result.warn("duplicate_relation_merged", f"{self.doc_id}: {type} {head}->{tail}")
            return
        self._relations.add(key)
        self.relations.append(Relation(head, tail, type))


class TokenIndex:
    """Character span -> token span lookups in O(log n) over sorted, non-overlapping tokens."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self._starts = [t.start for t in tokens]
        self._ends = [t.end for t in tokens]
        self.starts = set(self._starts)
        self.ends = set(self._ends)

    def covering(self, char_start: int, char_end: int) -> tuple[int, int] | None:
        """The smallest token span covering ``[char_start, char_end)``, or None when no token is touched."""
        first = bisect_right(self._ends, char_start)  # first token ending after char_start
        last = bisect_left(self._starts, char_end)  # tokens starting before char_end
        return (first, last) if first < last else None

    def aligned(self, char_start: int, char_end: int) -> bool:
        """Whether the span starts at a token start and ends at a token end."""
        return char_start < char_end and char_start in self.starts and char_end in self.ends

    def entity(self, char_start: int, char_end: int, type: str) -> Entity | None:
        """The entity of the tokens covering a character span, with the tokens' character extent."""
        span = self.covering(char_start, char_end)
        if span is None:
            return None
        return Entity(span[0], span[1], type, self.tokens[span[0]].start, self.tokens[span[1] - 1].end)


def _case_map(names: Iterable[str]) -> dict[str, str]:
    """Lower-cased name -> name, for names whose lower case is unique (WebNLG has ``fullName`` and ``fullname``)."""
    by_lower: dict[str, list[str]] = {}
    for n in names:
        by_lower.setdefault(n.lower(), []).append(n)
    return {k: v[0] for k, v in by_lower.items() if len(v) == 1}


def _renamer(names: Iterable[str]) -> Callable[[str], str]:
    names = set(names)
    lower = _case_map(names)

    def rename(label: str) -> str:
        return label if label in names else lower.get(label.lower(), label)

    return rename


def map_labels(documents: list[Document], schema: Schema) -> None:
    """Rename entity and relation types to the schema's spelling, case-insensitively (DyGIE ``USED-FOR``).

    A label the schema already has, or whose lower case matches several schema names, is left as it is.
    """
    rename_entity, rename_relation = _renamer(schema.entity_types), _renamer(schema.relation_types)
    for doc in documents:
        doc.entities = [
            e if (t := rename_entity(e.type)) == e.type else replace(e, type=t) for e in doc.entities
        ]
        doc.relations = [
            r if (t := rename_relation(r.type)) == r.type else replace(r, type=t) for r in doc.relations
        ]
