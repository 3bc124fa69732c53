"""Dropout whose masks are cheap on a CPU.

Torch draws a CPU dropout mask element by element from its Mersenne Twister (``bernoulli_``). A CoNLL04
training step draws about forty of them, and under the AVX2 cap they were 10.7 % of the step's self time
(``benchmarks/profile_train_step.py``); one 16×12×58×58 attention-probability mask cost 4.0 ms on one thread,
70 times the multiplication that applies it (``benchmarks/decoder_waste.py``). Here one draw from torch's generator keys a counter-based hash (SplitMix64's
finaliser, vectorised over an ``arange``) that yields 64 random bits per element of an int64 tensor, 4 mask
elements of 16 bits each. Masks stay reproducible under ``torch.manual_seed`` and independent between calls; the
drop probability is exact to 2⁻¹⁷. GPUs keep torch's own dropout (Philox is already cheap there).

``install(model)`` puts it into a model for training: every ``nn.Dropout`` becomes a ``Dropout`` (same ``p``) and
an encoder whose attention goes through Transformers' attention interface computes dropped-out attention here
(``attention``) instead of falling back to SDPA's math kernel with a ``bernoulli_`` mask. Without dropout (eval,
``p = 0``) both defer to SDPA unchanged. What ``install`` does not reach keeps torch's dropout (see its docstring).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward

__all__ = ["Dropout", "attention", "dropout", "install", "keep_scale"]

# SplitMix64 (Steele, Lea & Flood 2014): the golden-ratio increment and the finaliser's multipliers, as int64.
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15
_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB
_ATTENTION = "anchoralign_cpu_dropout"
MASK_EVENT = "anchoralign.dropout.keep_scale"


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def random_int16(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` uniformly random int16 values: SplitMix64 over a counter keyed by one draw of torch's generator."""
    key = int(torch.randint(-(2**62), 2**62, ()).item())
    z = torch.arange((n + 3) // 4, dtype=torch.int64, device=device).mul_(_GOLDEN).add_(key)
    z = z ^ _shr(z, 30)
    z.mul_(_MIX1)
    z = z ^ _shr(z, 27)
    z.mul_(_MIX2)
    z = z ^ _shr(z, 31)
    return z.view(torch.int16)[:n]


def keep_scale(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """A dropout mask already scaled: each element 0 with probability ``k / 65536``, ``k = round(p * 65536)``
    (``p`` to 2⁻¹⁷), else ``65536 / (65536 - k)``, so that the mask's expectation is exactly 1."""
    _check(p)
    n = math.prod(shape)
    with torch.profiler.record_function(MASK_EVENT):  # benchmarks/profile_train_step.py counts its time
        return _keep_scale(n, p, dtype, device).view(shape)


def _check(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_scale(n: int, p: float, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    k = round(p * 65536)
    if k >= 65536:
        return torch.zeros(n, dtype=dtype, device=device)
    # int16 r is uniform on [-32768, 32767]; drop the k values r < -32768 + k. As floats, r - (edge - 1) clamped
    # to [0, 1] is 0 for dropped and 1 for kept elements (every step a vectorised float kernel: a comparison
    # producing bool and a bool-times-float product are several times dearer on a CPU).
    edge = -32768 + k
    mask = random_int16(n, device).to(torch.float32).sub_(edge - 1).clamp_(0, 1).mul_(65536 / (65536 - k))
    return mask.to(dtype)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout`` with a ``keep_scale`` mask on a CPU; torch's own elsewhere."""
    _check(p)
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p == 1.0:
        return F.dropout(x, p, True)
    return x * keep_scale(x.shape, p, x.dtype, x.device)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, same ``inplace`` flag ignored) with ``dropout``'s masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, mask: torch.Tensor | None = None,
              causal: bool = False, p: float = 0.0, scale: float | None = None) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal, scale=scale)``
    with ``dropout``'s mask on the probabilities. ``mask``: bool (True attends) or additive, broadcastable to
    (B, heads, Tq, Tk); ``causal``: SDPA's top-left aligned lower triangle. As SDPA: the softmax in fp32 (the
    scores may be bf16 under autocast), and a query that may attend to nothing gets zeros. Without dropout (or
    off a CPU) it is SDPA itself."""
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal, scale=scale)
    scale = q.size(-1) ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    allowed = None
    if causal:
        tq, tk = scores.shape[-2:]
        allowed = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
    additive = mask is not None and mask.dtype != torch.bool
    if mask is not None and not additive:
        allowed = mask if allowed is None else allowed & mask
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    if additive:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    if additive or (allowed is not None and not bool(allowed.any(-1).all())):
        probs = probs.nan_to_num(0.0)  # rows with nothing to attend to: SDPA gives zeros, softmax NaN
    return torch.matmul(dropout(probs, p).to(v.dtype), v)


# keyword arguments of Transformers' attention interface that change nothing in plain softmax attention; any
# other one (T5's position_bias, softcap, sliding_window, sinks, ...) sends the call to SDPA's own function
_PLAIN = frozenset({"encoder_hidden_states", "position_ids", "cache_position", "past_key_values", "past_key_value",
                    "use_cache", "output_attentions", "is_causal"})


def _encoder_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                       **kwargs):
    """Transformers' attention-interface contract (as ``sdpa_attention_forward``): (B, T, heads, d) out."""
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", True) if causal is None else causal  # sdpa_attention_forward's rule
    special = any(v is not None for k, v in kwargs.items() if k not in _PLAIN)
    if (dropout == 0.0 or query.device.type != "cpu" or causal or special
            or key.size(1) != query.size(1)):  # causal, grouped-query or biased attention: SDPA's own handling
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    ctx = attention(query, key, value, mask=attention_mask, p=dropout, scale=scaling)
    return ctx.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(_ATTENTION, _encoder_attention)
    AttentionMaskInterface.register(_ATTENTION, sdpa_mask)  # the masks SDPA gets: bool, True attends


def install(model: nn.Module) -> int:
    """Swap every ``nn.Dropout`` of ``model`` for a ``Dropout`` and route SDPA attention of its Transformers
    submodels through ``attention``; returns how many dropout modules were swapped. Parameters, state dicts
    and outputs without dropout are unchanged, and the model keeps the swap (harmless off a CPU or without
    dropout). What it reaches: the copy backbone whole (BERT-like encoder, the training decoder's own
    attention); in other models, ``nn.Dropout`` modules and non-causal attention without extra arguments
    (T5's position bias, causal decoders and grouped-query attention keep SDPA's own dropout, and a model's
    functional ``F.dropout`` calls stay torch's)."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p))
                swapped += 1
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_attn_implementation", None) == "sdpa" and hasattr(module, "set_attn_implementation"):
            _register()
            try:
                module.set_attn_implementation(_ATTENTION)
            except (ValueError, NotImplementedError):  # a model that accepts no custom attention: SDPA's own
                pass
    return swapped
