"""The copy backbone: a pretrained encoder (any ``AutoModel`` encoder; all-MiniLM-L6-v2 by default) + a small
BERT-style transformer decoder with cross-attention and a copy (pointer) output layer.

Why a pointer: a mention is a slice of the input (DESIGN.md §3). Measured on CoNLL04, a decoder that
re-generated mentions as free text from the 30k-piece softmax could not place 42 % of them. Here the output
distribution is one softmax over [a small generation vocabulary (markers, label words, end of sequence)] ∪
[the positions of the input], so copying a piece of the input is a first-class move and the 30k-wide output
layer disappears (the generation vocabulary of CoNLL04 has about 20 ids). Decoding searches that space
directly (``start_decoding`` / ``step_log_probs``, driven by ``search.search_copy``); ``next_log_probs``
scatters the distribution back onto the full vocabulary, so standard ``LogitsProcessor``s apply unchanged.

What the encoder must offer: ``forward(input_ids, attention_mask).last_hidden_state``, a ``config`` with
``hidden_size`` and ``num_attention_heads``, and its input word embeddings (``get_input_embeddings``), which the
decoder shares. The decoder is always a ``BertModel`` (the lean decoding path below is written for its layers);
it starts from the encoder's first layers and embeddings where they have BERT's layout (BERT, XLM-RoBERTa,
multilingual-E5), else from scratch.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from .dropout import attention

__all__ = ["CopySeq2Seq", "decoder_config"]

log = logging.getLogger(__name__)

NEG = -1e9
START_SLOTS = 48  # self-attention cache slots a decoding batch starts with (it grows to its length limit)


@dataclass
class DecodingState:
    """What incremental decoding keeps for one batch of rows: the encoder output and its mask, the copy keys
    and every layer's cross-attention keys and values (computed once, not per step), each source position's
    generation slot, and a preallocated self-attention cache (no concatenation per step)."""

    enc: torch.Tensor  # (R, L, H)
    attention_mask: torch.Tensor  # (R, L)
    copyable: torch.Tensor  # (R, L) bool
    keys: torch.Tensor  # (R, L, H) copy keys
    slots: torch.Tensor | None  # (R, L) generation slot of the id at each copyable position, -1 for none
    cross_bias: torch.Tensor  # (R, 1, 1, L) 0 at source pieces, -inf-like at padding
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys (R, nh, d, L) and values (R, nh, L, d), contiguous
    self_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (R, nh, T_max + 2, d), filled to ``lengths``
    lengths: torch.Tensor  # (R,) ids fed so far per row (the next position)
    qkv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: fused self-attention projection (not per row)
    max_slots: int = 0  # the size the self-attention cache may grow to (``grow``); 0: its present size

    def grow(self, size: int) -> None:
        """Widen the self-attention cache to ``size`` slots (zeros; the former spare slot becomes a real one,
        written before any query reads it)."""
        self.self_kv = [(_padded(k, 2, size), _padded(v, 2, size)) for k, v in self.self_kv]

    def select(self, rows: torch.Tensor) -> DecodingState:
        """Row ``r`` of the result continues row ``rows[r]`` (beam search reorders, greedy drops ended rows)."""

        def pick(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.index_select(0, rows)

        return DecodingState(
            pick(self.enc), pick(self.attention_mask), pick(self.copyable), pick(self.keys), pick(self.slots),
            pick(self.cross_bias), [(pick(k), pick(v)) for k, v in self.cross_kv],
            [(pick(k), pick(v)) for k, v in self.self_kv], pick(self.lengths), self.qkv, self.max_slots,
        )

    def concat(self, other: DecodingState) -> DecodingState:
        """This state's rows followed by ``other``'s (another batch joining a running search): sources are
        padded to the longer of the two (padding is not copyable and masked in cross-attention), caches to the
        larger size (slots past a row's own cache are never attended: a row's ids stay within its length
        limit)."""
        n = max(self.enc.size(1), other.enc.size(1))
        s = max(self.self_kv[0][0].size(2), other.self_kv[0][0].size(2))

        def cat(a: torch.Tensor, b: torch.Tensor, dim: int, size: int, value: float | bool = 0) -> torch.Tensor:
            return torch.cat([_padded(a, dim, size, value), _padded(b, dim, size, value)], dim=0)

        def no_slots(st: DecodingState) -> torch.Tensor:
            return torch.full_like(st.attention_mask, -1, dtype=torch.long)

        slots = None
        if self.slots is not None or other.slots is not None:
            slots = cat(no_slots(self) if self.slots is None else self.slots,
                        no_slots(other) if other.slots is None else other.slots, 1, n, -1)
        low = torch.finfo(self.cross_bias.dtype).min
        return DecodingState(
            cat(self.enc, other.enc, 1, n), cat(self.attention_mask, other.attention_mask, 1, n),
            cat(self.copyable, other.copyable, 1, n, False), cat(self.keys, other.keys, 1, n), slots,
            cat(self.cross_bias, other.cross_bias, 3, n, low),
            [(cat(k1, k2, 3, n), cat(v1, v2, 2, n)) for (k1, v1), (k2, v2) in zip(self.cross_kv, other.cross_kv, strict=True)],
            [(cat(k1, k2, 2, s), cat(v1, v2, 2, s)) for (k1, v1), (k2, v2) in zip(self.self_kv, other.self_kv, strict=True)],
            torch.cat([self.lengths, other.lengths]), self.qkv, max(self.max_slots, other.max_slots, s),
        )


def _padded(x: torch.Tensor, dim: int, size: int, value: float | bool = 0) -> torch.Tensor:
    """``x`` extended along ``dim`` to ``size`` with ``value`` (``x`` itself when it is that long already)."""
    if x.size(dim) >= size:
        return x
    shape = list(x.shape)
    shape[dim] = size - x.size(dim)
    return torch.cat([x, x.new_full(shape, value)], dim=dim)


# The encoder-config fields the decoder takes over: its width, heads, activation, dropout and initialisation.
DECODER_FIELDS = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act",
                  "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
                  "initializer_range", "layer_norm_eps", "pad_token_id")


def decoder_config(encoder_config: Any, layers: int) -> BertConfig:
    """The decoder's BertConfig: ``layers`` layers with cross-attention, otherwise the encoder's shape (fields it
    lacks keep BERT's defaults; the feed-forward width defaults to 4 × hidden)."""
    fields = {k: getattr(encoder_config, k) for k in DECODER_FIELDS if getattr(encoder_config, k, None) is not None}
    fields.setdefault("intermediate_size", 4 * fields["hidden_size"])
    fields["type_vocab_size"] = max(1, fields.get("type_vocab_size", 1))
    return BertConfig(**fields, num_hidden_layers=layers, is_decoder=True, add_cross_attention=True)


def _add_norm(out: nn.Module, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """A BERT output block (dense, then LayerNorm of the sum with the residual) in eval mode, as functions."""
    ln = out.LayerNorm
    return F.layer_norm(F.linear(h, out.dense.weight, out.dense.bias) + residual, ln.normalized_shape, ln.weight,
                        ln.bias, ln.eps)


def _fused_qkv(att: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The query, key and value projections of a BERT self-attention as one (3H, H) matrix (built once per
    batch): one matrix product per decoding step instead of three."""
    return (torch.cat([att.query.weight, att.key.weight, att.value.weight]),
            torch.cat([att.query.bias, att.key.bias, att.value.bias]))


class CopySeq2Seq(nn.Module):
    """A pretrained encoder + ``decoder_layers`` BERT decoder layers + copy/generate output layer."""

    def __init__(self, encoder: nn.Module, gen_ids: list[int], decoder_layers: int = 2, init_decoder: bool = True):
        super().__init__()
        self.encoder = encoder
        self.decoder = BertModel(decoder_config(encoder.config, decoder_layers), add_pooling_layer=False)
        # Decoder input embeddings are the encoder's (tied): a copied piece enters the decoder as the same vector.
        self.decoder.embeddings.word_embeddings = encoder.get_input_embeddings()
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
        """Start the decoder's embeddings, self-attention and feed-forward from the encoder's first layers
        (cross-attention fresh), where the encoder has BERT's layout; what does not match stays random."""
        emb, dec = getattr(self.encoder, "embeddings", None), self.decoder.embeddings
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if emb is None or layers is None:
            log.info("%s has no BERT layout: the decoder starts from scratch", type(self.encoder).__name__)
            return
        with torch.no_grad():
            pos = getattr(emb, "position_embeddings", None)
            if isinstance(pos, nn.Embedding) and pos.embedding_dim == dec.position_embeddings.embedding_dim:
                # RoBERTa-style encoders number positions from padding_idx + 1; the decoder from 0
                offset = emb.padding_idx + 1 if hasattr(emb, "create_position_ids_from_input_ids") else 0
                n = min(pos.num_embeddings - offset, dec.position_embeddings.num_embeddings)
                dec.position_embeddings.weight[:n] = pos.weight[offset : offset + n]
            types = getattr(emb, "token_type_embeddings", None)
            if isinstance(types, nn.Embedding) and types.embedding_dim == dec.token_type_embeddings.embedding_dim:
                n = min(types.num_embeddings, dec.token_type_embeddings.num_embeddings)
                dec.token_type_embeddings.weight[:n] = types.weight[:n]
        if isinstance(getattr(emb, "LayerNorm", None), nn.LayerNorm):
            dec.LayerNorm.load_state_dict(emb.LayerNorm.state_dict())
        for dl, el in zip(self.decoder.encoder.layer, layers, strict=False):
            mine = dl.state_dict()
            theirs = {k: v for k, v in el.state_dict().items() if k in mine and mine[k].shape == v.shape}
            dl.load_state_dict(copy.deepcopy(theirs), strict=False)

    @property
    def word_embeddings(self) -> nn.Module:
        """The word embeddings that the encoder input, the decoder input and the generation slots share."""
        return self.decoder.embeddings.word_embeddings

    @property
    def vocab_size(self) -> int:
        return self.word_embeddings.num_embeddings

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)

    def decode(
        self, enc: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
        decoder_positions: torch.Tensor, cache=None,
    ) -> torch.Tensor:
        """Decoder hidden states (B, T, H); ``decoder_positions`` (B, T) gives each input id's source position
        (-1: not copied). With ``cache``, the ids and positions are only the new ones."""
        emb = self.word_embeddings(decoder_input_ids)  # (B, T, H)
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

    def decode_packed(
        self, enc: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
        decoder_positions: torch.Tensor, real: torch.Tensor,
    ) -> torch.Tensor:
        """``decode`` without a cache, for teacher forcing: decoder states (B, T, H) at the ``real`` (B, T)
        positions (each row's real positions a prefix of it), zeros elsewhere.

        The position-wise layers (projections, feed-forward, LayerNorm, hidden dropout) run on the real
        positions only, packed (N, H); attention runs padded, per row. Targets of one batch differ in length far
        more than their sources (CoNLL04 train batches: 53 % of the padded decoder positions are real, 95 % of
        the source positions; benchmarks/decoder_waste.py), so the HF decoder spent half its time on padding. The same computation as
        ``decode`` at the real positions (a test holds them equal); dropout draws other masks."""
        emb_mod = self.decoder.embeddings
        b, t = decoder_input_ids.shape
        h = enc.size(-1)
        row_i, col_i = real.nonzero(as_tuple=True)  # (N,) each
        pos = decoder_positions[row_i, col_i]
        x = self.word_embeddings(decoder_input_ids[row_i, col_i])  # (N, H)
        copied = self.copy_input(enc[row_i, pos.clamp_min(0)].to(x.dtype))
        x = x + copied * (pos >= 0)[:, None].to(x.dtype)
        x = x + emb_mod.token_type_embeddings.weight[0]
        x = emb_mod.dropout(emb_mod.LayerNorm(x + emb_mod.position_embeddings.weight[col_i]))

        def padded(z: torch.Tensor, nh: int) -> torch.Tensor:  # (N, H) -> (B, nh, T, d)
            return z.new_zeros(b, t, z.size(-1)).index_put((row_i, col_i), z).view(b, t, nh, -1).transpose(1, 2)

        def packed(z: torch.Tensor) -> torch.Tensor:  # (B, nh, T, d) -> (N, H)
            return z.transpose(1, 2)[row_i, col_i].reshape(-1, h)

        cross_mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L)
        for layer in self.decoder.encoder.layer:
            att, cro = layer.attention.self, layer.crossattention.self
            nh = att.num_attention_heads
            drop = att.dropout.p if self.training else 0.0
            q, k, v = (padded(lin(x), nh) for lin in (att.query, att.key, att.value))
            ctx = attention(q, k, v, p=drop, causal=True, scale=att.scaling)
            out = layer.attention.output
            x = out.LayerNorm(out.dropout(out.dense(packed(ctx))) + x)
            q = padded(cro.query(x), nh)
            k, v = (lin(enc).view(b, -1, nh, h // nh).transpose(1, 2) for lin in (cro.key, cro.value))
            ctx = attention(q, k, v, mask=cross_mask, p=cro.dropout.p if self.training else 0.0, scale=cro.scaling)
            out = layer.crossattention.output
            x = out.LayerNorm(out.dropout(out.dense(packed(ctx))) + x)
            out = layer.output
            x = out.LayerNorm(out.dropout(out.dense(layer.intermediate(x))) + x)
        return x.new_zeros(b, t, h).index_put((row_i, col_i), x)

    def joint_log_probs(
        self, dec: torch.Tensor, enc: torch.Tensor, copyable: torch.Tensor, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Log-probabilities over [generation vocabulary ; source positions]: (B, T, G + L). ``keys``: the copy
        keys of ``enc`` when already computed."""
        h = self.transform(dec.float())  # (B, T, H)
        emb = self.word_embeddings(self.gen_ids).float()  # (G, H)
        gen = h @ emb.T + self.gen_bias  # (B, T, G)
        q = self.copy_query(h)  # (B, T, H)
        k = self.copy_key(enc.float()) if keys is None else keys  # (B, L, H)
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
        valid = labels != -100
        dec = self.decode_packed(enc, attention_mask, decoder_input_ids, decoder_positions, valid)
        joint = self.joint_log_probs(dec, enc, copyable)
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
    def start_decoding(
        self, enc: torch.Tensor, attention_mask: torch.Tensor, source_ids: torch.Tensor, copyable: torch.Tensor,
        max_length: int,
    ) -> DecodingState:
        """The per-batch state of a copy-space search over ``enc`` (R, L, H) for at most ``max_length`` ids."""
        # a label or marker piece that also occurs in the source: training scores it from its generation slot
        # and every copyable position holding it (target_log_probs), so decoding folds that mass into the slot
        match = (source_ids[..., None] == self.gen_ids) & copyable[..., None]  # (R, L, G)
        slots = torch.where(match.any(-1), match.int().argmax(-1), torch.full_like(source_ids, -1))
        r, n = enc.size(0), enc.size(1)
        cfg = self.decoder.config
        nh = cfg.num_attention_heads
        d = cfg.hidden_size // nh
        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(r, -1, nh, d).transpose(1, 2)  # (R, nh, L, d)

        # contiguous, keys already transposed: a step's batched matmuls then read them in place (a strided view
        # would be copied at every step)
        cross = [(heads(layer.crossattention.self.key(enc)).transpose(-1, -2).contiguous(),
                  heads(layer.crossattention.self.value(enc)).contiguous())
                 for layer in self.decoder.encoder.layer]
        kv_dtype = cross[0][0].dtype  # what the projections give (bf16 under autocast)
        # slots 0 … max_length hold fed ids (the decoder start included); the last one takes chunk padding
        # the cache starts small and grows as the rows do (most outputs are far shorter than the limit, and a
        # short cache is cheaper to zero, to drop rows from and to join batches with)
        size = min(max_length + 2, START_SLOTS)
        self_kv = [(enc.new_zeros(r, nh, size, d, dtype=kv_dtype), enc.new_zeros(r, nh, size, d, dtype=kv_dtype))
                   for _ in self.decoder.encoder.layer]
        bias = torch.zeros(r, 1, 1, n, dtype=kv_dtype, device=enc.device)
        bias = bias.masked_fill(~attention_mask.bool()[:, None, None, :], torch.finfo(kv_dtype).min)
        return DecodingState(enc, attention_mask, copyable, self.copy_key(enc.float()),
                             slots if bool((slots >= 0).any()) else None, bias, cross, self_kv,
                             torch.zeros(r, dtype=torch.long, device=enc.device),
                             [_fused_qkv(layer.attention.self) for layer in self.decoder.encoder.layer],
                             max_length + 2)

    def _step_hidden(self, state: DecodingState, new_ids: torch.Tensor, new_pos: torch.Tensor,
                     n_new: torch.Tensor | None = None) -> torch.Tensor:
        """Feed each row its next ids (R, C), the first ``n_new[r]`` of them real (the rest padding), and return
        the decoder state after each row's last real id (R, 1, H).

        The same computation as ``decode`` with a key/value cache (a test holds them equal), without its
        per-step masks, cache concatenations and module dispatch; rows may be at different lengths, so that a
        row can be fed several ids the grammar forced at once. Position-wise layers run on the real ids only,
        packed (N, H), not on the padded (R, C, H): with forced mentions fed together, the chunks are ragged
        (CoNLL04 test: 8,307 real of 14,649 padded; benchmarks/decoder_waste.py). The last layer needs its keys and values at every fed id
        but its output at each row's last one only, so everything after its key/value projection runs on R.
        A row fed nothing computes one padding id into the spare cache slot, so it still has a (finite,
        ignored) state."""
        emb_mod = self.decoder.embeddings
        enc = state.enc
        r, c = new_ids.shape
        dev = new_ids.device
        n_new = torch.full((r,), c, dtype=torch.long, device=dev) if n_new is None else n_new
        fed = n_new.clamp_min(1)  # ids computed per row: the real ones, or one padding id
        size = state.self_kv[0][0].size(2)
        need = int((state.lengths + n_new).max()) + 1  # each row's slots up to its new length, and the spare
        if size < need and size < state.max_slots:
            state.grow(min(state.max_slots, max(need, 2 * size)))
        ar = torch.arange(c, device=dev)
        cap = state.self_kv[0][0].size(2) - 1
        # cache slot (= position) of each id; padding -> the spare slot. A caller that feeds a row past the length
        # limit gets its slots clamped to the last one, so the span never passes the cache either
        slot = torch.where(ar[None, :] < n_new[:, None], (state.lengths[:, None] + ar).clamp(max=cap - 1),
                           torch.full((r, c), cap, dtype=torch.long, device=dev))  # (R, C)
        row_i, col_i = (ar[None, :] < fed[:, None]).nonzero(as_tuple=True)  # (N,) each, row-major
        slot_n = slot[row_i, col_i]
        pos_n = new_pos[row_i, col_i]
        x = self.word_embeddings(new_ids[row_i, col_i])  # (N, H)
        copied = self.copy_input(enc[row_i, pos_n.clamp_min(0)].to(x.dtype))
        x = x + copied * (pos_n >= 0)[:, None].to(x.dtype)
        x = x + emb_mod.token_type_embeddings.weight[0] + emb_mod.position_embeddings.weight[slot_n.clamp(max=cap - 1)]
        x = emb_mod.LayerNorm(x)
        span = min(int((state.lengths + n_new).max()), cap)  # slots any row attends to
        last = fed.cumsum(0) - 1  # (R,) index in N of each row's last computed id
        rows = torch.arange(r, device=dev)

        def causal(q_slot: torch.Tensor) -> torch.Tensor:  # (R, W) slots -> (R, 1, W, T): an id sees up to its slot
            allowed = torch.arange(span, device=dev)[None, None, :] <= q_slot[:, :, None]
            return torch.zeros(allowed.shape, dtype=x.dtype, device=dev).masked_fill(~allowed, torch.finfo(x.dtype).min)[:, None]

        # per-row attention: every computed id (padding has the spare slot, so its query is ignored), or, in the
        # last layer, each row's last id
        bias_all, bias_last = causal(slot), causal(slot_n[last][:, None])
        layers = list(zip(self.decoder.encoder.layer, state.cross_kv, state.self_kv, state.qkv, strict=True))
        for i, (layer, (ck, cv), (sk, sv), (w_qkv, b_qkv)) in enumerate(layers):
            att = layer.attention.self
            nh, d = att.num_attention_heads, att.attention_head_size
            q, k, v = F.linear(x, w_qkv, b_qkv).view(-1, 3, nh, d).unbind(1)  # (N, nh, d) each
            sk[row_i, :, slot_n] = k.to(sk.dtype)  # each id's key and value into its row's slot
            sv[row_i, :, slot_n] = v.to(sv.dtype)
            if i == len(layers) - 1:  # from here on, each row's last id only
                x, q = x[last], q[last]
                q_rows, q_cols, width, self_bias = rows, torch.zeros_like(rows), 1, bias_last
            else:
                q_rows, q_cols, width, self_bias = row_i, col_i, c, bias_all
            # queries back into a padded (R, nh, width, d) for the per-row attention
            q_pad = q.new_zeros(r, width, nh, d)
            q_pad[q_rows, q_cols] = q
            w = (q_pad.transpose(1, 2) @ sk[:, :, :span].transpose(-1, -2).to(q.dtype)) * att.scaling + self_bias
            ctx = (w.softmax(-1) @ sv[:, :, :span].to(q.dtype)).transpose(1, 2)[q_rows, q_cols].reshape(-1, nh * d)
            x = _add_norm(layer.attention.output, ctx, x)
            cro = layer.crossattention.self
            q = cro.query(x)
            q_pad = q.new_zeros(r, width, nh * d)
            q_pad[q_rows, q_cols] = q
            q_pad = q_pad.view(r, width, nh, d).transpose(1, 2)  # (R, nh, width, d)
            w = (q_pad @ ck.to(q_pad.dtype)) * cro.scaling + state.cross_bias.to(q_pad.dtype)  # (R, nh, width, L)
            ctx = (w.softmax(-1) @ cv.to(q_pad.dtype)).transpose(1, 2)[q_rows, q_cols].reshape(-1, nh * d)
            x = _add_norm(layer.crossattention.output, ctx, x)
            inner = layer.intermediate
            x = _add_norm(layer.output, inner.intermediate_act_fn(F.linear(x, inner.dense.weight, inner.dense.bias)), x)
        state.lengths = state.lengths + n_new
        return x[:, None]  # (R, 1, H)

    @torch.no_grad()
    def step_log_probs(self, state: DecodingState, new_ids: torch.Tensor, new_pos: torch.Tensor,
                       n_new: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities of the next action over [generation vocabulary ; source positions]: (R, G + L).

        ``new_ids``/``new_pos`` (R, C): the ids not yet fed and their source positions (-1: generated), the first
        ``n_new[r]`` of row ``r`` real (default: all). A generation slot
        also holds the copy mass of the source positions carrying its id (see ``start_decoding``); such a
        position keeps its own mass as a copy, so the row may sum past 1 and is renormalised by whatever masks
        it."""
        dec = self._step_hidden(state, new_ids, new_pos, n_new)  # (R, 1, H)
        joint = self.joint_log_probs(dec, state.enc, state.copyable, state.keys)[:, 0]  # (R, G + L)
        if state.slots is None:
            return joint
        g = self.gen_ids.numel()
        p = joint.exp()
        has = state.slots >= 0
        gen = p[:, :g].scatter_add(1, state.slots.clamp_min(0), p[:, g:] * has)  # (R, G)
        return torch.cat([gen.clamp_min(1e-30).log(), joint[:, g:]], dim=-1)

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
