"""Training negatives: negated rewrites of real sentences and no-relation frames (negatives.py)."""

from __future__ import annotations

import json
import logging

import pytest

from anchoralign import probe
from anchoralign.cli import main
from anchoralign.config import TrainConfig
from anchoralign.data.tokenize import tokenize_text
from anchoralign.negatives import (
    CONTRASTS,
    FRAMES,
    VERB_FRAMES,
    WRAPPERS,
    contrast_documents,
    negated_rewrite,
    negative_documents,
    wrapped_sentence,
)
from anchoralign.types import Document, Entity, Relation

from .tiny import toy_docs


def _doc(text: str, spans: list[tuple[str, str]], relations: list[tuple[int, int, str]]) -> Document:
    tokens = tokenize_text(text)
    words = [t.text for t in tokens]
    entities = []
    for surface, etype in spans:
        parts = surface.split()
        i = next(k for k in range(len(words)) if words[k : k + len(parts)] == parts)
        entities.append(Entity(i, i + len(parts), etype, tokens[i].start, tokens[i + len(parts) - 1].end))
    return Document("d", text, tokens, entities, [Relation(h, t, r) for h, t, r in relations])


def test_rewrite_inserts_not_and_removes_the_relations_it_may_reach() -> None:
    doc = _doc("Smith , who met Jones , was born in Paris and Lee in Rome .",
               [("Smith", "Peop"), ("Jones", "Peop"), ("Paris", "Loc"), ("Lee", "Peop"), ("Rome", "Loc")],
               [(0, 2, "Live_In"), (3, 4, "Live_In"), (0, 1, "Social")])
    new = negated_rewrite(doc)
    assert new is not None
    assert new.text == "Smith , who met Jones , was not born in Paris and Lee in Rome ."
    assert [t.text for t in new.tokens][6:8] == ["was", "not"]
    for t in new.tokens:  # every token still slices its own text
        assert new.text[t.start : t.end] == t.text
    # every entity keeps its string and type; offsets after the insertion moved by one token / four characters
    assert [(new.entity_text(e), e.type) for e in new.entities] == [(doc.entity_text(e), e.type) for e in doc.entities]
    assert [e.start for e in new.entities] == [0, 4, 10, 12, 14]  # Paris was token 9, now 10
    # Smith-Paris (across "not") and Lee-Rome (after it, possibly under it) go; Smith-Jones (before it) stays
    assert [(r.head, r.tail, r.type) for r in new.relations] == [(0, 1, "Social")]


def test_rewrite_needs_an_auxiliary_close_between_the_arguments() -> None:
    doc = _doc("Smith works for Acme .", [("Smith", "Peop"), ("Acme", "Org")], [(0, 1, "Work_For")])
    assert negated_rewrite(doc) is None
    far = _doc("Smith " + "very " * 9 + "was in Paris .", [("Smith", "Peop"), ("Paris", "Loc")], [(0, 1, "Live_In")])
    assert negated_rewrite(far) is None  # 10 tokens between the arguments: more than MAX_GAP


def test_frames_name_both_arguments_and_no_relation() -> None:
    # no auxiliary and no final ".": neither rewrites nor wrapped sentences, frames only, half the set
    docs = [_doc(f"Person{i} Smith works for Acme Corp{i}", [(f"Person{i} Smith", "Peop"), (f"Acme Corp{i}", "Org")],
                 [(0, 1, "Work_For")]) for i in range(30)]
    res = negative_documents(docs, 0.5, seed=3)
    assert len(res.documents) == 15 and res.counts == {"frames": 15}
    for d in res.documents:
        assert d.relations == [] and len(d.entities) == 2
        assert [e.type for e in d.entities] == ["Peop", "Org"]
        assert any(d.text.startswith(f.split("{A}")[0]) for f in FRAMES + VERB_FRAMES)
        for e in d.entities:
            assert d.entity_text(e).split() == d.words[e.start : e.end]
    # deterministic for a seed, and another seed draws other pairs
    again = negative_documents(docs, 0.5, seed=3)
    assert [d.text for d in again.documents] == [d.text for d in res.documents]
    other = negative_documents(docs, 0.5, seed=4)
    assert [d.text for d in other.documents] != [d.text for d in res.documents]
    assert negative_documents(docs, 0.0).documents == []


def test_rewrites_come_first_within_the_budget() -> None:
    docs = [_doc(f"Lee{i} was born in Rome .", [(f"Lee{i}", "Peop"), ("Rome", "Loc")], [(0, 1, "Live_In")])
            for i in range(10)]
    res = negative_documents(docs, 0.3, seed=1)
    assert res.counts == {"rewrites": 3} and all(d.meta["negative"] == "rewrite" for d in res.documents)


def test_wrapped_sentence_keeps_entities_and_drops_every_relation() -> None:
    doc = _doc("The police said Smith killed Jones in Paris .", [("Smith", "Peop"), ("Jones", "Peop"), ("Paris", "Loc")],
               [(0, 1, "Kill"), (1, 2, "Live_In")])
    new = wrapped_sentence(doc, "Whether {S} remains an open question.")
    assert new is not None
    assert new.text == "Whether the police said Smith killed Jones in Paris remains an open question."
    assert new.relations == [] and new.meta["negative"] == "wrapped"
    for t in new.tokens:
        assert new.text[t.start : t.end] == t.text
    assert [t.text for t in new.tokens][:3] == ["Whether", "the", "police"] and new.tokens[-1].text == "."
    assert [(new.entity_text(e), e.type) for e in new.entities] == [("Smith", "Peop"), ("Jones", "Peop"),
                                                                    ("Paris", "Loc")]
    assert [new.words[e.start : e.end] for e in new.entities] == [["Smith"], ["Jones"], ["Paris"]]
    # an entity first keeps its capital; a sentence with quotes, without a final "." or without relations is left
    first = _doc("Smith killed Jones .", [("Smith", "Peop"), ("Jones", "Peop")], [(0, 1, "Kill")])
    assert wrapped_sentence(first, "It is doubtful that {S}.").text == "It is doubtful that Smith killed Jones."
    quoted = _doc("` ` Smith killed Jones , ' ' he said .", [("Smith", "Peop"), ("Jones", "Peop")], [(0, 1, "Kill")])
    assert wrapped_sentence(quoted, WRAPPERS[0]) is None
    assert wrapped_sentence(_doc("Smith killed Jones", [("Smith", "Peop"), ("Jones", "Peop")], [(0, 1, "Kill")]),
                            WRAPPERS[0]) is None
    assert wrapped_sentence(_doc("Smith met Jones .", [("Smith", "Peop"), ("Jones", "Peop")], []), WRAPPERS[0]) is None


def test_contrasts_keep_every_relation_beside_a_negation_of_their_own() -> None:
    doc = _doc("The police said Smith killed Jones in Paris .", [("Smith", "Peop"), ("Jones", "Peop"), ("Paris", "Loc")],
               [(0, 1, "Kill"), (1, 2, "Live_In")])
    after = wrapped_sentence(doc, "{S}, but no further details were given.", keep_relations=True)
    assert after.text == "The police said Smith killed Jones in Paris, but no further details were given."  # not lowered
    before = wrapped_sentence(doc, "Although nothing else was disclosed, {S}.", keep_relations=True)
    assert before.text == "Although nothing else was disclosed, the police said Smith killed Jones in Paris."
    for new in (after, before):
        assert new.relations == doc.relations and "negative" not in new.meta
        assert [(new.entity_text(e), e.type) for e in new.entities] == [("Smith", "Peop"), ("Jones", "Peop"),
                                                                        ("Paris", "Loc")]
        assert [new.words[e.start : e.end] for e in new.entities] == [["Smith"], ["Jones"], ["Paris"]]
        for t in new.tokens:
            assert new.text[t.start : t.end] == t.text
    docs = [_doc(f"Smith{i} works for Acme .", [(f"Smith{i}", "Peop"), ("Acme", "Org")], [(0, 1, "Work_For")])
            for i in range(10)]
    docs.append(_doc("Smith met Jones .", [("Smith", "Peop"), ("Jones", "Peop")], []))  # no relation: never taken
    res = contrast_documents(docs, 0.5, seed=3)
    assert res.counts == {"contrasts": 6} and len(res.documents) == 6  # round(0.5 * 11)
    assert [d.meta["contrast"] for d in res.documents] == list(CONTRASTS[:6])  # the clauses in turn
    assert all(len(d.relations) == 1 for d in res.documents) and len({d.text for d in res.documents}) == 6
    assert [d.text for d in contrast_documents(docs, 0.5, seed=3).documents] == [d.text for d in res.documents]
    assert [d.text for d in contrast_documents(docs, 0.5, seed=4).documents] != [d.text for d in res.documents]
    assert contrast_documents(docs, 0, seed=3).counts == {}
    assert contrast_documents(docs, 5, seed=3).counts == {"contrasts": 10}  # as many as can take one


def test_kinds_take_turns_after_the_rewrites() -> None:
    docs = [_doc(f"Lee{i} was born in Rome .", [(f"Lee{i}", "Peop"), ("Rome", "Loc")], [(0, 1, "Live_In")])
            for i in range(4)]
    docs += [_doc(f"Smith{i} works for Acme .", [(f"Smith{i}", "Peop"), ("Acme", "Org")], [(0, 1, "Work_For")])
             for i in range(16)]
    res = negative_documents(docs, 0.7, seed=2)  # 14: 4 rewrites, then 5 wrapped and 5 frames in turn
    assert res.counts == {"rewrites": 4, "wrapped": 5, "frames": 5}
    kinds = [d.meta["negative"] for d in res.documents]
    assert kinds[:4] == ["rewrite"] * 4 and kinds[4:] == ["wrapped", "frame"] * 5
    assert all(d.relations == [] for d in res.documents[4:])


def test_only_the_kinds_asked_for() -> None:
    docs = [_doc(f"Lee{i} was born in Rome .", [(f"Lee{i}", "Peop"), ("Rome", "Loc")], [(0, 1, "Live_In")])
            for i in range(10)]
    assert negative_documents(docs, 0.5, seed=1, kinds=["frames"]).counts == {"frames": 5}
    assert negative_documents(docs, 0.5, seed=1, kinds=["wrapped"]).counts == {"wrapped": 5}
    assert negative_documents(docs, 0.5, seed=1, kinds=["rewrites", "frames"]).counts == {"rewrites": 5}
    assert negative_documents(docs, 1.0, seed=1, kinds=["rewrites", "frames"]).counts == {"rewrites": 10}
    with pytest.raises(ValueError, match="unknown kinds"):
        negative_documents(docs, 0.5, kinds=["shuffled"])


def test_the_wording_stays_apart_from_the_probe() -> None:
    """What trains the model not to invent relations must not be what the probe measures it with: no frame or
    wrapper shares a probe template's content words (beyond the slots and a few function words)."""
    stop = {"a", "an", "the", "and", "in", "on", "of", "to", "that", "was", "were", "is", "it", "for", "with",
            "by", "about", "at", "has", "had", "been", "not", "any", "as", "its", "same", "no", "never", "whether",
            "there", "during"}

    def words(template: str) -> set[str]:
        import re

        return {w.lower() for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", " ", template))} - stop

    ours = {w for t in FRAMES + VERB_FRAMES + WRAPPERS + CONTRASTS for w in words(t)}
    theirs = set()
    for group in (probe.NEGATED, probe.HEDGED, probe.CONTROL):
        for templates in group.values():
            for t in templates:
                theirs |= words(t)
    for t in probe.COOCCURRENCE:
        theirs |= words(t)
    # shared by the first twelve frames, written before this test, in sentences of another shape ("X and Y were
    # mentioned in the same article" vs "... in the same report"; "Officials denied any tie between X and Y")
    known = {"mentioned", "list", "included", "both", "named", "report", "tuesday", "denied", "rumors", "reports"}
    assert ours & theirs <= known, sorted(ours & theirs - known)


def test_config_bounds() -> None:
    TrainConfig(negatives=0.5).validate()
    TrainConfig(negatives=0.5, negative_kinds="frames, rewrites").validate()
    with pytest.raises(ValueError, match="train.negatives"):
        TrainConfig(negatives=1.5).validate()
    for bad in ("frames,frames", "", "negated"):
        with pytest.raises(ValueError, match="train.negative_kinds"):
            TrainConfig(negative_kinds=bad).validate()


def test_train_logs_the_negatives_it_adds(tmp_path, capsys, caplog) -> None:
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    argv = ["train", "--train", str(data), "--dev", str(data), "--format", "jsonl", "--output", str(tmp_path / "run"),
            "--set", "model.backbone=random-tiny", "--set", "train.epochs=1", "--set", "train.negatives=1.0",
            "--set", "train.precision=fp32", "--set", "train.threads=1", "--set", "decode.max_new_tokens=8"]
    caplog.set_level(logging.INFO, logger="anchoralign.train")
    assert main(argv) == 0
    expected = negative_documents(toy_docs(), 1.0, seed=TrainConfig().seed)
    assert expected.documents  # the toy set has relations to frame
    assert f"negatives: {len(expected.documents)} sentences that state no relation added" in caplog.text
    capsys.readouterr()


def test_negatives_can_train_the_heads_only(tmp_path) -> None:
    """``train.negatives_generate: false``: a negative's target is out of the generation loss (its labels all
    ignored), the real documents' are not, and its entities still reach the tagger."""
    import torch

    from anchoralign.batching import collate, make_examples
    from anchoralign.train import _heads_only_negatives

    from .tiny import tiny_model

    model = tiny_model(tmp_path)
    docs = toy_docs()
    negs = negative_documents(docs, 1.0, seed=1).documents
    assert negs
    examples = _heads_only_negatives(make_examples(model, [*docs, *negs]), TrainConfig(negatives_generate=False))
    batch = collate(model, examples)
    real, neg = batch["labels"][: len(docs)], batch["labels"][len(docs) :]
    assert (real != -100).any(dim=1).all() and (neg == -100).all()
    assert (batch["entity_tags"][len(docs) :] > 0).any()  # the negatives' entities are tagged
    loss = model(batch)["loss"]
    assert torch.isfinite(loss)
    only_negs = collate(model, examples[len(docs) :])  # a batch of negatives alone: no generation loss, no nan
    out = model(only_negs)
    assert out["gen_loss"].item() == 0.0 and torch.isfinite(out["loss"])
    same = _heads_only_negatives(make_examples(model, negs), TrainConfig())  # the default: they generate too
    assert all(ex.generate for ex in same)


def test_negatives_refuse_a_chinese_dataset(tmp_path, capsys, data_dir) -> None:
    argv = ["train", "--dataset", "chinese_literature", "--data-dir", str(data_dir), "--output", str(tmp_path / "run"),
            "--set", "model.backbone=random-tiny", "--set", "train.epochs=1", "--set", "train.negatives=0.2",
            "--set", "train.precision=fp32", "--set", "train.threads=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "train.negatives writes English sentences; dataset chinese_literature is 'zh'" in err
    assert "Traceback" not in err
