"""The cheap CPU dropout (``anchoralign.dropout``): masks drop ``p`` of the elements independently and scale the
rest, follow torch's seed, carry the gradient; its attention is SDPA's with that mask; installed in a model it
changes nothing without dropout and honours the padding mask with it."""

from __future__ import annotations

import math

import pytest
import torch

from anchoralign import dropout as fast
from anchoralign.batching import collate, make_examples
from anchoralign.model import ModelConfig

from .tiny import tiny_model, toy_docs


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_masks_drop_p_of_the_elements_and_scale_the_rest(p) -> None:
    torch.manual_seed(0)
    n = 1_000_000
    mask = fast.keep_scale((n,), p)
    dropped = float((mask == 0).float().mean())
    assert abs(dropped - p) < 4 * math.sqrt(p * (1 - p) / n)
    values = mask.unique().tolist()
    k = round(p * 65536)  # the drop probability on the mask's 2^-16 grid; the scale keeps the expectation at 1
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(65536 / (65536 - k), rel=1e-6)
    assert abs(float(mask.double().mean()) - 1) < 4 * math.sqrt(p / (1 - p) / n)
    # neighbours within one 64-bit draw (offsets 1-3) and across draws (4, 5): dropped together as often as chance
    d = mask == 0
    for offset in (1, 2, 3, 4, 5):
        both = float((d[:-offset] & d[offset:]).float().mean())
        assert abs(both - p * p) < 5 * math.sqrt(p * p / n), offset


def test_masks_follow_torchs_seed_and_are_fresh_each_call() -> None:
    torch.manual_seed(7)
    a, b = fast.keep_scale((4096,), 0.5), fast.keep_scale((4096,), 0.5)
    torch.manual_seed(7)
    assert torch.equal(a, fast.keep_scale((4096,), 0.5))
    agree = float(((a == 0) == (b == 0)).float().mean())
    assert 0.45 < agree < 0.55  # independent masks agree on about half the elements


def test_dropout_passes_the_mask_as_gradient_and_is_identity_off() -> None:
    torch.manual_seed(1)
    x = (torch.rand(64, 32) + 0.5).requires_grad_()
    y = fast.dropout(x, 0.3)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())
    assert ((y == 0) | torch.isclose(y, x / 0.7)).all() and (y == 0).any()
    assert fast.dropout(x, 0.3, training=False) is x and fast.dropout(x, 0.0) is x
    module = fast.Dropout(0.3).eval()
    assert module(x) is x


def _reference_attention(q, k, v, keep, *, mask=None, causal=False, scale):
    """Attention written out: scores, -inf where masked, softmax, the kept-and-scaled probabilities times v."""
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if causal:
        tq, tk = scores.shape[-2:]
        allowed = torch.arange(tk)[None, :] <= torch.arange(tq)[:, None]
        scores = torch.where(allowed, scores, float("-inf"))
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf"))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1) * keep, v)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_with_dropout_is_sdpa_with_the_mask(causal) -> None:
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    mask = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    mask[1, ..., 3:] = False  # the second row's last two keys are padding
    torch.manual_seed(11)
    ours = fast.attention(q, k, v, mask=mask, causal=causal, p=0.25, scale=0.5)
    torch.manual_seed(11)
    keep = fast.keep_scale((2, 3, 5, 5), 0.25)
    assert torch.allclose(ours, _reference_attention(q, k, v, keep, mask=mask, causal=causal, scale=0.5), atol=1e-5)
    without = fast.attention(q, k, v, mask=mask, causal=causal, p=0.0, scale=0.5)
    assert torch.allclose(without, _reference_attention(q, k, v, 1.0, mask=mask, causal=causal, scale=0.5), atol=1e-5)


def _model_and_batch(tmp_path):
    torch.manual_seed(4)
    model = tiny_model(tmp_path, ModelConfig(backbone="tiny", max_source_length=64, max_target_length=64))
    batch = collate(model, make_examples(model, toy_docs()))
    return model, batch


def test_installed_model_is_unchanged_without_dropout(tmp_path) -> None:
    model, batch = _model_and_batch(tmp_path)
    model.eval()
    with torch.no_grad():
        before = model(batch)["loss"]
        swapped = fast.install(model)
        after = model(batch)["loss"]
    assert swapped > 0 and not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert model.net.encoder.config._attn_implementation == "anchoralign_cpu_dropout"
    assert torch.allclose(before, after, atol=1e-6)


def test_installed_encoder_drops_out_and_ignores_padding(tmp_path) -> None:
    """Train mode: two passes differ (dropout acts), but the real pieces' states do not move when the padded
    pieces' ids change under the same seed (the padding mask reaches the dropout attention)."""
    model, batch = _model_and_batch(tmp_path)
    fast.install(model)
    for m in model.modules():  # the tiny encoder is built without dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.2  # hidden states and (BERT's *SelfAttention.dropout) attention probabilities
    model.train()
    ids, am = batch["input_ids"], batch["attention_mask"]
    assert (am == 0).any(), "the batch must have padding"
    other = ids.masked_fill(am == 0, 5)
    encode = model.net.encode
    with torch.no_grad():
        torch.manual_seed(0)
        a = encode(ids, am)
        torch.manual_seed(0)
        b = encode(other, am)
        c = encode(ids, am)
    real = am.bool()
    assert torch.allclose(a[real], b[real], atol=1e-5)
    assert not torch.allclose(a[real], c[real], atol=1e-3)


TINY_P = 1e-7  # rounds to k = 0 of 65536: the cheap paths run and drop nothing (torch's drops ~nothing either)


@pytest.mark.parametrize("kind", ["causal, more keys than queries", "bool mask", "additive mask", "bf16"])
def test_attention_math_path_equals_sdpa(kind) -> None:
    """With a probability that drops nothing, the written-out path (not SDPA) runs and must equal SDPA."""
    torch.manual_seed(5)
    q = torch.randn(2, 3, 4, 8)
    k, v = torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    kwargs: dict = {}
    if kind.startswith("causal"):
        kwargs = {"causal": True}
    elif kind == "bool mask":
        mask = torch.rand(2, 1, 4, 6) > 0.3
        mask[..., 0] = True
        kwargs = {"mask": mask}
    elif kind == "additive mask":
        kwargs = {"mask": torch.randn(2, 1, 4, 6)}
    else:
        q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
    ours = fast.attention(q, k, v, p=TINY_P, scale=0.3, **kwargs)
    sdpa = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=kwargs.get("mask"), is_causal=kwargs.get("causal", False), scale=0.3)
    tol = 2e-2 if kind == "bf16" else 1e-5
    assert ours.dtype == sdpa.dtype and torch.allclose(ours.float(), sdpa.float(), atol=tol)


def test_attention_gives_zeros_where_nothing_may_be_attended() -> None:
    q, k, v = (torch.randn(1, 1, 3, 4) for _ in range(3))
    mask = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    mask[..., 1, :] = False  # the second query may attend to nothing
    out = fast.attention(q, k, v, mask=mask, p=0.5)
    assert torch.isfinite(out).all() and not out[..., 1, :].any()


def test_probabilities_outside_0_1_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast.dropout(torch.ones(3), -0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast.keep_scale((3,), 1.5)
    assert not fast.dropout(torch.ones(5), 1.0).any()


def _set_all_dropout(model: torch.nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p


def test_installed_copy_model_trains_like_the_plain_one(tmp_path) -> None:
    """Train mode with every dropout at a probability that drops nothing: the installed model (its encoder's
    attention through ``attention``, the decoder's through it too) gives the loss the plain one gives."""
    model, batch = _model_and_batch(tmp_path)
    model.train()
    _set_all_dropout(model, TINY_P)
    plain = model(batch)["loss"]
    fast.install(model)
    calls = []
    real = fast.attention

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    fast.attention = counted
    try:
        installed = model(batch)["loss"]
    finally:
        fast.attention = real
    assert len(calls) >= model.net.encoder.config.num_hidden_layers  # the encoder's layers came through here
    assert torch.allclose(plain, installed, atol=1e-5)


def test_installed_t5_keeps_its_position_bias() -> None:
    """T5 passes its relative position bias as an extra argument: such calls stay with SDPA's own function."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2,
                                             dropout_rate=TINY_P, decoder_start_token_id=0))
    t5.train()
    ids = torch.randint(1, 64, (2, 7))
    labels = torch.randint(1, 64, (2, 5))
    plain = t5(input_ids=ids, labels=labels).logits
    fast.install(t5)
    installed = t5(input_ids=ids, labels=labels).logits
    assert torch.allclose(plain, installed, atol=1e-4)
