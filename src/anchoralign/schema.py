"""Entity and relation types, their verbalized labels, symmetric flags and allowed signatures.

Torch-free and tokenizer-free. A signature is ``(head type, relation type, tail type)``; for a symmetric
relation both directions are allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .types import Document

__all__ = ["EntityType", "RelationType", "Schema", "verbalize"]


def verbalize(name: str) -> str:
    """A readable lower-case label for a type name: ``OrgBased_In`` -> ``org based in``."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    words = re.sub(r"[_\-./]+", " ", words)
    return " ".join(words.lower().split()) or name


@dataclass(frozen=True)
class EntityType:
    name: str
    label: str


@dataclass(frozen=True)
class RelationType:
    name: str
    label: str
    symmetric: bool = False


@dataclass
class Schema:
    """Types, verbalized labels and the (head type, relation, tail type) signatures a dataset allows."""

    entity_types: dict[str, EntityType] = field(default_factory=dict)
    relation_types: dict[str, RelationType] = field(default_factory=dict)
    signatures: set[tuple[str, str, str]] = field(default_factory=set)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_spert_types(cls, path: str | Path) -> Schema:
        """Read a SpERT ``*_types.json`` (``entities``/``relations`` with ``verbose`` and ``symmetric``)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read types file: {e}", path=path) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("entities"), dict):
            raise InputError('expected an object with "entities" and "relations" objects', path=path)
        schema = cls()
        for name, info in raw["entities"].items():
            info = info if isinstance(info, dict) else {}
            schema.add_entity_type(name, verbalize(str(info.get("verbose", name))))
        for name, info in (raw.get("relations") or {}).items():
            info = info if isinstance(info, dict) else {}
            schema.add_relation_type(
                name, verbalize(str(info.get("verbose", name))), bool(info.get("symmetric", False))
            )
        return schema

    def add_entity_type(self, name: str, label: str | None = None) -> None:
        if name not in self.entity_types:
            self.entity_types[name] = EntityType(name, label or verbalize(name))

    def add_relation_type(self, name: str, label: str | None = None, symmetric: bool = False) -> None:
        if name not in self.relation_types:
            self.relation_types[name] = RelationType(name, label or verbalize(name), symmetric)

    def update_from(self, docs: Iterable[Document]) -> Schema:
        """Add every type and signature seen in ``docs`` (types already present keep their labels)."""
        for doc in docs:
            for e in doc.entities:
                self.add_entity_type(e.type)
            for r in doc.relations:
                self.add_relation_type(r.type)
                self.signatures.add((doc.entities[r.head].type, r.type, doc.entities[r.tail].type))
        return self

    @classmethod
    def from_documents(cls, docs: Iterable[Document]) -> Schema:
        return cls().update_from(docs)

    # -- queries ------------------------------------------------------------------------------------

    def is_symmetric(self, relation: str) -> bool:
        rt = self.relation_types.get(relation)
        return bool(rt and rt.symmetric)

    def allows(self, head_type: str, relation: str, tail_type: str) -> bool:
        """Whether a signature is allowed (both directions for symmetric relations)."""
        if (head_type, relation, tail_type) in self.signatures:
            return True
        return self.is_symmetric(relation) and (tail_type, relation, head_type) in self.signatures

    def check_labels_unique(self) -> None:
        """Verbalized labels must be unique within entity types and within relation types."""
        for kind, table in (("entity", self.entity_types), ("relation", self.relation_types)):
            seen: dict[str, str] = {}
            for t in table.values():
                if t.label in seen:
                    raise InputError(f"{kind} types {seen[t.label]!r} and {t.name!r} share the label {t.label!r}")
                seen[t.label] = t.name

    # -- serialization ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "entities": {n: {"label": t.label} for n, t in self.entity_types.items()},
            "relations": {
                n: {"label": t.label, "symmetric": t.symmetric} for n, t in self.relation_types.items()
            },
            "signatures": sorted(list(s) for s in self.signatures),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Schema:
        schema = cls()
        for n, info in raw.get("entities", {}).items():
            schema.add_entity_type(n, info.get("label"))
        for n, info in raw.get("relations", {}).items():
            schema.add_relation_type(n, info.get("label"), bool(info.get("symmetric", False)))
        schema.signatures = {tuple(s) for s in raw.get("signatures", [])}  # type: ignore[misc]
        return schema

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
