"""The teacher-forced decoder on real positions only (``CopySeq2Seq.decode_packed``) against the Hugging Face
decoder it replaces in training (``decode``): the same states at every real position, and the same gradients,
on a tiny random model with targets of very different lengths in one batch."""

from __future__ import annotations

import torch

from anchoralign.batching import collate, make_examples
from anchoralign.model import ModelConfig

from .tiny import tiny_model, toy_docs


def _batch(tmp_path):
    torch.manual_seed(4)
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64))
    docs = toy_docs()
    batch = collate(model, make_examples(model, docs))
    real = batch["labels"] != -100
    lengths = real.sum(1)
    assert int(lengths.min()) < int(lengths.max()), "the batch must have padding to remove"
    return model, batch, real


def _both(net, batch, real):
    enc = net.encode(batch["input_ids"], batch["attention_mask"])
    args = (enc, batch["attention_mask"], batch["decoder_input_ids"], batch["decoder_positions"])
    return net.decode(*args), net.decode_packed(*args, real)


def test_packed_decoder_states_equal_the_hf_decoder_at_real_positions(tmp_path) -> None:
    model, batch, real = _batch(tmp_path)
    model.eval()
    with torch.no_grad():
        hf, packed = _both(model.net, batch, real)
    assert torch.allclose(hf[real], packed[real], atol=1e-5)
    assert not packed[~real].any()  # padding positions are zeros


def test_packed_decoder_gradients_equal_the_hf_decoders(tmp_path) -> None:
    """Train mode with every dropout at 0: a loss over the real positions gives the same gradients."""
    model, batch, real = _batch(tmp_path)
    model.train()
    for m in model.net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    net = model.net
    target = torch.randn(real.shape + (net.encoder.config.hidden_size,))
    grads = []
    for which in (0, 1):
        net.zero_grad()
        out = _both(net, batch, real)[which]
        ((out[real] - target[real]) ** 2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-4, rtol=1e-4), name


def test_packed_decoder_applies_dropout_in_training(tmp_path) -> None:
    """Hidden and attention dropout act in train mode (two passes differ) and not in eval mode."""
    model, batch, real = _batch(tmp_path)
    for m in model.net.decoder.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.1
    model.train()
    with torch.no_grad():
        enc = model.net.encode(batch["input_ids"], batch["attention_mask"])
        args = (enc, batch["attention_mask"], batch["decoder_input_ids"], batch["decoder_positions"], real)
        a, b = model.net.decode_packed(*args), model.net.decode_packed(*args)
    assert not torch.allclose(a[real], b[real])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.net.decode_packed(*args), model.net.decode_packed(*args))
