"""Overfit a tiny random model on a few documents, then save, reload and get identical outputs (spaCy's
test_overfitting_IO); resume continues to the same weights as an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from anchoralign.batching import collate, make_examples
from anchoralign.config import RunConfig
from anchoralign.decode import DecodeConfig, predict
from anchoralign.linearize import canonical
from anchoralign.model import ModelConfig, load_model
from anchoralign.train import train

from .tiny import tiny_model, toy_docs, toy_schema


def _cfg(epochs: int) -> RunConfig:
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    cfg.train.epochs = epochs
    cfg.train.batch_size = 3
    cfg.train.lr = 3e-3
    cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio = 0.0
    cfg.train.precision = "fp32"
    cfg.train.eval_from_epoch = epochs  # evaluate only at the end: fast
    return cfg


def test_every_trainable_parameter_gets_a_gradient(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    batch = collate(model, make_examples(model, toy_docs()))
    model(batch)["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    # position rows beyond the batch's lengths and unused vocabulary rows get zero gradient; whole tensors must not
    assert no_grad == [] or all("token_type" in n for n in no_grad), no_grad


def test_overfit_save_reload_identical(tmp_path) -> None:
    torch.manual_seed(0)
    docs = toy_docs()
    model = tiny_model(tmp_path)
    first_loss = float(model(collate(model, make_examples(model, docs)))["loss"].detach())
    result = train(_cfg(150), docs, docs, toy_schema(), tmp_path / "run", model=model, progress=False)
    last_loss = float(model(collate(model, make_examples(model, docs)))["loss"].detach())
    assert last_loss < first_loss / 10
    assert result.best_dev["re_strict"]["f1"] == 1.0 and result.best_dev["ner"]["f1"] == 1.0

    before = predict(model, docs, DecodeConfig())
    assert [canonical(d) for d in before.documents] == [canonical(d) for d in docs]
    reloaded = load_model(tmp_path / "run")
    after = predict(reloaded, docs, DecodeConfig())
    assert [canonical(d) for d in after.documents] == [canonical(d) for d in before.documents]
    batch = collate(model, make_examples(model, docs))
    model.eval()
    assert torch.allclose(model(batch)["loss"], reloaded(batch)["loss"], atol=1e-6)
    beam = predict(reloaded, docs, DecodeConfig(num_beams=3))
    assert [canonical(d) for d in beam.documents] == [canonical(d) for d in docs]
    assert (tmp_path / "run" / "config.yaml").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_reaches_the_same_weights(tmp_path, ema) -> None:
    docs, schema = toy_docs(), toy_schema()
    cfg = _cfg(4)
    cfg.train.ema_decay = ema
    cfg.train.eval_from_epoch = 1  # evaluation swaps the averaged weights in and out every epoch
    torch.manual_seed(0)
    straight = tiny_model(tmp_path)
    train(cfg, docs, docs, schema, tmp_path / "a", model=straight, progress=False)

    torch.manual_seed(0)
    part = tiny_model(tmp_path)
    train(cfg, docs, docs, schema, tmp_path / "b", model=part, progress=False, stop_after_epoch=2)
    torch.manual_seed(123)  # resume must not depend on the caller's RNG
    resumed = tiny_model(tmp_path)
    train(cfg, docs, docs, schema, tmp_path / "b", model=resumed, resume=True, progress=False)
    a = load_model(tmp_path / "a" / "checkpoint").state_dict()
    b = load_model(tmp_path / "b" / "checkpoint").state_dict()
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_wide_beams_on_an_untrained_model_parse_cleanly(tmp_path) -> None:
    """More beams than allowed continuations (filler rows at -inf) never reach the output as malformed pieces."""
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    for beams in (1, 4, 8):
        result = predict(model, toy_docs(), DecodeConfig(num_beams=beams, max_new_tokens=40))
        assert result.malformed == 0, (beams, result.errors)
