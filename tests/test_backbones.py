"""Backbones: the copy backbone with any ``AutoModel`` encoder (a tiny random XLM-RoBERTa with a SentencePiece-
style Unigram tokenizer, both built in code and loaded through the real ``from_pretrained`` path), the
versioned ``model_config.json`` and the old directories and ``backbone`` values that must keep loading.
No download."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from anchoralign.batching import make_examples
from anchoralign.config import RunConfig, load_config
from anchoralign.decode import DecodeConfig, predict
from anchoralign.errors import InputError
from anchoralign.linearize import canonical
from anchoralign.model import FORMAT, NETS, ModelConfig, build_model, load_model, save_model
from anchoralign.train import train
from anchoralign.types import Document, Relation, tokens_from_words

from .tiny import tiny_model, toy_docs, toy_schema

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def chinese_doc() -> Document:
    """A Chinese passage: one token per character, no spaces, as the brat reader and ``tokenize_text`` give."""
    text, tokens = tokens_from_words(list("约翰在波士顿的艾克米公司工作。"), sep="")
    doc = Document("zh", text, tokens)
    ents = [doc.make_entity(0, 2, "Peop"), doc.make_entity(3, 6, "Loc"), doc.make_entity(7, 12, "Org")]
    return doc.with_annotations(ents, [Relation(0, 2, "Work_For"), Relation(2, 1, "OrgBased_In")])


def _docs() -> list[Document]:
    return toy_docs() + [chinese_doc()]


def _schema():
    return toy_schema().update_from(_docs())


def unigram_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """An XLM-R-like tokenizer: Unigram pieces (``▁word`` for each word, every character alone), a Metaspace
    pre-tokenizer that marks every word start, ``<s> … </s>`` around each sequence."""
    pieces = {f"\u2581{w}" for w in words if w.isascii()} | {c for w in words for c in w} | {"\u2581"}
    vocab = [(p, 0.0) for p in SPECIALS] + [(p, -1.0 - 0.1 * len(p)) for p in sorted(pieces)] + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")


def xlmr_dir(tmp_path):
    """A tiny random XLM-RoBERTa encoder and its tokenizer saved as a Hugging Face model directory."""
    schema = _schema()
    words = [w for d in _docs() for w in d.words]
    words += [w for t in list(schema.entity_types.values()) + list(schema.relation_types.values()) for w in t.label.split()]
    tok = unigram_tokenizer(words)
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    path = tmp_path / "tiny-xlmr"
    torch.manual_seed(0)
    XLMRobertaModel(cfg, add_pooling_layer=False).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_xlmr_encoder_trains_saves_loads_and_decodes_identically(tmp_path) -> None:
    torch.set_num_threads(1)
    docs, schema = _docs(), _schema()
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone="copy", encoder=str(xlmr_dir(tmp_path)), max_source_length=64,
                            max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision = 150, 4, "fp32"
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 150
    torch.manual_seed(0)
    model = build_model(cfg.model, schema, train_docs=docs, anchor=cfg.anchor)
    assert model.kind == "copy" and type(model.net.encoder).__name__ == "XLMRobertaModel"
    # the decoder starts from the encoder: positions past RoBERTa's padding offset, the first layer's weights
    enc, dec = model.net.encoder, model.net.decoder
    assert torch.equal(dec.embeddings.position_embeddings.weight[0], enc.embeddings.position_embeddings.weight[2])
    assert torch.equal(dec.encoder.layer[0].attention.self.query.weight, enc.encoder.layer[0].attention.self.query.weight)
    # Chinese characters come without a word-start marker, Latin words with one; nothing is unknown
    ex = {e.doc.id: e for e in make_examples(model, docs)}
    zh = model.tokenizer.convert_ids_to_tokens(list(ex["zh"].source.ids))
    assert zh[1:-1] == list(chinese_doc().text)
    assert model.tokenizer.convert_ids_to_tokens(list(ex["a"].source.ids))[1] == "\u2581John"
    assert model.tokenizer.unk_token_id not in {i for e in ex.values() for i in e.source.ids}

    result = train(cfg, docs, docs, schema, tmp_path / "run", model=model, progress=False)
    assert result.best_dev["ner"]["f1"] == 1.0 and result.best_dev["re_strict"]["f1"] == 1.0
    before = predict(model, docs, DecodeConfig())
    assert before.malformed == 0
    assert [canonical(d) for d in before.documents] == [canonical(d) for d in docs]
    zh_pred = before.documents[-1]
    assert [zh_pred.text[e.char_start : e.char_end] for e in zh_pred.entities] == ["约翰", "波士顿", "艾克米公司"]

    saved = json.loads((tmp_path / "run" / "model_config.json").read_text(encoding="utf-8"))
    assert saved["format"] == FORMAT and saved["net"] == NETS["copy"]
    assert saved["architecture"]["model_type"] == "xlm-roberta"
    reloaded = load_model(tmp_path / "run")
    assert type(reloaded.net.encoder).__name__ == "XLMRobertaModel"
    assert reloaded.config.backbone == "copy" and reloaded.config.encoder == cfg.model.encoder
    after = predict(reloaded, docs, DecodeConfig())
    assert [canonical(d) for d in after.documents] == [canonical(d) for d in before.documents]
    beam = predict(reloaded, docs, DecodeConfig(num_beams=3))
    assert [canonical(d) for d in beam.documents] == [canonical(d) for d in docs]
    # the saved tokenizer keeps the CJK rule (a tokenizer class would rebuild its own pipeline on loading)
    assert [e.source.ids for e in make_examples(reloaded, docs)] == [e.source.ids for e in ex.values()]


def test_word_marker_rule_after_an_expanding_normalizer() -> None:
    """CJK characters and closing punctuation get no word-start marker, other words one; a normalizer that
    expands a character ("…" -> "...", "①" -> "1" under NFKC, as XLM-R's does) runs first and keeps working."""
    from tokenizers import normalizers

    from anchoralign.model import _no_word_marker_before_cjk

    tok = unigram_tokenizer(["清", "明", "Hello", "world", ",", "...", "1", ")", "("])
    tok.backend_tokenizer.normalizer = normalizers.NFKC()
    new = _no_word_marker_before_cjk(tok)
    words = ["清", "明", "，", "…", "①", "Hello", ",", "world", "(", ")"]
    pieces = new.convert_ids_to_tokens(new(words, is_split_into_words=True)["input_ids"])
    assert pieces == ["<s>", "清", "明", ",", ".", ".", ".", "\u25811", "\u2581Hello", ",", "\u2581world", "\u2581(",
                      ")", "</s>"]
    assert _no_word_marker_before_cjk(new) is new  # already without: unchanged


def test_encoder_config_dict_with_model_type(tmp_path) -> None:
    """The tests' ``encoder_config`` path takes any ``AutoConfig`` architecture that names its model_type."""
    tok = unigram_tokenizer([w for d in _docs() for w in d.words] + ["people", "organization", "location", "other",
                                                                     "work", "for", "based", "in", "live", "kill"])
    arch = XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=130, type_vocab_size=1).to_dict()
    model = build_model(ModelConfig(backbone="tiny", max_source_length=64), _schema(), encoder_config=arch,
                        tokenizer=tok)
    assert type(model.net.encoder).__name__ == "XLMRobertaModel"
    assert model.config.backbone == "copy" and model.config.encoder == "tiny"
    assert model.net.decoder.config.max_position_embeddings == 130 and model.net.decoder.config.type_vocab_size == 1


def _old_format(path) -> None:
    """Rewrite a saved model_config.json as the code before ``"format": 2`` wrote it."""
    cfg = json.loads((path / "model_config.json").read_text(encoding="utf-8"))
    del cfg["format"], cfg["net"], cfg["model"]["encoder"], cfg["model"]["seq2seq"]
    cfg["model"]["backbone"] = "minilm"
    (path / "model_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def test_old_format_directory_still_loads(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    save_model(model, tmp_path / "m")
    _old_format(tmp_path / "m")
    old = load_model(tmp_path / "m")
    assert type(old.net.encoder).__name__ == "BertModel"
    assert (old.config.backbone, old.config.encoder) == ("copy", "minilm")
    docs = toy_docs()
    want = predict(model.eval(), docs, DecodeConfig(max_new_tokens=30)).documents
    got = predict(old, docs, DecodeConfig(max_new_tokens=30)).documents
    assert [canonical(d) for d in got] == [canonical(d) for d in want]
    # and saved again, it is written in the current format
    save_model(old, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "model_config.json").read_text(encoding="utf-8"))["format"] == FORMAT


def test_a_newer_format_is_refused(tmp_path) -> None:
    save_model(tiny_model(tmp_path), tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "model_config.json").read_text(encoding="utf-8"))
    cfg["format"] = FORMAT + 1
    (tmp_path / "m" / "model_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(InputError, match="newer anchoralign"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize(("backbone", "want"), [
    ("minilm", ("copy", "minilm", "")),
    ("random-tiny", ("copy", "random-tiny", "")),
    ("sentence-transformers/all-MiniLM-L6-v2", ("copy", "sentence-transformers/all-MiniLM-L6-v2", "")),
    ("google/mt5-base", ("hf-seq2seq", "minilm", "google/mt5-base")),
    ("copy", ("copy", "minilm", "")),
])
def test_old_backbone_values_are_aliases(backbone, want) -> None:
    cfg = load_config(None, [f"model.backbone={backbone}"])
    assert (cfg.model.backbone, cfg.model.encoder, cfg.model.seq2seq) == want


def test_backbone_fields_are_validated() -> None:
    with pytest.raises(InputError, match="model.seq2seq"):
        load_config(None, ["model.backbone=hf-seq2seq"])
    with pytest.raises(InputError, match="model.encoder"):
        load_config(None, ["model.encoder="])
    cfg = load_config(None, ["model.encoder=runs/encoders/multilingual-e5-small"])
    assert (cfg.model.backbone, cfg.model.encoder) == ("copy", "runs/encoders/multilingual-e5-small")


def test_encoder_errors_name_the_field(tmp_path) -> None:
    with pytest.raises(InputError, match="cannot load model.encoder"):
        build_model(ModelConfig(encoder=str(tmp_path / "nowhere")), _schema())
    # RoBERTa-style position tables start after the padding id: 130 rows hold 128 pieces
    with pytest.raises(InputError, match="max_source_length 129 exceeds the 128 positions"):
        build_model(ModelConfig(encoder=str(xlmr_dir(tmp_path)), max_source_length=129), _schema())
