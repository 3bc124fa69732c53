"""The copy-space search against the vocabulary-space one (the engine before it), and what it returns.

Where every source piece is distinct and no label word occurs in the source, an id and a source position name
the same action, so the two searches must return the same ids, positions and documents: greedy and beam,
constrained and free, both formats and the anchor-guided restrictions on and off, on random tiny models.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from anchoralign.anchor_heads import AnchorConfig
from anchoralign.decode import DecodeConfig, predict
from anchoralign.grammar import Grammar
from anchoralign.linearize import canonical, linearize, parse
from anchoralign.model import ModelConfig
from anchoralign.search import GreedyStream

from .tiny import make_doc, tiny_model

# words of the tiny tokenizer's vocabulary that are no label word (labels: people, organization, work for …)
WORDS = "john smith works acme corp boston mary lives paris on monday hired jones .".split()


def _random_docs(rng: random.Random, n: int) -> list:
    docs = []
    for i in range(n):
        words = rng.sample(WORDS, rng.randint(3, len(WORDS)))  # distinct words: distinct pieces
        docs.append(make_doc(f"r{i}", words, [], []))
    return docs


def _sharp_model(tmp_path, seed: int):
    """A tiny random model with sharper output distributions: long, varied outputs rather than an early end."""
    torch.manual_seed(seed)
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64))
    with torch.no_grad():
        model.net.transform[0].weight.mul_(8)
    model.eval()
    return model


@pytest.mark.parametrize("seed", range(6))
def test_copy_space_search_equals_vocabulary_space_search(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    fmt = "anchor" if seed % 2 == 0 else "flat"
    anchor = AnchorConfig(scorer=True, alignment=False, entity_tagging=True) if seed % 3 != 2 else None
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64,
                                             target_format=fmt), anchor=anchor)
    with torch.no_grad():  # sharper random distributions: long, varied outputs rather than an early end
        model.net.transform[0].weight.mul_(8)
    model.eval()
    docs = _random_docs(rng, 12)
    for constrained in (True, False):
        for beams in (1, 2):
            cfg = DecodeConfig(constrained=constrained, num_beams=beams, batch_size=5, max_new_tokens=48, precision="fp32",
                               signatures=rng.random() < 0.7, consistent_types=rng.random() < 0.7,
                               tagger_spans=rng.random() < 0.5, entity_coverage=rng.random() < 0.5)
            old = predict(model, docs, DecodeConfig(**{**cfg.__dict__, "space": "vocab"}))
            new = predict(model, docs, DecodeConfig(**{**cfg.__dict__, "space": "copy"}))
            assert [g.ids for g in new.generated] == [g.ids for g in old.generated], cfg
            assert [g.positions for g in new.generated] == [g.positions for g in old.generated], cfg
            for a, b in zip(new.generated, old.generated, strict=True):
                assert a.log_probs == pytest.approx(b.log_probs, abs=1e-4)
            assert [canonical(d) for d in new.documents] == [canonical(d) for d in old.documents]
            assert new.errors == old.errors
            if constrained:
                assert new.malformed == 0
    # the outputs were not trivially empty: some mention was copied
    assert any(p >= 0 for g in new.generated for p in g.positions)


def test_parse_places_a_copied_mention_where_it_was_copied(tmp_path) -> None:
    """'the cat … the cat': the rule would put the second standalone 'cat' elsewhere; the position decides."""
    model = tiny_model(tmp_path)
    doc = make_doc("d", "Mary hired Mary .".split(), [(2, 3, "Peop")], [])
    from anchoralign.encoding import encode_source

    src = encode_source(model.tokenizer, doc, 64)
    lin = linearize(doc, src, model.vocab)
    assert lin.positions[1] == src.span_pieces(2, 3)[0]  # the target copies the second 'Mary'
    by_rule = parse(lin.ids, src, model.vocab, doc).document
    by_position = parse(lin.ids, src, model.vocab, doc, positions=lin.positions).document
    assert [(e.start, e.end) for e in by_rule.entities] == [(0, 1)]  # earliest occurrence
    assert [(e.start, e.end) for e in by_position.entities] == [(2, 3)]
    # a position that does not continue the mention is an unplaceable mention, counted
    bad = list(lin.positions)
    bad[1] = src.span_pieces(1, 2)[0]  # 'hired' is not 'mary'
    assert parse(lin.ids, src, model.vocab, doc, positions=bad).errors == {"unplaceable_mention": 1}


def test_grammar_options_are_positions_inside_a_mention(tmp_path) -> None:
    model = tiny_model(tmp_path)
    doc = make_doc("d", "John Smith works .".split(), [], [])
    from anchoralign.encoding import encode_source

    src = encode_source(model.tokenizer, doc, 64)
    g = Grammar(model.vocab)
    state = g.step(g.step(__import__("anchoralign.grammar", fromlist=["State"]).State(), model.vocab.markers["<ent>"],
                          src), src.ids[1], src, pos=1)
    ids, positions = g.options(state, src)
    assert positions == (2,)  # only the next piece continues the copied mention
    assert ids == (model.vocab.markers["<type>"],)
    assert g.allowed(state, src) == sorted({src.ids[2], model.vocab.markers["<type>"]})


def test_a_row_fed_past_the_length_limit_does_not_break_the_batch(tmp_path) -> None:
    """A row fed past the cache's length (greedy search once did this with ended rows: span 339 against a
    338-slot cache on an ADE dev batch) must not break the other rows of ``step_log_probs``."""
    torch.manual_seed(0)
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64))
    model.eval()
    net = model.net
    doc = make_doc("d", WORDS[:6], [], [])
    from anchoralign.batching import collate, make_examples

    batch = collate(model, make_examples(model, [doc, doc], with_targets=False))
    with torch.no_grad():
        enc = net.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        state = net.start_decoding(enc, batch["attention_mask"], batch["input_ids"], batch["copyable"], 4)
        ids = torch.full((2, 1), model.start_id, dtype=torch.long)
        pos = torch.full((2, 1), -1, dtype=torch.long)
        for _ in range(9):  # 4 ids allowed: slots 0..4 and the spare; row 0 runs on past them
            out = net.step_log_probs(state, ids, pos, torch.tensor([1, 0]))
            assert torch.isfinite(out[1]).any()
    assert int(state.lengths[0]) == 9 and int(state.lengths[1]) == 0


@pytest.mark.parametrize("beams", [1, 2])
def test_relation_bias_opens_more_relations_and_reports_the_models_own_scores(tmp_path, beams: int) -> None:
    """decode.relation_bias: the biased search writes more <rel>/<rel-inv>/<anchor> markers, stays within the
    grammar, and the per-step log-probabilities it returns are unbiased (never above 0)."""
    model = _sharp_model(tmp_path, 3)
    docs = _random_docs(random.Random(3), 12)
    markers = {model.vocab.marker(m) for m in ("<rel>", "<rel-inv>", "<anchor>")}

    def run(bias: float):
        return predict(model, docs, DecodeConfig(num_beams=beams, batch_size=5, max_new_tokens=48, precision="fp32",
                                                 relation_bias=bias))

    plain, biased = run(0.0), run(20.0)
    count = [sum(i in markers for g in r.generated for i in g.ids) for r in (plain, biased)]
    assert count[1] > count[0]
    assert biased.malformed == 0
    assert all(lp <= 1e-6 for g in biased.generated for lp in g.log_probs)
    with pytest.raises(ValueError, match="copy space"):
        DecodeConfig(relation_bias=1.0, space="vocab").validate()


def test_greedy_search_feeds_ended_rows_nothing(tmp_path) -> None:
    """Rows that end (end of sequence, or the length limit) are fed nothing while the batch steps on: no real
    fed id is end of sequence, and no row's cache passes its length, whatever the limit."""
    model = _sharp_model(tmp_path, 1)
    net, seen = model.net, []
    real = net.step_log_probs

    def watched(state, ids, pos, n_new=None):
        fed = [ids[r, : int(n)].tolist() for r, n in enumerate(n_new)] if n_new is not None else ids.tolist()
        assert not any(model.eos_id in row for row in fed)
        out = real(state, ids, pos, n_new)
        seen.append((int(state.lengths.max()), state.self_kv[0][0].size(2) - 1))
        return out

    net.step_log_probs = watched
    docs = _random_docs(random.Random(1), 10)
    for constrained in (True, False):
        for limit in (3, 7, 48):
            predict(model, docs, DecodeConfig(batch_size=10, max_new_tokens=limit, precision="fp32",
                                              constrained=constrained))
    assert seen and all(length <= cap for length, cap in seen)


def test_ragged_feeds_give_the_states_of_one_id_at_a_time(tmp_path) -> None:
    """``step_log_probs`` fed ragged chunks (rows of 3, 1, 0 and 2 real ids; position-wise layers on the real
    ids only, the last layer's output on each row's last id only) returns what feeding the same ids one at a
    time returns, and a row fed nothing keeps its length."""
    torch.manual_seed(2)
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64))
    model.eval()
    net = model.net
    from anchoralign.batching import collate, make_examples

    docs = [make_doc(f"d{i}", WORDS[i : i + 6], [], []) for i in range(4)]
    batch = collate(model, make_examples(model, docs, with_targets=False))
    g = net.gen_ids.numel()
    src = batch["input_ids"]

    def copied(row: int, p: int) -> tuple[int, int]:  # a copied id is the source piece at its position
        return int(src[row, p]), p

    gen = [int(i) for i in net.gen_ids]
    feeds = [[(gen[1], -1), copied(0, 2), copied(0, 3)], [(gen[2], -1)], [], [copied(3, 1), copied(3, 4)]]
    with torch.no_grad():
        enc = net.encode(batch["input_ids"], batch["attention_mask"])

        def start():
            state = net.start_decoding(enc, batch["attention_mask"], batch["input_ids"], batch["copyable"], 16)
            first = torch.full((4, 1), model.start_id, dtype=torch.long)
            net.step_log_probs(state, first, torch.full((4, 1), -1, dtype=torch.long))
            return state

        ragged = start()
        width = max(len(f) for f in feeds)
        ids = torch.tensor([[t for t, _ in f] + [model.eos_id] * (width - len(f)) for f in feeds])
        pos = torch.tensor([[p for _, p in f] + [-1] * (width - len(f)) for f in feeds])
        together = net.step_log_probs(ragged, ids, pos, torch.tensor([len(f) for f in feeds]))
        assert ragged.lengths.tolist() == [4, 2, 1, 3]
        for r, f in enumerate(feeds):
            if not f:
                continue
            one = start()
            sub = one.select(torch.tensor([r]))
            for t, p in f:
                alone = net.step_log_probs(sub, torch.tensor([[t]]), torch.tensor([[p]]))
            assert torch.allclose(together[r], alone[0], atol=1e-5), r
            assert together.size(1) == g + batch["input_ids"].size(1)


def test_relation_threshold_leaves_out_exactly_the_relations_scoring_under_it(tmp_path) -> None:
    """decode.relation_threshold: the same entities, the relations scoring at least the threshold (in order),
    the others counted; out-of-range values are refused."""
    model = _sharp_model(tmp_path, 3)
    docs = _random_docs(random.Random(5), 12)
    plain = predict(model, docs, DecodeConfig(batch_size=5, max_new_tokens=48, precision="fp32", relation_bias=20.0))
    scores = sorted(r.score for d in plain.documents for r in d.relations)
    assert len(scores) >= 4, "the random model must write relations to filter"
    cut = scores[len(scores) // 2]
    kept = predict(model, docs, DecodeConfig(batch_size=5, max_new_tokens=48, precision="fp32", relation_bias=20.0,
                                             relation_threshold=cut))
    for a, b in zip(plain.documents, kept.documents, strict=True):
        assert b.entities == a.entities
        assert b.relations == [r for r in a.relations if r.score >= cut]
    assert kept.below_threshold == sum(s < cut for s in scores) > 0
    with pytest.raises(ValueError, match="relation_threshold"):
        DecodeConfig(relation_threshold=1.5).validate()


def test_entity_threshold_leaves_out_only_low_scoring_entities_in_no_relation(tmp_path) -> None:
    """decode.entity_threshold: of the entities in no relation, those scoring under the threshold are left out
    and counted; every relation stays with its arguments (re-indexed); out-of-range values are refused."""
    from anchoralign.decode import standalone_entities_scoring_at_least
    from anchoralign.types import Relation

    from .tiny import make_doc

    doc = make_doc("d", "Ann met Bob in Rome on Monday".split(),
                   [(0, 1, "Peop"), (2, 3, "Peop"), (4, 5, "Loc"), (6, 7, "Other")], [(2, 1, "Live_In")])
    scored = [replace(e, score=s) for e, s in zip(doc.entities, (0.9, 0.1, 0.2, 0.3), strict=True)]
    doc = doc.with_annotations(scored, [Relation(2, 1, "Live_In", score=0.8)])
    out = standalone_entities_scoring_at_least(doc, 0.5)
    assert [(e.start, e.type) for e in out.entities] == [(0, "Peop"), (2, "Peop"), (4, "Loc")]  # Bob, Rome: related
    assert [(out.entities[r.head].start, r.type, out.entities[r.tail].start) for r in out.relations] == [
        (4, "Live_In", 2)]

    model = _sharp_model(tmp_path, 3)
    docs = _random_docs(random.Random(5), 12)
    cfg = DecodeConfig(batch_size=5, max_new_tokens=48, precision="fp32")
    plain = predict(model, docs, cfg)
    scores = sorted(e.score for d in plain.documents for e in d.entities)  # this random model relates nothing
    assert len(scores) >= 4 and not any(d.relations for d in plain.documents)
    cut = scores[len(scores) // 2]
    kept = predict(model, docs, replace(cfg, entity_threshold=cut))
    for a, b in zip(plain.documents, kept.documents, strict=True):
        assert b.entities == [e for e in a.entities if e.score >= cut]
    assert kept.entities_below_threshold == sum(s < cut for s in scores) > 0
    with pytest.raises(ValueError, match="entity_threshold"):
        DecodeConfig(entity_threshold=-0.1).validate()


def _assert_same_search(got, want) -> None:
    """Two decodings searched the same: ids, copy positions and (to float noise) step log-probabilities."""
    assert [g.ids for g in got.generated] == [g.ids for g in want.generated]
    assert [g.positions for g in got.generated] == [g.positions for g in want.generated]
    for a, b in zip(got.generated, want.generated, strict=True):
        assert a.log_probs == pytest.approx(b.log_probs, abs=1e-5)


@pytest.mark.parametrize("seed", [0, 2, 4])  # seeds whose constrained outputs vary in length within a batch
def test_streamed_batches_decode_as_batch_by_batch(tmp_path, monkeypatch, seed: int) -> None:
    """Greedy copy-space search streams the batches through one decoder batch (the next joins once half of the
    rows have ended, padded to the longer source and the larger cache): every document comes out as it does
    when each batch is decoded alone, with the same log-probabilities and the same count of refused choices,
    and the joining did happen (fewer decoder steps)."""
    model = _sharp_model(tmp_path, seed)
    rng = random.Random(seed)
    docs = _random_docs(rng, 14)
    steps: list[int] = []
    real = GreedyStream.run

    def counted(self, parts):
        yield from real(self, parts)
        steps.append(self.steps)

    monkeypatch.setattr(GreedyStream, "run", counted)
    for constrained in (True, False):
        cfg = DecodeConfig(constrained=constrained, max_new_tokens=48, precision="fp32", batch_size=4,
                           signatures=rng.random() < 0.7, tagger_spans=False, entity_coverage=False)
        monkeypatch.setattr(GreedyStream, "JOIN_BELOW", 0.0)  # batch by batch
        alone = predict(model, docs, cfg)
        monkeypatch.setattr(GreedyStream, "JOIN_BELOW", 0.5)
        together = predict(model, docs, cfg)
        _assert_same_search(together, alone)
        assert [canonical(d) for d in together.documents] == [canonical(d) for d in alone.documents]
        assert together.rejected == alone.rejected
        if constrained:
            assert together.malformed == 0
        assert steps[-1] < steps[-2] if constrained else steps[-1] <= steps[-2]
    assert any(p >= 0 for g in together.generated for p in g.positions)


def test_a_joining_batch_keeps_its_own_length_limit(tmp_path) -> None:
    """Sources of different lengths have different length limits (``search.length_limit``, per row); joined
    in one decoder batch, each row still stops at its own limit."""
    model = _sharp_model(tmp_path, 4)
    model.config.max_target_length = 200
    short = [make_doc(f"s{i}", WORDS[:3], [], []) for i in range(3)]
    long = [make_doc(f"l{i}", WORDS[: 8 + i], [], []) for i in range(3)]
    cfg = DecodeConfig(constrained=False, max_new_tokens=200, precision="fp32", batch_size=3)
    both = predict(model, short + long, cfg)
    assert max(len(g.ids) for g in both.generated[:3]) == 4 * 5 + 16  # the short rows' limit (3 words + 2)
    for docs, got in ((short, both.generated[:3]), (long, both.generated[3:])):
        alone = predict(model, docs, cfg)
        assert [g.ids for g in got] == [g.ids for g in alone.generated]


def test_a_self_attention_cache_that_grows_decodes_as_one_allocated_in_full(tmp_path, monkeypatch) -> None:
    """The decoding cache starts at ``START_SLOTS`` and grows as the rows do: from 2 slots (growing at almost
    every step, greedy and beam, with rows dropped and batches joined between growths) the outputs are those of
    a cache allocated to the length limit at once."""
    from anchoralign import copy_seq2seq

    model = _sharp_model(tmp_path, 2)
    docs = _random_docs(random.Random(2), 9)
    for beams in (1, 2):
        cfg = DecodeConfig(num_beams=beams, batch_size=4, max_new_tokens=40, precision="fp32", tagger_spans=False,
                           entity_coverage=False, constrained=beams == 1)
        monkeypatch.setattr(copy_seq2seq, "START_SLOTS", 10_000)
        full = predict(model, docs, cfg)
        monkeypatch.setattr(copy_seq2seq, "START_SLOTS", 2)
        grown = predict(model, docs, cfg)
        _assert_same_search(grown, full)
        assert max(len(g.ids) for g in full.generated) > 4  # the cache did have to grow


def test_decoding_pauses_the_cyclic_collector_and_restores_it(tmp_path, monkeypatch) -> None:
    """``predict`` pauses Python's cyclic garbage collector while it decodes and leaves it as it found it, on
    or off, also when decoding fails."""
    import gc

    model = _sharp_model(tmp_path, 0)
    docs = _random_docs(random.Random(0), 3)
    seen = []
    real = GreedyStream.run

    def watched(self, parts):
        seen.append(gc.isenabled())
        yield from real(self, parts)

    monkeypatch.setattr(GreedyStream, "run", watched)
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            predict(model, docs, DecodeConfig(precision="fp32", max_new_tokens=8))
            assert gc.isenabled() is enabled
        gc.enable()

        def broken(self, parts):
            raise RuntimeError("boom")
            yield

        monkeypatch.setattr(GreedyStream, "run", broken)
        with pytest.raises(RuntimeError, match="boom"):
            predict(model, docs, DecodeConfig(precision="fp32", max_new_tokens=8))
        assert gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False]


def test_documents_do_not_depend_on_how_the_long_tail_is_batched(tmp_path, monkeypatch) -> None:
    """``predict`` splits the long tail of the length order into smaller batches (``decode.PAD_SLACK``): with
    every batch split as far as the bound allows, or none, each document comes out the same."""
    from anchoralign import decode

    model = _sharp_model(tmp_path, 4)
    rng = random.Random(4)
    docs = [make_doc(f"v{i}", rng.sample(WORDS, n), [], []) for i, n in enumerate([3, 3, 4, 4, 5, 9, 12, 14, 3])]
    for constrained in (True, False):
        cfg = DecodeConfig(constrained=constrained, max_new_tokens=48, precision="fp32", batch_size=4,
                           tagger_spans=False, entity_coverage=False)
        monkeypatch.setattr(decode, "PAD_SLACK", 1000.0)  # sorted chunks of 4
        chunks = predict(model, docs, cfg)
        monkeypatch.setattr(decode, "PAD_SLACK", 0.0)  # a new batch at every longer source
        split = predict(model, docs, cfg)
        _assert_same_search(split, chunks)
        assert [canonical(d) for d in split.documents] == [canonical(d) for d in chunks.documents]
