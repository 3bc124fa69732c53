"""The span classifier (anchor.span_classifier): candidate spans read off the encoded tokens, training tensors
from gold annotations with capped negatives, a loss that reaches the head and falls, and decoding whose mentions
are its flat typed spans (decode.span_source: classifier)."""

from __future__ import annotations

import pytest
import torch

from anchoralign.anchor_heads import AnchorConfig
from anchoralign.batching import candidate_spans, collate, make_examples, span_tensors
from anchoralign.decode import DecodeConfig, predict
from anchoralign.model import load_model, save_model

from .tiny import make_doc, overfit_tiny_model, tiny_model, toy_docs


def _model(tmp_path, **kw):
    torch.manual_seed(0)
    return tiny_model(tmp_path, anchor=AnchorConfig(span_classifier=True, **kw))


def test_candidate_spans_cover_every_short_run_of_encoded_tokens(tmp_path) -> None:
    model = _model(tmp_path)
    ex = make_examples(model, [make_doc("x", "Alice Smith works for Acme in Paris .".split(), [], [])])[0]
    spans = candidate_spans(ex.source, 3)
    n = 8  # tokens
    assert [(a, b) for a, b, _, _ in spans] == [(a, b) for a in range(n) for b in range(a + 1, min(a + 3, n) + 1)]
    for a, b, ps, pe in spans:
        assert (ps, pe) == ex.source.span_pieces(a, b)


def test_span_tensors_keep_gold_spans_and_cap_negatives(tmp_path) -> None:
    model = _model(tmp_path, span_negatives=5)
    docs = toy_docs()
    batch = span_tensors(model, make_examples(model, docs), max_width=8, max_negatives=5)
    types = list(model.schema.entity_types)
    for b, doc in enumerate(docs):
        rows = (batch["span_item"] == b).nonzero().flatten().tolist()
        labels = [int(batch["span_label"][r]) for r in rows]
        gold = {(e.start, e.end, e.type) for e in doc.entities if e.end - e.start <= 8}
        assert sum(1 for x in labels if x > 0) == len(gold)
        assert sum(1 for x in labels if x == 0) <= 5
        ex = make_examples(model, [doc])[0]
        got = set()
        for r in rows:
            if batch["span_label"][r] > 0:
                a = next(t for t in range(len(doc.tokens)) if ex.source.token_pieces(t)[0] == batch["span_start"][r])
                got.add((a, a + int(batch["span_width"][r]), types[int(batch["span_label"][r]) - 1]))
        assert got == gold


def test_span_loss_reaches_the_head_and_falls(tmp_path) -> None:
    model = _model(tmp_path)
    batch = collate(model, make_examples(model, toy_docs()))
    assert "span_label" in batch
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        opt.zero_grad()
        out = model(batch)
        first = first if first is not None else float(out["span_loss"].detach())
        out["loss"].backward()
        assert model.heads.span.mlp[0].weight.grad is not None
        opt.step()
    assert float(out["span_loss"].detach()) < 0.5 * first


def _trained(tmp_path):
    return overfit_tiny_model(tmp_path, anchor=AnchorConfig(span_classifier=True))


def test_decoded_mentions_are_the_classifiers_flat_spans(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    res = predict(model, docs, DecodeConfig(tagger_spans=True, span_source="classifier"))
    assert res.malformed == 0
    for doc, spans in zip(res.documents, res.tagger_spans, strict=True):
        allowed = set(spans)
        covered = [t for a, b, _ in spans for t in range(a, b)]
        assert len(covered) == len(set(covered))  # flat: no two spans overlap
        for e in doc.entities:
            assert (e.start, e.end, e.type) in allowed
    # trained on these documents, the classifier's spans are their gold entities
    gold = {(d.id, e.start, e.end, e.type) for d in docs for e in d.entities}
    got = {(d.id, a, b, t) for d, spans in zip(docs, res.tagger_spans, strict=True) for a, b, t in spans}
    assert got == gold


def test_span_source_without_the_head_falls_back_to_the_tagger(tmp_path, caplog) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    res = predict(model, toy_docs(), DecodeConfig(tagger_spans=True, span_source="classifier"))
    assert caplog.text.count("no span classifier") == 1  # once per predict call
    assert res.malformed == 0
    caplog.clear()  # anchor heads without a tagger: the grammar asks too, and stays quiet
    model = tiny_model(tmp_path, anchor=AnchorConfig(entity_tagging=False))
    res = predict(model, toy_docs(), DecodeConfig(tagger_spans=True, span_source="classifier"))
    assert caplog.text.count("no span classifier") == 1
    assert res.malformed == 0


def test_span_classifier_saves_and_reloads(tmp_path) -> None:
    model = _model(tmp_path, span_max_width=5)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.heads.span is not None and again.anchor.span_max_width == 5
    for k, v in model.heads.span.state_dict().items():
        assert torch.equal(v, again.heads.span.state_dict()[k])


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="span_source"):
        DecodeConfig(span_source="crf").validate()
    with pytest.raises(ValueError, match="span_max_width"):
        AnchorConfig(span_max_width=0).validate()
