"""The statement veto (anchoralign.veto): fitted on the frozen model, it changes nothing but its own head; before
fitting it scores as the pair classifier does; with decode.pair_veto off the model extracts exactly as before,
with it only relations go (the decoder's and the pair classifier's alike); it saves, reloads and has a command."""

from __future__ import annotations

import json

import pytest
import torch

from anchoralign.anchor_heads import AnchorConfig, VetoClassifier
from anchoralign.batching import collate, make_examples, pair_tensors
from anchoralign.cli import main
from anchoralign.decode import DecodeConfig, predict
from anchoralign.errors import InputError
from anchoralign.model import load_model, save_model
from anchoralign.veto import fit_veto

from .tiny import make_doc, overfit_tiny_model, toy_docs

UNION = {"pair_relations": "union", "pair_threshold": 0.5}


def _trained(tmp_path):
    return overfit_tiny_model(tmp_path, anchor=AnchorConfig(pair_classifier=True))


def _fit_docs():
    """The toy documents a few times over, so the negatives have relations and sentences to come from."""
    docs = toy_docs()
    extra = [make_doc("d", "Mary Jones was born in Boston .".split(), [(0, 2, "Peop"), (5, 6, "Loc")],
                      [(0, 1, "Live_In")])]
    return docs + extra


def test_an_unfitted_veto_scores_as_the_pair_classifier(tmp_path) -> None:
    model = _trained(tmp_path)
    head = VetoClassifier(model.hidden_sizes()[0], len(model.schema.entity_types), len(model.schema.relation_types))
    head.pair.load_state_dict(model.heads.pair.state_dict())
    head.eval()
    batch = collate(model, make_examples(model, toy_docs()))
    p = pair_tensors(model, make_examples(model, toy_docs()), 100)
    args = (p["ent_item"], p["ent_start"], p["ent_end"], p["ent_type"], p["pair_head"], p["pair_tail"])
    with torch.no_grad():
        enc = model.encode(batch)
        want = model.heads.pair(enc, *args)
        got = head(enc, batch["attention_mask"], *args)
    assert torch.allclose(want, got, atol=1e-5)


def test_fitting_touches_only_the_veto_and_decoding_without_it_is_unchanged(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    off = predict(model, docs, DecodeConfig(**UNION))
    report = fit_veto(model, _fit_docs(), 1.0, epochs=4, lr=1e-3, batch_size=2)
    assert model.heads.veto is not None and model.anchor.veto_classifier
    after = model.state_dict()
    assert {k for k in after if not k.startswith("heads.veto.")} == set(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert report.documents == 4 and sum(report.negative_counts.values()) > 0 and len(report.losses) == 4
    assert report.pairs > report.related > 0
    again = predict(model, docs, DecodeConfig(**UNION))  # pair_veto 0: the veto is not read
    assert [d.to_dict() for d in again.documents] == [d.to_dict() for d in off.documents]
    _doubt_only(model, "Work_For")
    vetoed = predict(model, docs, DecodeConfig(**UNION, pair_veto=0.5))
    for a, b in zip(off.documents, vetoed.documents, strict=True):
        assert a.entities == b.entities
        assert set(b.relations) == {r for r in a.relations if r.type != "Work_For"}  # exactly the doubted type goes
    assert vetoed.pair_vetoed == sum(r.type == "Work_For" for d in off.documents for r in d.relations) > 0


def _doubt_only(model, relation: str) -> None:
    """Make the fitted veto give ``relation`` probability sigmoid(-20) and every other type sigmoid(20)."""
    k = list(model.schema.relation_types).index(relation)
    with torch.no_grad():
        last = model.heads.veto.pair.mlp[-1]
        last.weight.zero_()
        last.bias.fill_(20.0)
        last.bias[k] = -20.0


def test_the_veto_checks_the_pair_classifier_relations_too(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    fit_veto(model, _fit_docs(), 0.5, epochs=1, batch_size=4)
    loose = {"pair_relations": "union", "pair_threshold": 1e-4, "signatures": False}  # the classifier adds what the decoder left out
    union = predict(model, docs, DecodeConfig(**loose))
    assert union.pair_added > 0
    with torch.no_grad():  # a veto that doubts everything: every type at sigmoid(-10)
        model.heads.veto.pair.mlp[-1].weight.zero_()
        model.heads.veto.pair.mlp[-1].bias.fill_(-10.0)
    vetoed = predict(model, docs, DecodeConfig(**loose, pair_veto=1e-3))
    assert all(d.relations == [] for d in vetoed.documents) and vetoed.pair_added == 0
    assert vetoed.pair_vetoed == sum(len(d.relations) for d in union.documents)
    # a relation the decoder wrote and the pair classifier also scores, vetoed: counted once, not added back
    _doubt_only(model, "Work_For")
    some = predict(model, docs, DecodeConfig(**loose, pair_veto=0.5))
    wrote = predict(model, docs, DecodeConfig()).documents
    assert any(r.type == "Work_For" for d in wrote for r in d.relations)
    assert all(r.type != "Work_For" for d in some.documents for r in d.relations)
    assert some.pair_vetoed == sum(r.type == "Work_For" for d in union.documents for r in d.relations)


def test_a_fitted_veto_saves_and_reloads(tmp_path) -> None:
    model = _trained(tmp_path)
    fit_veto(model, _fit_docs(), 0.5, epochs=2, batch_size=4)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.heads.veto is not None and again.anchor.veto_classifier
    for k, v in model.heads.veto.state_dict().items():
        assert torch.equal(v, again.heads.veto.state_dict()[k])
    cfg = DecodeConfig(**UNION, pair_veto=0.3)
    a, b = predict(model, toy_docs(), cfg), predict(again, toy_docs(), cfg)
    assert [d.to_dict() for d in a.documents] == [d.to_dict() for d in b.documents]


def test_a_model_without_a_pair_classifier_is_refused(tmp_path) -> None:
    model = overfit_tiny_model(tmp_path, steps=1)
    with pytest.raises(ValueError, match="pair classifier"):
        fit_veto(model, toy_docs(), 0.5)
    save_model(model, tmp_path / "m")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in toy_docs()), encoding="utf-8")
    assert main(["veto", "--model", str(tmp_path / "m"), "--input", str(gold), "--output", str(tmp_path / "v")]) == 2


def test_the_command_fits_saves_and_sets_the_default(tmp_path, capsys) -> None:
    model = _trained(tmp_path)
    save_model(model, tmp_path / "m", extra_config={"run": {"decode": {"pair_relations": "union"}}})
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in _fit_docs()), encoding="utf-8")
    base = ["veto", "--model", str(tmp_path / "m"), "--input", str(gold)]
    assert main([*base, "--output", str(tmp_path / "v"), "--epochs", "2", "--pair-veto", "0.2"]) == 0
    printed = capsys.readouterr()
    assert "veto fitted on" in printed.out and "epoch 2/2" in printed.err and "member" not in printed.err
    saved = json.loads((tmp_path / "v" / "model_config.json").read_text())
    assert saved["run"]["decode"]["pair_veto"] == 0.2 and saved["anchor"]["veto_classifier"]
    assert saved["veto"]["epochs"] == 2 and len(saved["veto"]["losses"]) == 2 and saved["veto"]["negatives"] == 0.5
    assert load_model(tmp_path / "v").heads.veto is not None
    assert load_model(tmp_path / "m").heads.veto is None  # the input model is left as it was (until fitted in place)
    # a non-empty output, a bad option: one line, exit 2
    assert main([*base, "--output", str(tmp_path / "v")]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([*base, "--output", str(tmp_path / "file")]) == 2
    assert main([*base, "--output", str(tmp_path / "file" / "v")]) == 2
    assert "not a directory" in capsys.readouterr().err
    # in place: the model gains its veto and keeps its training checkpoint
    (tmp_path / "m" / "checkpoint").mkdir()
    (tmp_path / "m" / "checkpoint" / "state.pt").write_text("resume")
    assert main([*base, "--output", str(tmp_path / "m"), "--epochs", "1"]) == 0
    assert (tmp_path / "m" / "checkpoint" / "state.pt").read_text() == "resume"
    assert load_model(tmp_path / "m").heads.veto is not None
    # fit documents with no relation the model's schema knows
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in [
        make_doc("o", "Mary Jones met Acme Corp .".split(), [(0, 2, "Peop"), (3, 5, "Org")], [(0, 1, "Met")])]))
    assert main(["veto", "--model", str(tmp_path / "v"), "--input", str(other), "--output", str(tmp_path / "o")]) == 2
    assert "nothing to fit the veto on" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "w"), "--negatives", "0"]) == 2
    assert main([*base, "--output", str(tmp_path / "w"), "--contrasts", "-0.5"]) == 2
    assert "--contrasts must be in [0, 5]" in capsys.readouterr().err
    assert main([*base, "--output", str(tmp_path / "w"), "--kinds", "rewrites,poems"]) == 2
    assert "--kinds" in capsys.readouterr().err


def test_the_same_seed_fits_the_same_veto(tmp_path) -> None:
    import copy

    model = _trained(tmp_path)
    twin = copy.deepcopy(model)
    torch.manual_seed(123)  # the global generator's state before the fit does not matter, nor changes
    state = torch.random.get_rng_state()
    fit_veto(model, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    fit_veto(twin, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7)
    a, b = model.heads.veto.state_dict(), twin.heads.veto.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_contrasts_are_fitted_on_with_their_relations(tmp_path, capsys) -> None:
    import copy

    from anchoralign.negatives import contrast_documents

    model = _trained(tmp_path)
    without = copy.deepcopy(model)
    plain = fit_veto(without, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7)
    report = fit_veto(model, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7, contrasts=1.0)
    added = contrast_documents(_fit_docs(), 1.0, 7).documents
    assert plain.contrasts == 0 and report.contrasts == len(added) == 4
    assert report.related == plain.related + sum(len(d.relations) for d in added)  # fitted as related pairs
    a, b = model.heads.veto.state_dict(), without.heads.veto.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="contrasts >= 0"):
        fit_veto(model, _fit_docs(), 0.5, epochs=1, contrasts=-1)
    save_model(model, tmp_path / "m", extra_config={"run": {"decode": {"pair_relations": "union"}}})
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in _fit_docs()), encoding="utf-8")
    assert main(["veto", "--model", str(tmp_path / "m"), "--input", str(gold), "--output", str(tmp_path / "v"),
                 "--epochs", "1", "--contrasts", "1"]) == 0
    assert "+ 4 contrasts" in capsys.readouterr().out
    saved = json.loads((tmp_path / "v" / "model_config.json").read_text())
    assert saved["veto"]["contrasts"] == 4 and saved["veto"]["contrasts_fraction"] == 1.0


def test_members_are_fits_with_consecutive_seeds_averaged(tmp_path) -> None:
    import copy

    from anchoralign.anchor_heads import VetoEnsemble

    model = _trained(tmp_path)
    single = copy.deepcopy(model)
    fit_veto(single, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7)
    report = fit_veto(model, _fit_docs(), 0.5, epochs=2, batch_size=4, seed=7, members=2)
    assert isinstance(model.heads.veto, VetoEnsemble) and model.anchor.veto_members == 2
    assert len(report.member_losses) == 2 and len(report.losses) == 2
    first, second = model.heads.veto.members
    a, b, c = first.state_dict(), single.heads.veto.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the first member is the one-member fit of the same seed
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the second has a seed of its own
    batch = collate(model, make_examples(model, toy_docs()))
    p = pair_tensors(model, make_examples(model, toy_docs()), 100)
    args = (batch["attention_mask"], p["ent_item"], p["ent_start"], p["ent_end"], p["ent_type"], p["pair_head"],
            p["pair_tail"])
    with torch.no_grad():
        enc = model.encode(batch)
        mean = (first(enc, *args).sigmoid() + second(enc, *args).sigmoid()) / 2
        assert torch.allclose(model.heads.veto(enc, *args).sigmoid(), mean, atol=1e-5)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again.heads.veto, VetoEnsemble) and len(again.heads.veto.members) == 2
    cfg = DecodeConfig(**UNION, pair_veto=0.3)
    a, b = predict(model, toy_docs(), cfg), predict(again, toy_docs(), cfg)
    assert [d.to_dict() for d in a.documents] == [d.to_dict() for d in b.documents]


def _veto_says(model, logit: float) -> None:
    """Make the fitted veto give every type probability sigmoid(``logit``)."""
    with torch.no_grad():
        model.heads.veto.pair.mlp[-1].weight.zero_()
        model.heads.veto.pair.mlp[-1].bias.fill_(logit)


def test_pair_scores_mean_adds_by_the_mean_of_both_classifiers(tmp_path) -> None:
    model = _trained(tmp_path)
    docs = toy_docs()
    with pytest.raises(InputError, match="pair_scores: mean"):  # no veto fitted yet
        predict(model, docs, DecodeConfig(pair_relations="replace", pair_scores="mean"))
    fit_veto(model, _fit_docs(), 0.5, epochs=1, batch_size=4)

    def triples(threshold: float, scores: str) -> list[set]:
        out = predict(model, docs, DecodeConfig(pair_relations="replace", pair_threshold=threshold, signatures=False,
                                                pair_scores=scores))
        return [{(r.head, r.tail, r.type) for r in d.relations} for d in out.documents]

    pair_half = triples(0.5, "pair")
    assert any(pair_half) and triples(0.5, "pair") != triples(1e-4, "pair")  # the threshold decides here
    _veto_says(model, 20.0)  # veto ~1: the mean reaches 0.75 exactly where the pair classifier reaches 0.5
    assert triples(0.75, "mean") == pair_half
    _veto_says(model, -20.0)  # veto ~0: the mean reaches 0.25 exactly where the pair classifier reaches 0.5
    assert triples(0.25, "mean") == pair_half
    assert triples(0.5, "pair") == pair_half  # the pair classifier's own scores never read the veto
    with pytest.raises(ValueError, match="pair_scores"):
        DecodeConfig(pair_scores="max").validate()
