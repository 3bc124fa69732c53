"""Tiny random models and tokenizers built in code: no download, seconds on a CPU."""

from __future__ import annotations

from transformers import BertTokenizerFast

from anchoralign.model import ModelConfig, build_model
from anchoralign.schema import Schema
from anchoralign.types import Document, tokens_from_words

BASE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_tokenizer(tmp_path, words: list[str]) -> BertTokenizerFast:
    """A WordPiece tokenizer over ``words`` (lower-cased) plus their characters as ## pieces."""
    vocab = list(BASE_VOCAB)
    for w in sorted({w.lower() for w in words}):
        if w not in vocab:
            vocab.append(w)
    chars = sorted({c for w in words for c in w.lower()})
    vocab += [c for c in chars if c not in vocab] + [f"##{c}" for c in chars]
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def tiny_encoder_config(vocab_size: int) -> dict:
    return {
        "vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }


def make_doc(doc_id: str, words: list[str], ents: list[tuple[int, int, str]], rels: list[tuple[int, int, str]]) -> Document:
    text, tokens = tokens_from_words(words)
    doc = Document(doc_id, text, tokens)
    entities = [doc.make_entity(s, e, t) for s, e, t in ents]
    from anchoralign.types import Relation

    return doc.with_annotations(entities, [Relation(h, t, r) for h, t, r in rels])


def toy_docs() -> list[Document]:
    return [
        make_doc("a", "John Smith works for Acme Corp in Boston .".split(),
                 [(0, 2, "Peop"), (4, 6, "Org"), (7, 8, "Loc")], [(0, 1, "Work_For"), (1, 2, "OrgBased_In")]),
        make_doc("b", "Mary lives in Paris on Monday .".split(),
                 [(0, 1, "Peop"), (3, 4, "Loc"), (5, 6, "Other")], [(0, 1, "Live_In")]),
        make_doc("c", "Acme Corp hired Mary Jones .".split(), [(0, 2, "Org"), (3, 5, "Peop")], [(1, 0, "Work_For")]),
    ]


def toy_schema() -> Schema:
    s = Schema()
    for n, label in [("Peop", "people"), ("Org", "organization"), ("Loc", "location"), ("Other", "other")]:
        s.add_entity_type(n, label)
    for n, label in [("Work_For", "work for"), ("OrgBased_In", "organization based in"), ("Live_In", "live in"),
                     ("Kill", "kill")]:
        s.add_relation_type(n, label)
    return s.update_from(toy_docs())


def tiny_model(tmp_path, config: ModelConfig | None = None, anchor=None):
    schema = toy_schema()
    words = [w for d in toy_docs() for w in d.words]
    words += [w for t in list(schema.entity_types.values()) + list(schema.relation_types.values()) for w in t.label.split()]
    tok = tiny_tokenizer(tmp_path, words)
    cfg = config or ModelConfig(backbone="tiny", max_source_length=64, max_target_length=96)
    return build_model(cfg, schema, encoder_config=tiny_encoder_config(len(tok)), tokenizer=tok, anchor=anchor)


def overfit_tiny_model(tmp_path, anchor=None, steps: int = 150):
    """A tiny model (seed 0) trained ``steps`` full-batch AdamW steps on ``toy_docs``: enough to learn them."""
    import torch

    from anchoralign.batching import collate, make_examples

    torch.manual_seed(0)
    model = tiny_model(tmp_path, anchor=anchor)
    batch = collate(model, make_examples(model, toy_docs()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
    return model
