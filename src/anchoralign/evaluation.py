"""Decode a set of gold documents and score the predictions (the shape of ``score --json`` plus counts)."""

from __future__ import annotations

from collections.abc import Callable

from .decode import DecodeConfig, predict
from .metrics import score_documents
from .schema import Schema
from .types import Document

__all__ = ["evaluate_documents"]


def evaluate_documents(
    model, gold: list[Document], schema: Schema | None, cfg: DecodeConfig, progress: Callable[[int], None] | None = None
) -> tuple[dict, list[Document]]:
    """Predict on ``gold`` and return ``({"ner", "re", "re_strict", "malformed", "malformed_by_kind",
    "constraint_rejections"}, predictions)``."""
    result = predict(model, gold, cfg, progress=progress)
    scores = score_documents(gold, result.documents, schema)
    scores["malformed"] = result.malformed
    scores["malformed_by_kind"] = dict(sorted(result.errors.items()))
    scores["constraint_rejections"] = result.rejected
    return scores, result.documents
