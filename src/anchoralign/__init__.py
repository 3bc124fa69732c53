"""anchoralign: generative joint named-entity recognition and relation extraction with anchor alignment.

    >>> import anchoralign
    >>> ex = anchoralign.load("runs/demo")           # a model directory written by `anchoralign train`
    >>> ex.extract(["John Smith works for Acme Corp in Boston ."], threshold=0.5)[0].to_dict()

``load`` and ``Extractor`` import torch when first used; the rest of the package's top level does not.
"""

from .errors import InputError
from .extraction import ExtractedEntity, ExtractedRelation, Extraction
from .schema import Schema
from .types import Document, Entity, Relation, Token

__all__ = [
    "load",
    "Extractor",
    "Extraction",
    "ExtractedEntity",
    "ExtractedRelation",
    "Document",
    "Entity",
    "Relation",
    "Token",
    "Schema",
    "InputError",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("load", "Extractor"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'anchoralign' has no attribute {name!r}")
