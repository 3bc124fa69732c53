"""Training only the embedding rows a gradient can reach gives the model that training every row gives (without
weight decay, which alone moves rows that get no gradient), and saved models keep the plain layout."""

from __future__ import annotations

import torch

from anchoralign.batching import collate, make_examples
from anchoralign.model import load_model
from anchoralign.train import train
from anchoralign.trainable_rows import install_row_subset

from .test_overfit import _cfg
from .tiny import tiny_model, toy_docs, toy_schema


def test_row_subset_looks_up_what_the_embedding_does(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(tmp_path)
    emb = model.net.encoder.embeddings.word_embeddings
    ids = torch.tensor([[1, 5, 7, 9], [2, 2, 3, 0]])
    before = emb(ids).detach().clone()
    installed = install_row_subset(model.net, [2, 5, 9])
    assert torch.equal(model.net.encoder.embeddings.word_embeddings(ids), before)
    assert model.net.decoder.embeddings.word_embeddings is installed.subset  # still tied
    with torch.no_grad():
        installed.subset.rows[1] += 1.0  # row of id 5
    with installed.plain():
        assert isinstance(model.net.encoder.embeddings.word_embeddings, torch.nn.Embedding)
        assert torch.allclose(emb.weight[5], before[0, 1] + 1.0)
    installed.remove()
    assert model.net.encoder.embeddings.word_embeddings is emb and emb.weight.requires_grad


def test_seen_rows_train_to_the_same_model_as_all_rows(tmp_path) -> None:
    docs = toy_docs()
    states = {}
    for rows in ("seen", "all"):
        torch.manual_seed(0)
        model = tiny_model(tmp_path)
        cfg = _cfg(3)
        cfg.train.weight_decay = 0.0
        cfg.train.embedding_rows = rows
        train(cfg, docs, docs, toy_schema(), tmp_path / rows, model=model, progress=False)
        assert isinstance(model.net.encoder.embeddings.word_embeddings, torch.nn.Embedding)  # plain again
        states[rows] = {k: v.clone() for k, v in model.state_dict().items()}
        # the saved model has the plain layout and loads
        reloaded = load_model(tmp_path / rows)
        batch = collate(reloaded, make_examples(reloaded, docs))
        assert torch.isfinite(reloaded(batch)["loss"])
    assert states["seen"].keys() == states["all"].keys()
    for k in states["seen"]:
        assert torch.allclose(states["seen"][k], states["all"][k], atol=1e-5), k
