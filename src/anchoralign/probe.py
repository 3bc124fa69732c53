"""Relations only where the text states them: a probe of sentences that state no relation, and its scorer.
Torch-free.

The probe (``build_probe``) is built for the CoNLL04 schema from templates filled with names written here (none
of them occurs in CoNLL04), deterministically from a seed, plus real sentences of a dataset split:

- ``negated``: the relation is explicitly negated ("X never worked for Y");
- ``hedged``: it is denied, doubted or reported false ("It is unclear whether X killed Y");
- ``cooccurrence``: entities of types that could be related merely co-occur ("X and Y both attended ...");
- ``control``: one relation stated plainly ("X works for Y"), the expected triple given;
- ``real_cooccurrence``: real sentences with two entities whose types could be related and no gold relation
  at all (every one of them; CoNLL04 as released has none: each of its sentences has a relation);
- ``real_pairs``: every pair of entities in a real sentence whose types could be related and between which
  the gold has no relation, in either direction.

Every item carries its text and its entities' character spans and types, so ``score_probe`` reports both
whether a relation was output and whether the entities were found, at each relation-score threshold, under the
library's threshold rule (``Extraction.filtered``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from .extraction import Extraction
from .types import Document

__all__ = ["SIGNATURES", "CATEGORIES", "FP_CATEGORIES", "ProbeEntity", "ProbeItem", "Probe", "build_probe",
           "real_items", "score_probe", "target_check"]

# relation -> (head type, tail type): the CoNLL04 schema (conll04_types.json; signatures as in its train split)
SIGNATURES: dict[str, tuple[str, str]] = {
    "Work_For": ("Peop", "Org"),
    "Kill": ("Peop", "Peop"),
    "Live_In": ("Peop", "Loc"),
    "Located_In": ("Loc", "Loc"),
    "OrgBased_In": ("Org", "Loc"),
}

CATEGORIES = ("negated", "hedged", "cooccurrence", "control", "real_cooccurrence", "real_pairs")
FP_CATEGORIES = ("negated", "hedged", "cooccurrence", "real_cooccurrence", "real_pairs")  # a relation is wrong
TEMPLATED = ("negated", "hedged", "cooccurrence", "control")

# Names: plausible and varied, checked not to occur in CoNLL04 (tests/test_probe.py).
PEOPLE = (
    "Marta Kowalczyk", "Tobias Lindqvist", "Amara Okafor", "Hiroshi Tanabe", "Elena Varga", "Priya Raman",
    "Declan Moorhouse", "Ingrid Solberg", "Kwame Asante", "Lucia Ferrante", "Mateo Quintana", "Nadia Haddad",
    "Oskar Brandt", "Fiona Gallagher", "Rafael Domingos", "Sana Qureshi", "Tomasz Wierzbicki", "Yusuf Demirci",
    "Chloe Marchand", "Anders Holmgren", "Beatriz Salgado", "Dmitri Volkonsky", "Grace Adeyemi", "Henrik Dahl",
    "Isabel Navarro", "Jonah Whitcombe", "Keiko Morimoto", "Liam Thornbury", "Mirela Popescu", "Nikos Papadakis",
    "Olivia Pemberton", "Pavel Horak", "Rosa Castellanos", "Samuel Okonkwo", "Tessa Vandermeer", "Viktor Sarkany",
    "Wen Jiahui", "Ximena Robles", "Zofia Nowicka", "Arjun Mehta",
)
ORGANIZATIONS = (
    "Halvorsen Shipping", "Brightwater Analytics", "Northgate Insurance", "Kestrel Aerospace", "Meridian Foods",
    "Pinecrest Bank", "Vantor Labs", "Solvik Energy", "Marlow Publishing", "Redfern Motors", "Altamira Textiles",
    "Quillon Pharmaceuticals", "Corvane Systems", "Ashcombe Brewery", "Talbridge University", "Orrin Media Group",
    "Lindenfeld Chemicals", "Saltmarsh Records", "Greyhaven Capital", "Bellweather Logistics", "Fenwick Robotics",
    "Mosswood Hospital", "Castellan Security", "Pellham Institute",
)
CITIES = (
    "Tartu", "Kumasi", "Arequipa", "Bendigo", "Mysore", "Olomouc", "Esbjerg", "Kaunas", "Trabzon", "Rovaniemi",
    "Zadar", "Leuven", "Maribor", "Tampere", "Nakuru", "Ballarat", "Loja", "Sapporo", "Gdynia", "Aarhus",
    "Bergamo", "Coimbra", "Dunedin", "Iloilo", "Matsue", "Pecs", "Salta", "Tromso", "Vaasa", "Ipoh",
)
REGIONS = (
    "Tasmania", "Asturias", "Moravia", "Lapland", "Dalmatia", "Flanders", "Jutland", "Karnataka", "Hokkaido",
    "Patagonia", "Styria", "Anatolia", "Otago", "Visayas", "Lombardy", "Pomerania", "Shimane", "Ostrobothnia",
    "Lithuania", "Ghana",
)

POOLS: dict[str, tuple[str, ...]] = {"people": PEOPLE, "organizations": ORGANIZATIONS, "cities": CITIES,
                                     "regions": REGIONS}
# template slot -> (entity type, name pool); a digit makes a second slot of the same kind
SLOTS: dict[str, tuple[str, str]] = {
    "Peop": ("Peop", "people"), "Peop2": ("Peop", "people"), "Org": ("Org", "organizations"),
    "City": ("Loc", "cities"), "City2": ("Loc", "cities"), "Region": ("Loc", "regions"),
}
# relation -> (head slot, tail slot) in its templates
ARGUMENTS: dict[str, tuple[str, str]] = {
    "Work_For": ("Peop", "Org"), "Kill": ("Peop", "Peop2"), "Live_In": ("Peop", "City"),
    "Located_In": ("City", "Region"), "OrgBased_In": ("Org", "City"),
}

NEGATED: dict[str, tuple[str, ...]] = {
    "Work_For": (
        "{Peop} never worked for {Org}.",
        "{Peop} does not work for {Org}.",
        "{Peop} has never been employed by {Org}.",
        "{Org} has never employed {Peop}.",
        "{Peop} is not an employee of {Org}.",
        "Contrary to earlier reports, {Peop} did not join {Org}.",
    ),
    "Kill": (
        "{Peop} did not kill {Peop2}.",
        "{Peop} never killed {Peop2}.",
        "{Peop2} was not killed by {Peop}.",
        "{Peop} was not the person who murdered {Peop2}.",
        "Investigators concluded that {Peop} had not murdered {Peop2}.",
        "{Peop} could not have killed {Peop2}, who died of natural causes.",
    ),
    "Live_In": (
        "{Peop} has never lived in {City}.",
        "{Peop} does not live in {City}.",
        "{Peop} is not a resident of {City}.",
        "{Peop} never made a home in {City}.",
        "{Peop} did not grow up in {City}.",
        "Despite the rumors, {Peop} has not moved to {City}.",
    ),
    "Located_In": (
        "{City} is not located in {Region}.",
        "{City} is not in {Region}.",
        "{City} does not lie within {Region}.",
        "{City} has never been part of {Region}.",
        "Contrary to a common belief, {City} is not a city in {Region}.",
        "{City} lies far outside {Region}.",
    ),
    "OrgBased_In": (
        "{Org} is not based in {City}.",
        "{Org} has no headquarters in {City}.",
        "{Org} has never had an office in {City}.",
        "{Org} is not headquartered in {City}.",
        "{Org} did not move its headquarters to {City}.",
        "{Org}, contrary to its advertising, does not operate from {City}.",
    ),
}
HEDGED: dict[str, tuple[str, ...]] = {
    "Work_For": (
        "{Peop} denied ever having worked for {Org}.",
        "It is unclear whether {Peop} worked for {Org}.",
        "Reports that {Peop} worked for {Org} turned out to be false.",
        "Nobody could confirm that {Peop} worked for {Org}.",
    ),
    "Kill": (
        "{Peop} denied killing {Peop2}.",
        "It is unclear whether {Peop} killed {Peop2}.",
        "Claims that {Peop} killed {Peop2} were false.",
        "There is no evidence that {Peop} killed {Peop2}.",
    ),
    "Live_In": (
        "{Peop} denied having lived in {City}.",
        "It is not known whether {Peop} ever lived in {City}.",
        "Reports that {Peop} lived in {City} were false.",
        "Nobody could confirm that {Peop} lived in {City}.",
    ),
    "Located_In": (
        "Mapmakers dispute whether {City} lies within {Region}.",
        "It is unclear whether {City} belongs to {Region}.",
        "Claims that {City} is located in {Region} are false.",
        "There is no evidence that {City} was ever part of {Region}.",
    ),
    "OrgBased_In": (
        "{Org} denied that it is based in {City}.",
        "It is unclear whether {Org} is based in {City}.",
        "Reports that {Org} was headquartered in {City} proved false.",
        "Nobody could confirm that {Org} is based in {City}.",
    ),
}
CONTROL: dict[str, tuple[str, ...]] = {
    "Work_For": (
        "{Peop} works for {Org}.",
        "{Peop}, an engineer at {Org}, spoke on Tuesday.",
        "{Org} hired {Peop} last year.",
        "{Peop} is a spokesman for {Org}.",
        "{Peop}, the chief executive of {Org}, resigned.",
    ),
    "Kill": (
        "{Peop} killed {Peop2}.",
        "{Peop2} was shot and killed by {Peop}.",
        "{Peop} murdered {Peop2} outside a bar.",
        "{Peop} assassinated {Peop2}.",
        "{Peop}, who killed {Peop2}, was sentenced to life in prison.",
    ),
    "Live_In": (
        "{Peop} lives in {City}.",
        "{Peop}, a resident of {City}, was injured.",
        "{Peop} moved to {City} and has lived there since.",
        "{Peop} of {City} won the prize.",
        "{Peop} has lived in {City} for many years.",
    ),
    "Located_In": (
        "{City} is located in {Region}.",
        "{City} is a city in {Region}.",
        "{City}, {Region}, was hit by a storm.",
        "The town of {City} in {Region} held an election.",
        "{City} lies in northern {Region}.",
    ),
    "OrgBased_In": (
        "{Org} is based in {City}.",
        "{Org}, headquartered in {City}, reported a loss.",
        # not "The {City}-based {Org} ...": CoNLL04 writes "X-based" as one token and never annotates its place
        # ("New Orleans-based Popeyes", "the Frankfurt-based Commerzbank"), so that control asked for an entity
        # the benchmark's convention does not have (0 of 12 found over three models; docs/probe.md)
        "{Org}, which is based in {City}, announced new jobs.",
        "{Org} of {City} opened a new plant.",
        "{Org} has its headquarters in {City}.",
    ),
}
# Entities whose types could be related, and no relation stated between any two of them.
COOCCURRENCE: tuple[str, ...] = (
    "{Peop}, {Peop2} and {Org} were named in the list.",
    "{Peop} and {Peop2} both attended the meeting.",
    "{Peop} and {Org} were mentioned in the same report.",
    "The list included {Peop}, {City} and {Org}.",
    "{Peop} wrote a novel about {City}.",
    "{Peop} criticized {Org} in a speech.",
    "{Peop} met {Peop2} at a conference.",
    "{Org} shipped equipment to {City}.",
    "{Peop} flew over {Region} on the way to a summit.",
    "{City} and {City2} both reported heavy rain on Monday.",
    "{Peop} praised {Peop2} during the ceremony.",
    "A reporter asked {Peop} about {Org}.",
    "Tickets to {City} and {Region} sold out quickly.",
    "{Peop} sued {Org} over a contract.",
    "{Peop} visited {City} last week.",
)

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class ProbeEntity:
    """An entity of an item: ``text[start:end]`` of the item's text, and its type."""

    start: int
    end: int
    type: str
    text: str


@dataclass(frozen=True)
class ProbeItem:
    """One probe item. ``input``: the index of the text it is read from in ``Probe.inputs()``; ``relation``,
    ``head``, ``tail``: for negated and hedged items the relation the text denies, for controls the one it
    states, for real pairs the one the pair's types allow (indices into ``entities``)."""

    id: str
    category: str
    text: str
    entities: tuple[ProbeEntity, ...]
    input: int
    relation: str | None = None
    head: int | None = None
    tail: int | None = None
    template: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Probe:
    """The items, and the real sentences (decoded with their own tokens) the real items point at."""

    items: list[ProbeItem]
    documents: list[Document] = field(default_factory=list)
    seed: int = 0
    repeats: int = 4

    def inputs(self) -> list[str | Document]:
        """What to extract from, in order: each templated item's text, then each real sentence."""
        return [it.text for it in self.items if it.category in TEMPLATED] + list(self.documents)

    def counts(self) -> dict[str, int]:
        return {c: sum(it.category == c for it in self.items) for c in CATEGORIES}


def _deck(pool: Sequence[str], rng: random.Random) -> Iterator[str]:
    """The pool's names in shuffled rounds, so that every name is used about as often as any other."""
    while True:
        names = list(pool)
        rng.shuffle(names)
        yield from names


def _fill(template: str, decks: dict[str, Iterator[str]]) -> tuple[str, dict[str, ProbeEntity]]:
    """The template with a name in each slot (never one name twice in a text), and each slot's entity."""
    text, pos, used = "", 0, set()
    by_slot: dict[str, ProbeEntity] = {}
    for m in _SLOT.finditer(template):
        slot = m.group(1)
        etype, pool = SLOTS[slot]
        name = next(decks[pool])
        while name in used:
            name = next(decks[pool])
        used.add(name)
        text += template[pos : m.start()]
        by_slot[slot] = ProbeEntity(len(text), len(text) + len(name), etype, name)
        text += name
        pos = m.end()
    return text + template[pos:], by_slot


def build_probe(seed: int = 0, repeats: int = 4, documents: Sequence[Document] = (),
                signatures: dict[str, tuple[str, str]] | None = None) -> Probe:
    """The probe: every template filled ``repeats`` times with names drawn by ``seed`` (negated: 6 templates per
    relation type, hedged 4, control 5; co-occurrence 15), then the real items of ``documents``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rng = random.Random(seed)
    decks = {name: _deck(pool, rng) for name, pool in POOLS.items()}
    items: list[ProbeItem] = []

    def add(category: str, template: str, relation: str | None) -> None:
        text, by_slot = _fill(template, decks)
        ents = sorted(by_slot.values(), key=lambda e: e.start)
        head = tail = None
        if relation is not None:
            h, t = ARGUMENTS[relation]
            head, tail = ents.index(by_slot[h]), ents.index(by_slot[t])
        n = sum(it.category == category for it in items)
        items.append(ProbeItem(f"{category}-{n}", category, text, tuple(ents), len(items), relation, head, tail,
                               template))

    for category, table in (("negated", NEGATED), ("hedged", HEDGED)):
        for relation, templates in table.items():
            for template in templates:
                for _ in range(repeats):
                    add(category, template, relation)
    for template in COOCCURRENCE:
        for _ in range(repeats):
            add("cooccurrence", template, None)
    for relation, templates in CONTROL.items():
        for template in templates:
            for _ in range(repeats):
                add("control", template, relation)
    real, kept = real_items(documents, len(items), signatures)
    return Probe(items + real, kept, seed, repeats)


def _allowed(a: str, b: str, signatures: dict[str, tuple[str, str]]) -> str | None:
    """The first relation type the schema allows between entities of types ``a`` and ``b``, either way."""
    for rel, (h, t) in signatures.items():
        if (h, t) in ((a, b), (b, a)):
            return rel
    return None


def real_items(documents: Sequence[Document], first_input: int = 0,
               signatures: dict[str, tuple[str, str]] | None = None) -> tuple[list[ProbeItem], list[Document]]:
    """The real items of ``documents`` and the documents they come from (their inputs numbered from
    ``first_input``): a ``real_cooccurrence`` item for each sentence with no gold relation and two entities
    whose types the schema could relate; a ``real_pairs`` item for each such pair, in any sentence, that the
    gold does not relate either way."""
    signatures = SIGNATURES if signatures is None else signatures
    items: list[ProbeItem] = []
    kept: list[Document] = []
    n_sent = n_pair = 0
    for doc in documents:
        related = {frozenset((r.head, r.tail)) for r in doc.relations}
        ents = [ProbeEntity(e.char_start, e.char_end, e.type, doc.entity_text(e)) for e in doc.entities]
        pairs = []
        for i in range(len(ents)):
            for j in range(i + 1, len(ents)):
                if (ents[i].start, ents[i].end) == (ents[j].start, ents[j].end) or frozenset((i, j)) in related:
                    continue
                rel = _allowed(ents[i].type, ents[j].type, signatures)
                if rel is not None:
                    pairs.append((i, j, rel))
        if not pairs:
            continue
        source = first_input + len(kept)
        kept.append(doc)
        if not doc.relations:
            items.append(ProbeItem(f"real_cooccurrence-{n_sent}", "real_cooccurrence", doc.text, tuple(ents),
                                   source, template=doc.id))
            n_sent += 1
        for i, j, rel in pairs:
            items.append(ProbeItem(f"real_pairs-{n_pair}", "real_pairs", doc.text, (ents[i], ents[j]), source, rel,
                                   0, 1, doc.id))
            n_pair += 1
    return items, kept


# -- scoring -----------------------------------------------------------------------------------------------

Span = tuple[int, int]


@dataclass(frozen=True)
class _Seen:
    """A prediction under one threshold: typed entity spans, and relations as (head span, tail span, type,
    head text, tail text)."""

    entities: frozenset[tuple[int, int, str]]
    relations: tuple[tuple[Span, Span, str, str, str], ...]


def _normalise(pred: Extraction | Document) -> tuple[list[tuple[int, int, str, float]], list[tuple[int, int, str, float]]]:
    """Entities (start, end, type, score) and relations (head index, tail index, type, score); an unscored
    prediction counts as 1, as ``extraction.merge`` has it."""
    if isinstance(pred, Extraction):
        return ([(e.start, e.end, e.type, e.score) for e in pred.entities],
                [(r.head, r.tail, r.type, r.score) for r in pred.relations])
    if isinstance(pred, Document):
        return ([(e.char_start, e.char_end, e.type, 1.0 if e.score is None else e.score) for e in pred.entities],
                [(r.head, r.tail, r.type, 1.0 if r.score is None else r.score) for r in pred.relations])
    raise TypeError(f"expected an Extraction or a Document, got {type(pred).__name__}")


def _at(pred: Extraction | Document, threshold: float) -> _Seen:
    """What remains at ``threshold`` under the library's rule: relations scoring at least it, entities that do
    or that a kept relation needs (``Extraction.filtered``); nothing is left out at 0."""
    text = pred.text
    ents, rels = _normalise(pred)
    kept = [r for r in rels if threshold <= 0 or r[3] >= threshold]
    needed = {i for r in kept for i in (r[0], r[1])}
    seen_ents = frozenset((s, e, t) for i, (s, e, t, sc) in enumerate(ents)
                          if threshold <= 0 or sc >= threshold or i in needed)
    seen_rels = tuple(((ents[h][0], ents[h][1]), (ents[t][0], ents[t][1]), typ,
                       text[ents[h][0] : ents[h][1]], text[ents[t][0] : ents[t][1]]) for h, t, typ, _ in kept)
    return _Seen(seen_ents, seen_rels)


def _between(seen: _Seen, a: ProbeEntity, b: ProbeEntity, relation: str | None = None) -> bool:
    """Whether a relation (of type ``relation``, any when None) links the spans of ``a`` and ``b``, either way."""
    want = {((a.start, a.end), (b.start, b.end)), ((b.start, b.end), (a.start, a.end))}
    return any((h, t) in want and (relation is None or typ == relation) for h, t, typ, _, _ in seen.relations)


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def _category(items: list[ProbeItem], seen: list[_Seen], category: str, ok: list[bool]) -> dict:
    """One category's figures at one threshold (``seen``: the prediction each item is read from; ``ok``: whether
    all its entities were found with nothing left out, so that the figures "when entities found" look at the
    same items at every threshold)."""
    both = list(zip(items, seen, strict=True))
    found = [[(e.start, e.end, e.type) in s.entities for e in it.entities] for it, s in both]
    out: dict = {"items": len(items), "entity_recall": _rate(sum(map(sum, found)), sum(map(len, found))),
                 "items_all_entities_found": _rate(sum(map(all, found)), len(items))}
    if category == "control":
        hit = [any((typ, ht, tt) == (it.relation, it.entities[it.head].text, it.entities[it.tail].text)
                   for _, _, typ, ht, tt in s.relations) for it, s in both]
        out.update(found=sum(hit), recall=_rate(sum(hit), len(items)))
    elif category == "real_pairs":
        hit = [_between(s, *it.entities) for it, s in both]
        out.update(sentences=len({it.input for it in items}), with_relation=sum(hit),
                   fp_rate=_rate(sum(hit), len(items)))
    else:
        hit = [bool(s.relations) for s in seen]
        out.update(with_relation=sum(hit), fp_rate=_rate(sum(hit), len(items)))
        if category in ("negated", "hedged"):
            typed = [_between(s, it.entities[it.head], it.entities[it.tail], it.relation) for it, s in both]
            out.update(with_target_relation=sum(typed), target_rate=_rate(sum(typed), len(items)))
    hit_ok = sum(h and o for h, o in zip(hit, ok, strict=True))
    out["recall_when_entities_found" if category == "control" else "fp_rate_when_entities_found"] = \
        _rate(hit_ok, sum(ok))
    if category in ("negated", "hedged", "control", "real_pairs"):
        per: dict[str, list[int]] = {}
        for it, h in zip(items, hit, strict=True):
            n_k = per.setdefault(it.relation or "", [0, 0])
            n_k[0] += 1
            n_k[1] += h
        key = "found" if category == "control" else "with_relation"
        out["per_relation"] = {r: {"items": n, key: k, "rate": k / n} for r, (n, k) in sorted(per.items())}
    return out


def score_probe(probe: Probe, predictions: Sequence[Extraction | Document],
                thresholds: Sequence[float] = (0.0, 0.3, 0.5, 0.7, 0.9), examples: int = 5) -> dict:
    """Per threshold and category: items, the share with a relation output (false positives), for negated and
    hedged items the share with the denied relation between its two entities, for controls the share whose
    stated triple (type, head text, tail text) is found, entity recall, and the same rates over the items whose
    entities were all found at threshold 0; per template at threshold 0; and as examples the highest-scoring
    false relations and the missed controls at threshold 0. ``predictions`` align with
    ``probe.inputs()``."""
    if len(predictions) != len(probe.inputs()):
        raise ValueError(f"{len(predictions)} predictions for {len(probe.inputs())} probe inputs")
    by_cat = {c: [it for it in probe.items if it.category == c] for c in CATEGORIES}
    seen0 = [_at(p, 0.0) for p in predictions]
    ok = {c: [all((e.start, e.end, e.type) in seen0[it.input].entities for e in it.entities) for it in its]
          for c, its in by_cat.items()}  # was the relation the problem? the items whose entities were found
    rows = []
    for th in thresholds:
        seen = [_at(p, th) for p in predictions]
        rows.append({"threshold": th, "categories": {c: _category(its, [seen[it.input] for it in its], c, ok[c])
                                                     for c, its in by_cat.items()}})
    per_template = {}
    for c in TEMPLATED:
        groups: dict[str, list[tuple[ProbeItem, bool]]] = {}
        for it, found in zip(by_cat[c], ok[c], strict=True):
            groups.setdefault(it.template, []).append((it, found))
        per_template[c] = {t: _category([it for it, _ in g], [seen0[it.input] for it, _ in g], c, [f for _, f in g])
                           for t, g in groups.items()}
        for fig in per_template[c].values():
            fig.pop("per_relation", None)
    return {"counts": probe.counts(), "thresholds": rows, "target": target_check(rows),
            "per_template_at_0": per_template, "examples": _examples(by_cat, predictions, examples)}


def target_check(rows: Sequence[dict], max_fp: float = 0.2, min_recall: float = 0.85) -> dict:
    """The issue's target: relation output for at most ``max_fp`` of negated and of co-occurrence items with at
    least ``min_recall`` of the controls found. The lowest threshold where both FP rates are low enough, the
    control recall there, and the lowest threshold (if any) where the whole target holds."""
    fp_ok = met = None
    recall_there = None
    for row in rows:
        c = row["categories"]
        ok = all((c[k]["fp_rate"] or 0.0) <= max_fp for k in ("negated", "cooccurrence"))
        if ok and fp_ok is None:
            fp_ok, recall_there = row["threshold"], c["control"]["recall"]
        if ok and met is None and (c["control"]["recall"] or 0.0) >= min_recall:
            met = row["threshold"]
    return {"max_fp_rate": max_fp, "min_control_recall": min_recall, "fp_met_at": fp_ok,
            "control_recall_there": recall_there, "met_at": met}


def _examples(by_cat: dict[str, list[ProbeItem]], predictions: Sequence[Extraction | Document], k: int) -> dict:
    """At threshold 0: per false-positive category the ``k`` highest-scoring relations output, and up to ``k``
    controls whose stated relation was not found, with what was output instead."""
    out: dict = {}
    for c, items in by_cat.items():
        rows = []
        for it in items:
            pred = predictions[it.input]
            ents, rels = _normalise(pred)
            if c == "control":
                triples = [(pred.text[ents[h][0]:ents[h][1]], typ, pred.text[ents[t][0]:ents[t][1]])
                           for h, t, typ, _ in rels]
                want = (it.entities[it.head].text, it.relation, it.entities[it.tail].text)
                if want not in triples and len(rows) < k:
                    rows.append({"text": it.text, "expected": list(want), "output": [list(x) for x in triples]})
                continue
            spans = {(e.start, e.end) for e in it.entities}
            for h, t, typ, sc in rels:
                hs, ts = (ents[h][0], ents[h][1]), (ents[t][0], ents[t][1])
                if c == "real_pairs" and {hs, ts} != spans:
                    continue
                rows.append({"text": it.text, "relation": [pred.text[hs[0]:hs[1]], typ, pred.text[ts[0]:ts[1]]],
                             "argument_types": [ents[h][2], ents[t][2]], "score": round(sc, 4)})
        if c != "control":
            rows = sorted(rows, key=lambda r: -r["score"])[:k]
        out[c] = rows
    return out
