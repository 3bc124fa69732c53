"""Dropout whose masks are cheap on a CPU.

Torch draws a CPU dropout mask element by element from its Mersenne Twister (``bernoulli_``). A CoNLL04
training step draws about forty of them, and under the AVX2 cap they were 10.7 % of the step's self time
(``benchmarks/profile_train_step.py``); one 16×12×113×113 attention mask cost 14 ms on one thread, 50 times the
multiplication that applies it. Here one draw from torch's generator keys a counter-based hash (SplitMix64's
finaliser, vectorised over an ``arange``) that yields 64 random bits per element of an int64 tensor, 4 mask
elements of 16 bits each. Masks stay reproducible under ``torch.manual_seed`` and independent between calls; the
drop probability is exact to 2⁻¹⁷. GPUs keep torch's own dropout (Philox is already cheap there).

``install(model)`` puts it into a model for training: every ``nn.Dropout`` becomes a ``Dropout`` (same ``p``) and
an encoder whose attention goes through Transformers' attention interface computes dropped-out attention here
(``attention``) instead of falling back to SDPA's math kernel with a ``bernoulli_`` mask. Without dropout (eval,
``p = 0``) both defer to SDPA unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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
    """A dropout mask already scaled: each element 0 with probability ``p`` (to 2⁻¹⁷), else ``1 / (1 - p)``."""
    n = math.prod(shape)
    with torch.profiler.record_function(MASK_EVENT):  # benchmarks/profile_train_step.py counts its time
        return _keep_scale(n, p, dtype, device).view(shape)


def _keep_scale(n: int, p: float, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    # int16 r is uniform on [-32768, 32767]; drop r < -32768 + k, k = round(p * 65536). As floats, r - (edge - 1)
    # clamped to [0, 1] is 0 for dropped and 1 for kept elements (every step a vectorised float kernel: a
    # comparison producing bool and a bool-times-float product are several times dearer on a CPU).
    edge = -32768 + round(p * 65536)
    mask = random_int16(n, device).to(torch.float32).sub_(edge - 1).clamp_(0, 1).mul_(1.0 / (1.0 - p))
    return mask.to(dtype)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout`` with a ``keep_scale`` mask on a CPU; torch's own elsewhere."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
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
    (B, heads, Tq, Tk). Without dropout (or off a CPU) it is SDPA itself."""
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal, scale=scale)
    scale = q.size(-1) ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    low = torch.finfo(scores.dtype).min
    if causal:
        tq, tk = scores.shape[-2:]  # SDPA's convention: the top-left aligned lower triangle attends
        scores = scores.masked_fill(torch.ones(tq, tk, dtype=torch.bool, device=q.device).triu(1), low)
    if mask is not None:
        scores = scores.masked_fill(~mask, low) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(dropout(probs, p), v)


def _encoder_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                       **kwargs):
    """Transformers' attention-interface contract (as ``sdpa_attention_forward``): (B, T, heads, d) out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if (dropout == 0.0 or query.device.type != "cpu" or getattr(module, "is_causal", False)
            or key.size(1) != query.size(1)):  # causal or grouped-query attention: SDPA's own handling
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
    and outputs without dropout are unchanged."""
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
