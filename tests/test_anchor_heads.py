"""AnchorAlign's heads with a tiny random model: finite losses, gradients into both projection heads, a
scorer that learns, candidates that reach the constraint, and a saved model that reloads with its heads."""

from __future__ import annotations

import itertools

import torch

from anchoralign.anchor_heads import AnchorConfig, alignment_loss, bio_spans, typed_bio_viterbi
from anchoralign.batching import collate, make_examples
from anchoralign.decode import DecodeConfig, predict
from anchoralign.evaluation import evaluate_documents
from anchoralign.model import load_model, save_model

from .tiny import make_doc, tiny_model, toy_docs


def _docs():
    # two anchors in one batch at least, so the alignment loss has negatives
    return toy_docs() + [make_doc("d", "Mary Jones lives in Boston .".split(), [(0, 2, "Peop"), (4, 5, "Loc")],
                                  [(0, 1, "Live_In")])]


def test_alignment_loss_is_finite_and_reaches_both_heads(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path, anchor=AnchorConfig(lambda_align=1.0))
    batch = collate(model, make_examples(model, _docs()))
    assert batch["anchor_item"].numel() >= 2 and batch["rel_item"].numel() >= 2
    out = model(batch)
    assert torch.isfinite(out["align_loss"]) and out["align_loss"] > 0
    out["align_loss"].backward()
    for head in (model.heads.anchor_proj, model.heads.relation_proj):
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_alignment_loss_prefers_aligned_pairs() -> None:
    anchors = torch.eye(3)
    owner = torch.tensor([0, 1, 2, 2])
    aligned = alignment_loss(anchors, anchors[owner], owner, 0.1)
    shuffled = alignment_loss(anchors, anchors[torch.tensor([1, 2, 0, 0])], owner, 0.1)
    assert aligned < shuffled


def test_scorer_loss_falls_and_candidates_cover_gold(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path, anchor=AnchorConfig(lambda_anchor=1.0, threshold=0.5, top_k=0))
    docs = _docs()
    batch = collate(model, make_examples(model, docs))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = float(model(batch)["anchor_loss"].detach())
    for _ in range(120):
        out = model(batch)
        out["loss"].backward()
        opt.step()
        opt.zero_grad()
    assert float(out["anchor_loss"].detach()) < first / 5
    scores, _ = evaluate_documents(model, docs, model.schema, DecodeConfig())
    assert scores["anchor_scorer"]["f1"] == 1.0 and scores["anchor_scorer"]["candidate_recall"] == 1.0
    assert scores["malformed"] == 0

    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.heads is not None and again.heads.scorer is not None
    a = predict(model, docs, DecodeConfig()).documents
    b = predict(again, docs, DecodeConfig()).documents
    assert [d.to_dict() for d in a] == [d.to_dict() for d in b]


def test_bio_spans() -> None:
    assert bio_spans([0, 1, 2, 0, 1, 1, 2, 2]) == [(1, 3), (4, 5), (5, 8)]
    assert bio_spans([2, 2, 0]) == [(0, 2)]
    assert bio_spans([]) == []


def test_bio_readers_start_a_span_at_every_orphan_inside_tag() -> None:
    from anchoralign.anchor_heads import bio_spans, typed_bio_spans

    # O=0; type 0: B=1, I=2; type 1: B=3, I=4. An I after an O, or after another type, opens its own span.
    assert typed_bio_spans([1, 2, 0, 2, 3, 4, 2, 0]) == [(0, 2, 0), (3, 4, 0), (4, 6, 1), (6, 7, 0)]
    assert bio_spans([2, 2, 0, 2, 1, 2, 1]) == [(0, 2), (3, 4), (4, 6), (6, 7)]


def _valid(tags: tuple[int, ...]) -> bool:
    prev = 0
    for t in tags:
        if t > 0 and t % 2 == 0 and prev not in (t - 1, t):
            return False
        prev = t
    return True


def test_viterbi_finds_the_best_valid_tag_sequence_by_enumeration() -> None:
    g = torch.Generator().manual_seed(0)
    for n_types, width in ((1, 5), (2, 4), (3, 3)):
        c = 1 + 2 * n_types
        lp = torch.randn(6, width, c, generator=g).log_softmax(-1)
        lengths = torch.tensor([width, width, 1, 2, width - 1, 3])
        mask = torch.arange(width)[None, :] < lengths[:, None]
        got = typed_bio_viterbi(lp, mask)
        for row in range(6):
            n = int(lengths[row])
            best = max((seq for seq in itertools.product(range(c), repeat=n) if _valid(seq)),
                       key=lambda seq: sum(float(lp[row, i, t]) for i, t in enumerate(seq)))
            assert tuple(got[row, :n].tolist()) == best
            assert got[row, n:].eq(0).all()


def test_viterbi_mends_what_argmax_breaks() -> None:
    # two types (B1=1, I1=2, B2=3, I2=4): argmax reads B1 I2, a span that changes type midway
    p = torch.tensor([[[0.05, 0.80, 0.05, 0.05, 0.05], [0.05, 0.05, 0.40, 0.05, 0.45]]])
    assert p.argmax(-1).tolist() == [[1, 4]]
    assert typed_bio_viterbi(p.log(), torch.ones(1, 2, dtype=torch.bool)).tolist() == [[1, 2]]
