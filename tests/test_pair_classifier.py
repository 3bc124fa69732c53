"""The pair classifier (anchor.pair_classifier): its training tensors read off gold annotations, a loss that
reaches the head and falls, relations added at decoding only between decoded entities and only where the
schema's signatures allow, and a saved model that reloads with it."""

from __future__ import annotations

import json

import pytest
import torch

from anchoralign.anchor_heads import AnchorConfig
from anchoralign.batching import collate, entity_piece_spans, make_examples, pair_tensors
from anchoralign.cli import main
from anchoralign.decode import DecodeConfig, predict
from anchoralign.model import load_model, save_model

from .tiny import make_doc, overfit_tiny_model, tiny_model, toy_docs


def _model(tmp_path, **kw):
    torch.manual_seed(0)
    return tiny_model(tmp_path, anchor=AnchorConfig(pair_classifier=True, **kw))


def test_pair_tensors_hold_every_ordered_pair_with_its_gold_types(tmp_path) -> None:
    model = _model(tmp_path)
    docs = toy_docs()
    t = pair_tensors(model, make_examples(model, docs), max_negatives=100)
    rel_types = list(model.schema.relation_types)
    # doc a: 3 entities -> 6 ordered pairs; b: 3 -> 6; c: 2 -> 2
    assert t["pair_head"].numel() == 14 and t["ent_item"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    positives = {(int(h), int(tl), rel_types[k]) for h, tl, row in zip(t["pair_head"], t["pair_tail"], t["pair_labels"], strict=True)
                 for k in range(len(rel_types)) if row[k]}
    # entity indices are global: a's are 0-2, b's 3-5, c's 6-7; c's relation is Mary Jones (7) -> Acme Corp (6)
    assert positives == {(0, 1, "Work_For"), (1, 2, "OrgBased_In"), (3, 4, "Live_In"), (7, 6, "Work_For")}
    # each span holds exactly its entity's pieces
    ex = make_examples(model, docs[:1])[0]
    for (s, e), ent in zip(entity_piece_spans(ex.source, ex.doc.entities), ex.doc.entities, strict=True):
        assert {ex.source.piece_token[p] for p in range(s, e)} == set(range(ent.start, ent.end))


def test_pair_negatives_are_capped_and_positives_kept(tmp_path) -> None:
    model = _model(tmp_path)
    words = "A B C D E F".split()
    doc = make_doc("n", words, [(i, i + 1, "Peop") for i in range(6)], [(0, 1, "Kill")])
    t = pair_tensors(model, make_examples(model, [doc]), max_negatives=3)
    assert t["pair_head"].numel() == 4 and int(t["pair_labels"].sum()) == 1
    again = pair_tensors(model, make_examples(model, [doc]), max_negatives=3)
    assert torch.equal(t["pair_head"], again["pair_head"])  # the draw is fixed by the document


def test_entities_cut_by_the_source_length_are_left_out(tmp_path) -> None:
    model = _model(tmp_path)
    model.config.max_source_length = 6  # [CLS] + a few pieces + [SEP]: "Boston" is cut
    ex = make_examples(model, toy_docs()[:1])[0]
    spans = entity_piece_spans(ex.source, ex.doc.entities)
    assert spans[-1] is None and spans[0] is not None
    t = pair_tensors(model, [ex], max_negatives=100)
    assert t["ent_item"].numel() == sum(s is not None for s in spans)


def test_pair_loss_reaches_the_head_and_falls(tmp_path) -> None:
    model = _model(tmp_path)
    batch = collate(model, make_examples(model, toy_docs()))
    out = model(batch)
    assert torch.isfinite(out["pair_loss"]) and out["pair_loss"] > 0
    out["pair_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.heads.pair.mlp.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = float(out["pair_loss"].detach())
    for _ in range(60):
        opt.zero_grad()
        loss = model(batch)["pair_loss"]
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 5


def test_a_batch_without_pairs_gives_zero_loss_through_the_head(tmp_path) -> None:
    model = _model(tmp_path)
    doc = make_doc("one", "Mary sleeps .".split(), [(0, 1, "Peop")], [])
    out = model(collate(model, make_examples(model, [doc])))
    assert float(out["pair_loss"].detach()) == 0.0
    out["loss"].backward()
    assert all(p.grad is not None for p in model.heads.pair.parameters())


def _trained(tmp_path):
    return overfit_tiny_model(tmp_path, anchor=AnchorConfig(pair_classifier=True))


def test_union_adds_only_signature_valid_relations_between_decoded_entities(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    off = predict(model, docs, DecodeConfig())
    union = predict(model, docs, DecodeConfig(pair_relations="union", pair_threshold=0.5))
    sigs = model.schema.signatures
    added = 0
    for a, b in zip(off.documents, union.documents, strict=True):
        assert a.entities == b.entities  # entities are the decoder's
        assert set(a.relations) <= set(b.relations)
        for r in set(b.relations) - set(a.relations):
            added += 1
            assert (b.entities[r.head].type, r.type, b.entities[r.tail].type) in sigs
            assert r.score is not None and r.score >= 0.5
    assert union.pair_added == added


def test_replace_keeps_only_the_classifier_relations(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    off = predict(model, docs, DecodeConfig())
    rep = predict(model, docs, DecodeConfig(pair_relations="replace", pair_threshold=0.5))
    assert rep.pair_replaced == sum(len(d.relations) for d in off.documents)
    assert rep.pair_added == sum(len(d.relations) for d in rep.documents)
    # after training on these documents, the classifier finds their gold relations between the found entities
    gold = {(d.id, d.entities[r.head].start, d.entities[r.tail].start, r.type) for d in docs for r in d.relations}
    got = {(d.id, d.entities[r.head].start, d.entities[r.tail].start, r.type) for d in rep.documents for r in d.relations}
    found_heads = {(d.id, e.start) for d in rep.documents for e in d.entities}
    reachable = {g for g in gold if (g[0], g[1]) in found_heads and (g[0], g[2]) in found_heads}
    assert reachable and reachable <= got


def test_veto_leaves_out_the_decoder_relations_the_classifier_doubts(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    union = predict(model, docs, DecodeConfig(pair_relations="union", pair_threshold=0.5))
    with torch.no_grad():  # make the classifier doubt everything: every type at sigmoid(-4) = 0.018
        model.heads.pair.mlp[-1].weight.zero_()
        model.heads.pair.mlp[-1].bias.fill_(-4.0)
    off = predict(model, docs, DecodeConfig())
    assert sum(len(d.relations) for d in off.documents) > 0
    kept = predict(model, docs, DecodeConfig(pair_relations="union", pair_threshold=0.5, pair_veto=0.01))
    assert [d.relations for d in kept.documents] == [d.relations for d in off.documents] and kept.pair_vetoed == 0
    vetoed = predict(model, docs, DecodeConfig(pair_relations="union", pair_threshold=0.5, pair_veto=0.02))
    assert all(d.relations == [] for d in vetoed.documents)  # the decoder's went, the classifier added none
    assert vetoed.pair_vetoed == sum(len(d.relations) for d in off.documents) and vetoed.pair_added == 0
    assert [d.entities for d in vetoed.documents] == [d.entities for d in off.documents]
    assert union.pair_vetoed == 0


def test_pair_classifier_saves_and_reloads(tmp_path) -> None:
    model = _model(tmp_path)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.heads.pair is not None and again.anchor.pair_classifier
    for k, v in model.heads.pair.state_dict().items():
        assert torch.equal(v, again.heads.pair.state_dict()[k])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="pair_relations"):
        DecodeConfig(pair_relations="all").validate()
    with pytest.raises(ValueError, match="pair_threshold"):
        DecodeConfig(pair_threshold=0.0).validate()
    with pytest.raises(ValueError, match="pair_veto"):
        DecodeConfig(pair_relations="union", pair_veto=1.0).validate()
    with pytest.raises(ValueError, match="needs decode.pair_relations: union"):
        DecodeConfig(pair_relations="off", pair_veto=0.5).validate()
    with pytest.raises(ValueError, match="pair_negatives"):
        AnchorConfig(pair_negatives=-1).validate()


def test_evaluate_prints_what_the_pair_classifier_added(tmp_path, capsys) -> None:
    save_model(_trained(tmp_path), tmp_path / "m")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--model", str(tmp_path / "m"), "--input", str(gold), "--format", "jsonl",
            "--output", str(out), "--set", "decode.pair_relations=replace", "--set", "decode.pair_threshold=0.5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())["pair_relations"]
    assert saved["added"] > 0
    assert (f"pair classifier (decode.pair_relations replace, threshold 0.5): {saved['added']} relations added, "
            f"{saved['replaced']} decoder relations replaced") in printed
