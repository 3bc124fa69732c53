"""The Hugging Face seq2seq path (T5, BART, mT5 users): a tiny random BART saved to a directory is loaded by the
real ``from_pretrained`` code of ``build_model``, overfits a few documents, decodes under the constraint with
nothing malformed, and reloads from its run directory with identical outputs. No download."""

from __future__ import annotations

import torch
from transformers import BartConfig, BartForConditionalGeneration

from anchoralign.config import RunConfig
from anchoralign.decode import DecodeConfig, predict
from anchoralign.linearize import canonical
from anchoralign.model import ModelConfig, build_model, load_model
from anchoralign.train import train

from .tiny import tiny_tokenizer, toy_docs, toy_schema


def _bart_dir(tmp_path):
    schema = toy_schema()
    words = [w for d in toy_docs() for w in d.words]
    words += [w for t in list(schema.entity_types.values()) + list(schema.relation_types.values()) for w in t.label.split()]
    tok = tiny_tokenizer(tmp_path, words)
    cfg = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                     dropout=0.0, attention_dropout=0.0, pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                     eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=None)
    path = tmp_path / "tiny-bart"
    torch.manual_seed(0)
    BartForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_hf_backbone_trains_decodes_and_reloads(tmp_path) -> None:
    torch.set_num_threads(1)
    docs = toy_docs()
    cfg = RunConfig()
    cfg.model = ModelConfig(backbone=str(_bart_dir(tmp_path)), max_source_length=64, max_target_length=96)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.precision = 200, 3, "fp32"
    cfg.train.lr = cfg.train.lr_new = 3e-3
    cfg.train.warmup_ratio, cfg.train.eval_from_epoch = 0.0, 200
    torch.manual_seed(0)
    model = build_model(cfg.model, toy_schema(), train_docs=docs, anchor=cfg.anchor)
    assert model.kind == "hf"
    result = train(cfg, docs, docs, toy_schema(), tmp_path / "run", model=model, progress=False)
    assert result.best_dev["ner"]["f1"] == 1.0 and result.best_dev["re_strict"]["f1"] == 1.0

    before = predict(model, docs, DecodeConfig())
    assert before.malformed == 0
    assert [canonical(d) for d in before.documents] == [canonical(d) for d in docs]
    reloaded = load_model(tmp_path / "run")
    assert reloaded.kind == "hf"
    after = predict(reloaded, docs, DecodeConfig(num_beams=2))
    assert [canonical(d) for d in after.documents] == [canonical(d) for d in docs]
    free = predict(reloaded, docs, DecodeConfig(constrained=False))
    assert [canonical(d) for d in free.documents] == [canonical(d) for d in docs]
