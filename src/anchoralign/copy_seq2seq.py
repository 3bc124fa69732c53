"""The embedded default backbone: a BERT encoder (all-MiniLM-L6-v2) + a small transformer decoder with
cross-attention and a copy (pointer) output layer.

Why a pointer: a mention is a slice of the input (DESIGN.md §3). Measured on CoNLL04, a decoder that
re-generated mentions as free text from the 30k-piece softmax could not place 42 % of them. Here the output
distribution is one softmax over [a small generation vocabulary (markers, label words, end of sequence)] ∪
[the positions of the input], so copying a piece of the input is a first-class move and the 30k-wide output
layer disappears (the generation vocabulary of CoNLL04 has about 20 ids). ``next_log_probs`` scatters that
distribution back onto the full vocabulary, so standard ``LogitsProcessor``s apply unchanged.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from transformers import BertConfig, BertModel

__all__ = ["CopySeq2Seq"]

NEG = -1e9


class CopySeq2Seq(nn.Module):
    """BERT encoder + ``decoder_layers`` BERT-style decoder layers + copy/generate output layer."""

    def __init__(self, encoder: BertModel, gen_ids: list[int], decoder_layers: int = 2, init_decoder: bool = True):
        super().__init__()
        self.encoder = encoder
        dcfg = BertConfig(**encoder.config.to_dict())
        dcfg.is_decoder = True
        dcfg.add_cross_attention = True
        dcfg.num_hidden_layers = decoder_layers
        self.decoder = BertModel(dcfg, add_pooling_layer=False)
        # Decoder input embeddings are the encoder's (tied): a copied piece enters the decoder as the same vector.
        self.decoder.embeddings.word_embeddings = encoder.embeddings.word_embeddings
        if init_decoder:
            self._init_decoder_from_encoder()
        h = encoder.config.hidden_size
        # A copied piece enters the decoder with the encoder state of the position it was copied from, so the
        # decoder knows where in the input it is (which piece comes next, whether the word ends here).
        self.copy_input = nn.Linear(h, h)
        self.transform = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h))
        self.copy_query = nn.Linear(h, h)
        self.copy_key = nn.Linear(h, h)
        self.register_buffer("gen_ids", torch.tensor(gen_ids, dtype=torch.long), persistent=True)
        self.gen_bias = nn.Parameter(torch.zeros(len(gen_ids)))
        self.label_smoothing = 0.0  # set by the training loop (train.label_smoothing)

    def _init_decoder_from_encoder(self) -> None:
        """Start the decoder's self-attention and feed-forward from the encoder's first layers (cross-attn fresh)."""
        emb = self.encoder.embeddings
        self.decoder.embeddings.position_embeddings.load_state_dict(emb.position_embeddings.state_dict())
        self.decoder.embeddings.token_type_embeddings.load_state_dict(emb.token_type_embeddings.state_dict())
        self.decoder.embeddings.LayerNorm.load_state_dict(emb.LayerNorm.state_dict())
        for dl, el in zip(self.decoder.encoder.layer, self.encoder.encoder.layer, strict=False):
            dl.load_state_dict(copy.deepcopy(el.state_dict()), strict=False)

    @property
    def vocab_size(self) -> int:
        return self.encoder.embeddings.word_embeddings.num_embeddings

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)

    def decode(
        self, enc: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
        decoder_positions: torch.Tensor, cache=None,
    ) -> torch.Tensor:
        """Decoder hidden states (B, T, H); ``decoder_positions`` (B, T) gives each input id's source position
        (-1: not copied). With ``cache``, the ids and positions are only the new ones."""
        emb = self.encoder.embeddings.word_embeddings(decoder_input_ids)  # (B, T, H)
        idx = decoder_positions.clamp_min(0)[..., None].expand(-1, -1, enc.size(-1))  # (B, T, H)
        copied = self.copy_input(enc.gather(1, idx).to(emb.dtype))  # (B, T, H)
        emb = emb + copied * (decoder_positions >= 0)[..., None].to(emb.dtype)
        kwargs = {"cache": cache, "use_cache": True} if cache is not None else {}
        past = cache.get_seq_length() if cache is not None else 0
        position_ids = torch.arange(past, past + emb.size(1), device=emb.device)[None].expand(emb.size(0), -1)
        return self.decoder(
            inputs_embeds=emb, position_ids=position_ids, encoder_hidden_states=enc,
            encoder_attention_mask=attention_mask, **kwargs,
        ).last_hidden_state

    def joint_log_probs(
        self, dec: torch.Tensor, enc: torch.Tensor, copyable: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities over [generation vocabulary ; source positions]: (B, T, G + L)."""
        h = self.transform(dec.float())  # (B, T, H)
        emb = self.encoder.embeddings.word_embeddings.weight[self.gen_ids].float()  # (G, H)
        gen = h @ emb.T + self.gen_bias  # (B, T, G)
        q = self.copy_query(h)  # (B, T, H)
        k = self.copy_key(enc.float())  # (B, L, H)
        cp = (q @ k.transpose(1, 2)) / math.sqrt(h.size(-1))  # (B, T, L)
        cp = cp.masked_fill(~copyable[:, None, :], NEG)
        return torch.log_softmax(torch.cat([gen, cp], dim=-1), dim=-1)

    def target_log_probs(
        self, joint: torch.Tensor, source_ids: torch.Tensor, copyable: torch.Tensor, labels: torch.Tensor,
        label_positions: torch.Tensor,
    ) -> torch.Tensor:
        """log P(label) per position (B, T): a mention piece from its gold source position; any other id from
        the generation slot and every source position holding it."""
        match_gen = self.gen_ids[None, None, :] == labels[..., None]  # (B, T, G)
        match_copy = (source_ids[:, None, :] == labels[..., None]) & copyable[:, None, :]  # (B, T, L)
        ar = torch.arange(source_ids.size(1), device=labels.device)
        at_gold = ar[None, None, :] == label_positions[..., None]  # (B, T, L)
        is_copy = (label_positions >= 0)[..., None]
        match_copy = torch.where(is_copy, at_gold, match_copy)
        match_gen = match_gen & ~is_copy
        match = torch.cat([match_gen, match_copy], dim=-1)
        return torch.logsumexp(joint.masked_fill(~match, NEG), dim=-1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        labels: torch.Tensor,
        copyable: torch.Tensor,
        decoder_positions: torch.Tensor,
        label_positions: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced loss; ``labels`` uses -100 for padding."""
        enc = self.encode(input_ids, attention_mask)
        dec = self.decode(enc, attention_mask, decoder_input_ids, decoder_positions)
        joint = self.joint_log_probs(dec, enc, copyable)
        valid = labels != -100
        lp = self.target_log_probs(joint, input_ids, copyable, labels.clamp_min(0), label_positions)
        nll = -lp
        if self.label_smoothing > 0:
            # spread ε of the target mass uniformly over every possible output (generation ids + copyable positions)
            possible = torch.cat([torch.ones_like(joint[..., : self.gen_ids.numel()], dtype=torch.bool),
                                  copyable[:, None, :].expand(-1, joint.size(1), -1)], dim=-1)  # (B, T, G + L)
            uniform = -(joint * possible).sum(-1) / possible.sum(-1)
            nll = (1 - self.label_smoothing) * nll + self.label_smoothing * uniform
        loss = (nll * valid).sum() / valid.sum().clamp_min(1)
        return {"loss": loss, "encoder_hidden": enc, "decoder_hidden": dec}

    @torch.no_grad()
    def next_log_probs(
        self, enc: torch.Tensor, attention_mask: torch.Tensor, source_ids: torch.Tensor, copyable: torch.Tensor,
        decoder_input_ids: torch.Tensor, decoder_positions: torch.Tensor, cache=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the next id over the full vocabulary (B, V), and the joint distribution
        (B, G + L) that ``copy_positions`` reads. With a ``cache`` (updated in place), the ids and positions
        are only the ones not yet in it."""
        dec = self.decode(enc, attention_mask, decoder_input_ids, decoder_positions, cache)[:, -1:]  # (B, 1, H)
        joint = self.joint_log_probs(dec, enc, copyable)[:, 0]  # (B, G + L)
        g = self.gen_ids.numel()
        probs = torch.zeros(joint.size(0), self.vocab_size, dtype=joint.dtype, device=joint.device)
        probs.scatter_add_(1, self.gen_ids.expand(joint.size(0), -1), joint[:, :g].exp())
        probs.scatter_add_(1, source_ids, joint[:, g:].exp() * copyable)
        return probs.clamp_min(1e-30).log(), joint

    def copy_positions(
        self, joint: torch.Tensor, source_ids: torch.Tensor, copyable: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """The source position each chosen token was copied from (B,), or -1 when it was generated: the
        most probable position holding that id, if copying it was likelier than generating it."""
        g = self.gen_ids.numel()
        cp = joint[:, g:].masked_fill(~((source_ids == tokens[:, None]) & copyable), NEG)  # (B, L)
        best, pos = cp.max(-1)
        gen = joint[:, :g].masked_fill(self.gen_ids[None, :] != tokens[:, None], NEG).max(-1).values
        return torch.where((best > NEG / 2) & (best >= gen), pos, torch.full_like(pos, -1))
