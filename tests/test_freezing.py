"""train.freeze_layers: the encoder's embedding layer and bottom layers get no gradient and do not move; the
word embeddings it shares with the decoder still learn from the decoder; the caller gets a trainable model back."""

from __future__ import annotations

import pytest
import torch

from anchoralign.batching import collate, make_examples
from anchoralign.config import load_config
from anchoralign.errors import InputError
from anchoralign.freezing import freeze_encoder_layers
from anchoralign.train import train

from .test_overfit import _cfg
from .tiny import tiny_model, toy_docs, toy_schema


def _grads(model, docs) -> dict[str, torch.Tensor | None]:
    model.zero_grad(set_to_none=True)
    model.train()
    model(collate(model, make_examples(model, docs)))["loss"].backward()
    return {n: p.grad for n, p in model.named_parameters()}


def test_frozen_layers_get_no_gradient_and_the_decoder_still_trains_the_shared_rows(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    docs = toy_docs()
    batch = collate(model, make_examples(model, docs))
    # pieces of the sources that never enter the decoder nor are generated: only the encoder's path reaches them
    source_only = sorted(set(batch["input_ids"].flatten().tolist()) - set(batch["decoder_input_ids"].flatten().tolist())
                         - set(model.net.gen_ids.tolist()) - {model.tokenizer.pad_token_id})
    decoder_ids = sorted(set(batch["decoder_input_ids"].flatten().tolist()) - {model.tokenizer.pad_token_id})
    assert source_only and decoder_ids
    full = _grads(model, docs)
    word = "net.encoder.embeddings.word_embeddings.weight"
    assert full[word][source_only].abs().sum() > 0

    frozen = freeze_encoder_layers(model.net, 1)
    grads = _grads(model, docs)
    for name, g in grads.items():
        below = name.startswith("net.encoder.embeddings.") and name != word or name.startswith("net.encoder.encoder.layer.0.")
        if below:
            assert g is None, name
    assert grads["net.encoder.encoder.layer.1.output.dense.weight"] is not None
    assert torch.count_nonzero(grads[word][source_only]) == 0  # the encoder's path into the rows is cut
    assert grads[word][decoder_ids].abs().sum() > 0  # the decoder's is not

    frozen.remove()
    again = _grads(model, docs)
    assert all(g is not None for n, g in again.items() if n.startswith("net.encoder.encoder.layer.0."))
    assert torch.allclose(again[word], full[word])


def test_training_leaves_frozen_layers_as_they_were(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = _cfg(2)
    cfg.train.freeze_layers = 1
    train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=model, progress=False)
    after = model.state_dict()
    for k in before:
        kept = k.startswith("net.encoder.encoder.layer.0.") or (
            k.startswith("net.encoder.embeddings.") and "word_embeddings" not in k)
        if kept:
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before["net.encoder.encoder.layer.1.output.dense.weight"],
                           after["net.encoder.encoder.layer.1.output.dense.weight"])
    assert all(p.requires_grad for p in model.parameters())  # trainable again for the caller


def test_bad_freeze_requests_are_named(tmp_path) -> None:
    model = tiny_model(tmp_path)
    with pytest.raises(InputError, match="encoder has 2 layers"):
        freeze_encoder_layers(model.net, 3)
    assert all(p.requires_grad for p in model.parameters())  # nothing half-frozen
    with pytest.raises(ValueError, match="train.freeze_layers must be >= 0"):
        load_config(None, ["train.freeze_layers=-1"])


def test_resume_with_another_freeze_is_refused(tmp_path) -> None:
    cfg = _cfg(2)
    cfg.train.freeze_layers = 1
    torch.manual_seed(0)
    first = tiny_model(tmp_path)
    pretrained = {k: v.clone() for k, v in first.state_dict().items() if k.startswith("net.encoder.encoder.layer.0.")}
    train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=first, progress=False, stop_after_epoch=1)
    cfg.train.freeze_layers = 0
    model = tiny_model(tmp_path)
    with pytest.raises(InputError, match="resume with the run's own config"):
        train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=model, progress=False, resume=True)
    assert isinstance(model.net.encoder.embeddings.word_embeddings, torch.nn.Embedding)  # as it came
    assert all(p.requires_grad for p in model.parameters())
    # with the run's own value it resumes, and the frozen layer is still the pretrained one
    cfg.train.freeze_layers = 1
    result = train(cfg, toy_docs(), toy_docs(), toy_schema(), tmp_path / "run", model=model, progress=False,
                   resume=True)
    assert result.epochs_run == 2
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in pretrained.items())
