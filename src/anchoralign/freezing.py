"""Freeze the bottom of the copy backbone's pretrained encoder while training.

``train.freeze_layers: N`` keeps the encoder's embedding layer (positions, token types, its LayerNorm) and its
first N transformer layers as pretrained: no gradient flows into or through them, so a training step skips
their whole backward pass (two thirds of each frozen layer's arithmetic; on the CoNLL04 demo config 767 GFLOP
per 12 steps become 639 with two layers frozen, `benchmarks/train_flops.py`) and stores none of their
activations. The layers still run in training mode
(their dropout stays on). The word embeddings are tied to the decoder's input and the generation slots
(``CopySeq2Seq``): they keep learning from those uses; only the encoder's path into them is cut.
"""

from __future__ import annotations

from torch import nn
from torch.utils.hooks import RemovableHandle

from .errors import InputError

__all__ = ["Frozen", "freeze_encoder_layers"]


def _detach_output(module: nn.Module, args: tuple, output):
    return output.detach()


class Frozen:
    """What ``freeze_encoder_layers`` froze, and how to make it trainable again."""

    def __init__(self, params: list[nn.Parameter], hook: RemovableHandle) -> None:
        self.params = params
        self.hook = hook

    def remove(self) -> None:
        for p in self.params:
            p.requires_grad_(True)
        self.hook.remove()


def freeze_encoder_layers(net: nn.Module, n: int) -> Frozen | None:
    """Freeze the embedding layer and the first ``n`` layers of ``net.encoder`` (a BERT-layout encoder): their
    parameters get no gradient and the embedding layer's output is detached, which cuts the encoder's gradient
    path into the word embeddings it shares with the decoder. None for n = 0."""
    if n <= 0:
        return None
    encoder = net.encoder
    emb = getattr(encoder, "embeddings", None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if emb is None or layers is None:
        raise InputError(f"train.freeze_layers needs an encoder with BERT's layout (embeddings, encoder.layer); "
                         f"{type(encoder).__name__} has none")
    if n > len(layers):
        raise InputError(f"train.freeze_layers is {n}, but the encoder has {len(layers)} layers")
    shared = {id(p) for p in emb.word_embeddings.parameters()}
    params = [p for p in emb.parameters() if id(p) not in shared and p.requires_grad]
    params += [p for layer in layers[:n] for p in layer.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    return Frozen(params, emb.register_forward_hook(_detach_output))
