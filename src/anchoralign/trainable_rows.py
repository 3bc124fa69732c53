"""Train only the embedding rows that training can move.

The copy backbone's word embeddings (30k rows × 384 for MiniLM) are tied three ways: encoder input, decoder
input and the generation slots' output vectors. Trained as one dense matrix, every step zero-fills and sums
three dense 30k-row gradients, clips them and runs AdamW over all 11.7M values, though only the rows of
pieces that occur in the training data (and the generation vocabulary) ever receive a gradient: about 7 % of a
CPU training step's time for nothing (`benchmarks/profile_train_step.py`). ``RowSubset`` keeps the full matrix frozen and trains
a small copy of those rows; the result is the same but for AdamW's weight decay, which no longer shrinks rows
that never get a gradient.

Only the training loop installs it, and it folds the trained rows back whenever the model is saved or loaded,
so saved models keep the plain layout (``RowSubset.plain``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RowSubset", "install_row_subset"]


class RowSubset(nn.Module):
    """An embedding lookup over a frozen ``weight`` whose rows ``row_ids`` come from the trainable ``rows``."""

    def __init__(self, base: nn.Embedding, row_ids: torch.Tensor) -> None:
        super().__init__()
        self.base = [base]  # a list: not a submodule, so its weight is not registered twice
        self.weight = base.weight
        self.weight.requires_grad_(False)
        self.register_buffer("row_ids", row_ids.to(self.weight.device), persistent=False)
        index = torch.full((self.weight.size(0),), -1, dtype=torch.long, device=self.weight.device)
        index[self.row_ids] = torch.arange(self.row_ids.numel(), device=self.weight.device)
        self.register_buffer("row_index", index, persistent=False)
        self.rows = nn.Parameter(self.weight.detach()[self.row_ids].clone())

    @property
    def num_embeddings(self) -> int:
        return self.weight.size(0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ri = self.row_index[ids]  # (…) index into rows, -1 for a frozen row
        trained = F.embedding(ri.clamp_min(0), self.rows)
        return torch.where((ri >= 0)[..., None], trained, F.embedding(ids, self.weight))

    @torch.no_grad()
    def fold(self) -> None:
        """Write the trained rows into the full matrix."""
        self.weight[self.row_ids] = self.rows.detach()

    @torch.no_grad()
    def unfold(self) -> None:
        """Take the rows from the full matrix (after it was loaded)."""
        self.rows.copy_(self.weight[self.row_ids])


class _Installed:
    """What ``install_row_subset`` put in place, and how to put the plain embedding back for a moment."""

    def __init__(self, net: nn.Module, subset: RowSubset) -> None:
        self.net = net
        self.subset = subset

    def _set(self, module: nn.Module) -> None:
        self.net.encoder.embeddings.word_embeddings = module
        self.net.decoder.embeddings.word_embeddings = module

    def remove(self) -> None:
        """Put the plain, fully updated embedding back for good (its weight trainable again)."""
        self.subset.fold()
        self._set(self.subset.base[0])
        self.subset.weight.requires_grad_(True)

    @contextmanager
    def plain(self) -> Iterator[None]:
        """The plain, fully updated ``nn.Embedding`` in place (to save or load the model), then back."""
        self.subset.fold()
        self._set(self.subset.base[0])
        try:
            yield
        finally:
            self._set(self.subset)
            self.subset.unfold()


def install_row_subset(net: nn.Module, ids: Iterable[int]) -> _Installed:
    """Replace the copy backbone's tied word embeddings by a ``RowSubset`` training the rows ``ids``."""
    base = net.encoder.embeddings.word_embeddings
    row_ids = torch.tensor(sorted(set(int(i) for i in ids)), dtype=torch.long)
    installed = _Installed(net, RowSubset(base, row_ids))
    installed._set(installed.subset)
    return installed
